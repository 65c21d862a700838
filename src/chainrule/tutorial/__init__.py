"""The classic 2-2-2 backpropagation example, reproduced by generic autodiff.

The example and its figures are Matt Mazur's, from the blog post "A Step by
Step Backpropagation Example" (2015).  ``python -m chainrule tutorial`` (or
``chainrule tutorial``) runs :func:`main`: it builds the network three ways,
derives it step by step with :func:`chainrule.derive` and sets every
published figure beside the line that computes it, checks each figure by
the delta rule written by hand, by autodiff and by finite differences,
proves each weight's gradient as a formula with :func:`chainrule.symbolic`
(when SymPy is installed), shows the chain rule path by path, trains for 10,000
updates, explains by computation any published figure (of either edition of
the post) that does not follow from the stated procedure, and draws the graph.
Options change the setup (more hidden neurons, biases updated, the update
order); each changed setup is computed and printed with its own figures.

The pieces:

* :mod:`.reference`: the published figures, as data;
* :mod:`.hand`: the delta rule written out for this network, by hand (the check
  of the derivation that ``derive`` writes);
* :mod:`.network`: the Value, Tensor and ``nn`` builds, and training;
* :mod:`.variants`: procedure variants and the search for a discrepancy's cause;
* :mod:`.runs`: the example under a changed :class:`~.runs.Setup`;
* :mod:`.computation`: all of it together; :mod:`.report`: tables and JSON.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from .computation import Results, add_training, compute, compute_worked_example
from .reference import PUBLISHED, TRAINING_STEPS
from .runs import Setup

__all__ = [
    "PUBLISHED",
    "Results",
    "Setup",
    "add_training",
    "compute",
    "compute_worked_example",
    "main",
    "write_picture",
]

PICTURE_NAME = "e_total"


def _text_bar(steps: Iterable[int], total: int, stream: TextIO) -> Iterator[int]:
    """A plain progress bar on ``stream``, for when tqdm is not installed."""
    width = 30
    shown = -1
    for n in steps:
        done = (n + 1) * width // total
        if done != shown:
            shown = done
            stream.write(f"\r  training [{'#' * done}{'.' * (width - done)}] {n + 1:,}/{total:,}")
            stream.flush()
        yield n
    stream.write("\n")
    stream.flush()


def progress_bar(total: int, stream: TextIO | None = None) -> Any:
    """A function wrapping the training loop with a progress bar on stderr."""
    out = sys.stderr if stream is None else stream
    try:
        tqdm = importlib.import_module("tqdm").tqdm
    except ImportError:  # tqdm comes with the examples extra; fall back to plain text
        return lambda steps: _text_bar(steps, total, out)
    return lambda steps: tqdm(
        steps, total=total, desc="  training", unit="update", file=out, leave=True
    )


def write_picture(out_dir: Path, full: bool = False) -> dict[str, Any]:
    """Draw E_total's graph with the paths to w5 and w1 highlighted, into ``out_dir``.

    Writes ``e_total.dot`` always, and ``e_total.svg`` and ``e_total.png``
    when a renderer is found (Graphviz's ``dot`` or the graphviz-pure wheel).
    The default picture runs top to bottom, so it is as wide as the network
    (about 1,400 px) and fits a laptop screen at full size; ``full=True``
    draws the same graph left to right on one row, as wide as the graph is
    deep (about 4,400 px), the layout of the picture in the docs.
    Returns ``{"files": [...], "messages": [...]}``.
    """
    from ..draw import RendererNotFoundError, RenderError, draw
    from .network import build_values

    net = build_values()
    net["E_total"].backward()
    rankdir = "LR" if full else "TB"
    drawing = draw(net["E_total"], highlight=[net["w5"], net["w1"]], rankdir=rankdir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [str(drawing.save(out_dir / f"{PICTURE_NAME}.dot"))]
    messages = []
    for fmt in ("svg", "png"):
        try:
            files.append(str(drawing.save(out_dir / f"{PICTURE_NAME}.{fmt}")))
        except (RendererNotFoundError, RenderError) as e:
            messages.append(f"no {fmt.upper()}: {e}")
    messages.insert(
        0,
        "The graph of E_total, with the paths to w5 and w1 drawn bold, was written to:",
    )
    messages[1:1] = [f"  {f}" for f in files]
    return {"files": files, "messages": messages}


def main(
    out: str | Path = "tutorial-out",
    fmt: str = "text",
    picture: bool = True,
    stream: TextIO | None = None,
    verbose: bool = False,
    full_picture: bool = False,
    setup: Setup | None = None,
) -> int:
    """Run the tutorial and print it; returns the exit status (0 when all is well).

    Args:
        out: the folder for the graph picture.
        fmt: ``"text"`` (tables) or ``"json"``.
        picture: whether to write the picture (step 6).
        stream: where to print (default: standard output).
        verbose: print every table in full (text only; JSON always has everything).
        full_picture: draw the graph on one row, left to right (see :func:`write_picture`).
        setup: a changed setup (:class:`~.runs.Setup`) to compute and print
            instead of the published example; None or the default is the example.
    """
    from . import report, runs

    if fmt not in ("text", "json"):
        raise ValueError(f"tutorial: format must be 'text' or 'json', got {fmt!r}")
    sink = sys.stdout if stream is None else stream
    if setup is not None and not setup.is_published_example:
        progress = progress_bar(TRAINING_STEPS) if fmt == "text" else None
        run = runs.run(setup, TRAINING_STEPS, progress)
        text = report.run_json(run) if fmt == "json" else report.run_text(run, verbose)
        print(text, file=sink)
        return 0 if run.ok else 1
    if fmt == "json":
        results = compute(TRAINING_STEPS)
        drawn = write_picture(Path(out), full_picture) if picture else None
        print(report.json_report(results, drawn), file=sink)
        return 0 if results.ok else 1

    # Text is printed as it is computed, so the progress bar (on stderr)
    # shows up where the training happens.
    def say(text: str) -> None:
        print(text, file=sink, flush=True)

    results = compute_worked_example(TRAINING_STEPS)
    notes: dict[str, int] = {}
    say(report.worked_text(results, notes, verbose))
    say(report.training_intro(results, verbose))
    add_training(results, progress_bar(TRAINING_STEPS))
    say(report.training_text(results, notes, verbose))
    if picture:
        say(report.picture_text(write_picture(Path(out), full_picture), verbose))
    say(report.verdict_text(results))
    return 0 if results.ok else 1
