"""The documentation site: the API reference covers the public API, the nav covers the pages.

The reference pages (docs/reference/*.md) name each documented object with a
mkdocstrings line, ``::: chainrule.nn.Linear``.  These tests read those lines
(no MkDocs needed) and check that every public name of every public module has
one, so a name or a module added to the package without a line in the
reference fails here; ``make docs`` (``mkdocs build --strict``) then checks that
each line renders and each link and cross-reference resolves.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import chainrule

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"

# Modules of chainrule whose public names are re-exported by chainrule itself
# (and documented there), or that are internal machinery.  Any other module,
# a new one included, needs a page (or a section) in docs/reference/.
IMPLEMENTATION_MODULES = {
    "creation",
    "draw",
    "engine",
    "explain",
    "gradcheck",
    "modes",
    "naming",
    "numerics",
    "ops",
    "random",
    "rules",
    "serialization",
    "tensor",
    "value",
    "viz",
    "__main__",
    "_version",
}

_DIRECTIVE = re.compile(r"^:::\s+(\S+)\s*$", re.MULTILINE)


def directives() -> list[str]:
    """Every object path named by a ``::: path`` line of the reference pages."""
    found: list[str] = []
    for page in sorted(REFERENCE.glob("*.md")):
        found += _DIRECTIVE.findall(page.read_text(encoding="utf-8"))
    return found


def lookup(path: str) -> Any:
    """The Python object a dotted path names (the longest importable module, then attributes)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(path)


def public_names(module: types.ModuleType) -> list[str]:
    """``__all__``, or else the names the module itself defines without a leading underscore."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [
        name
        for name, obj in vars(module).items()
        if not name.startswith("_") and getattr(obj, "__module__", None) == module.__name__
    ]


def public_modules() -> list[types.ModuleType]:
    """chainrule and every module reachable from it through public names."""
    seen: dict[str, types.ModuleType] = {}
    todo = [chainrule]
    while todo:
        module = todo.pop()
        if module.__name__ in seen:
            continue
        seen[module.__name__] = module
        for name in public_names(module):
            obj = getattr(module, name)
            if inspect.ismodule(obj) and obj.__name__.startswith("chainrule."):
                todo.append(obj)
    return list(seen.values())


def missing_from_reference(documented: list[str]) -> list[str]:
    """The public names and modules without a ``:::`` line, as readable complaints."""
    by_path = {path: lookup(path) for path in documented}
    problems = []
    for module in public_modules():
        if module.__name__ not in by_path:
            problems.append(f"module {module.__name__} has no '::: {module.__name__}' line")
        for name in public_names(module):
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                continue  # checked as a module of its own
            if not any(
                path.rsplit(".", 1)[-1] == name and by_path[path] is obj for path in documented
            ):
                problems.append(f"{module.__name__}.{name} has no '::: ...{name}' line")
    return problems


def test_every_reference_line_names_an_object():
    documented = directives()
    assert len(documented) > 100
    for path in documented:
        lookup(path)  # raises for a name that does not exist


def test_every_public_name_is_in_the_reference():
    problems = missing_from_reference(directives())
    assert not problems, (
        "add these to a page of docs/reference/ (see docs/reference/index.md):\n  "
        + "\n  ".join(problems)
    )


def test_a_missing_name_or_module_is_reported():
    # The check above must be able to fail: take away one name and one module.
    documented = [
        p for p in directives() if p not in ("chainrule.nn.Linear", "chainrule.optim.lr_scheduler")
    ]
    problems = missing_from_reference(documented)
    assert "chainrule.nn.Linear has no '::: ...Linear' line" in problems
    assert any(p.startswith("module chainrule.optim.lr_scheduler has no") for p in problems)


def test_every_module_of_the_package_is_documented_or_internal():
    # A module added to chainrule (compile, derive, symbolic, ...) needs a
    # reference page or a place in IMPLEMENTATION_MODULES, a decision either way.
    documented = set(directives())
    undocumented = [
        m.name
        for m in pkgutil.iter_modules(chainrule.__path__)
        if m.name not in IMPLEMENTATION_MODULES and f"chainrule.{m.name}" not in documented
    ]
    assert not undocumented, (
        f"chainrule modules with no reference page: {undocumented}; add a page to "
        "docs/reference/ and to the nav of mkdocs.yml (see docs/reference/index.md)"
    )


def test_every_page_is_in_the_nav():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md"))
    missing = [p for p in pages if not re.search(rf"(^|\s){re.escape(p)}\s*$", config, re.M)]
    assert not missing, f"pages not in the nav of mkdocs.yml: {missing}"


# -- the Griffe extension that turns the docstrings' markup into Markdown ------------------


def _markup() -> Any:
    griffe = pytest.importorskip("griffe", reason="the docs extra is not installed")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        return griffe, importlib.import_module("griffe_markup")
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def _load(griffe: Any, markup: Any, package: Path) -> Any:
    return griffe.load(
        package.name,
        search_paths=[str(package.parent)],
        extensions=griffe.load_extensions(markup.DocstringMarkup),
    )


def test_markup_turns_doctests_and_roles_into_markdown(tmp_path, caplog):
    griffe, markup = _markup()
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        '"""A package."""\n'
        "class Thing:\n"
        '    """A thing; see :func:`make` and :class:`~pkg.Thing`, not :class:`numpy.ndarray`.\n\n'
        "    Laid out so::\n\n"
        "        a  b\n\n"
        "    >>> [1, 2]\n"
        "    [1, 2]\n"
        '    """\n'
        "def make() -> Thing:\n"
        '    """Make one, like :class:`Thing` and unlike :func:`nothing_here`."""\n'
        "    return Thing()\n",
        encoding="utf-8",
    )
    with caplog.at_level("WARNING"):
        pkg = _load(griffe, markup, package)
    thing = pkg["Thing"].docstring.value
    assert '<autoref identifier="pkg.make" optional><code>make</code></autoref>' in thing
    assert '<autoref identifier="pkg.Thing" optional><code>Thing</code></autoref>' in thing
    assert "<code>numpy.ndarray</code>" in thing and 'autoref identifier="numpy' not in thing
    assert "Laid out so:\n" in thing and "::" not in thing
    assert "```pycon\n>>> [1, 2]\n[1, 2]\n```" in thing
    # a role that names nothing is a warning, which fails mkdocs build --strict
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("'nothing_here' names nothing" in w for w in warnings), warnings
    assert not any("make" in w.split("'")[1] for w in warnings if "'" in w)


def test_chainrule_docstrings_have_no_broken_roles(caplog):
    griffe, markup = _markup()
    with caplog.at_level("WARNING"):
        _load(griffe, markup, ROOT / "src" / "chainrule")
    broken = [r.getMessage() for r in caplog.records if "names nothing" in r.getMessage()]
    assert not broken, broken
