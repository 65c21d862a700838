"""chainrule.draw: the graph model and its DOT text (no renderer needed)."""

from __future__ import annotations

import html
import math
import re
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_explain import network_222

import chainrule as cr
from chainrule.engine import iter_graph, scope
from chainrule.viz import render
from chainrule.viz.dot import html_text, visible_text

PARAMS = ("w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "b1", "b2")


def _value_nodes(d: cr.draw.__class__) -> list:  # type: ignore[name-defined]
    return [n for n in d.model.nodes if n.kind == "value"]


def test_222_roles_ops_and_data_flow() -> None:
    v = network_222()
    d = cr.draw(v["E_total"])
    m = d.model
    assert sorted(n.node.name for n in m.by_role("parameter")) == sorted(PARAMS)
    assert sorted(n.node.name for n in m.by_role("input")) == ["i1", "i2"]
    assert [n.node.name for n in m.by_role("output")] == ["E_total"]
    graph = iter_graph([v["E_total"]])
    made = [n for n in graph if n.op is not None]
    ops = m.by_role("op")
    assert len(ops) == len(made)
    assert len(m.by_role("intermediate")) == len(made) - 1
    ids = {id(n.node): n.id for n in m.nodes if n.kind == "value"}
    for op_node in ops:
        value = op_node.node
        assert op_node.rows[0].text == value.op
        outgoing = [e for e in m.edges if e.tail == op_node.id]
        assert [e.head for e in outgoing] == [ids[id(value)]]
        incoming = [e for e in m.edges if e.head == op_node.id]
        # One edge per operand, in operand order, from the operand's node.
        assert [e.operand for e in incoming] == list(range(len(value._parents)))
        for e, p in zip(incoming, value._parents):
            if isinstance(p, cr.Node):
                assert e.tail == ids[id(p)]
            else:
                const = m.node(e.tail)
                assert const.role == "constant" and float(const.rows[0].text) == p
    # Data flows from parameters towards the loss: no edge ever enters a leaf.
    leaves = {n.id for n in m.nodes if n.role in ("parameter", "input")}
    assert not any(e.head in leaves for e in m.edges)


def test_dot_text_has_every_node_and_edge_in_a_fixed_order() -> None:
    d = cr.draw(network_222()["E_total"])
    src = d.source
    assert src.startswith("digraph chainrule {")
    assert "ordering=in" in src and "rankdir=LR" in src
    for n in d.model.nodes:
        assert re.search(rf"^\s*{n.id} \[label=<", src, re.M)
    edges = re.findall(r"^\s*(\w+) -> (\w+)", src, re.M)
    assert edges == [(e.tail, e.head) for e in d.model.edges]
    # A fresh copy of the same network gives the same text, character for character.
    assert cr.draw(network_222()["E_total"]).source == src
    assert "id(" not in src and not re.search(r"\b\d{9,}\b", src)


def test_grad_shows_not_computed_until_backward() -> None:
    v = network_222()
    before = cr.draw(v["E_total"]).model
    assert before.find("w5").text == "w5 / data 0.4 / grad not computed"
    assert before.find("i1").text == "i1 / data 0.05 / grad not required"
    v["E_total"].backward()
    after = cr.draw(v["E_total"]).model
    assert after.find("w5").text == f"w5 / data 0.4 / grad {v['w5'].grad:.4g}"
    hidden = cr.draw(v["E_total"], show_grad=False).model
    assert "grad" not in hidden.find("w5").text


def test_tensor_labels_small_grid_and_large_statistics() -> None:
    w1 = cr.Tensor([[0.15, 0.20], [0.25, 0.30]], requires_grad=True, name="W1")
    big = cr.Tensor(np.arange(20.0).reshape(4, 5), requires_grad=True, name="big")
    x = cr.Tensor([0.05, 0.10], name="x")
    loss = (w1 @ x).sum() + big.mean()
    loss.name = "loss"
    m = cr.draw(loss).model
    w = m.find("W1")
    assert w.rows[0].text == "W1 f64[2,2]"
    assert w.rows[1].kind == "grid" and w.rows[1].cells == [["0.15", "0.2"], ["0.25", "0.3"]]
    assert w.rows[2].text == "grad not computed"
    b = m.find("big")
    assert b.rows[0].text == "big f64[4,5]"
    stats = np.arange(20.0)
    assert b.rows[1].cells == [
        ["", "mean", "std", "min", "max"],
        ["data", f"{stats.mean():.4g}", f"{stats.std():.4g}", "0", f"{stats.max():.4g}"],
    ]
    assert m.find("x").rows[0].text == "x f64[2]"
    loss.backward()
    m2 = cr.draw(loss).model
    assert m2.find("W1").rows[2].cells == [[f"{g:.4g}" for g in row] for row in w1.grad]
    g = big.grad
    expected = ["grad"] + [f"{f(g):.4g}" for f in (np.mean, np.std, np.min, np.max)]
    assert m2.find("big").rows[1].cells[2] == expected and expected[1] == "0.05"
    # A float32 tensor says so.
    f32 = cr.Tensor(np.ones(3, dtype=np.float32), requires_grad=True, name="h")
    assert cr.draw(f32 * 2.0).model.find("h").rows[0].text == "h f32[3]"


def test_highlight_marks_paths_labels_local_derivatives_and_states_the_sum() -> None:
    v = network_222()
    d = cr.draw(v["E_total"], highlight=[v["w5"], v["w1"]])
    m = d.model
    on = {n.node.name for n in m.nodes if n.kind == "value" and n.on_path and n.node.name}
    assert {"w5", "w1", "out_h1", "out_o1", "out_o2", "E_total"} <= on
    assert not on & {"w2", "w3", "w6", "out_h2", "b1", "i1"}
    ids = {n.node.name: n.id for n in m.nodes if n.kind == "value" and n.node.name}
    for leaf in ("w5", "w1"):
        e = cr.explain(v["E_total"], v[leaf])
        for step in e.edges:
            k = next(n.id for n in m.nodes if n.kind == "op" and n.node is step.child)
            t = next(n.id for n in m.nodes if n.kind == "value" and n.node is step.parent)
            edge = next(x for x in m.edges if (x.tail, x.head, x.operand) == (t, k, step.operand))
            assert edge.on_path
            assert edge.label == [step.formula, f"= {step.local:.4g}"]
        # The caption states the sum over paths equals the gradient.
        line = next(c for c in m.caption if f"to {leaf}:" in c)
        assert f"{e.total:.4g} = dE_total/d{leaf} = {leaf}.grad" in line
    faded = [x for x in m.edges if x.on_path is False]
    assert faded and all(not x.label for x in faded)
    assert ids["w2"] not in {x.tail for x in m.edges if x.on_path}
    src = d.source
    assert src.count("penwidth=2.6") == sum(1 for x in m.edges if x.on_path)


def test_highlight_on_tensors_marks_paths_with_formulas() -> None:
    w = cr.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, name="W")
    b = cr.Tensor([0.5, -0.5], requires_grad=True, name="b")
    x = cr.Tensor([1.0, -1.0], name="x")
    loss = ((w @ x) + b).tanh().sum()
    m = cr.draw(loss, highlight=w).model
    assert m.find("W").on_path and not m.find("b").on_path
    labelled = [e for e in m.edges if e.on_path and e.label]
    assert any(e.label == ["d(a @ b)/da = b^T (row of b)"] for e in labelled)
    assert "W.grad" in m.caption[0]


def test_highlight_must_be_in_the_graph() -> None:
    v = network_222()
    with pytest.raises(ValueError, match="not in the graph"):
        cr.draw(v["out_h1"], highlight=v["w5"])
    with pytest.raises(ValueError, match="cannot highlight i1: it does not require grad"):
        cr.draw(v["E_total"], highlight=v["i1"])


def _scoped_mlp():
    rng = np.random.default_rng(0)
    x = cr.Tensor(rng.normal(size=(5, 3)), name="x")
    y = cr.Tensor(rng.normal(size=(5, 2)), name="y")
    w1 = cr.Tensor(rng.normal(size=(3, 4)), requires_grad=True, name="hidden.weight")
    b1 = cr.Tensor(np.zeros(4), requires_grad=True, name="hidden.bias")
    w2 = cr.Tensor(rng.normal(size=(4, 2)), requires_grad=True, name="output.weight")
    with scope("hidden"):
        h = (x @ w1 + b1).tanh()
    with scope("output"):
        out = h @ w2
    with scope("loss"):
        loss = ((out - y) ** 2).mean()
    loss.name = "loss"
    return loss


def test_cluster_groups_values_by_module() -> None:
    loss = _scoped_mlp()
    d = cr.draw(loss)
    assert d.model.scopes() == ["hidden", "output", "loss"]
    src = d.source
    for j, name in enumerate(("hidden", "output", "loss")):
        block = re.search(rf"subgraph cluster_{j} \{{(.*?)\n\t\}}", src, re.S)
        assert block is not None and f"label=<{name}>" in block.group(1)
        inside = set(re.findall(r"^\s+(\w+) \[label", block.group(1), re.M))
        expected = {n.id for n in d.model.nodes if n.scope == name}
        assert inside == expected
    assert "cluster" not in cr.draw(loss, cluster=False).source


def test_nested_scopes_nest_the_boxes() -> None:
    a = cr.Value(1.0, name="a")
    with scope("net"):
        b = a * 2
        with scope("net.head"):
            c = b.tanh()
    src = cr.draw(c).source
    outer = src.index("subgraph cluster_0")
    inner = src.index("subgraph cluster_1")
    assert outer < inner and "label=<net.head>" in src[inner:]


def test_collapse_draws_one_node_per_module() -> None:
    loss = _scoped_mlp()
    m = cr.draw(loss, collapse=True).model
    modules = [n for n in m.nodes if n.kind == "module"]
    assert [n.rows[0].text for n in modules] == ["hidden", "output", "loss"]
    assert modules[-1].role == "output"
    ids = {n.rows[0].text: n.id for n in modules}
    leaf_ids = {n.node.name: n.id for n in m.nodes if n.kind == "value"}
    edges = {(e.tail, e.head) for e in m.edges}
    assert (ids["hidden"], ids["output"]) in edges and (ids["output"], ids["loss"]) in edges
    assert (leaf_ids["hidden.weight"], ids["hidden"]) in edges
    assert (leaf_ids["y"], ids["loss"]) in edges
    assert len(edges) == len(m.edges)  # no duplicates
    assert not any(n.kind == "op" for n in m.nodes)
    # Automatic when the graph is larger than max_nodes.
    auto = cr.draw(loss, max_nodes=8).model
    assert [n.id for n in auto.nodes] == [n.id for n in m.nodes]


def test_too_many_nodes_is_a_clear_error() -> None:
    x = cr.Value(1.0, name="x")
    for _ in range(30):
        x = x * 1.01
    with pytest.raises(ValueError, match=r"31 values to show, more than max_nodes=10"):
        cr.draw(x, max_nodes=10)
    assert len(_value_nodes(cr.draw(x, max_nodes=None))) == 31


def test_several_roots_are_outputs() -> None:
    v = network_222()
    m = cr.draw([v["out_o1"], v["out_o2"]]).model
    assert sorted(n.node.name for n in m.by_role("output")) == ["out_o1", "out_o2"]


def test_inputs_argument_marks_leaves_that_require_grad_as_inputs() -> None:
    v = network_222(inputs_require_grad=True)
    m = cr.draw(v["E_total"], inputs=[v["i1"], v["i2"]]).model
    assert len(m.by_role("parameter")) == 10


def test_bad_arguments() -> None:
    v = network_222()
    with pytest.raises(ValueError, match="rankdir"):
        cr.draw(v["E_total"], rankdir="sideways")
    with pytest.raises(TypeError, match="not a Value or Tensor"):
        cr.draw([v["E_total"], 3.0])
    with pytest.raises(ValueError, match="no root"):
        cr.draw([])


# ---------------------------------------------------------------------------
# Escaping
# ---------------------------------------------------------------------------

NASTY = [
    'say "hi"',
    "back\\slash\\N\\G\\l",
    "a<b>c",
    "x<y",
    "AT&T &amp;",
    "{brace} | pipe",
    "key: value",
    "two\nlines",
    "tab\there",
    "bell\x07\x00\x1b",
    "ünïcødé ∑ λ 漢字 🙂",
    "]]> <!-- -->",
    "\ud800 lone",
    "\ufffe\uffff",
    "",
]


MARKUP = r"&(amp|lt|gt|quot|#92|#93);|<BR/>|</?FONT>"


def _unescape(label_html: str) -> str:
    return html.unescape(re.sub("</?FONT>", "", label_html.replace("<BR/>", "\n")))


@pytest.mark.parametrize("name", NASTY)
def test_escaped_labels_read_as_written(name: str) -> None:
    escaped = html_text(name)
    assert not re.search(r'["\\\x00-\x1f\x7f]', escaped)
    assert not re.search("[<>&]", re.sub(MARKUP, "", escaped))
    assert _unescape(escaped) == "\n".join(visible_text(name))
    escaped.encode("utf-8")  # no lone surrogates survive


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_escaping_property(name: str) -> None:
    escaped = html_text(name)
    escaped.encode("utf-8")
    assert _unescape(escaped) == "\n".join(visible_text(name))
    # Only our own markup remains: entities and line breaks.
    rest = re.sub(MARKUP, "", escaped)
    assert not re.search(r'[<>&"\\]', rest)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in rest)
    # Printable text is kept as it is.
    if all(c.isprintable() and c not in '<>&"\\]' for c in name):
        assert escaped == name


def html_labels(src: str) -> tuple[list[str], str]:
    """The HTML-like labels of DOT text, delimited as Graphviz reads them (nesting < >),
    and the text outside them."""
    found, outside, pos = [], [], 0
    for m in re.finditer(r"label=<", src):
        if m.start() < pos:
            continue
        depth, i = 1, m.end()
        while depth:
            depth += {"<": 1, ">": -1}.get(src[i], 0)
            i += 1
        found.append(src[m.end() : i - 1])
        outside.append(src[pos : m.end()])
        pos = i - 1
    outside.append(src[pos:])
    return found, "".join(outside)


@given(st.text(min_size=1, max_size=20))
@settings(max_examples=60, deadline=None)
def test_any_name_gives_well_formed_labels(name: str) -> None:
    a = cr.Value(1.5, name=name)
    with scope(name):
        b = a * 2
    b.name = name + "!"
    src = cr.draw(b).source
    labels, outside = html_labels(src)
    texts = []
    for label in labels:
        # Graphviz reads an HTML-like label as XML: it must parse as such.
        root = ET.fromstring(f"<L>{label}</L>")
        texts.append("".join(root.itertext()))
    shown = "".join(visible_text(name))
    assert sum(1 for t in texts if t.startswith(shown + "data")) == 1
    assert sum(1 for t in texts if t.startswith(shown + "!data")) == 1
    assert shown in texts  # the module box
    # Nothing outside the labels carries the name.
    assert all(ord(c) < 0x80 for c in outside)


# ---------------------------------------------------------------------------
# Without a renderer
# ---------------------------------------------------------------------------


@pytest.fixture
def no_renderer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "find_renderers", lambda: [])


def test_save_without_renderer_writes_dot_and_says_how(no_renderer, tmp_path) -> None:
    d = cr.draw(network_222()["E_total"])
    with pytest.raises(render.RendererNotFoundError) as err:
        d.save(tmp_path / "net.svg")
    msg = str(err.value)
    assert "graphviz-pure" in msg and "apt-get install graphviz" in msg
    assert f"dot -Tsvg {tmp_path / 'net.dot'}" in msg
    assert (tmp_path / "net.dot").read_text(encoding="utf-8") == d.source
    assert not (tmp_path / "net.svg").exists()


def test_jupyter_without_renderer_shows_hint_and_dot(no_renderer) -> None:
    d = cr.draw(network_222()["E_total"])
    bundle = d._repr_mimebundle_()
    assert list(bundle) == ["text/plain"]
    assert "no Graphviz renderer found" in bundle["text/plain"]
    assert d.source in bundle["text/plain"]


def test_save_dot_and_unknown_suffix(tmp_path) -> None:
    d = cr.draw(network_222()["E_total"])
    assert d.save(tmp_path / "g.dot").read_text(encoding="utf-8") == d.source
    with pytest.raises(ValueError, match=r"\.svg, \.png, \.pdf or \.dot"):
        d.save(tmp_path / "g.bmp")


def test_digraph_is_a_graphviz_digraph() -> None:
    import graphviz

    d = cr.draw(network_222()["E_total"])
    assert isinstance(d.digraph, graphviz.Digraph)
    assert d.digraph.source == d.source
    assert "values" in repr(d)


def test_importing_chainrule_does_not_import_graphviz() -> None:
    code = "import sys, chainrule; print('graphviz' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------
# The backward stepper's steps (the page itself is tested in test_render.py)
# ---------------------------------------------------------------------------


def test_backward_steps_follow_the_engine_and_end_at_its_gradients() -> None:
    from chainrule.viz.stepper import backward_steps

    v = network_222()
    steps = backward_steps(v["E_total"])
    assert all(n.grad is None for n in v.values())  # nothing stored
    seqs = [s.node._seq for s in steps]
    assert seqs == sorted(seqs, reverse=True)  # newest first, as backward visits
    assert steps[0].node is v["E_total"] and steps[0].upstream == 1.0
    # Every node that needs a gradient is visited once.
    needing = [n for n in iter_graph([v["E_total"]]) if n.requires_grad]
    assert sorted(id(s.node) for s in steps) == sorted(id(n) for n in needing)
    for s in steps:
        for u in s.updates:
            assert u.contribution == pytest.approx(u.local * s.upstream, rel=1e-15)
        # A node's gradient is complete when it is visited: nothing later adds to it.
        later = steps[steps.index(s) + 1 :]
        assert all(u.parent is not s.node for t in later for u in t.updates)
    final = steps[-1].grads
    v["E_total"].backward()
    for n in needing:
        assert final[n] == n.grad


def test_backward_steps_on_tensors_match_backward() -> None:
    from chainrule.viz.stepper import backward_steps

    w = cr.Tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True, name="W")
    b = cr.Tensor([0.1, -0.1], requires_grad=True, name="b")
    loss = ((w @ cr.Tensor([1.0, 2.0]) + b).tanh() ** 2).sum()
    steps = backward_steps(loss)
    loss.backward()
    np.testing.assert_array_equal(steps[-1].grads[w], w.grad)
    np.testing.assert_array_equal(steps[-1].grads[b], b.grad)
    with pytest.raises(ValueError, match="pass gradient="):
        backward_steps(w * 2.0)
    with pytest.raises(ValueError, match="does not require grad"):
        backward_steps(cr.Tensor([1.0]))


# ---------------------------------------------------------------------------
# Tensors with no elements, and inf or nan gradients
# ---------------------------------------------------------------------------

EMPTY_SHAPES = [(0,), (3, 0), (0, 2), (2, 0, 3)]


@pytest.mark.parametrize("shape", EMPTY_SHAPES)
def test_empty_tensors_are_drawn_with_their_shape_and_no_data(shape) -> None:
    x = cr.Tensor(np.zeros(shape), requires_grad=True, name="x")
    c = np.ones(shape)  # an empty constant operand too
    y = (x * 2.0 + c).exp().sum()
    y.name = "y"
    for grads in (False, True):
        if grads:
            y.backward()
            assert x.grad is not None and x.grad.shape == shape
        d = cr.draw(y)
        text = d.model.find("x").text
        assert text.startswith(f"x f64[{','.join(map(str, shape))}]")
        assert "data: no elements" in text
        assert ("grad: no elements" in text) == grads
        assert ("grad not computed" in text) == (not grads)
        const = [n for n in d.model.nodes if n.kind == "constant" and "f64[" in n.text]
        assert len(const) == 1 and "data: no elements" in const[0].text
        # The DOT text is complete: every node is in it.
        source = d.source
        assert all(f"\t{n.id} [" in source for n in d.model.nodes)
    highlighted = cr.draw(y, highlight=x)
    assert highlighted.model.find("x").on_path


def test_draw_and_steps_with_infinite_local_derivatives() -> None:
    from chainrule.viz.stepper import backward_steps

    # At x = 0, d log(x)/dx = 1/x is inf: the picture and the steps show what
    # backward() computes (IEEE 754), instead of failing on 1.0 / 0.0.
    x = cr.Value(0.0, name="x")
    y = x.log() + x / x
    y.name = "y"
    steps = backward_steps(y)
    locals_ = [u.local for s in steps for u in s.updates]
    assert any(math.isinf(v) for v in locals_ if v is not None)
    y.backward()
    assert math.isnan(x.grad) and math.isnan(steps[-1].grads[x])
    d = cr.draw(y, highlight=x)
    assert "nan" in d.model.find("x").text
    assert any("inf" in " ".join(e.label) for e in d.model.edges if e.on_path)
    assert "is nan = dy/dx" in " ".join(d.model.caption)
    # Tensors: the same, and statistics of non-finite data without warnings.
    t = cr.Tensor(np.linspace(0.0, 1.0, 20), requires_grad=True, name="t")
    loss = t.log().sum()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tsteps = backward_steps(loss)
        loss.backward()
        text = cr.draw(loss).model.find("t").text
    assert math.isinf(tsteps[-1].grads[t][0])
    np.testing.assert_array_equal(tsteps[-1].grads[t], t.grad)
    assert "inf" in text


def test_backward_steps_seed_like_backward() -> None:
    from chainrule.viz.stepper import backward_steps

    x = cr.Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True, name="x")
    y = x * 3.0
    steps = backward_steps(y, gradient=[1.0, 1.0])
    assert steps[0].upstream.dtype == np.float32
    assert steps[-1].grads[x].dtype == np.float32
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\).*\(2,\)"):
        backward_steps(y, gradient=[1.0, 1.0, 1.0])
