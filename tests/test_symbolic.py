"""chainrule.symbolic: the rule table run on SymPy expressions, proved against sympy.diff."""

from __future__ import annotations

import importlib
import importlib.util
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import functional as F
from chainrule.tutorial.network import build_tensors, build_values
from chainrule.tutorial.reference import PUBLISHED, WEIGHT_NAMES, agrees

# (chainrule.symbolic, the attribute, is the function; the module is imported by name)
symbolic_module = importlib.import_module("chainrule.symbolic")

needs_sympy = pytest.mark.skipif(
    importlib.util.find_spec("sympy") is None,
    reason="SymPy is the symbolic extra (pip install 'chainrule[symbolic]')",
)

W3 = np.array([0.7, -1.3, 0.4])  # fixed weights that reduce a tensor to one number


def leaf(values, name):
    return cr.Tensor(np.array(values, dtype=np.float64), requires_grad=True, name=name)


def reduce(t):
    """A scalar from any small tensor: a weighted sum (sum and mul are ops of their own)."""
    weights = np.resize(W3, t.shape) if t.shape else 0.7
    return (t * weights).sum()


def _setitem():
    x = leaf([0.3, -0.8, 1.1], "x")
    v = leaf([2.0], "v")
    y = x * 1.0
    y[1:2] = v
    return reduce(y)


# One small graph per op of the rule table that SymPy can run.
CASES = {
    "add": lambda: reduce(leaf([0.3, -0.2, 1.5], "a") + leaf([1.2, 0.5, -0.7], "b")),
    "sub": lambda: reduce(leaf([0.3, -0.2, 1.5], "a") - leaf([1.2, 0.5, -0.7], "b")),
    "mul": lambda: reduce(leaf([0.3, -0.2, 1.5], "a") * leaf([1.2, 0.5, -0.7], "b")),
    "div": lambda: reduce(leaf([0.3, -0.2, 1.5], "a") / leaf([1.2, 0.5, 0.7], "b")),
    "neg": lambda: reduce(-leaf([0.3, -0.2, 1.5], "a")),
    "pow": lambda: reduce(leaf([0.3, 0.2, 1.5], "a") ** leaf([1.2, 0.5, -0.7], "b")),
    "exp": lambda: reduce(leaf([0.3, -0.2, 1.5], "x").exp()),
    "log": lambda: reduce(leaf([0.3, 0.2, 1.5], "x").log()),
    "tanh": lambda: reduce(leaf([0.3, -0.2, 1.5], "x").tanh()),
    "sigmoid": lambda: reduce(leaf([0.3, -0.2, 1.5], "x").sigmoid()),
    "softplus": lambda: reduce(F.softplus(leaf([0.3, -0.2, 1.5], "x"))),
    "sqrt": lambda: reduce(leaf([0.3, 0.2, 1.5], "x").sqrt()),
    "where": lambda: reduce(
        cr.where(
            np.array([True, False, True]), leaf([0.3, -0.2, 1.5], "a"), leaf([1.0, 2.0, 3.0], "b")
        )
    ),
    "astype": lambda: reduce(leaf([0.3, -0.2, 1.5], "x").astype(np.float32)),
    "matmul": lambda: reduce(
        leaf([[0.3, -0.2], [1.5, 0.4], [0.1, 0.9]], "W") @ leaf([0.5, -1.0], "x")
    ),
    "sum": lambda: leaf([[0.3, -0.2, 1.5], [0.2, 0.1, 0.4]], "x").sum(axis=0).exp().sum(),
    "mean": lambda: reduce(leaf([[0.3, -0.2, 1.5], [0.2, 0.1, 0.4]], "x").mean(axis=0).exp()),
    "reshape": lambda: reduce(leaf([[0.3, -0.2, 1.5]], "x").reshape(3).exp()),
    "transpose": lambda: reduce(
        leaf([[0.3, -0.2, 1.5], [0.2, 0.1, 0.4]], "x").T @ leaf([0.5, -1.0], "y")
    ),
    "broadcast_to": lambda: reduce(leaf([0.3, -0.2, 1.5], "x").broadcast_to((2, 3)).exp()),
    "getitem": lambda: reduce(leaf([0.3, -0.2, 1.5, 0.8], "x")[1:].tanh()),
    "scatter": lambda: reduce(leaf([0.3, -0.2], "x")._scatter((3,), np.array([2, 0]))),
    "setitem": _setitem,
    "concatenate": lambda: reduce(
        cr.concatenate([leaf([0.3], "a"), leaf([-0.2, 1.5], "b")]).sigmoid()
    ),
    "stack": lambda: reduce(cr.stack([leaf([0.3, 1.0], "a"), leaf([-0.2, 1.5], "b")]).exp()),
    "logsumexp": lambda: leaf([0.3, -0.2, 1.5], "x").logsumexp(),
    "softmax": lambda: reduce(leaf([0.3, -0.2, 1.5], "x").softmax(axis=0)),
    "log_softmax": lambda: reduce(leaf([0.3, -0.2, 1.5], "x").log_softmax(axis=0)),
    "cross_entropy": lambda: F.cross_entropy(
        leaf([[0.3, -0.2, 1.5], [0.2, 0.1, 0.4]], "logits"), np.array([2, 0])
    ),
    "erf": lambda: reduce(leaf([0.3, -0.2, 1.5], "x").erf()),
    "sin": lambda: reduce(leaf([0.3, -0.2, 1.5], "x").sin()),
    "cos": lambda: reduce(leaf([0.3, -0.2, 1.5], "x").cos()),
    "exp2": lambda: reduce(leaf([0.3, -0.2, 1.5], "x").exp2()),
    "log2": lambda: reduce(leaf([0.3, 0.2, 1.5], "x").log2()),
    "log1p": lambda: reduce(leaf([0.3, -0.2, 1.5], "x").log1p()),
    "expm1": lambda: reduce(leaf([0.3, -0.2, 1.5], "x").expm1()),
    "clone": lambda: reduce(leaf([0.3, -0.2, 1.5], "x").clone().tanh()),
    "cumsum": lambda: reduce(
        leaf([[0.3, -0.2, 1.5], [0.2, 0.1, 0.4]], "x").cumsum(1).sin().sum(axis=0)
    ),
    "prod": lambda: reduce(leaf([[0.3, -0.2, 1.5], [0.2, 0.1, 0.4]], "x").prod(axis=0)),
    "norm": lambda: reduce(leaf([[0.3, -0.2, 1.5], [0.2, 0.1, 0.4]], "x").norm(dim=0)),
    "relu": lambda: reduce(leaf([0.3, -0.2, 1.5], "x").relu()),
    "abs": lambda: reduce(leaf([0.3, -0.2, 1.5], "x").abs()),
    "clip": lambda: reduce(leaf([0.3, -1.2, 1.5], "x").clip(-1.0, 1.0)),
    "maximum": lambda: reduce(cr.maximum(leaf([0.3, -0.2, 1.5], "a"), leaf([0.1, 0.5, 2.0], "b"))),
    "minimum": lambda: reduce(cr.minimum(leaf([0.3, -0.2, 1.5], "a"), leaf([0.1, 0.5, 2.0], "b"))),
    "max": lambda: leaf([[0.3, -0.2, 1.5], [0.9, 0.1, 0.4]], "x").max(axis=1).sin().sum(),
}

# The ops whose rule SymPy cannot run, and why (none: the rules that choose by
# comparing numbers, relu, abs, clip, maximum, minimum and max, build SymPy
# conditions and Piecewise formulas through the rule table's helpers).
EXCLUDED: dict[str, str] = {}

# Ops whose gradient has kinks (a rule's mask that is a condition on the symbols):
# check() proves it on every side of them and names them.  pow's rules choose at
# a base of 0, norm's at a norm of 0.
KINKED = {"relu", "clip", "maximum", "minimum", "max", "norm", "pow"}


def test_every_op_of_the_rule_table_is_classified():
    """A new op must get a symbolic case or a stated reason why SymPy cannot run it."""
    classified = set(CASES) | set(EXCLUDED)
    assert not set(CASES) & set(EXCLUDED)
    assert set(cr.OPS) - classified == set(), "ops with no symbolic case and no exclusion"
    assert classified - set(cr.OPS) == set()
    assert set(EXCLUDED) == set(symbolic_module.UNSUPPORTED)


def _values_at_graph(s, out):
    return {s.symbols[k]: v for k, v in s.values.items()}


@needs_sympy
@pytest.mark.parametrize("op", sorted(CASES))
def test_rule_table_gradient_is_the_derivative(op):
    out = CASES[op]()
    assert op in {n.op for n in cr.engine.iter_graph([out])}
    s = cr.symbolic(out)
    check = s.check()
    assert check.ok, str(check)
    # Proved, not only equal at random points: the rules' constants (ln 2,
    # 2/sqrt(pi)) enter SymPy as the exact numbers they stand for.
    assert set(check.verdicts.values()) == {"proved"}, str(check)
    if op in KINKED:
        assert set(check.kinks) == set(check.verdicts) and all(check.kinks.values())
        assert all("proved away from the kinks" in d for d in check.details.values())
    else:
        assert check.kinks == {}, str(check)
    # At the graph's own numbers the closed forms give the engine's gradients.
    leaves = [n for n in cr.engine.iter_graph([out]) if n.is_leaf and n.requires_grad]
    grads = cr.grad(out, leaves)
    at = _values_at_graph(s, out)
    for node, g in zip(leaves, grads):
        for idx, expected in np.ndenumerate(np.asarray(g.data)):
            key = node.name + (f"[{', '.join(map(str, idx))}]" if np.ndim(node.data) else "")
            got = float(s.gradients[key].subs(at))
            assert got == pytest.approx(float(expected), rel=1e-6, abs=1e-9), (op, key)


@needs_sympy
def test_an_op_without_a_symbolic_forward_is_refused_by_name(monkeypatch):
    monkeypatch.delitem(symbolic_module.FORWARD, "relu")
    monkeypatch.setitem(symbolic_module.UNSUPPORTED, "relu", "no reason")
    with pytest.raises(ValueError, match="uses relu, which SymPy cannot run: no reason"):
        cr.symbolic(CASES["relu"]())


@needs_sympy
def test_ops_with_kinks_on_values():
    x = cr.Value(0.4, name="x")
    y = cr.Value(-0.3, name="y")
    z = (x * y).relu() + (x - y).abs() * x + (y * y - 0.04).relu().tanh() + (x - 2.0).relu()
    s = cr.symbolic(z)
    check = s.check()
    assert check.verdicts == {"x": "proved", "y": "proved"}, str(check)
    # (abs's sign(x - y) is sympy's too, at its kink as well: that one is not set aside)
    assert check.kinks["x"] == ["x*y = 0", "x - 2 = 0"], str(check)
    assert check.kinks["y"] == ["x*y = 0", "25*y**2 - 1 = 0"], str(check)
    z.backward()
    at = _values_at_graph(s, z)
    assert float(s.gradients["x"].subs(at)) == pytest.approx(x.grad, rel=1e-12)
    assert float(s.gradients["y"].subs(at)) == pytest.approx(y.grad, rel=1e-12)


@needs_sympy
@pytest.mark.parametrize(
    "build, at, rule, sympys",
    [
        # relu'(0) = 0 in the rule table, Heaviside(0) = 1/2 in sympy
        (lambda x: x.relu(), 0.0, 0.0, 0.5),
        # clip passes the gradient at its bounds; sympy's Heaviside gives 1/2 there
        (lambda x: x.clip(-1.0, 1.0), 1.0, 1.0, 0.5),
        # |x|' = sign(x): 0 at 0 on both sides
        (lambda x: x.abs(), 0.0, 0.0, 0.0),
    ],
)
def test_at_a_kink_the_formula_is_the_rule_tables(build, at, rule, sympys):
    # The formula carries the rule table's convention at the kink, which is why
    # check() proves it only away from the kinks where the two can differ.
    x = cr.Tensor(np.array(0.3), requires_grad=True, name="x")
    s = cr.symbolic(build(x))
    sym = s.symbols["x"]
    assert s.check().ok
    formula = float(s.gradients["x"].subs(sym, at))
    x0 = cr.Tensor(np.array(at), requires_grad=True)
    build(x0).backward()
    assert formula == float(x0.grad) == rule
    assert float(__import__("sympy").diff(s.expression, sym).subs(sym, at)) == sympys


@needs_sympy
def test_a_gradient_wrong_on_a_side_the_points_miss_is_not_proved():
    # The random points (near x = 0.3) all lie where x > 0; the split at the
    # kinks still proves each side and finds that the x < -1 side is wrong.
    import sympy

    x = cr.Value(0.3, name="x")
    s = cr.symbolic((x * 2.0).relu())
    sym = s.symbols["x"]
    right = s.gradients["x"]
    assert s.check().verdicts == {"x": "proved"}
    s.gradients["x"] = right + sympy.Piecewise((1, sym < -1), (0, True))
    check = s.check()
    assert check.verdicts == {"x": "numeric"} and "not proved" in str(check)
    s.gradients["x"] = right + sympy.Piecewise((1, sym > 0.1), (0, True))
    assert s.check().verdicts == {"x": "differ"}


@needs_sympy
def test_the_helpers_build_conditions_and_cases_for_expressions():
    import sympy

    from chainrule import rules

    x = sympy.Symbol("x", real=True)
    a = symbolic_module.Sym(np.array([x, 2 * x], dtype=object))
    mask = rules.compare("<=", a, 0.0)
    assert list(mask.data) == [x <= 0, 2 * x <= 0]
    picked = rules.where(mask, 0.0, a)
    assert list(picked.data) == [
        sympy.Piecewise((0, x <= 0), (x, True)),
        sympy.Piecewise((0, 2 * x <= 0), (2 * x, True)),
    ]
    assert rules.sign(symbolic_module.Sym(x)).data == sympy.sign(x)
    both = rules.compare("&", rules.compare(">", a, -1.0), rules.compare("!=", a, a))
    assert list(both.data) == [sympy.false, sympy.false]
    # on plain data and on nodes outside symbolic, the helpers are as before
    assert rules.compare("<=", np.array([-1.0, 1.0]), 0.0).tolist() == [True, False]
    assert rules.where(cr.Value(0.5) <= 0.0, 1.0, 2.0) == 2.0


@needs_sympy
def test_values_with_constants_and_reuse():
    x = cr.Value(0.7, name="x")
    y = cr.Value(-0.4, name="y")
    z = (x * y + 2.0) ** 3 / (1.0 + x.exp()) - (x * x).tanh() + (y * y + 1.0).log().sqrt()
    s = cr.symbolic(z)
    assert s.check().ok
    z.backward()
    at = _values_at_graph(s, z)
    assert float(s.gradients["x"].subs(at)) == pytest.approx(x.grad, rel=1e-12)
    assert float(s.gradients["y"].subs(at)) == pytest.approx(y.grad, rel=1e-12)


@needs_sympy
def test_the_222_network_is_proved():
    net = build_values()
    s = cr.symbolic(net["E_total"])
    check = s.check()
    assert check.verdicts == dict.fromkeys(s.gradients, "proved")
    assert set(s.gradients) == set(WEIGHT_NAMES) | {"b1", "b2"}
    at = _values_at_graph(s, net["E_total"])
    assert agrees(float(s.gradients["w5"].subs(at)), PUBLISHED["dE_total/dw5"].text)
    assert agrees(float(s.gradients["w1"].subs(at)), PUBLISHED["dE_total/dw1"].text)
    assert "i1" in {str(v) for v in s.expression.free_symbols}  # named inputs are symbols
    tex = s.latex()
    assert tex.count("&=") == 1 + len(s.gradients)
    assert "\\frac{\\partial E_{total}}{\\partial w_{5}}" in tex


@needs_sympy
def test_the_222_tensor_network_element_by_element():
    net = build_tensors()
    s = cr.symbolic(net["E_total"], wrt=[net["W_output"]])
    assert set(s.gradients) == {f"W_output[{r}, {c}]" for r in range(2) for c in range(2)}
    assert s.check().ok
    at = _values_at_graph(s, net["E_total"])
    assert agrees(float(s.gradients["W_output[0, 0]"].subs(at)), PUBLISHED["dE_total/dw5"].text)


@needs_sympy
def test_check_reports_a_wrong_gradient():
    import sympy

    x = cr.Value(0.3, name="x")
    s = cr.symbolic((x * x).exp())
    s.gradients["x"] = s.gradients["x"] * (1 + sympy.Rational(1, 10**6))
    check = s.check()
    assert not check.ok and check.verdicts["x"] == "differ"
    assert "DIFFER" in str(check)


@needs_sympy
def test_check_falls_back_to_random_points_and_says_so(monkeypatch):
    x = cr.Value(0.3, name="x")
    s = cr.symbolic((x * x).sigmoid())
    monkeypatch.setattr(symbolic_module, "_is_zero", lambda sp, d: False)
    check = s.check()
    assert check.verdicts == {"x": "numeric"}
    assert "not proved" in str(check) and f"{symbolic_module.TOLERANCE:g}" in str(check)


def test_without_sympy_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sympy", None)
    x = cr.Value(0.3, name="x")
    with pytest.raises(ImportError, match=r"pip install 'chainrule\[symbolic\]'"):
        cr.symbolic(x.exp())


@needs_sympy
def test_bad_arguments():
    x = cr.Value(0.3, name="x")
    with pytest.raises(TypeError, match="symbolic: output"):
        cr.symbolic(0.3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="single number"):
        cr.symbolic(leaf([1.0, 2.0], "t").exp())
    y = x * 2.0
    with pytest.raises(ValueError, match="wrt"):
        cr.symbolic(y.exp(), wrt=[y])


@needs_sympy
def test_a_wrong_gradient_of_the_worked_example_is_found_without_simplifying(monkeypatch):
    # A wrong gradient on a large expression is told apart at the random points,
    # before SymPy is asked to simplify a difference that is not 0 (which can run
    # for many minutes): simplification is tried only for the seven right ones.
    symbolic_module = importlib.import_module("chainrule.symbolic")
    real = symbolic_module._is_zero
    simplified = []

    def counted(sp, difference):
        simplified.append(difference)
        return real(sp, difference)

    monkeypatch.setattr(symbolic_module, "_is_zero", counted)
    net = build_values()
    s = cr.symbolic(net["E_total"])
    s.gradients["w3"] = 2 * s.gradients["w3"]
    check = s.check()
    assert check.verdicts["w3"] == "differ" and not check.ok
    assert all(v == "proved" for k, v in check.verdicts.items() if k != "w3")
    assert len(simplified) == len(check.verdicts) - 1
