"""A node has one name in every text and picture: explain, draw and the stepper agree."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule.engine import iter_graph
from chainrule.naming import describe, graph_names, name_of
from chainrule.viz import render


def _scalar_graph() -> tuple[cr.Value, cr.Value, cr.Value]:
    """Two unnamed leaves, three unnamed muls and a named output."""
    a = cr.Value(0.5)
    b = cr.Value(-1.5)
    w = cr.Value(2.0, name="w")
    y = ((a * w) * (b * w)).tanh()
    y.name = "y"
    return y, a, w


def _tensor_graph() -> tuple[cr.Tensor, cr.Tensor]:
    x = cr.Tensor(np.array([0.3, -0.2]), requires_grad=True)
    h = x * 2.0
    loss = (h * h).sum()
    return loss, x


def _title(model: cr.viz.model.GraphModel, node: object) -> str:  # type: ignore[name-defined]
    vn = next(n for n in model.nodes if n.kind == "value" and n.node is node)
    return vn.rows[0].text.split(" ")[0]  # a tensor's title goes on with its dtype and shape


@pytest.mark.parametrize("make", [_scalar_graph, _tensor_graph])
def test_picture_names_every_value_as_explain_does(make) -> None:
    out, leaf = make()[:2]
    e = cr.explain(out, leaf, index=0 if isinstance(leaf, cr.Tensor) else None)
    model = cr.draw(out).model
    graph = iter_graph([out])
    assert any(not n.name for n in graph)  # unnamed nodes are what is checked
    for node in graph:
        assert _title(model, node) == e.label(node)
    # Unnamed values are numbered, so no two share a name.
    titles = [_title(model, n) for n in graph]
    assert len(set(titles)) == len(titles)


def test_highlight_caption_uses_the_table_names() -> None:
    y, a, _w = _scalar_graph()
    model = cr.draw(y, highlight=a).model
    leaf_name = cr.explain(y, a).label(a)
    assert not a.name and "#" in leaf_name
    assert any(f"d{y.name}/d{leaf_name} = {leaf_name}.grad" in line for line in model.caption)


def test_graph_names_count_each_op_parents_first() -> None:
    y, a, w = _scalar_graph()
    names = graph_names(iter_graph([y]))
    got = [name_of(n, names) for n in iter_graph([y])]
    # Count the muls and leaves in the order the graph lists them.
    counts: dict[str, int] = {}
    want = []
    for n in iter_graph([y]):
        if n.name:
            want.append(n.name)
            continue
        base = n.op or "leaf"
        counts[base] = counts.get(base, 0) + 1
        want.append(f"{base}#{counts[base]}")
    assert got == want
    assert sum(x.startswith("mul#") for x in got) == 3
    # The same graph is named the same way every time.
    assert got == [name_of(n, graph_names(iter_graph([y]))) for n in iter_graph([y])]
    # Outside a graph a node is called by its op; error messages add the kind.
    assert name_of(y.parents[0]) == "mul"
    assert describe(y.parents[0]) == "Value <mul>"
    assert describe(w) == "Value w" and describe(a) == "Value leaf"


FOUND = render.find_renderers()


@pytest.mark.skipif(not FOUND, reason="no Graphviz renderer installed")
def test_stepper_pictures_use_the_caption_names(tmp_path: Path) -> None:
    from chainrule.viz.stepper import write_html

    y, a, _w = _scalar_graph()
    page = write_html(y, tmp_path / "backward.html", renderer=FOUND[0]).read_text()
    e = cr.explain(y, a)
    unnamed = [e.label(n) for n in iter_graph([y]) if not n.name]
    captions = " ".join(
        " ".join(json.loads(html.unescape(c))) for c in re.findall(r'data-caption="([^"]*)"', page)
    )
    svg_text = " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", page))
    for name in unnamed:
        assert name in captions
        assert name in svg_text
