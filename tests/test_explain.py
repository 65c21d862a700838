"""chainrule.explain: the paths from an output to a leaf, and the chain rule along them."""

from __future__ import annotations

import itertools
import math
import random
import re
import warnings
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.explain import Explanation, formula_text
from chainrule.rules import OPS

TARGETS = (0.01, 0.99)


def network_222(inputs_require_grad: bool = False) -> dict[str, cr.Value]:
    """The 2-2-2 logistic network with its error, one named Value per number."""
    v = {
        name: cr.Value(x, name=name, requires_grad=inputs_require_grad)
        for name, x in (("i1", 0.05), ("i2", 0.10))
    }
    for name, x in zip(
        ("w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "b1", "b2"),
        (0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55, 0.35, 0.60),
    ):
        v[name] = cr.Value(x, name=name)
    for h, (wa, wb) in (("h1", ("w1", "w2")), ("h2", ("w3", "w4"))):
        v[f"out_{h}"] = (v[wa] * v["i1"] + v[wb] * v["i2"] + v["b1"]).sigmoid()
        v[f"out_{h}"].name = f"out_{h}"
    for o, (wa, wb) in (("o1", ("w5", "w6")), ("o2", ("w7", "w8"))):
        v[f"out_{o}"] = (v[wa] * v["out_h1"] + v[wb] * v["out_h2"] + v["b2"]).sigmoid()
        v[f"out_{o}"].name = f"out_{o}"
    e = 0.5 * (TARGETS[0] - v["out_o1"]) ** 2 + 0.5 * (TARGETS[1] - v["out_o2"]) ** 2
    e.name = "E_total"
    v["E_total"] = e
    return v


def _d(v: dict[str, cr.Value], name: str) -> float:
    return v[name].data


def test_w5_has_one_path_whose_product_is_the_textbook_delta() -> None:
    v = network_222()
    e = cr.explain(v["E_total"], v["w5"])
    o1, h1 = _d(v, "out_o1"), _d(v, "out_h1")
    by_hand = (o1 - TARGETS[0]) * o1 * (1 - o1) * h1
    assert e.count == 1 and len(e.paths) == 1 and not e.truncated
    assert e.paths[0].product == pytest.approx(by_hand, rel=1e-12)
    assert e.total == pytest.approx(by_hand, rel=1e-12)
    assert e.matches and e.autodiff == pytest.approx(by_hand, rel=1e-12)
    steps = e.paths[0].steps
    assert steps[0].child is v["E_total"] and steps[-1].parent is v["w5"]
    # Consecutive steps chain: each parent is the next step's child.
    assert all(a.parent is b.child for a, b in itertools.pairwise(steps))
    sig = [s for s in steps if s.op == "sigmoid"]
    assert len(sig) == 1 and sig[0].child is v["out_o1"]
    assert sig[0].formula == "d sigmoid(x)/dx = s(1-s)"
    assert sig[0].local == pytest.approx(o1 * (1 - o1), rel=1e-12)
    assert math.prod(s.local for s in steps) == pytest.approx(e.paths[0].product, rel=1e-15)


def test_w1_has_two_paths_through_o1_and_o2() -> None:
    v = network_222()
    e = cr.explain(v["E_total"], v["w1"])
    o1, o2, h1 = _d(v, "out_o1"), _d(v, "out_o2"), _d(v, "out_h1")
    common = h1 * (1 - h1) * _d(v, "i1")
    via_o1 = (o1 - TARGETS[0]) * o1 * (1 - o1) * _d(v, "w5") * common
    via_o2 = (o2 - TARGETS[1]) * o2 * (1 - o2) * _d(v, "w7") * common
    assert e.count == 2
    through = [{s.child.name for s in p.steps} for p in e.paths]
    assert ("out_o1" in through[0]) != ("out_o1" in through[1])
    assert all("out_h1" in t and "out_h2" not in t for t in through)
    products = {("out_o1" in t): p.product for t, p in zip(through, e.paths)}
    assert products[True] == pytest.approx(via_o1, rel=1e-12)
    assert products[False] == pytest.approx(via_o2, rel=1e-12)
    assert e.total == pytest.approx(via_o1 + via_o2, rel=1e-12)
    assert e.matches


def test_every_parameter_matches_backward_and_grad_is_untouched() -> None:
    v = network_222()
    names = ("w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "b1", "b2")
    explained = {n: cr.explain(v["E_total"], v[n]) for n in names}
    assert all(v[n].grad is None for n in names)  # explain uses cr.grad, not .grad
    v["E_total"].backward()
    for n in names:
        e = explained[n]
        assert e.matches
        assert e.total == pytest.approx(v[n].grad, rel=1e-12, abs=1e-15)
        assert e.count == len(e.paths)
    # b1 feeds both hidden neurons, each feeding both outputs: 4 paths.
    assert explained["b1"].count == 4
    assert explained["b2"].count == 2


def test_the_table_names_formulas_products_and_the_check() -> None:
    v = network_222()
    text = str(cr.explain(v["E_total"], v["w1"]))
    assert "d E_total / d w1: 2 paths" in text
    assert "d sigmoid(x)/dx = s(1-s)" in text
    assert text.count("product along the path") == 2
    assert "(they match)" in text
    assert "sum over paths = " in text


def test_a_value_used_twice_gives_two_paths() -> None:
    x = cr.Value(0.7, name="x")
    y = (x * x).tanh()
    e = cr.explain(y, x)
    assert e.count == 2
    assert [p.steps[-1].operand for p in e.paths] == [0, 1]
    t = math.tanh(0.49)
    assert e.total == pytest.approx((1 - t * t) * 2 * 0.7, rel=1e-12)


def test_path_counts_are_counted_not_enumerated_when_huge() -> None:
    x = cr.Value(1.0, name="x")
    y = x
    for _ in range(64):
        y = y + y  # each step doubles the number of paths
    e = cr.explain(y, x, max_paths=10)
    assert e.count == 2**64
    assert e.truncated and e.paths == []
    assert e.total == float(2**64) and e.matches
    assert "too many to list" in str(e)
    assert str(2**64) in str(e)


def test_a_chain_deeper_than_the_recursion_limit() -> None:
    x = cr.Value(0.3, name="x")
    y = x
    for _ in range(5000):
        y = y * 1.0001 + 0.0
    e = cr.explain(y, x)
    assert e.count == 1 and len(e.paths[0].steps) == 10_000
    assert e.matches and e.total == pytest.approx(1.0001**5000, rel=1e-9)


def test_the_leaf_itself_is_one_empty_path() -> None:
    x = cr.Value(0.3, name="x")
    e = cr.explain(x, x)
    assert (e.count, e.total, e.autodiff) == (1, 1.0, 1.0)
    assert e.paths[0].steps == () and e.paths[0].product == 1


UNARY = ("tanh", "sigmoid", "exp", "neg", "relu")
BINARY = ("add", "sub", "mul", "div")


def _random_graph(rng: random.Random) -> tuple[cr.Value, list[cr.Value]]:
    leaves = [cr.Value(rng.uniform(0.3, 1.2), name=f"x{i}") for i in range(rng.randint(1, 3))]
    pool: list[cr.Value] = list(leaves)
    for _ in range(rng.randint(1, 9)):
        if rng.random() < 0.4:
            a = rng.choice(pool)
            op = rng.choice(UNARY)
            out = -a if op == "neg" else getattr(a, op)()
        else:
            a, b = rng.choice(pool), rng.choice(pool)
            op = rng.choice(BINARY)
            if op == "add":
                out = a + b
            elif op == "sub":
                out = a - b
            elif op == "mul":
                out = a * b
            else:
                out = a / (b.exp())  # keep the divisor away from 0
        pool.append(out)
    # Sum a few values so several branches reach the output.
    out = pool[-1]
    for extra in rng.sample(pool, min(2, len(pool))):
        out = out + extra
    return out, leaves


def _count_by_walking(node: cr.Node, leaf: cr.Node) -> int:
    if node is leaf:
        return 1
    return sum(_count_by_walking(p, leaf) for p in node.parents if p.requires_grad)


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs_sum_over_paths_equals_autodiff(seed: int) -> None:
    rng = random.Random(seed)
    out, leaves = _random_graph(rng)
    for leaf in leaves:
        e = cr.explain(out, leaf, max_paths=10_000)
        assert e.count == _count_by_walking(out, leaf)
        assert len(e.paths) == e.count
        assert math.fsum(p.product for p in e.paths) == pytest.approx(e.total, rel=1e-9, abs=1e-12)
        (g,) = cr.grad(out, leaf, allow_unused=True)
        expected = 0.0 if g is None else g.data
        assert e.total == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert e.matches
        for p in e.paths:
            assert math.prod(s.local for s in p.steps) == pytest.approx(p.product, rel=1e-15)


def _tensor_check(out: cr.Tensor, leaf: cr.Tensor, out_index=None) -> list[Explanation]:
    seed = np.zeros(out.shape)
    if out_index is None:
        seed[...] = 1.0
    else:
        seed[out_index] = 1.0
    (g,) = cr.grad(out, leaf, grad_outputs=seed)
    found = []
    for idx in np.ndindex(*leaf.shape):
        e = cr.explain(out, leaf, idx, output_index=out_index)
        assert e.total == pytest.approx(g.data[idx], rel=1e-10, abs=1e-13)
        assert e.matches
        assert math.fsum(p.product for p in e.paths) == pytest.approx(e.total, abs=1e-13)
        found.append(e)
    return found


def test_tensor_matmul_per_element() -> None:
    rng = np.random.default_rng(0)
    w = cr.Tensor(rng.normal(size=(2, 3)), requires_grad=True, name="W")
    x = cr.Tensor(rng.normal(size=3), name="x")
    y = (w @ x).tanh()
    loss = (y * y).sum()
    for e in _tensor_check(loss, w):
        # loss = sum_j y_j^2: W[i,k] reaches it only through y_i, used twice (y * y).
        assert e.count == 2
        assert {s.child_index for s in e.paths[0].steps if s.op == "tanh"} == {(e.leaf_index[0],)}
    # A non-scalar output needs output_index; W[1, k] does not reach y[0].
    for e in _tensor_check(y, w, out_index=(0,)):
        assert e.count == (1 if e.leaf_index[0] == 0 else 0)


def test_tensor_broadcast_bias_and_softmax() -> None:
    rng = np.random.default_rng(1)
    x = cr.Tensor(rng.normal(size=(3, 4)), name="x")
    b = cr.Tensor(rng.normal(size=4), requires_grad=True, name="b")
    p = (x + b).log_softmax(axis=1)
    loss = p[:, 0].sum()
    for e in _tensor_check(loss, b):
        # b[k] is copied to the 3 rows; each row's log_softmax element 0 depends
        # on every element of the row: one path per row.
        assert e.count == 3


def test_tensor_too_many_paths_reports_the_count() -> None:
    rng = np.random.default_rng(2)
    w1 = cr.Tensor(rng.normal(size=(6, 6)), requires_grad=True, name="W1")
    w2 = cr.Tensor(rng.normal(size=(6, 6)), requires_grad=True, name="W2")
    x = cr.Tensor(rng.normal(size=6), name="x")
    loss = (w2 @ (w1 @ x).tanh()).sum()
    e = cr.explain(loss, w1, (0, 0), max_paths=3)
    assert e.count == 6 and e.truncated and not e.paths
    assert e.matches
    assert "6 paths are too many to list" in str(e)


def test_value_inputs_mark_as_needed() -> None:
    v = network_222()
    with pytest.raises(ValueError, match="i1 does not require grad"):
        cr.explain(v["E_total"], v["i1"])


def test_errors_name_the_problem() -> None:
    w = cr.Tensor(np.ones((2, 2)), requires_grad=True, name="W")
    y = (w * 2.0).sum()
    with pytest.raises(ValueError, match=r"W has shape \(2, 2\); pass index="):
        cr.explain(y, w)
    with pytest.raises(IndexError, match="out of range"):
        cr.explain(y, w, (2, 0))
    with pytest.raises(ValueError, match="does not name one element"):
        cr.explain(y, w, 1)
    with pytest.raises(ValueError, match="output_index"):
        cr.explain(w * 2.0, w, (0, 0))
    with pytest.raises(TypeError, match="must be a Value or Tensor"):
        cr.explain(y, 3.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="one kind"):
        cr.explain(y, cr.Value(1.0))


@pytest.mark.parametrize("shape", [(0,), (3, 0)])
def test_tensors_without_elements_are_refused_clearly(shape) -> None:
    x = cr.Tensor(np.zeros(shape), requires_grad=True, name="x")
    y = x * 2.0
    for index in (None, (0,) * len(shape)):
        with pytest.raises(ValueError, match=r"leaf x has shape .* with no elements"):
            cr.explain(y.sum(), x, index)
        with pytest.raises(ValueError, match=r"output mul has shape .* with no elements"):
            cr.explain(y, x, index, output_index=index)


def test_an_unused_leaf_has_no_paths_and_zero_gradient() -> None:
    a, b = cr.Value(1.0, name="a"), cr.Value(2.0, name="b")
    e = cr.explain(a.tanh(), b)
    assert (e.count, e.total, e.autodiff, e.matches) == (0, 0.0, 0.0, True)


def test_intermediate_node_as_the_leaf() -> None:
    v = network_222()
    e = cr.explain(v["E_total"], v["out_h1"])
    assert e.count == 2 and e.matches
    v["E_total"].backward()
    assert e.total == pytest.approx(v["out_h1"].grad, rel=1e-12)


def _variable(text: str) -> str:
    """The variable a formula differentiates by: ``x`` in ``d exp(x)/dx = ...``."""
    left = text.split(" = ", 1)[0]
    return left.rsplit("/d", 1)[1]


def _names_an_operand(op, var: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(var.split('[')[0])}(?!\w)", op.symbol) is not None


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_formula_differentiates_by_an_operand_of_the_symbol(name: str) -> None:
    op = OPS[name]
    arity = 2 if op.variadic else len(op.vjps)
    variables = [_variable(formula_text(op, i, arity)) for i in range(arity)]
    for var in variables:
        assert _names_an_operand(op, var), (name, var, op.symbol)
    # Different operands, in the order the symbol names them.
    assert len(set(variables)) == arity, (name, variables)
    if not op.variadic:
        firsts = [re.search(rf"(?<![\w.]){v}(?!\w)", op.symbol).start() for v in variables]
        assert firsts == sorted(firsts), (name, variables, op.symbol)


# Forward functions of the elementwise ops on 0-d tensors, and points where
# each is differentiable (away from kinks and ties).  The formulas are read
# from the text explain shows and evaluated as arithmetic.
CLIP_BOUNDS = (-0.5, 0.5)
ELEMENTWISE: dict[str, tuple[Any, list[tuple[float, ...]]]] = {
    "add": (lambda a, b: a + b, [(0.7, -1.3), (2.0, 0.5)]),
    "sub": (lambda a, b: a - b, [(0.7, -1.3), (2.0, 0.5)]),
    "mul": (lambda a, b: a * b, [(0.7, -1.3), (2.0, 0.5)]),
    "div": (lambda a, b: a / b, [(0.7, -1.3), (-2.0, 0.5)]),
    "pow": (lambda a, b: a**b, [(0.7, 1.3), (2.0, -0.5)]),
    "neg": (lambda a: -a, [(0.7,), (-1.3,)]),
    "exp": (lambda a: a.exp(), [(0.7,), (-1.3,)]),
    "log": (lambda a: a.log(), [(0.7,), (2.5,)]),
    "tanh": (lambda a: a.tanh(), [(0.7,), (-1.3,)]),
    "sigmoid": (lambda a: a.sigmoid(), [(0.7,), (-1.3,)]),
    "softplus": (lambda a: cr.nn.functional.softplus(a), [(0.7,), (-1.3,)]),
    "relu": (lambda a: a.relu(), [(0.7,), (-1.3,)]),
    "abs": (lambda a: a.abs(), [(0.7,), (-1.3,)]),
    "sqrt": (lambda a: a.sqrt(), [(0.7,), (2.5,)]),
    "clip": (lambda a: a.clip(*CLIP_BOUNDS), [(0.3,), (-1.3,), (0.9,)]),
    "maximum": (cr.maximum, [(0.7, -1.3), (-1.3, 0.7)]),
    "minimum": (cr.minimum, [(0.7, -1.3), (-1.3, 0.7)]),
    "where": (lambda a, b, cond: cr.where(cond, a, b), [(0.7, -1.3, True), (0.7, -1.3, False)]),
    "astype": (lambda a: a.astype(np.float32), [(0.75,), (-1.25,)]),
    "erf": (lambda a: a.erf(), [(0.7,), (-1.3,)]),
    "sin": (lambda a: a.sin(), [(0.7,), (-1.3,)]),
    "cos": (lambda a: a.cos(), [(0.7,), (-1.3,)]),
    "exp2": (lambda a: a.exp2(), [(0.7,), (-1.3,)]),
    "log2": (lambda a: a.log2(), [(0.7,), (2.5,)]),
    "log1p": (lambda a: a.log1p(), [(0.7,), (-0.5,)]),
    "expm1": (lambda a: a.expm1(), [(0.7,), (-1.3,)]),
    "clone": (lambda a: a.clone(), [(0.7,), (-1.3,)]),
}


def _as_python(formula: str) -> str:
    """A formula as a Python expression: ``s(1-s)`` -> ``s*(1-s)``, ``a^b`` -> ``a**b``, ..."""
    py = formula.replace("^", "**").replace("ln(", "log(")
    py = re.sub(r"\b([a-z])\(", r"\1*(", py)  # a one-letter name before ( is a product
    py = re.sub(r"(\d) ([a-z]\w*\()", r"\1*\2", py)  # "2 sqrt(x)"
    if " if " in py or " where " in py:  # "1 if a>b, 1/2 if a=b, else 0"
        py = py.replace(" where ", " if ").replace(", else ", " else ").replace(", ", " else ")
        py = re.sub(r"(?<![<>=!])=(?!=)", "==", py)
    return py


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_formula_text_becomes_python_as_written() -> None:
    # The translation used below, on formulas written here from the maths.
    assert _as_python("1/(2 sqrt(x))") == "1/(2*sqrt(x))"
    assert _as_python("s(1-s)") == "s*(1-s)"
    assert _as_python("ln(a)*a^b") == "log(a)*a**b"
    assert _as_python("1 if a>b, 1/2 if a=b, else 0") == "1 if a>b else 1/2 if a==b else 0"
    assert _as_python("1 if lo<=x<=hi else 0") == "1 if lo<=x<=hi else 0"


@pytest.mark.parametrize("name", sorted(n for n in OPS if OPS[n].elementwise))
def test_every_elementwise_formula_equals_the_slope_of_its_op(name: str) -> None:
    """The text explain shows, evaluated, equals a central difference of the forward op."""
    op = OPS[name]
    forward, points = ELEMENTWISE[name]
    arity = len(op.vjps)
    # The documentation may name the output: "with t = tanh(x), dt/dx = 1 - t^2".
    named_output = re.search(r"with (\w) = ", op.doc)
    for point in points:
        xs, extra = point[:arity], point[arity:]
        out = float(forward(*(cr.Tensor(x) for x in xs), *extra).data)
        for i in range(arity):
            text = formula_text(op, i, arity)
            variables = dict(zip("ab", xs)) if arity == 2 else {_variable(text): xs[0]}
            env = {
                "log": math.log,
                "exp": math.exp,
                "sqrt": math.sqrt,
                "sign": lambda v: float(np.sign(v)),
                "sigmoid": _sigmoid,
                "pi": math.pi,
                "sin": math.sin,
                "cos": math.cos,
                "lo": CLIP_BOUNDS[0],
                "hi": CLIP_BOUNDS[1],
                "cond": extra[0] if extra else None,
                **variables,
            }
            if named_output:
                env[named_output.group(1)] = out
            said = eval(_as_python(text.split(" = ", 1)[1]), {"__builtins__": {}}, env)
            h = 1e-2 if name == "astype" else 1e-5  # float32 output: a wider step
            moved = [
                float(
                    forward(
                        *(cr.Tensor(x + step * (j == i)) for j, x in enumerate(xs)), *extra
                    ).data
                )
                for step in (h, -h)
            ]
            slope = (moved[0] - moved[1]) / (2 * h)
            assert said == pytest.approx(slope, rel=1e-5, abs=1e-8), (name, i, point, text)


def test_every_elementwise_op_has_a_forward_here() -> None:
    assert set(ELEMENTWISE) == {n for n in OPS if OPS[n].elementwise}


def test_explain_works_on_module_parameters():
    from chainrule import nn

    cr.manual_seed(3)
    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh(), nn.Linear(2, 1))
    x = cr.Tensor([0.5, -0.3, 0.8])
    loss = model(x).sum()
    weight = model[0].weight
    report = cr.explain(loss, weight, index=(1, 2))
    assert report.matches
    expected = cr.grad(loss, weight)[0].data[1, 2]
    assert abs(report.total - expected) < 1e-12
    assert "0.weight[1, 2]" in str(report)


# ---------------------------------------------------------------------------
# inf and nan: explain follows IEEE 754 as backward() does
# ---------------------------------------------------------------------------


def _same_float(a: float, b: float) -> bool:
    """Equal, with nan equal to nan (and inf only to an inf of the same sign)."""
    return a == b or (math.isnan(a) and math.isnan(b))


def _close(a: float, b: float) -> bool:
    """Within rounding where both are finite; the same inf or nan where not."""
    if math.isfinite(a) and math.isfinite(b):
        return a == pytest.approx(b, rel=1e-12, abs=1e-15)
    return _same_float(a, b)


# Functions whose derivative at the point given is inf or nan under IEEE 754
# (Python floats raise ZeroDivisionError there instead).
NON_FINITE = {
    "reciprocal at 0": (lambda x: 1.0 / x, 0.0),
    "log at 0": (lambda x: x.log(), 0.0),
    "x / x at 0": (lambda x: x / x, 0.0),
    "x ** 0.5 at 0": (lambda x: x**0.5, 0.0),
    "x * x ** 0.5 at 0": (lambda x: (x * x) ** 0.5, 0.0),
    "x ** -1 at 0": (lambda x: x**-1.0, 0.0),
    "log of 2x - x at 0": (lambda x: (2.0 * x - x).log(), 0.0),
    "exp overflows": (lambda x: (x * 1000.0).exp() * 0.0, 1.0),
    "2 ** log x at 0": (lambda x: 2.0 ** (x.log()), 0.0),
}
TENSOR_NON_FINITE = {
    **NON_FINITE,
    "sqrt at 0": (lambda x: x.sqrt(), 0.0),
    "sqrt of x * x at 0": (lambda x: (x * x).sqrt(), 0.0),
}


@pytest.mark.parametrize("name", sorted(NON_FINITE))
def test_value_inf_and_nan_follow_backward(name: str) -> None:
    f, at = NON_FINITE[name]
    x = cr.Value(at, name="x")
    y = f(x)
    y.backward()
    assert not math.isfinite(x.grad)
    e = cr.explain(y, x)
    assert _same_float(e.autodiff, x.grad)
    assert _same_float(e.total, x.grad), (e.total, x.grad)
    assert e.matches
    # Each path's product is the product of its local derivatives, in IEEE arithmetic.
    for p in e.paths:
        assert _same_float(p.product, math.prod(s.local for s in p.steps))
    text = str(e)
    assert "(they match)" in text and "MISMATCH" not in text


@pytest.mark.parametrize("name", sorted(TENSOR_NON_FINITE))
@pytest.mark.parametrize("shape", [(3,), (2, 3)])
def test_tensor_inf_and_nan_follow_backward_without_warnings(name: str, shape) -> None:
    f, at = TENSOR_NON_FINITE[name]
    data = np.linspace(0.2, 0.6, math.prod(shape)).reshape(shape)
    data.flat[1] = at
    x = cr.Tensor(data, requires_grad=True, name="x")
    with np.errstate(all="ignore"):
        y = f(x)
    bad = np.unravel_index(1, shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the backward pass is silent; so is explain
        for j in np.ndindex(*shape):
            seed = np.zeros(shape)
            seed[j] = 1.0
            (g,) = cr.grad(y, x, grad_outputs=seed)
            for k in np.ndindex(*shape):
                e = cr.explain(y, x, k, output_index=j)
                str(e)
                if j == k:
                    assert _close(e.total, float(g.data[k])), (j, k, e.total, g.data[k])
                    assert e.matches, (j, k)
                    assert math.isfinite(e.total) == (j != bad)
                    continue
                # y[j] does not depend on x[k]: no path, derivative 0.  backward()
                # gives nan where the zero gradient of y[k] meets an infinite
                # local derivative (as PyTorch does); explain says so.
                assert (e.count, e.total) == (0, 0.0)
                assert _same_float(e.autodiff, float(g.data[k]))
                if math.isfinite(e.autodiff):
                    assert e.matches
                else:
                    assert k == bad and not e.matches
                    assert "0 * inf = nan" in str(e)


def test_zero_jacobian_entries_carry_nan_as_backward_does() -> None:
    # y = A @ x with A[0, 1] = 0, then log at y[0] = 0: d y[0] / d x[1] is
    # 0 * inf = nan in the backward pass, so the entry is a path, not a gap.
    a = np.array([[1.0, 0.0], [2.0, 3.0]])
    x = cr.Tensor([0.0, 0.5], requires_grad=True, name="x")
    z = (cr.Tensor(a) @ x).log()
    (g,) = cr.grad(z, x, grad_outputs=np.array([1.0, 0.0]))
    assert math.isnan(g.data[1])
    e = cr.explain(z, x, 1, output_index=0)
    assert e.count == 1 and math.isnan(e.total) and e.matches
    assert [s.local for s in e.paths[0].steps][1] == 0.0
    # Where everything is finite, such a path adds 0.
    w = cr.Tensor(a, requires_grad=True, name="W")
    v = cr.Tensor([0.3, 0.5])
    out = (w @ v).tanh()
    e = cr.explain(out, w, (0, 1), output_index=0)
    assert e.matches and e.total == pytest.approx(cr.grad(out[0], w)[0].data[0, 1], rel=1e-12)


def test_inf_and_nan_are_reported_with_their_source() -> None:
    x = cr.Value(0.0, name="x")
    y = x.log()
    y.name = "y"
    text = str(cr.explain(y, x))
    assert "sum over paths = inf" in text and "autodiff gradient = inf (they match)" in text
    assert "y <- x" in text.splitlines()[-1] and "1/x is inf" in text.splitlines()[-1]


def test_matching_infinities_agree_and_different_ones_do_not() -> None:
    from chainrule.explain import agree

    inf, nan = math.inf, math.nan
    assert agree(inf, inf, 1e-9) and agree(-inf, -inf, 1e-9) and agree(nan, nan, 1e-9)
    assert not agree(inf, -inf, 1e-9) and not agree(inf, nan, 1e-9)
    assert not agree(1.0, inf, 1e-9) and not agree(nan, 1.0, 1e-9)
    assert agree(1.0, 1.0 + 1e-12, 1e-9) and not agree(1.0, 1.001, 1e-9)


# ---------------------------------------------------------------------------
# The tolerance of the check follows the least precise dtype on the paths
# ---------------------------------------------------------------------------


def _mixed_chain(h: cr.Tensor) -> cr.Tensor:
    for _ in range(5):
        h = (h * 1.37).tanh() + h.exp() * 0.1
    return h


@pytest.mark.parametrize("seed", range(3))
def test_float64_graph_through_float32_matches(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = cr.Tensor(rng.uniform(0.5, 2.0, size=4), requires_grad=True, name="x")
    y = _mixed_chain(x.astype(np.float32)).astype(np.float64)
    assert x.dtype == y.dtype == np.float64
    for k in range(4):
        e = cr.explain(y, x, k, output_index=k)
        assert e.matches, (k, e.total, e.autodiff)
        assert e.total == pytest.approx(e.autodiff, rel=1e-4)
        assert e.tolerance == 1e-4 and "within float32 rounding" in str(e)


@pytest.mark.parametrize("seed", range(3))
def test_float32_leaf_into_a_float64_graph_matches(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = cr.Tensor(rng.uniform(0.5, 2.0, size=4).astype(np.float32), requires_grad=True, name="x")
    y = _mixed_chain(x.astype(np.float64))
    assert (x.dtype, y.dtype) == (np.float32, np.float64)
    for k in range(4):
        e = cr.explain(y, x, k, output_index=k)
        assert e.matches, (k, e.total, e.autodiff)
        assert e.tolerance == 1e-4


def test_float32_off_the_paths_keeps_the_float64_tolerance() -> None:
    a = cr.Tensor([0.3, 0.7], requires_grad=True, name="a")
    b = cr.Tensor([0.2, 0.4], requires_grad=True, name="b")
    y = (a * 2.0).tanh() + (b.astype(np.float32) * 3.0).astype(np.float64)
    e = cr.explain(y, a, 0, output_index=0)
    assert e.matches and e.tolerance == 1e-9
    assert cr.explain(y, b, 0, output_index=0).tolerance == 1e-4
    # A false match is still caught at float64 precision.
    assert not agree_at(e.tolerance, e.autodiff * (1 + 1e-6), e.autodiff)


def agree_at(tol: float, a: float, b: float) -> bool:
    from chainrule.explain import agree

    return agree(a, b, tol)
