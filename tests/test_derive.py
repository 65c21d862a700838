"""chainrule.derive: derivations written out, every number checked."""

from __future__ import annotations

import importlib
import json
import math
import random
import re
import time

import numpy as np
import pytest

import chainrule as cr
from chainrule.explain import agree
from chainrule.tutorial.network import build_tensors, build_values
from chainrule.tutorial.reference import PUBLISHED, agrees, section

# (chainrule.derive, the attribute, is the function; the module is imported by name)
derive_module = importlib.import_module("chainrule.derive")

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def line_of(d, kind, quantity, user=None):
    found = [
        line
        for line in d.lines
        if line.kind == kind and line.quantity == quantity and (user is None or line.user == user)
    ]
    assert len(found) == 1, (kind, quantity, user, [line.text() for line in found])
    return found[0]


def printed_result(line):
    """The number a line prints last, read back from its text."""
    return float(line.text().rsplit(" = ", 1)[1])


def shown(d, line):
    """``line``'s text is part of the derivation's text (wrapped lines joined again)."""
    flat = " ".join(part.strip() for part in d.text().splitlines())
    return line.text() in flat


# ---------------------------------------------------------------------------
# The 2-2-2 network: every published figure of the forward and backward passes.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def worked():
    net = build_values()
    return derive_module.derive(net["E_total"], wrt=[net["w5"], net["w1"]])


def test_222_forward_figures(worked):
    for fig in section("forward"):
        line = line_of(worked, "forward", fig.key)
        assert shown(worked, line)
        assert agrees(printed_result(line), fig.text), (fig.key, line.text())
    net_h1 = line_of(worked, "forward", "net_h1").text()
    assert net_h1 == "net_h1 = w1·i1 + w2·i2 + b1 = 0.15·0.05 + 0.2·0.1 + 0.35 = 0.3775"


def test_222_every_published_gradient_figure(worked):
    figures = [f for f in section("output") + section("hidden") if f.key.startswith("d")]
    assert len(figures) == 10
    for fig in figures:
        top, bottom = fig.key[1:].split("/d")
        if top == "E_total":  # a delta: ∂E_total/∂bottom
            line = line_of(worked, "delta", bottom)
            value = printed_result(line)
        elif top.startswith("E_o"):  # one output's share of a delta: the term through it
            line = line_of(worked, "delta", bottom)
            value = worked.term(bottom, through=f"net_o{top[-1]}")
            printed = [float(t) for t in NUMBER.findall(line.text().split(" = ")[3])]
            assert any(abs(abs(p) - abs(value)) <= 1e-10 * abs(value) for p in printed)
        else:  # a local derivative ∂top/∂bottom
            line = line_of(worked, "local", bottom, user=top)
            value = printed_result(line)
        assert shown(worked, line)
        if fig.key == "dE_o2/dout_h1":
            # Published from intermediates rounded to 9 decimals (docs/derivation.md): the
            # exact figure is -0.01904911826, a unit of the last published digit away.
            assert not agrees(value, fig.text)
            assert abs(value - fig.value) <= 1e-9
        else:
            assert agrees(value, fig.text), (fig.key, line.text())
        assert line.agree is not False


def test_222_deltas_are_named_once_and_reused(worked):
    text = worked.text()
    assert text.count("δ[net_o1] =") == 1
    out_h1 = line_of(worked, "delta", "out_h1").text()
    assert out_h1.startswith("δ[out_h1] = δ[net_o2]·∂net_o2/∂out_h1 + δ[net_o1]·∂net_o1/∂out_h1")
    local = line_of(worked, "local", "net_o1", user="out_o1").text()
    assert local.startswith("∂out_o1/∂net_o1 = out_o1·(1-out_o1) = ")  # s(1-s), from the table
    assert agrees(float(local.rsplit(" = ", 1)[1]), PUBLISHED["dout_o1/dnet_o1"].text)
    assert worked.gradients == pytest.approx({"w5": 0.082167040564, "w1": 0.000438567734})


def test_222_tensor_build_element_by_element():
    net = build_tensors()
    d = derive_module.derive(net["E_total"], wrt=[net["W_output"], net["W_hidden"]])
    assert d.notation == "elements" and d.ok
    assert agrees(d.gradients["W_output[0, 0]"], PUBLISHED["dE_total/dw5"].text)
    assert agrees(d.gradients["W_hidden[0, 0]"], PUBLISHED["dE_total/dw1"].text)
    assert line_of(d, "delta", "net_o[0]").value == pytest.approx(0.138498562, abs=1e-9)
    net["E_total"].backward()
    for name in ("W_output", "W_hidden"):
        for (r, c), g in np.ndenumerate(net[name].grad):
            assert d.gradients[f"{name}[{r}, {c}]"] == pytest.approx(g, rel=1e-12)


def test_the_formulas_come_from_the_rule_table(monkeypatch):
    net = build_values()
    monkeypatch.setattr(cr.OPS["sigmoid"], "formulas", ("SLOPE(s)",))
    d = derive_module.derive(net["E_total"], wrt=[net["w5"]])
    local = line_of(d, "local", "net_o1", user="out_o1").text()
    assert local.startswith("∂out_o1/∂net_o1 = SLOPE(out_o1) = 0.18681560")


# ---------------------------------------------------------------------------
# Random graphs: every line's numbers agree with autodiff.
# ---------------------------------------------------------------------------

UNARY = [
    lambda v: v.exp() if abs(v.data) < 5 else v.tanh(),
    lambda v: v.tanh(),
    lambda v: v.sigmoid(),
    lambda v: -v,
    lambda v: (v * v + 0.5).log(),
    lambda v: (v * v + 0.25).sqrt(),
    lambda v: v**2,
    lambda v: v**3,
]
BINARY = [
    lambda a, b: a + b,
    lambda a, b: a - b,
    lambda a, b: a * b,
    lambda a, b: a / (b * b + 1.0),
    lambda a, b: 2.0 * a - b * 0.5,
]


def random_value_graph(rnd: random.Random):
    leaves = [cr.Value(rnd.uniform(-1.5, 1.5), name=f"x{k}") for k in range(rnd.randint(1, 4))]
    if rnd.random() < 0.5:
        leaves.append(cr.Value(rnd.uniform(-1, 1), requires_grad=False, name="c"))
    nodes = list(leaves)
    for k in range(rnd.randint(2, 14)):
        if rnd.random() < 0.4:
            node = rnd.choice(UNARY)(rnd.choice(nodes))
        else:
            node = rnd.choice(BINARY)(rnd.choice(nodes), rnd.choice(nodes))
        if rnd.random() < 0.3:
            node.name = f"q{k}"
        nodes.append(node)
    out = nodes[-1]
    for extra in nodes[len(leaves) : -1]:
        if rnd.random() < 0.3:
            out = out + extra  # more uses, more paths
    return out, [v for v in leaves if v.requires_grad]


def check_every_line(d, out, leaves):
    tol = 1e-9
    for line in d.lines:
        if line.kind == "delta":
            assert agree(line.value, line.autodiff, tol), line.text()
            assert line.finite_difference == pytest.approx(line.autodiff, rel=1e-5, abs=1e-5)
            assert line.agree
            assert math.fsum(line.terms) == pytest.approx(line.value, rel=1e-12, abs=1e-15)
        if line.kind in ("delta", "local", "forward") and np.ndim(line.value) == 0:
            # the number the text ends with is the line's value, to the digits printed
            assert printed_result(line) == pytest.approx(float(line.value), rel=2e-9, abs=1e-300)
        if line.kind == "local":
            assert line.value == pytest.approx(
                math.fsum(math.prod(t) for t in line.terms), rel=1e-12, abs=1e-15
            )
    grads = cr.grad(out, leaves, allow_unused=True) if leaves else ()
    for leaf, g in zip(leaves, grads):
        if g is not None:
            assert d.gradients[leaf.name] == pytest.approx(g.data, rel=1e-9, abs=1e-12)
    assert d.ok


@pytest.mark.parametrize("seed", range(40))
def test_random_value_graphs(seed):
    rnd = random.Random(seed)
    out, leaves = random_value_graph(rnd)
    while not out.requires_grad:  # (drawn from the constant alone: draw again)
        out, leaves = random_value_graph(rnd)
    d = derive_module.derive(out)
    check_every_line(d, out, leaves)
    assert all(len(row) <= 100 for row in d.text().splitlines())


TENSOR_OPS = [
    lambda t, r: t.sigmoid(),
    lambda t, r: t.tanh(),
    lambda t, r: t * t,
    lambda t, r: t.exp() * 0.5,
    lambda t, r: t - t.sum(),
    lambda t, r: t @ cr.Tensor(r.uniform(-1, 1, size=(t.shape[-1], 2))) if t.ndim else t * 2.0,
]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("size", [2, 6])
def test_random_tensor_graphs(seed, size):
    r = np.random.default_rng(seed)
    x = cr.Tensor(r.uniform(-1, 1, size=(size,)), requires_grad=True, name="x")
    W = cr.Tensor(r.uniform(-1, 1, size=(2, size)), requires_grad=True, name="W")
    t = W @ x
    for _k in range(r.integers(1, 4)):
        t = TENSOR_OPS[r.integers(len(TENSOR_OPS))](t, r)
    out = (t * cr.Tensor(r.uniform(-1, 1, size=t.shape))).sum()
    d = derive_module.derive(out)
    assert d.notation == ("elements" if size * 2 <= derive_module.ELEMENT_LIMIT else "matrix")
    gx, gw = cr.grad(out, [x, W])
    if d.notation == "elements":
        check_every_line(d, out, [])
        for (i,), g in np.ndenumerate(gx.data):
            assert d.gradients[f"x[{i}]"] == pytest.approx(g, rel=1e-9, abs=1e-12)
    else:
        assert d.ok
        np.testing.assert_allclose(d.gradients["x"], gx.data, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(d.gradients["W"], gw.data, rtol=1e-9, atol=1e-12)
        for line in d.lines:
            if line.kind == "delta":
                np.testing.assert_allclose(line.value, line.autodiff, rtol=1e-9, atol=1e-12)
                assert line.finite_difference is not None
    assert all(len(row) <= 100 for row in d.text().splitlines())


def test_matrix_notation_takes_the_rules_matrix_form():
    r = np.random.default_rng(1)
    W = cr.Tensor(r.normal(size=(3, 4)), requires_grad=True, name="W")
    x = cr.Tensor(r.normal(size=(4,)), name="x")
    b = cr.Tensor(r.normal(size=(3,)), requires_grad=True, name="b")
    L = (W @ x + b).tanh().sum()
    L.name = "L"
    d = derive_module.derive(L)
    assert d.notation == "matrix" and d.ok
    dW = line_of(d, "delta", "W")
    assert dW.text().split(" = ")[1].endswith(" xᵀ")  # matmul's "g b^T", b being x
    assert "^{\\top}" in dW.latex()
    L.backward()
    np.testing.assert_allclose(d.gradients["W"], W.grad, rtol=1e-12)


def test_past_the_size_limit_a_clear_error():
    n = derive_module.MAX_ELEMENTS + 1
    x = cr.Tensor(np.ones(n), requires_grad=True, name="big")
    with pytest.raises(ValueError, match=rf"big of shape \({n},\) \({n} elements\).*at most"):
        derive_module.derive((x * x).sum())


def test_bad_arguments():
    x = cr.Value(0.5, name="x")
    other = cr.Value(1.0, name="other")
    with pytest.raises(TypeError, match="derive: output"):
        derive_module.derive(0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="derive: the output has shape"):
        derive_module.derive(cr.Tensor([1.0, 2.0], requires_grad=True) * 2.0)
    with pytest.raises(ValueError, match="not part of the output's graph"):
        derive_module.derive(x.exp(), wrt=[other])
    with pytest.raises(ValueError, match="does not require grad"):
        derive_module.derive(cr.Value(1.0, requires_grad=False).exp())


# ---------------------------------------------------------------------------
# Formats.
# ---------------------------------------------------------------------------


def test_formats(worked):
    text = worked.text()
    assert all(len(row) <= 100 for row in text.splitlines())
    narrow = worked.text(width=60)
    assert all(len(row) <= 60 for row in narrow.splitlines())
    md = worked.markdown()
    assert md == worked._repr_markdown_()
    assert md.count("$$") == 2 * sum(1 for line in worked.lines if line.kind != "note")
    assert "\\delta[\\mathit{net}_{o1}]" in md and "&" not in md
    tex = worked.latex()
    rows = tex.split(" \\\\\n")
    assert len(rows) == sum(1 for line in worked.lines if line.kind != "note")
    assert all(row.count("&=") == 1 for row in rows) and "$" not in tex
    assert "\\frac{\\partial E_{total}}{\\partial w_{5}}" in tex
    steps = json.loads(json.dumps(worked.steps))
    assert [s["kind"] for s in steps] == [line.kind for line in worked.lines]
    assert {"forward", "seed", "local", "delta", "gradient", "note"} == {s["kind"] for s in steps}
    delta = next(s for s in steps if s["kind"] == "delta" and s["quantity"] == "w5")
    assert delta["agree"] is True and delta["autodiff"] == pytest.approx(0.082167040564)
    assert json.loads(worked.json())["notation"] == "scalar"


# ---------------------------------------------------------------------------
# Size: a million paths, a derivation that grows with the graph.
# ---------------------------------------------------------------------------


def deep_network(layers: int):
    rnd = random.Random(layers)
    a = [
        cr.Value(0.3, requires_grad=False, name="x1"),
        cr.Value(-0.2, requires_grad=False, name="x2"),
    ]
    for n in range(layers):
        a = [
            (
                cr.Value(rnd.uniform(-1, 1), name=f"w{n}_{j}1") * a[0]
                + cr.Value(rnd.uniform(-1, 1), name=f"w{n}_{j}2") * a[1]
                + cr.Value(0.1, name=f"b{n}_{j}")
            ).sigmoid()
            for j in range(2)
        ]
    out = a[0] + a[1]
    out.name = "y"
    return out


def test_a_million_paths_derive_in_a_size_that_grows_with_the_graph():
    sizes = {}
    for layers in (10, 20):
        y = deep_network(layers)
        nodes = len(cr.engine.iter_graph([y]))
        start = time.perf_counter()
        d = derive_module.derive(y)
        elapsed = time.perf_counter() - start
        print(f"{layers} layers, {nodes} nodes: derived in {elapsed:.3f} s, {len(d.lines)} lines")
        assert d.ok
        sizes[layers] = (nodes, len(d.lines))
    first = [n for n in cr.engine.iter_graph([y]) if n.name and n.name.startswith("w0_")]
    counts = [cr.explain(y, w, max_paths=0).count for w in first]
    assert counts == [2**19] * 4  # two ways through each of 19 layers: 2 million paths in all
    (n10, l10), (n20, l20) = sizes[10], sizes[20]
    assert l20 / l10 <= 1.1 * n20 / n10  # lines grow as the nodes do, not as the paths


def test_term_line_writes_one_term_of_a_delta(worked):
    for through in ("net_o1", "net_o2"):
        term = worked.term_line("out_h1", through=through)
        assert term.kind == "term" and term.user == through
        assert term.value == worked.term("out_h1", through=through)
        assert term.text().startswith(f"δ[{through}]·∂{through}/∂out_h1 = ")
        # its numbers are the delta's and the local derivative's, as their lines print them
        delta = printed_result(line_of(worked, "delta", through))
        local = printed_result(line_of(worked, "local", "out_h1", user=through))
        assert term.parts[1][0].replace("(", "").replace(")", "") == f"{delta:.10g}·{local:.10g}"
        assert abs(delta * local - term.value) <= 1e-9 * abs(term.value)
        assert printed_result(term) == pytest.approx(term.value, rel=1e-9)
    assert agrees(worked.term("out_h1", through="net_o1"), PUBLISHED["dE_o1/dout_h1"].text)
    seed = worked.term_line("E_o1", through="E_total")  # the output's own delta, 1
    assert seed.text() == "δ[E_total]·∂E_total/∂E_o1 = 1·1 = 1"
    with pytest.raises(KeyError, match="no term through w5"):
        worked.term_line("out_h1", through="w5")
