"""Finding a Graphviz renderer and running it.

DOT text is turned into SVG, PNG or PDF by an external program with ``dot``'s
command-line flags.  :func:`find_renderers` looks, in this order, for:

1. the program named by the environment variable ``CHAINRULE_DOT`` (a path,
   or a command on ``PATH``);
2. a system ``dot`` on ``PATH`` (Graphviz, e.g. Debian's ``graphviz`` package);
3. ``graphviz-pure`` (``pip install graphviz-pure``, or ``chainrule[viz]``), on
   ``PATH`` or next to the running Python (``sys.executable``): a Jupyter
   kernel started from a virtual environment often lacks its ``bin`` on
   ``PATH``.

graphviz-pure writes SVG and PNG but not PDF; :func:`render` then moves on to
the next renderer found.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import RendererNotFoundError, RenderError

ENV_VAR = "CHAINRULE_DOT"
FORMATS = ("svg", "png", "pdf", "json")
#: Rendering a huge graph as PNG can take minutes and gigabytes: PNGs are
#: scaled down to fit this many inches (at 96 dpi) on their longer side.
PNG_MAX_INCHES = 60
TIMEOUT = 300.0

__all__ = [
    "ENV_VAR",
    "RenderError",
    "Renderer",
    "RendererNotFoundError",
    "find_renderer",
    "find_renderers",
    "render",
]


HOW_TO_INSTALL = (
    "install one with `pip install graphviz-pure` (or `pip install 'chainrule[viz]'`), "
    "or the system Graphviz (e.g. `apt-get install graphviz`), or set "
    f"{ENV_VAR} to the path of a `dot` program"
)


@dataclass(frozen=True)
class Renderer:
    """A program with ``dot``'s flags: ``name`` for messages, ``path`` to run."""

    name: str
    path: str

    @property
    def formats(self) -> tuple[str, ...]:
        if Path(self.path).name.startswith("graphviz-pure"):
            return ("svg", "png", "json")
        return FORMATS

    def run(self, source: str, fmt: str, timeout: float = TIMEOUT) -> bytes:
        """Render DOT ``source`` to ``fmt`` and return the bytes."""
        args = [self.path, f"-T{fmt}"]
        if fmt == "png":
            args += [f"-Gsize={PNG_MAX_INCHES},{PNG_MAX_INCHES}", "-Gdpi=96"]
        try:
            proc = subprocess.run(
                args,
                input=source.encode("utf-8"),
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RenderError(
                f"{self.name} ({self.path}) took more than {timeout:.0f} s to render {fmt}; "
                "the graph is probably too large: try SVG, or draw(..., collapse=True)"
            ) from None
        except OSError as e:
            raise RenderError(f"{self.name} ({self.path}) could not be run: {e}") from None
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip()
            raise RenderError(
                f"{self.name} ({self.path}) failed to render {fmt} "
                f"(exit status {proc.returncode}): {err[:2000]}"
            )
        return proc.stdout


def _which(cmd: str) -> str | None:
    if os.sep in cmd or (os.altsep and os.altsep in cmd):
        p = Path(cmd).expanduser()
        return str(p) if p.is_file() and os.access(p, os.X_OK) else None
    return shutil.which(cmd)


def find_renderers() -> list[Renderer]:
    """Every renderer found, in order of preference (duplicates removed)."""
    found: list[Renderer] = []
    seen: set[str] = set()

    def add(name: str, path: str | None) -> None:
        if path is None:
            return
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            found.append(Renderer(name, path))

    env = os.environ.get(ENV_VAR)
    if env:
        add(f"${ENV_VAR}", _which(env))
    add("dot", shutil.which("dot"))
    add("graphviz-pure", shutil.which("graphviz-pure"))
    exe_dir = Path(sys.executable).parent
    for name in ("graphviz-pure", "graphviz-pure.exe"):
        cand = exe_dir / name
        if cand.is_file() and os.access(cand, os.X_OK):
            add("graphviz-pure", str(cand))
    return found


def find_renderer() -> Renderer | None:
    """The preferred renderer, or None."""
    found = find_renderers()
    return found[0] if found else None


def render(source: str, fmt: str, renderer: Renderer | None = None) -> bytes:
    """Render DOT ``source`` to ``fmt`` with ``renderer`` or the first one that can.

    Raises:
        RendererNotFoundError: no renderer is installed (or none writes ``fmt``).
        RenderError: the renderer failed.
    """
    if fmt not in FORMATS:
        raise ValueError(f"render: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if renderer is not None:
        return renderer.run(source, fmt)
    found = find_renderers()
    able = [r for r in found if fmt in r.formats]
    if not able:
        if found:
            names = ", ".join(f"{r.name} ({r.path})" for r in found)
            raise RendererNotFoundError(
                f"no renderer found that writes {fmt}: {names} cannot; "
                "the system Graphviz (e.g. `apt-get install graphviz`) can"
            )
        raise RendererNotFoundError(f"no Graphviz renderer found: {HOW_TO_INSTALL}")
    return able[0].run(source, fmt)
