"""The version of this chainrule, from one place: ``version`` in pyproject.toml.

An installed package reads it from its distribution's metadata (which the
build copied from pyproject.toml).  Code run from a source tree (with
``PYTHONPATH=src``, or installed in editable mode) reads pyproject.toml
itself, since metadata found on the path may belong to another copy of
chainrule installed there.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable
from pathlib import Path

UNKNOWN = "0+unknown"

_SECTION = re.compile(r"^\s*\[(.*)\]\s*(#.*)?$")
_FIELD = re.compile(r"""^\s*(name|version)\s*=\s*(["'])(.*?)\2\s*(#.*)?$""")


def find_version(
    package_file: str | Path,
    distribution: Callable[[str], importlib.metadata.Distribution] = (
        importlib.metadata.distribution
    ),
) -> str:
    """The version of the chainrule whose ``__init__.py`` is ``package_file``.

    In order: the installed distribution's version when that distribution
    holds this very file; the ``[project]`` version of the source tree's
    pyproject.toml (``<root>/src/chainrule/__init__.py`` beside
    ``<root>/pyproject.toml``); the version of whatever chainrule
    distribution is installed; ``"0+unknown"``.
    """
    here = Path(package_file).resolve()
    try:
        dist: importlib.metadata.Distribution | None = distribution("chainrule")
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        located = Path(str(dist.locate_file(f"chainrule/{here.name}")))
        if located.exists() and located.resolve() == here:
            return dist.version
    source = source_version(here.parent.parent.parent / "pyproject.toml")
    if source is not None:
        return source
    return dist.version if dist is not None else UNKNOWN


def source_version(pyproject: Path) -> str | None:
    """The ``version`` of the ``[project]`` table of ``pyproject`` if it is chainrule's.

    A line reader rather than a TOML parser: Python 3.10 has none built in,
    and the field is one plain string line.
    """
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    fields: dict[str, str] = {}
    in_project = False
    for line in text.splitlines():
        section = _SECTION.match(line)
        if section:
            in_project = section.group(1).strip() == "project"
            continue
        field = _FIELD.match(line) if in_project else None
        if field:
            fields.setdefault(field.group(1), field.group(3))
    if fields.get("name") != "chainrule":
        return None
    return fields.get("version")
