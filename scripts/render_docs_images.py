"""Render the pictures shown in docs/graphs.md, from the code shown there.

Each ```python block of docs/graphs.md that saves into ``docs/images/`` is run
as it stands (from the repository root), so the committed pictures are made
by exactly the code the page shows.  graphviz-pure is preferred when it is
installed, since it writes the same bytes on every platform.

    python scripts/render_docs_images.py            # rewrite docs/images/
    python scripts/render_docs_images.py --out DIR  # write somewhere else (used by the tests)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "graphs.md"
IMAGES = "docs/images/"

BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def picture_blocks(text: str) -> list[str]:
    """The python code blocks of the page that save a picture into docs/images/."""
    return [b for b in BLOCK.findall(text) if f'.save("{IMAGES}' in b]


def run(out: Path, renderer: str | None = None) -> list[Path]:
    """Run every picture block, writing into ``out``; returns the files written."""
    from chainrule.viz import render

    if renderer is None:
        pure = [r for r in render.find_renderers() if r.name == "graphviz-pure"]
        renderer = pure[0].path if pure else None
    if renderer is not None:
        os.environ[render.ENV_VAR] = renderer
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for block in picture_blocks(DOC.read_text(encoding="utf-8")):
        code = block.replace(f'.save("{IMAGES}', f'.save("{out.as_posix()}/')
        names = re.findall(r'\.save\("([^"]+)"', code)
        exec(compile(code, str(DOC), "exec"), {"__name__": "__docs__"})
        written += [Path(n) for n in names]
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / IMAGES, help="output folder")
    parser.add_argument("--renderer", help="path of the dot program to use")
    args = parser.parse_args(argv)
    for path in run(args.out, args.renderer):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
