"""The notebooks of examples/notebooks: stored clean, and run top to bottom in a fresh kernel.

Each notebook is executed once per test session (by nbclient, in a temporary
folder, with the ``python3`` kernel of the interpreter running the tests) and
must finish without an error; the tests then read the outputs of its tagged
cells and check that they show what the text around them promises: SVG
pictures, Markdown tables with the right rows, a plot, numbers that agree.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

import chainrule as cr
from chainrule.tutorial.network import build_values
from chainrule.tutorial.reference import PUBLISHED, agrees, section

NOTEBOOKS = Path(__file__).resolve().parents[1] / "examples" / "notebooks"
NAMES = ["worked-example.ipynb", "graphs-and-explain.ipynb", "training.ipynb"]

nbformat = pytest.importorskip("nbformat", reason="the notebooks extra is not installed")
nbclient = pytest.importorskip("nbclient", reason="the notebooks extra is not installed")
pytest.importorskip("ipykernel", reason="the notebooks extra is not installed")


def read(name: str) -> Any:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every notebook, executed (raises, naming the cell, on the first error)."""
    done = {}
    for name in NAMES:
        nb = read(name)
        client = nbclient.NotebookClient(
            nb,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path_factory.mktemp(name.split(".")[0]))}},
        )
        client.execute()
        done[name] = nb
    return done


def tagged(nb: Any, tag: str) -> list[dict[str, Any]]:
    """The outputs of the one cell tagged ``tag``."""
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    return list(cells[0].outputs)


def data(outputs: list[dict[str, Any]], mime: str) -> str:
    """All the ``mime`` data of some outputs, joined (streams count as text/plain)."""
    parts = []
    for out in outputs:
        if out.get("output_type") == "stream" and mime == "text/plain":
            parts.append(out["text"])
        elif mime in out.get("data", {}):
            value = out["data"][mime]
            parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(parts)


def markdown_rows(text: str) -> dict[str, list[str]]:
    """A Markdown table's body rows, keyed by their first cell (backticks removed)."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and not set(line) <= set("|-"):
            rows[cells[0]] = cells[1:]
    return rows


# -- stored clean --------------------------------------------------------------------------


def test_the_folder_holds_exactly_these_notebooks():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)


def dirty_cells(nb: Any) -> list[int]:
    """The code cells stored with outputs or an execution count."""
    return [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count is not None)
    ]


@pytest.mark.parametrize("name", NAMES)
def test_stored_without_outputs_and_execution_counts(name):
    nb = read(name)
    nbformat.validate(nb)
    assert not dirty_cells(nb), f"{name}: code cells {dirty_cells(nb)} have outputs or counts"


def test_the_clean_check_sees_an_output_and_a_count():
    nb = read(NAMES[0])
    first, second = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"][:2]
    nb.cells[first].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x")]
    nb.cells[second].execution_count = 3
    assert dirty_cells(nb) == [first, second]


# -- the worked example --------------------------------------------------------------------


@pytest.mark.parametrize("part", ["forward", "output", "hidden"])
def test_worked_example_tables_hold_every_published_figure(executed, part):
    rows = markdown_rows(
        data(tagged(executed["worked-example.ipynb"], f"table-{part}"), "text/markdown")
    )
    figures = section(part)
    assert figures
    for fig in figures:
        assert fig.key in rows, f"{fig.key} is missing from the {part} table"
        published, hand, autodiff, fd, status = rows[fig.key]
        assert published == fig.text
        assert status in ("yes", "explained")
        if status == "yes":
            # the numbers as printed round to the published digits
            assert agrees(float(hand), fig.text) and agrees(float(autodiff), fig.text)
        if fd != "-":
            assert abs(float(fd) - float(autodiff)) < 1e-6


def test_worked_example_training_table_and_verdict(executed):
    nb = executed["worked-example.ipynb"]
    rows = markdown_rows(data(tagged(nb, "table-training"), "text/markdown"))
    assert {f.key for f in section("training")} <= set(rows)
    verdict = data(tagged(nb, "verdict"), "text/plain")
    n_figures = len(PUBLISHED)
    match = re.search(r"(\d+) figures: (\d+) agree, (\d+) differ .* (\d+) unexplained", verdict)
    assert match, verdict
    total, agree, differ, unexplained = map(int, match.groups())
    assert total >= n_figures and agree + differ == total and unexplained == 0


def test_worked_example_draws_the_graph_inline_as_svg(executed):
    svg = data(tagged(executed["worked-example.ipynb"], "draw"), "image/svg+xml")
    assert svg.lstrip().startswith(("<?xml", "<svg", "<!--"))
    assert "<svg" in svg
    for name in ("E_total", "w5", "w1", "out_h1"):
        assert name in svg, f"{name} is not in the picture"


def test_worked_example_steps_and_stepper(executed):
    nb = executed["worked-example.ipynb"]
    out = tagged(nb, "steps-table")
    lines = [ln for ln in data(out, "text/markdown").splitlines() if ln.startswith("| ")][1:]
    assert lines
    last: dict[str, float] = {}
    for line in lines:
        _, _, upstream, to, local, adds, so_far = (c.strip() for c in line.strip("|").split("|"))
        # each update is local derivative x upstream gradient
        local_value = float(local.rsplit("=", 1)[1])
        assert abs(local_value * float(upstream) - float(adds)) < 1e-8, line
        last[to.strip("`")] = float(so_far)
    # where the printed steps leave each weight is the gradient backward() stores
    net = build_values()
    net["E_total"].backward()
    for w in ("w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"):
        assert abs(last[w] - net[w].grad) < 1e-9, w
    assert "the last gradients equal .grad: True" in data(out, "text/plain")
    page = data(tagged(nb, "stepper"), "text/html")
    assert page.startswith("<iframe srcdoc=")
    n_steps = int(re.search(r"(\d+) steps;", data(out, "text/plain")).group(1))
    # one picture per step, and one before the pass starts
    assert page.count("<svg") == page.count("class=&quot;frame&quot;") == n_steps + 1


def test_worked_example_explains_w1_by_two_paths(executed):
    text = data(tagged(executed["worked-example.ipynb"], "explain-w1"), "text/plain")
    assert "w1" in text and "2 paths" in text


# -- graphs and explain --------------------------------------------------------------------


def test_graphs_notebook_explains_and_sums_the_paths(executed):
    nb = executed["graphs-and-explain.ipynb"]
    assert "1 path" in data(tagged(nb, "explain-w5"), "text/plain")
    out = tagged(nb, "paths-table")
    rows = markdown_rows(data(out, "text/markdown"))
    products = [float(rows[k][-1]) for k in ("1", "2")]
    assert abs(sum(products) - float(rows["sum"][-1])) < 1e-11
    autodiff = float(re.search(r"autodiff: (\S+)", data(out, "text/plain")).group(1))
    assert abs(autodiff - float(rows["sum"][-1])) < 1e-11
    assert "matches: True" in data(out, "text/plain")
    assert "agrees with the Value build's w1: True" in data(
        tagged(nb, "explain-tensor"), "text/plain"
    )


@pytest.mark.parametrize(
    ("tag", "names"),
    [
        ("draw-highlight", ["E_total", "w5", "w1"]),
        ("draw-modules", ["hidden", "output", "loss"]),
        ("draw-collapsed", ["hidden", "output"]),
        ("draw-tensor", ["W_hidden", "W_output", "E_total"]),
    ],
)
def test_graphs_notebook_pictures_are_svg(executed, tag, names):
    svg = data(tagged(executed["graphs-and-explain.ipynb"], tag), "image/svg+xml")
    assert "<svg" in svg
    for name in names:
        assert name in svg, f"{name} is not in the picture of cell {tag}"


def test_collapsed_picture_is_smaller(executed):
    nb = executed["graphs-and-explain.ipynb"]
    full = data(tagged(nb, "draw-modules"), "image/svg+xml")
    collapsed = data(tagged(nb, "draw-collapsed"), "image/svg+xml")
    assert collapsed.count('<g id="node') < full.count('<g id="node')


# -- training ------------------------------------------------------------------------------


def test_training_learns_and_plots(executed):
    nb = executed["training.ipynb"]
    text = data(tagged(nb, "train"), "text/plain")
    first, last = map(float, re.search(r"loss (\S+) -> (\S+)", text).groups())
    accuracy = float(re.search(r"training accuracy (\S+)", text).group(1))
    assert last < first / 5 and accuracy >= 0.95
    pictures = [o for o in tagged(nb, "plot") if "image/png" in o.get("data", {})]
    assert len(pictures) == 1
    assert "True" in data(tagged(nb, "gradcheck"), "text/plain")


def test_notebooks_run_on_this_chainrule(executed):
    # The kernel imported the package under test, not another copy.
    nb = copy.deepcopy(read("training.ipynb"))
    nb.cells = [nbformat.v4.new_code_cell("import chainrule; print(chainrule.__file__)")]
    nbclient.NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    assert nb.cells[0].outputs[0]["text"].strip() == cr.__file__
