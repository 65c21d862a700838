"""Second derivatives: gradgradcheck for the ops, closed forms, and a Hessian-vector product.

With ``create_graph=True`` the derivative rules run on graph nodes, so a
gradient can be differentiated again.  These tests check the result three
ways: against finite differences of the gradient (``gradgradcheck``),
against the textbook second derivative, and, for a small network, a
Hessian-vector product against finite differences of the gradient.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import Tensor, Value, gradgradcheck

# ---------------------------------------------------------------------------
# gradgradcheck, op by op
# ---------------------------------------------------------------------------


def check_second_order(fn, inputs, **tolerances):
    """gradgradcheck ``fn``, and check the recorded gradient against the plain one.

    gradgradcheck differentiates the gradient that ``create_graph=True``
    records, so on its own it would accept a rule whose node form is wrong in
    a self-consistent way.  Comparing that gradient with an ordinary backward
    pass (gradchecked in test_ops.py) closes the gap.
    """
    assert gradgradcheck(fn, inputs, **tolerances)
    outs = fn(*inputs)
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    rng = np.random.default_rng(1)
    seeds = [
        float(rng.standard_normal()) if isinstance(o, Value) else rng.standard_normal(o.shape)
        for o in outs
    ]
    wrt = [x for x in inputs if x.requires_grad]
    plain = cr.grad(outs, wrt, grad_outputs=seeds, allow_unused=True)
    recorded = cr.grad(outs, wrt, grad_outputs=seeds, create_graph=True, allow_unused=True)
    for p, r in zip(plain, recorded):
        assert (p is None) == (r is None)
        if p is not None:
            np.testing.assert_allclose(
                np.asarray(r.data), np.asarray(p.data), rtol=1e-12, atol=1e-14
            )
    return True


PAIRS = [((), ()), ((3,), (3,)), ((2, 3), (3,)), ((3,), (2, 1)), ((2, 1), ())]


@pytest.mark.parametrize(("sa", "sb"), PAIRS, ids=str)
@pytest.mark.parametrize(
    "op",
    [
        pytest.param(lambda a, b: a + b, id="add"),
        pytest.param(lambda a, b: a - b, id="sub"),
        pytest.param(lambda a, b: a * b, id="mul"),
        pytest.param(lambda a, b: a / b, id="div"),
        pytest.param(lambda a, b: a**b, id="pow"),
        pytest.param(cr.maximum, id="maximum"),
        pytest.param(cr.minimum, id="minimum"),
    ],
)
def test_gradgrad_binary(make, op, sa, sb):
    a = make.positive(sa, 0.5, 1.0)  # positive base for pow; below b everywhere
    b = make.positive(sb, 1.5, 2.5)  # away from 0 for div
    assert check_second_order(op, [a, b])
    # Both operands are one node: the second derivative adds all four paths.
    assert check_second_order(lambda a: op(a, a * 2.0 + 1.0), [a])


@pytest.mark.parametrize(
    ("fn", "domain"),
    [
        pytest.param(lambda x: -x, "uniform", id="neg"),
        pytest.param(lambda x: x.exp(), "uniform", id="exp"),
        pytest.param(lambda x: x.log(), "positive", id="log"),
        pytest.param(lambda x: x.tanh(), "uniform", id="tanh"),
        pytest.param(lambda x: x.sigmoid(), "uniform", id="sigmoid"),
        pytest.param(lambda x: x.sqrt(), "positive", id="sqrt"),
        pytest.param(lambda x: x.relu() * x, "away", id="relu"),
        pytest.param(lambda x: x.abs() * x, "away", id="abs"),
        pytest.param(lambda x: x.clip(-0.1, 0.1) * x, "away", id="clip"),
        pytest.param(lambda x: x**3, "uniform", id="pow3"),
        pytest.param(lambda x: x**-0.5, "positive", id="pow-0.5"),
        pytest.param(lambda x: 2.0**x, "uniform", id="rpow"),
        pytest.param(lambda x: 1.0 / x, "positive", id="rdiv"),
        pytest.param(lambda x: cr.where(x.data > 0, x * x, x.exp()), "away", id="where"),
    ],
)
@pytest.mark.parametrize("shape", [(), (3,), (2, 2)], ids=str)
def test_gradgrad_unary(make, fn, domain, shape):
    x = getattr(make, domain)(shape)
    assert check_second_order(fn, [x])


@pytest.mark.parametrize(
    ("shape", "fn"),
    [
        pytest.param((2, 3), lambda x: (x * x).sum(axis=1), id="sum"),
        pytest.param((2, 3), lambda x: (x * x).mean(axis=(0, 1), keepdims=True), id="mean"),
        pytest.param((2, 3), lambda x: (x * x).max(axis=0), id="max"),
        pytest.param((2, 3), lambda x: (x * x * x).min(dim=1, keepdims=True).values, id="min"),
        pytest.param((2, 3), lambda x: x.softmax(axis=1), id="softmax"),
        pytest.param((2, 3), lambda x: x.softmax(axis=0), id="softmax-0"),
        pytest.param((2, 3), lambda x: x.log_softmax(axis=1), id="log_softmax"),
        pytest.param((2, 3), lambda x: x.logsumexp(axis=1), id="logsumexp"),
        pytest.param((2, 3), lambda x: x.logsumexp(), id="logsumexp-all"),
        pytest.param((2, 3), lambda x: (x * x).reshape(3, 2), id="reshape"),
        pytest.param((2, 3), lambda x: x.T * x.T, id="transpose"),
        pytest.param((2, 3), lambda x: x[[0, 0, 1], 1:] ** 2, id="getitem"),
        pytest.param((2, 3), lambda x: cr.concatenate([x, x * x], axis=1), id="concatenate"),
        pytest.param((2, 3), lambda x: cr.stack([x, x.exp()], axis=0), id="stack"),
        pytest.param((3,), lambda x: (x * x).broadcast_to((2, 3)), id="broadcast_to"),
        pytest.param((3, 3), lambda x: x @ x, id="matmul"),
        pytest.param((3,), lambda x: x @ x, id="dot"),
        pytest.param((2, 2, 2), lambda x: x @ x.tanh(), id="batched-matmul"),
    ],
)
def test_gradgrad_array_ops(make, shape, fn):
    x = make.distinct(shape)  # distinct values, so max/min have no ties
    assert check_second_order(fn, [x])


@pytest.mark.parametrize(
    ("sa", "sb"), [((3,), (3, 2)), ((2, 3), (3,)), ((2, 1, 3), (2, 3, 2))], ids=str
)
def test_gradgrad_matmul_two_inputs(make, sa, sb):
    a, b = make.uniform(sa), make.uniform(sb)
    assert check_second_order(lambda a, b: (a @ b).tanh(), [a, b])


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda a, b: a + b * b, id="add"),
        pytest.param(lambda a, b: a * a - b, id="sub"),
        pytest.param(lambda a, b: a * b, id="mul"),
        pytest.param(lambda a, b: a / b, id="div"),
        pytest.param(lambda a, b: a**b, id="pow"),
        pytest.param(lambda a, b: 2.0**a + b**3 - 1.5 / b + (3 - a) * (a + 1), id="numbers"),
        pytest.param(lambda a, b: -(a * b), id="neg"),
        pytest.param(lambda a, b: (a * b).exp(), id="exp"),
        pytest.param(lambda a, b: (a * b).log(), id="log"),
        pytest.param(lambda a, b: (a - b).tanh(), id="tanh"),
        pytest.param(lambda a, b: (a - b).sigmoid(), id="sigmoid"),
        pytest.param(lambda a, b: (b - a).relu() * a, id="relu"),
    ],
)
def test_gradgrad_value_ops(fn):
    assert check_second_order(fn, [Value(0.7), Value(1.3)])


def test_gradgrad_values():
    a, b = Value(0.7), Value(1.3)
    assert check_second_order(lambda a, b: (a * b).tanh() + (a / b).exp() - b.log() * a**b, [a, b])
    assert check_second_order(lambda a, b: (a - b).sigmoid() * (2.0 - a) ** 3 + (-b).relu(), [a, b])


# ---------------------------------------------------------------------------
# Closed-form second derivatives
# ---------------------------------------------------------------------------


def _tanh2(x):
    t = np.tanh(x)
    return -2 * t * (1 - t * t)


def _sigmoid2(x):
    s = 1 / (1 + np.exp(-x))
    return s * (1 - s) * (1 - 2 * s)


# name, function on a node, first derivative, second derivative, domain (low, high)
CLOSED_FORMS = [
    ("tanh", lambda x: x.tanh(), lambda x: 1 - np.tanh(x) ** 2, _tanh2, (-2.0, 2.0)),
    (
        "sigmoid",
        lambda x: x.sigmoid(),
        lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2,
        _sigmoid2,
        (-3.0, 3.0),
    ),
    ("exp", lambda x: x.exp(), np.exp, np.exp, (-2.0, 2.0)),
    ("log", lambda x: x.log(), lambda x: 1 / x, lambda x: -1 / x**2, (0.3, 3.0)),
    ("x**3", lambda x: x**3, lambda x: 3 * x**2, lambda x: 6 * x, (-2.0, 2.0)),
    (
        "x**2.5",
        lambda x: x**2.5,
        lambda x: 2.5 * x**1.5,
        lambda x: 3.75 * x**0.5,
        (0.3, 3.0),
    ),
    ("x**-2", lambda x: x**-2, lambda x: -2 * x**-3.0, lambda x: 6 * x**-4.0, (0.3, 3.0)),
    (
        "3**x",
        lambda x: 3.0**x,
        lambda x: math.log(3) * 3.0**x,
        lambda x: math.log(3) ** 2 * 3.0**x,
        (-2.0, 2.0),
    ),
]


@pytest.mark.parametrize(
    ("name", "fn", "d1", "d2", "domain"), CLOSED_FORMS, ids=[c[0] for c in CLOSED_FORMS]
)
@pytest.mark.parametrize("x", [0.15, 0.55, 0.9])
def test_value_second_derivative_closed_form(name, fn, d1, d2, domain, x):
    low, high = domain
    x = low + x * (high - low)
    v = Value(x)
    (g,) = cr.grad(fn(v), v, create_graph=True)
    assert isinstance(g, Value)
    assert g.requires_grad
    (h,) = cr.grad(g, v)
    assert g.data == pytest.approx(d1(x), rel=1e-12)
    assert h.data == pytest.approx(d2(x), rel=1e-10, abs=1e-14)


@pytest.mark.parametrize(
    ("name", "fn", "d1", "d2", "domain"), CLOSED_FORMS, ids=[c[0] for c in CLOSED_FORMS]
)
@pytest.mark.parametrize("shape", [(), (5,), (2, 3)], ids=str)
def test_tensor_second_derivative_closed_form(make, name, fn, d1, d2, domain, shape):
    x = make.uniform(shape, *domain)
    (g,) = cr.grad(fn(x).sum(), x, create_graph=True)
    assert isinstance(g, Tensor)
    # The Hessian is diagonal, so differentiating sum(g) gives the diagonal.
    (h,) = cr.grad(g.sum(), x)
    assert h.shape == shape
    np.testing.assert_allclose(g.data, d1(x.data), rtol=1e-12)
    np.testing.assert_allclose(h.data, d2(x.data), rtol=1e-10, atol=1e-14)


def test_pow_mixed_partial_closed_form():
    # f = a^b: d2f/da db = a^(b-1) (1 + b ln a), d2f/db2 = ln(a)^2 a^b.
    a, b = Value(1.7), Value(0.6)
    da, db = cr.grad(a**b, [a, b], create_graph=True)
    daa, dab = cr.grad(da, [a, b])
    dba, dbb = cr.grad(db, [a, b])
    x, y = 1.7, 0.6
    assert dab.data == pytest.approx(x ** (y - 1) * (1 + y * math.log(x)), rel=1e-12)
    assert dba.data == pytest.approx(dab.data, rel=1e-12)
    assert dbb.data == pytest.approx(math.log(x) ** 2 * x**y, rel=1e-12)
    assert daa.data == pytest.approx(y * (y - 1) * x ** (y - 2), rel=1e-12)


def test_third_derivative_of_a_power():
    v = Value(1.3)
    (d1,) = cr.grad(v**4, v, create_graph=True)
    (d2,) = cr.grad(d1, v, create_graph=True)
    (d3,) = cr.grad(d2, v)
    assert (d1.data, d2.data, d3.data) == pytest.approx((4 * 1.3**3, 12 * 1.3**2, 24 * 1.3))


def test_logsumexp_hessian_is_diag_p_minus_ppT(make):
    x = make.uniform((4,))
    (g,) = cr.grad(x.logsumexp(), x, create_graph=True)
    rows = [cr.grad(g[i], x)[0].data for i in range(4)]
    p = np.exp(x.data - np.log(np.exp(x.data).sum()))
    np.testing.assert_allclose(g.data, p, rtol=1e-12)
    np.testing.assert_allclose(np.stack(rows), np.diag(p) - np.outer(p, p), atol=1e-14)


def test_backward_with_create_graph_then_differentiate_grad(make):
    x = make.uniform((3,))
    (x.tanh() ** 2).sum().backward(create_graph=True)
    assert isinstance(x.grad, Tensor)
    # d/dx [2 t (1 - t^2)] = 2 (1 - t^2)(1 - 3 t^2)
    (h,) = cr.grad(x.grad.sum(), x)
    t = np.tanh(x.data)
    np.testing.assert_allclose(h.data, 2 * (1 - t**2) * (1 - 3 * t**2), rtol=1e-12)


# ---------------------------------------------------------------------------
# Hessian-vector product of a small network
# ---------------------------------------------------------------------------


def _mlp_loss(params, x, y):
    w1, b1, w2, b2 = params
    pred = (x @ w1 + b1).tanh() @ w2 + b2
    return ((pred - y) ** 2).mean()


def _mlp_setup(seed=0):
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((6, 3)))
    y = Tensor(rng.standard_normal((6, 2)))
    shapes = [(3, 4), (4,), (4, 2), (2,)]
    params = [Tensor(rng.standard_normal(s) * 0.7, requires_grad=True) for s in shapes]
    vs = [rng.standard_normal(s) for s in shapes]
    return x, y, params, vs


def _hvp(params, vs, x, y):
    grads = cr.grad(_mlp_loss(params, x, y), params, create_graph=True)
    gv = grads[0] * vs[0]
    dot = gv.sum()
    for g, v in zip(grads[1:], vs[1:]):
        dot = dot + (g * v).sum()
    return [h.data for h in cr.grad(dot, params)]


def _gradient_at(params, x, y):
    leaves = [Tensor(p, requires_grad=True) for p in params]
    return [g.data for g in cr.grad(_mlp_loss(leaves, x, y), leaves)]


def test_mlp_hessian_vector_product_matches_finite_differences():
    x, y, params, vs = _mlp_setup()
    hv = _hvp(params, vs, x, y)
    eps = 1e-5
    plus = _gradient_at([p.data + eps * v for p, v in zip(params, vs)], x, y)
    minus = _gradient_at([p.data - eps * v for p, v in zip(params, vs)], x, y)
    for h, gp, gm in zip(hv, plus, minus):
        np.testing.assert_allclose(h, (gp - gm) / (2 * eps), rtol=1e-6, atol=1e-9)


def test_mlp_hessian_is_symmetric():
    # u^T H v == v^T H u for any two directions.
    x, y, params, vs = _mlp_setup(seed=1)
    us = [np.random.default_rng(2).standard_normal(p.shape) for p in params]
    hv = _hvp(params, vs, x, y)
    hu = _hvp(params, us, x, y)
    u_hv = sum(float((u * h).sum()) for u, h in zip(us, hv))
    v_hu = sum(float((v * h).sum()) for v, h in zip(vs, hu))
    assert u_hv == pytest.approx(v_hu, rel=1e-10)


def test_mlp_gradgradcheck():
    x, y, params, _ = _mlp_setup(seed=3)
    assert check_second_order(lambda *ps: _mlp_loss(ps, x, y), params)
