"""One version number: pyproject.toml's, read by the installed package or the source tree.

(`make wheel-check` builds, checks, installs and runs the wheel itself.)
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

import chainrule
from chainrule._version import UNKNOWN, find_version, source_version

ROOT = Path(__file__).resolve().parent.parent


class FakeDistribution:
    """Just what find_version asks of an installed distribution."""

    def __init__(self, site: Path, version: str) -> None:
        self.site = site
        self.version = version

    def locate_file(self, path: str) -> Path:
        return self.site / path


def _lookup(dist):
    def distribution(name):
        assert name == "chainrule"
        if dist is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return dist

    return distribution


def _package(folder: Path) -> Path:
    init = folder / "chainrule" / "__init__.py"
    init.parent.mkdir(parents=True)
    init.write_text("")
    return init


PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]

[tool.other]
version = "not this one"

[project]
name = "chainrule"  # the distribution
description = "version = '0.0.0' is not a field line"
version = "{version}"

[[tool.mypy.overrides]]
version = "nor this"
"""


def test_the_package_reports_pyprojects_version():
    tomllib = pytest.importorskip("tomllib")
    with open(ROOT / "pyproject.toml", "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    assert chainrule.__version__ == version
    assert source_version(ROOT / "pyproject.toml") == version


def test_an_installed_package_reads_its_own_metadata(tmp_path):
    site = tmp_path / "lib" / "site-packages"
    init = _package(site)
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.format(version="1.0"))  # not its tree
    assert find_version(init, _lookup(FakeDistribution(site, "2.5.0"))) == "2.5.0"


def test_a_source_tree_reads_its_pyproject_over_metadata_of_another_copy(tmp_path):
    init = _package(tmp_path / "src")
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.format(version="3.1.4"))
    elsewhere = tmp_path / "venv" / "site-packages"
    _package(elsewhere)
    assert find_version(init, _lookup(FakeDistribution(elsewhere, "0.9"))) == "3.1.4"
    assert find_version(init, _lookup(None)) == "3.1.4"


def test_without_either_the_version_is_unknown_or_the_installed_one(tmp_path):
    init = _package(tmp_path / "src")
    (tmp_path / "pyproject.toml").write_text(
        PYPROJECT.format(version="5.0").replace('"chainrule"', '"another"')
    )
    assert source_version(tmp_path / "pyproject.toml") is None
    assert find_version(init, _lookup(None)) == UNKNOWN
    elsewhere = tmp_path / "site-packages"  # no chainrule/__init__.py there
    assert find_version(init, _lookup(FakeDistribution(elsewhere, "0.7"))) == "0.7"


def test_the_cli_prints_the_version(capsys):
    from chainrule.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"chainrule {chainrule.__version__}"
