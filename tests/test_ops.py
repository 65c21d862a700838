"""Every Tensor and Value op, gradchecked against central differences.

Shapes cover broadcasting in both directions, size-1 axes, 0-d tensors and
inputs used more than once.  Inputs stay in each op's safe domain and away
from kinks (see the ``make`` fixture in conftest.py).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import Tensor, Value, gradcheck

# Pairs of operand shapes that broadcast: equal, one side smaller, both stretched, 0-d.
BROADCAST_PAIRS = [
    ((), ()),
    ((3,), (3,)),
    ((2, 3), (2, 3)),
    ((2, 3), (3,)),
    ((3,), (2, 3)),
    ((2, 1), (1, 3)),
    ((1, 3), (2, 1)),
    ((2, 3), ()),
    ((), (2, 3)),
    ((2, 1, 3), (4, 1)),
    ((1,), (2, 3)),
    ((2, 3, 1), (2, 1, 1)),
]
UNARY_SHAPES = [(), (1,), (4,), (2, 3), (2, 1, 3)]


def _ids(pairs):
    return [f"{a}-{b}" for a, b in pairs]


# ---------------------------------------------------------------------------
# Binary arithmetic
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("sa", "sb"), BROADCAST_PAIRS, ids=_ids(BROADCAST_PAIRS))
@pytest.mark.parametrize(
    "op",
    [
        pytest.param(lambda a, b: a + b, id="add"),
        pytest.param(lambda a, b: a - b, id="sub"),
        pytest.param(lambda a, b: a * b, id="mul"),
    ],
)
def test_add_sub_mul_broadcast(make, op, sa, sb):
    a, b = make.uniform(sa), make.uniform(sb)
    out = op(a, b)
    assert out.shape == np.broadcast_shapes(sa, sb)
    np.testing.assert_allclose(out.data, op(a.data, b.data))
    assert gradcheck(op, [a, b])


@pytest.mark.parametrize(("sa", "sb"), BROADCAST_PAIRS, ids=_ids(BROADCAST_PAIRS))
def test_div_broadcast(make, sa, sb):
    a, b = make.uniform(sa), make.away(sb, gap=0.5)
    np.testing.assert_allclose((a / b).data, a.data / b.data)
    assert gradcheck(lambda a, b: a / b, [a, b])


@pytest.mark.parametrize(("sa", "sb"), BROADCAST_PAIRS, ids=_ids(BROADCAST_PAIRS))
def test_pow_broadcast(make, sa, sb):
    # A positive base keeps a ** b real for any exponent; both gradients are checked.
    a, b = make.positive(sa), make.uniform(sb, -2.0, 2.0)
    np.testing.assert_allclose((a**b).data, a.data**b.data)
    assert gradcheck(lambda a, b: a**b, [a, b])


@pytest.mark.parametrize("exponent", [0, 1, 2, 3, -1, 0.5, -1.5, 2.5])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
def test_pow_constant_exponent(make, shape, exponent):
    x = make.positive(shape)
    np.testing.assert_allclose((x**exponent).data, x.data**exponent)
    assert gradcheck(lambda x: x**exponent, [x])


def test_pow_integer_exponent_on_negative_base(make):
    x = make.away((2, 3), gap=0.3)
    for exponent in (2, 3, -2):
        assert gradcheck(lambda x, e=exponent: x**e, [x])


def test_pow_zero_exponent_at_zero_base_has_zero_gradient():
    x = Tensor([0.0, 1.0, -2.0], requires_grad=True)
    (x**0).sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros(3))
    assert np.isfinite(x.grad).all()


def test_pow_gradient_in_the_exponent_at_zero_base_is_zero(make):
    # 0 ** b is 0 for all b > 0, so d/db is 0 there (ln(0) * 0 would be nan).
    b = make.positive((2, 2))
    base = np.array([[0.0, 2.0], [0.0, 0.5]])
    assert gradcheck(lambda b: base**b, [b])
    assert gradcheck(lambda b: 0.0**b, [b])
    (base**b).sum().backward()
    nonzero = base != 0
    expected = np.zeros_like(base)
    expected[nonzero] = np.log(base[nonzero]) * base[nonzero] ** b.data[nonzero]
    np.testing.assert_allclose(b.grad, expected)
    v = Value(1.5)
    (0.0**v).backward()
    assert v.grad == 0.0
    a = Tensor([0.0, 3.0], requires_grad=True)
    e = Tensor([2.0, 2.0], requires_grad=True)
    (a**e).sum().backward()
    np.testing.assert_allclose(a.grad, 2 * a.data)
    np.testing.assert_allclose(e.grad, [0.0, math.log(3.0) * 9.0])
    # The rule's node form (used by create_graph) agrees, and its derivative is finite.
    (g,) = cr.grad((a**e).sum(), e, create_graph=True)
    np.testing.assert_allclose(g.data, e.grad)
    (h,) = cr.grad(g.sum(), e)
    assert np.isfinite(h.data).all()


# Constants of every accepted kind (Python numbers, lists, numpy arrays) on either side.
CONSTANTS = [
    pytest.param(2.5, id="float"),
    pytest.param(3, id="int"),
    pytest.param(np.float64(1.5), id="numpy-scalar"),
    pytest.param([0.5, -1.5, 2.0], id="list"),
    pytest.param(np.array([[0.75], [-1.25]]), id="array-column"),
    pytest.param(np.array([1.0, 2.0, -0.5]), id="array-row"),
]


@pytest.mark.parametrize("const", CONSTANTS)
@pytest.mark.parametrize(
    "op",
    [
        pytest.param(lambda x, c: x + c, id="x+c"),
        pytest.param(lambda x, c: c + x, id="c+x"),
        pytest.param(lambda x, c: x - c, id="x-c"),
        pytest.param(lambda x, c: c - x, id="c-x"),
        pytest.param(lambda x, c: x * c, id="x*c"),
        pytest.param(lambda x, c: c * x, id="c*x"),
        pytest.param(lambda x, c: x / c, id="x/c"),
        pytest.param(lambda x, c: c / x, id="c/x"),
    ],
)
def test_arithmetic_with_constants(make, op, const):
    x = make.away((2, 3), gap=0.5)
    out = op(x, const)
    assert isinstance(out, Tensor)
    np.testing.assert_allclose(out.data, op(x.data, np.asarray(const)))
    assert gradcheck(lambda x: op(x, const), [x])


@pytest.mark.parametrize(
    "const",
    [
        pytest.param(2, id="int"),
        pytest.param(1.5, id="float"),
        pytest.param([1.0, 2.0, 0.5], id="list"),
        pytest.param(np.array([[2.0], [3.0]]), id="array"),
    ],
)
def test_pow_with_constants_on_either_side(make, const):
    x = make.positive((2, 3))
    np.testing.assert_allclose((x**const).data, x.data ** np.asarray(const))
    np.testing.assert_allclose((const**x).data, np.asarray(const) ** x.data)
    assert gradcheck(lambda x: x**const, [x])
    assert gradcheck(lambda x: const**x, [x])


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda x: x * x, id="x*x"),
        pytest.param(lambda x: x + x, id="x+x"),
        pytest.param(lambda x: x - x * 2.0, id="x-2x"),
        pytest.param(lambda x: x / (x * x + 1.0), id="x/(x*x+1)"),
        pytest.param(lambda x: (x + x) * x.tanh() - x.exp() * x, id="mixed"),
        pytest.param(lambda x: (x * x + 1.0) ** x, id="pow-both"),
        pytest.param(lambda x: x * x.sum(), id="x*sum(x)"),
        pytest.param(lambda x: x.T @ x, id="xT@x"),
    ],
)
def test_reused_input(make, fn):
    x = make.uniform((3, 3), -1.0, 1.0)
    assert gradcheck(fn, [x])


def test_shared_subexpression_gradient_adds_over_paths(make):
    x, w = make.uniform((2, 3)), make.uniform((3,))
    h = (x * w).tanh()  # used three times below

    def fn(x, w):
        h = (x * w).tanh()
        return (h * h + h.sigmoid() - h).sum(axis=0)

    assert gradcheck(fn, [x, w])
    (h * h + h.sigmoid() - h).sum().backward()
    s = 1 / (1 + np.exp(-h.data))
    np.testing.assert_allclose(h.grad, 2 * h.data + s * (1 - s) - 1)


# ---------------------------------------------------------------------------
# Elementwise functions
# ---------------------------------------------------------------------------

UNARY = [
    # name, forward, numpy reference, input maker
    ("neg", lambda x: -x, np.negative, "uniform"),
    ("exp", lambda x: x.exp(), np.exp, "uniform"),
    ("log", lambda x: x.log(), np.log, "positive"),
    ("tanh", lambda x: x.tanh(), np.tanh, "uniform"),
    ("sigmoid", lambda x: x.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), "uniform"),
    ("relu", lambda x: x.relu(), lambda a: np.maximum(a, 0), "away"),
    ("abs", lambda x: x.abs(), np.abs, "away"),
    ("sqrt", lambda x: x.sqrt(), np.sqrt, "positive"),
    ("cr.exp", cr.exp, np.exp, "uniform"),
    ("cr.log", cr.log, np.log, "positive"),
    ("cr.tanh", cr.tanh, np.tanh, "uniform"),
    ("cr.sigmoid", cr.sigmoid, lambda a: 1 / (1 + np.exp(-a)), "uniform"),
    ("cr.relu", cr.relu, lambda a: np.maximum(a, 0), "away"),
    ("cr.sqrt", cr.sqrt, np.sqrt, "positive"),
]


@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=str)
@pytest.mark.parametrize(("name", "fn", "ref", "domain"), UNARY, ids=[u[0] for u in UNARY])
def test_unary(make, name, fn, ref, domain, shape):
    x = getattr(make, domain)(shape)
    out = fn(x)
    assert out.shape == shape
    np.testing.assert_allclose(out.data, ref(x.data), rtol=1e-12)
    assert gradcheck(fn, [x])


@pytest.mark.parametrize(("name", "fn", "ref", "domain"), UNARY, ids=[u[0] for u in UNARY])
def test_unary_applied_to_itself(make, name, fn, ref, domain):
    # y = fn(x) is used three times, and x itself once more: all paths must add up.
    x = getattr(make, domain)((2, 2))

    def reuse(x):
        y = fn(x)
        return y * y + y - x

    assert gradcheck(reuse, [x])


def test_relu_and_abs_gradients_at_zero_are_zero():
    x = Tensor([0.0, 0.0], requires_grad=True)
    (x.relu() + x.abs()).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


@pytest.mark.parametrize("shape", [(), (5,), (2, 3)], ids=str)
@pytest.mark.parametrize(
    ("lo", "hi"), [(-0.5, 0.5), (None, 0.25), (-0.25, None), (-1.0, 1.0)], ids=str
)
def test_clip(make, shape, lo, hi):
    # Inputs keep a gap from both bounds so no step of eps crosses one.
    raw = make.array(shape, -1.5, 1.5)
    for bound in (lo, hi):
        if bound is not None:
            near = np.abs(raw - bound) < 0.1
            raw = np.where(near, raw + 0.25, raw)
    x = Tensor(raw, requires_grad=True)
    out = x.clip(lo, hi)
    np.testing.assert_allclose(out.data, np.clip(raw, lo, hi))
    assert gradcheck(lambda x: x.clip(lo, hi), [x])
    assert gradcheck(lambda x: cr.clip(x, lo, hi), [x])


@pytest.mark.parametrize(("sa", "sb"), BROADCAST_PAIRS, ids=_ids(BROADCAST_PAIRS))
@pytest.mark.parametrize(
    ("fn", "ref"), [(cr.maximum, np.maximum), (cr.minimum, np.minimum)], ids=["max", "min"]
)
def test_maximum_minimum(make, fn, ref, sa, sb):
    a = make.uniform(sa)
    b_data = make.array(sb)
    # Keep every pair that meets under broadcasting at least 0.1 apart.
    shape = np.broadcast_shapes(sa, sb)
    close = np.abs(np.broadcast_to(a.data, shape) - np.broadcast_to(b_data, shape)) < 0.1
    while close.any():
        b_data = make.array(sb)
        close = np.abs(np.broadcast_to(a.data, shape) - np.broadcast_to(b_data, shape)) < 0.1
    b = Tensor(b_data, requires_grad=True)
    np.testing.assert_allclose(fn(a, b).data, ref(a.data, b.data))
    assert gradcheck(fn, [a, b])


@pytest.mark.parametrize(("fn", "wins"), [(cr.maximum, np.greater), (cr.minimum, np.less)])
def test_maximum_minimum_with_constants_and_ties(make, fn, wins):
    x = make.away((2, 3), kink=0.5, gap=0.2)
    assert gradcheck(lambda x: fn(x, 0.5), [x])
    assert gradcheck(lambda x: fn([0.5, 0.5, 0.5], x), [x])
    # At a tie each side gets half of the gradient.
    a = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = Tensor([1.0, 0.0, 5.0], requires_grad=True)
    fn(a, b).sum().backward()
    tie = a.data == b.data
    np.testing.assert_allclose(a.grad, wins(a.data, b.data) + 0.5 * tie)
    np.testing.assert_allclose(b.grad, wins(b.data, a.data) + 0.5 * tie)
    np.testing.assert_allclose(a.grad + b.grad, np.ones(3))


@pytest.mark.parametrize(
    ("sc", "sa", "sb"),
    [
        ((), (), ()),
        ((3,), (3,), (3,)),
        ((2, 3), (3,), (2, 1)),
        ((2, 1), (2, 3), ()),
        ((3,), (2, 3), (2, 3)),
    ],
    ids=str,
)
def test_where(make, sc, sa, sb):
    cond = make.rng.random(sc) < 0.5
    a, b = make.uniform(sa), make.uniform(sb)
    out = cr.where(cond, a, b)
    np.testing.assert_allclose(out.data, np.where(cond, a.data, b.data))
    assert gradcheck(lambda a, b: cr.where(cond, a, b), [a, b])
    assert gradcheck(lambda a, b: cr.where(Tensor(cond), a * b, a), [a, b])


def test_where_with_a_constant_and_a_reused_input(make):
    x = make.uniform((2, 3))
    cond = x.data > 0
    assert gradcheck(lambda x: cr.where(cond, x, 0.0), [x])
    assert gradcheck(lambda x: cr.where(cond, 1.0, x), [x])
    assert gradcheck(lambda x: cr.where(cond, x * x, x), [x])
    # The comparison result (a boolean Tensor) works as the condition.
    assert gradcheck(lambda x: cr.where(x > 0, x, -x), [x])


# ---------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------

AXES = [None, 0, 1, -1, 2, (0, 2), (1,), (2, 0), (0, 1, 2)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "logsumexp"])
def test_reduction_over_axes(make, op, axis, keepdims):
    x = make.distinct((2, 3, 4))
    out = getattr(x, op)(axis=axis, keepdims=keepdims)
    ref = (
        _np_logsumexp(x.data, axis, keepdims)
        if op == "logsumexp"
        else getattr(np, op)(x.data, axis=axis, keepdims=keepdims)
    )
    assert out.shape == np.shape(ref)
    np.testing.assert_allclose(out.data, ref, rtol=1e-12)
    assert gradcheck(lambda x: getattr(x, op)(axis=axis, keepdims=keepdims), [x])


@pytest.mark.parametrize("shape", [(), (1,), (1, 1), (3, 1), (1, 4)], ids=str)
@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "logsumexp"])
def test_reduction_of_tiny_shapes(make, op, shape):
    x = make.distinct(shape)
    for axis in [None, *range(len(shape))]:
        out = getattr(x, op)(axis=axis)
        assert out.shape == np.sum(x.data, axis=axis).shape
        assert gradcheck(lambda x, a=axis: getattr(x, op)(axis=a), [x])


@pytest.mark.parametrize(("op", "pick"), [("max", np.max), ("min", np.min)])
def test_max_min_ties_share_the_gradient(op, pick):
    data = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [-1.0, 0.0, -1.0]])
    x = Tensor(data, requires_grad=True)
    getattr(x, op)(axis=1).sum().backward()
    hit = data == pick(data, axis=1, keepdims=True)
    np.testing.assert_allclose(x.grad, hit / hit.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(x.grad.sum(axis=1), np.ones(3))


def _np_logsumexp(a, axis=None, keepdims=False):
    m = np.max(a, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis) if axis is not None else out.reshape(())


# ---------------------------------------------------------------------------
# softmax / log_softmax / logsumexp
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "axis"),
    [((4,), 0), ((4,), -1), ((2, 3), 0), ((2, 3), 1), ((2, 3, 2), 1), ((3, 1), 1), ((1, 3), 0)],
)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_family(make, op, shape, axis):
    x = make.uniform(shape, -3.0, 3.0)
    out = getattr(x, op)(axis)
    lse = _np_logsumexp(x.data, axis=axis, keepdims=True)
    ref = np.exp(x.data - lse) if op == "softmax" else x.data - lse
    np.testing.assert_allclose(out.data, ref, rtol=1e-12, atol=1e-15)
    if op == "softmax":
        np.testing.assert_allclose(out.data.sum(axis=axis), 1.0)
    assert gradcheck(lambda x: getattr(x, op)(axis), [x])
    assert gradcheck(lambda x: getattr(x, op)(dim=axis), [x])
    assert gradcheck(lambda x: getattr(cr, op)(x, axis), [x])


def test_softmax_default_axis_is_last(make):
    x = make.uniform((2, 3))
    np.testing.assert_array_equal(x.softmax().data, x.softmax(-1).data)
    np.testing.assert_array_equal(x.log_softmax().data, x.log_softmax(1).data)


def test_cross_entropy_from_log_softmax(make):
    logits = make.uniform((4, 3))
    labels = np.array([0, 2, 1, 2])

    def loss(z):
        return -z.log_softmax(axis=1)[np.arange(4), labels].mean()

    assert gradcheck(loss, [logits])
    # d(loss)/dz = (softmax(z) - onehot) / n
    loss(logits).backward()
    p = np.exp(logits.data - _np_logsumexp(logits.data, axis=1, keepdims=True))
    onehot = np.eye(3)[labels]
    np.testing.assert_allclose(logits.grad, (p - onehot) / 4)


def test_logsumexp_function_form(make):
    x = make.uniform((2, 3))
    np.testing.assert_allclose(cr.logsumexp(x, axis=1).data, _np_logsumexp(x.data, axis=1))
    assert gradcheck(lambda x: cr.logsumexp(x, 1, keepdims=True), [x])


# ---------------------------------------------------------------------------
# Numerical stability at extreme inputs, compared with exact limits
# ---------------------------------------------------------------------------


def test_sigmoid_and_tanh_do_not_overflow_at_extremes():
    big = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    x = Tensor(big, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s, t = x.sigmoid(), x.tanh()
        (s + t).sum().backward()
    np.testing.assert_array_equal(s.data[[0, 2, 4]], [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(t.data[[0, 2, 4]], [-1.0, 0.0, 1.0])
    # sigmoid'(x) = s(1 - s) and tanh'(x) = 1 - t^2 both vanish at +-1000.
    np.testing.assert_array_equal(x.grad[[0, 4]], [0.0, 0.0])
    assert np.isfinite(x.grad).all()
    np.testing.assert_allclose(
        s.data[[1, 3]], [math.exp(-50) / (1 + math.exp(-50)), 1 / (1 + math.exp(-50))]
    )


@pytest.mark.parametrize("x", [-1000.0, -30.0, 30.0, 1000.0])
def test_value_sigmoid_and_tanh_do_not_overflow(x):
    v = Value(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = v.sigmoid() + v.tanh()
        y.backward()
    limit = 1.0 if x > 0 else 0.0
    # exp(-1000) underflows to 0 in float64, so the stable form is exact there too.
    exact = 1 / (1 + math.exp(-x)) if x > 0 else math.exp(x) / (1 + math.exp(x))
    assert v.sigmoid().data == pytest.approx(exact, rel=1e-14, abs=0.0)
    assert v.sigmoid().data == pytest.approx(limit, abs=1e-12)
    assert v.tanh().data == pytest.approx(math.copysign(1.0, x))
    assert math.isfinite(v.grad)


def test_softmax_family_is_stable_for_huge_inputs():
    data = np.array([[1000.0, 0.0, -1000.0], [1e6, 1e6, 1e6 - 1.0], [-1e6, -1e6, -1e6]])
    x = Tensor(data, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lse = x.logsumexp(axis=1)
        ls = x.log_softmax(axis=1)
        sm = x.softmax(axis=1)
        (lse.sum() + ls.sum() + (sm * sm).sum()).backward()
    # Exact limits: shift by the row max, the rest is small.
    m = data.max(axis=1, keepdims=True)
    tail = np.log(np.exp(data - m).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(lse.data, (m + tail)[:, 0], rtol=1e-15)
    np.testing.assert_allclose(lse.data[0], 1000.0)
    np.testing.assert_allclose(lse.data[2], -1e6 + math.log(3))
    np.testing.assert_allclose(ls.data, data - m - tail, rtol=1e-15)
    np.testing.assert_allclose(ls.data[0], [0.0, -1000.0, -2000.0])
    np.testing.assert_allclose(sm.data[2], [1 / 3] * 3)
    np.testing.assert_allclose(sm.data.sum(axis=1), 1.0)
    assert np.isfinite(x.grad).all()


def test_logsumexp_of_equal_huge_values_is_exact():
    for big in (1e3, 1e6, 1e300):
        x = Tensor([big, big], requires_grad=True)
        out = x.logsumexp()
        assert out.item() == pytest.approx(big + math.log(2), rel=1e-15)
        if big < 1e10:
            # The gradient is exp(x - logsumexp(x)).  At 1e300, log(2) is below float64's
            # resolution, so the forward rounds to 1e300 (correctly) and that difference
            # to 0; the gradient is checked where the forward can carry the log(2).
            out.backward()
            np.testing.assert_allclose(x.grad, [0.5, 0.5], rtol=1e-9)


# ---------------------------------------------------------------------------
# matmul
# ---------------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3,), (3,)),  # dot product, 0-d result
    ((3,), (3, 2)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((1, 3), (3, 1)),
    ((2, 2, 3), (3, 4)),
    ((2, 3), (2, 3, 2)),
    ((3,), (2, 3, 2)),
    ((2, 2, 3), (3,)),
    ((2, 1, 2, 3), (3, 3, 2)),  # batch dims (2, 1) and (3,) broadcast to (2, 3)
    ((1, 2, 3), (2, 3, 2)),
    ((2, 2, 3), (2, 3, 2)),
]


@pytest.mark.parametrize(("sa", "sb"), MATMUL_SHAPES, ids=_ids(MATMUL_SHAPES))
def test_matmul(make, sa, sb):
    a, b = make.uniform(sa), make.uniform(sb)
    out = a @ b
    ref = np.matmul(a.data, b.data)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.data, ref, rtol=1e-12)
    assert gradcheck(lambda a, b: a @ b, [a, b])


@pytest.mark.parametrize(("sa", "sb"), MATMUL_SHAPES[:6], ids=_ids(MATMUL_SHAPES[:6]))
def test_matmul_with_constant_operands(make, sa, sb):
    a, b = make.uniform(sa), make.uniform(sb)
    a_np, b_np = a.data.copy(), b.data.copy()
    np.testing.assert_allclose((a_np @ b).data, a_np @ b_np)
    np.testing.assert_allclose((a @ b_np.tolist()).data, a_np @ b_np)
    assert gradcheck(lambda b: a_np @ b, [b])
    assert gradcheck(lambda b: a_np.tolist() @ b, [b])
    assert gradcheck(lambda a: a @ b_np, [a])
    assert gradcheck(lambda a: a @ b_np.tolist(), [a])


def test_matmul_of_an_input_with_itself(make):
    x = make.uniform((3, 3))
    v = make.uniform((3,))
    assert gradcheck(lambda x: x @ x, [x])
    assert gradcheck(lambda x: x @ x.T, [x])
    assert gradcheck(lambda v: v @ v, [v])
    assert gradcheck(lambda x, v: v @ x @ v, [x, v])


def test_two_layer_network(make):
    x = Tensor(make.array((5, 3)))
    w1, b1 = make.uniform((3, 4), name="W1"), make.uniform((4,), name="b1")
    w2, b2 = make.uniform((4, 2), name="W2"), make.uniform((2,), name="b2")

    def net(w1, b1, w2, b2):
        return ((x @ w1 + b1).tanh() @ w2 + b2).log_softmax(axis=1).mean()

    assert gradcheck(net, [w1, b1, w2, b2])


# ---------------------------------------------------------------------------
# Shape ops: reshape, transpose, .T, broadcast_to, astype
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "new"),
    [
        ((2, 3), (3, 2)),
        ((2, 3), (6,)),
        ((2, 3), (-1,)),
        ((2, 3), (1, 2, 3)),
        ((2, 3, 2), (4, -1)),
        ((), (1,)),
        ((1,), ()),
        ((1, 1), ()),
        ((4,), (2, 1, 2)),
    ],
    ids=str,
)
def test_reshape(make, shape, new):
    x = make.uniform(shape)
    out = x.reshape(new)
    assert out.shape == np.reshape(x.data, new).shape
    np.testing.assert_array_equal(out.data, np.reshape(x.data, new))
    assert gradcheck(
        lambda x: x.reshape(new) * np.arange(1.0, out.data.size + 1).reshape(out.shape), [x]
    )
    if new:  # the varargs spelling
        assert gradcheck(lambda x: x.reshape(*new), [x])


@pytest.mark.parametrize(
    ("shape", "axes"),
    [
        ((2, 3), ()),
        ((2, 3), (1, 0)),
        ((2, 3, 4), ()),
        ((2, 3, 4), (1, 0, 2)),
        ((2, 3, 4), (2, 0, 1)),
        ((2, 3, 4), (-1, 0, -2)),
        ((2, 1, 3), (2, 1, 0)),
        ((3,), ()),
        ((), ()),
    ],
    ids=str,
)
def test_transpose(make, shape, axes):
    x = make.uniform(shape)
    ref = np.transpose(x.data, axes or None)
    np.testing.assert_array_equal(x.transpose(*axes).data, ref)
    np.testing.assert_array_equal(x.transpose(axes).data, ref)
    if len(axes) == x.ndim:  # permute names every axis, as PyTorch's (it has no default)
        np.testing.assert_array_equal(x.permute(*axes).data, ref)
    weights = np.arange(1.0, ref.size + 1).reshape(ref.shape)
    assert gradcheck(lambda x: x.transpose(*axes) * weights, [x])


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4), (4,), ()], ids=str)
def test_T(make, shape):
    x = make.uniform(shape)
    np.testing.assert_array_equal(x.T.data, x.data.T)
    weights = np.arange(1.0, x.data.size + 1).reshape(x.data.T.shape)
    assert gradcheck(lambda x: x.T * weights, [x])
    assert gradcheck(lambda x: x.T.T * x, [x])


def test_swapaxes(make):
    x = make.uniform((2, 3, 4))
    np.testing.assert_array_equal(x.swapaxes(0, 2).data, np.swapaxes(x.data, 0, 2))
    assert gradcheck(lambda x: x.swapaxes(-1, 0) * np.arange(24.0).reshape(4, 3, 2), [x])


@pytest.mark.parametrize(
    ("shape", "target"),
    [
        ((3,), (2, 3)),
        ((2, 1), (2, 4)),
        ((), (2, 2)),
        ((1, 3), (2, 2, 3)),
        ((1,), (3,)),
        ((2, 3), (2, 3)),
    ],
    ids=str,
)
def test_broadcast_to(make, shape, target):
    x = make.uniform(shape)
    out = x.broadcast_to(target)
    np.testing.assert_array_equal(out.data, np.broadcast_to(x.data, target))
    weights = make.array(target)
    assert gradcheck(lambda x: x.broadcast_to(target) * weights, [x])


@pytest.mark.parametrize("shape", [(), (3,), (2, 3)], ids=str)
def test_astype_between_float_types(make, shape):
    x = make.uniform(shape)
    y = x.astype(np.float32)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, x.data.astype(np.float32))
    assert x.astype(np.float64) is x
    # float32 rounds each value by ~6e-8 relative, so difference on a wider step; these
    # functions are at most quadratic, where central differences are exact up to rounding.
    assert gradcheck(
        lambda x: (x.astype(np.float32) * 2.0).astype(np.float64), [x], eps=1e-2, atol=1e-4
    )
    assert gradcheck(lambda x: x.astype(np.float32).astype(float) * x, [x], eps=1e-2, atol=1e-4)
    y.sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad, np.ones(shape))


# ---------------------------------------------------------------------------
# Indexing
# ---------------------------------------------------------------------------

INDICES = [
    pytest.param(0, id="int"),
    pytest.param(-1, id="negative-int"),
    pytest.param(slice(1, None), id="slice"),
    pytest.param((slice(None), slice(None, None, 2)), id="strided"),
    pytest.param((Ellipsis, -1), id="ellipsis"),
    pytest.param((None, 1), id="newaxis"),
    pytest.param((1, 2), id="element"),
    pytest.param((slice(None, None, -1), 0), id="reversed"),
    pytest.param([0, 2, 0], id="int-list-repeats"),
    pytest.param(np.array([[0, 1], [1, 1]]), id="int-array-2d"),
    pytest.param((slice(None), [3, 3, 0]), id="column-list-repeats"),
    pytest.param(([0, 1, 1], [2, 0, 2]), id="pairs"),
    pytest.param((np.array([2, 2]), slice(1, 3)), id="array-and-slice"),
]


@pytest.mark.parametrize("index", INDICES)
def test_getitem(make, index):
    x = make.uniform((3, 4))
    out = x[index]
    # numpy reads a list inside a tuple index as an integer array, as chainrule does.
    as_numpy = lambda i: np.asarray(i) if isinstance(i, list) else i
    idx = tuple(map(as_numpy, index)) if isinstance(index, tuple) else as_numpy(index)
    np.testing.assert_array_equal(out.data, x.data[idx])
    weights = np.arange(1.0, out.data.size + 1).reshape(out.shape)
    assert gradcheck(lambda x: x[index] * weights, [x])


def test_getitem_repeated_indices_accumulate(make):
    x = make.uniform((5,))
    idx = np.array([0, 3, 3, 3, 1, 0])
    g = make.array(idx.shape)
    x[idx].backward(g)
    expected = np.zeros(5)
    for i, gi in zip(idx, g):
        expected[i] += gi
    np.testing.assert_allclose(x.grad, expected)
    np.testing.assert_allclose(x.grad, np.bincount(idx, weights=g, minlength=5))


def test_getitem_with_tensor_index_and_0d(make):
    x = make.uniform((4, 2))
    idx = Tensor([3, 0, 3])
    np.testing.assert_array_equal(x[idx].data, x.data[[3, 0, 3]])
    assert gradcheck(lambda x: x[idx] * x[idx], [x])
    s = make.uniform(())
    assert gradcheck(lambda s: s[()] * s[None] * s[...], [s])


def test_iterating_a_tensor_indexes_rows(make):
    x = make.uniform((3, 2))
    rows = list(x)
    assert len(rows) == 3
    assert gradcheck(lambda x: sum((r * (i + 1) for i, r in enumerate(x)), start=Tensor(0.0)), [x])


# ---------------------------------------------------------------------------
# concatenate / stack
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shapes", "axis"),
    [
        ([(2,), (3,)], 0),
        ([(2, 3), (1, 3), (2, 3)], 0),
        ([(2, 1), (2, 3)], 1),
        ([(2, 1), (2, 3)], -1),
        ([(1, 2, 2), (1, 2, 1)], 2),
        ([(3,)], 0),
    ],
    ids=str,
)
def test_concatenate(make, shapes, axis):
    xs = [make.uniform(s) for s in shapes]
    out = cr.concatenate(xs, axis=axis)
    np.testing.assert_array_equal(out.data, np.concatenate([x.data for x in xs], axis=axis))
    weights = make.array(out.shape)
    assert gradcheck(lambda *xs: cr.concatenate(list(xs), axis=axis) * weights, xs)
    assert gradcheck(lambda *xs: cr.cat(xs, axis) * weights, xs)


@pytest.mark.parametrize(
    ("shape", "n", "axis"),
    [((), 3, 0), ((3,), 2, 0), ((3,), 2, 1), ((2, 3), 3, 1), ((2, 3), 2, -1)],
    ids=str,
)
def test_stack(make, shape, n, axis):
    xs = [make.uniform(shape) for _ in range(n)]
    out = cr.stack(xs, axis=axis)
    np.testing.assert_array_equal(out.data, np.stack([x.data for x in xs], axis=axis))
    weights = make.array(out.shape)
    assert gradcheck(lambda *xs: cr.stack(xs, axis=axis) * weights, xs)


def test_concatenate_and_stack_with_reused_and_constant_parts(make):
    x = make.uniform((2, 3))
    c = np.ones((1, 3))
    assert gradcheck(lambda x: cr.concatenate([x, c, x * x, x], axis=0), [x])
    assert gradcheck(lambda x: cr.stack([x, x.exp(), x], axis=1), [x])
    cr.concatenate([x, x], axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2.0))


# ---------------------------------------------------------------------------
# Comparisons: boolean tensors with no graph
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "ref"),
    [
        (lambda a, b: a < b, np.less),
        (lambda a, b: a <= b, np.less_equal),
        (lambda a, b: a > b, np.greater),
        (lambda a, b: a >= b, np.greater_equal),
        (lambda a, b: a == b, np.equal),
        (lambda a, b: a != b, np.not_equal),
    ],
    ids=["<", "<=", ">", ">=", "==", "!="],
)
@pytest.mark.parametrize(
    "other",
    [
        pytest.param("tensor", id="tensor"),
        pytest.param(0.0, id="number"),
        pytest.param([0.0, 1.0, -1.0], id="list"),
    ],
)
def test_comparisons_are_boolean_and_not_differentiable(op, ref, other):
    a = Tensor([[0.0, 1.0, 2.0], [-1.0, 1.0, -1.0]], requires_grad=True)
    b = Tensor([0.0, 2.0, -1.0], requires_grad=True) if other == "tensor" else other
    out = op(a, b)
    assert isinstance(out, Tensor)
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out.data, ref(a.data, np.asarray(b)))
    assert not out.requires_grad
    assert out.is_leaf
    assert out.parents == ()
    # Used as a mask it contributes nothing to the gradient.
    (a * out).sum().backward()
    np.testing.assert_array_equal(a.grad, out.data.astype(float))
    with pytest.raises(RuntimeError, match="does not require grad"):
        out.backward()


def test_value_comparisons_are_plain_bools():
    a, b = Value(1.0), Value(2.0)
    results = [a < b, a <= b, a > b, a >= b, a < 3, b > 1.5]
    assert all(type(r) is bool for r in results)
    assert results == [True, True, False, False, True, True]


# ---------------------------------------------------------------------------
# Value
# ---------------------------------------------------------------------------

VALUE_BINARY = [
    pytest.param(lambda a, b: a + b, id="add"),
    pytest.param(lambda a, b: a - b, id="sub"),
    pytest.param(lambda a, b: a * b, id="mul"),
    pytest.param(lambda a, b: a / b, id="div"),
    pytest.param(lambda a, b: a**b, id="pow"),
]


@pytest.mark.parametrize("op", VALUE_BINARY)
@pytest.mark.parametrize(("x", "y"), [(0.7, 1.3), (1.9, -0.6), (0.5, 2.0), (2.5, 3.0)])
def test_value_binary(op, x, y):
    a, b = Value(x), Value(y)
    assert op(a, b).data == pytest.approx(op(x, y))
    assert gradcheck(op, [a, b])
    assert gradcheck(lambda a: op(a, a), [a])
    # Numbers on either side.
    assert op(a, y).data == pytest.approx(op(x, y))
    assert op(x, b).data == pytest.approx(op(x, y))
    assert gradcheck(lambda a: op(a, y), [a])
    assert gradcheck(lambda b: op(x, b), [b])


@pytest.mark.parametrize("const", [2, -3, 0.5, np.float64(1.25)], ids=str)
def test_value_with_int_and_numpy_constants(const):
    a = Value(1.7)
    for op in (lambda a: a + const, lambda a: const - a, lambda a: a * const, lambda a: const / a):
        assert gradcheck(op, [a])
    assert gradcheck(lambda a: a**const, [a])


@pytest.mark.parametrize(
    ("name", "fn", "ref"),
    [
        ("neg", lambda v: -v, lambda x: -x),
        ("exp", lambda v: v.exp(), math.exp),
        ("log", lambda v: v.log(), math.log),
        ("tanh", lambda v: v.tanh(), math.tanh),
        ("sigmoid", lambda v: v.sigmoid(), lambda x: 1 / (1 + math.exp(-x))),
        ("relu", lambda v: v.relu(), lambda x: max(x, 0.0)),
    ],
)
@pytest.mark.parametrize("x", [-1.3, -0.2, 0.4, 2.1])
def test_value_unary(name, fn, ref, x):
    if name == "log":
        x = abs(x)
    v = Value(x)
    assert fn(v).data == pytest.approx(ref(x), rel=1e-14)
    assert gradcheck(fn, [v])
    assert gradcheck(lambda v: fn(v) * fn(v) + v, [v])


def test_value_expression_with_many_ops():
    a, b, c = Value(0.8), Value(-1.1), Value(1.6)

    def f(a, b, c):
        d = a * b + c**2 / (a + 3)
        e = (d.tanh() - b.sigmoid() * c.log()).exp()
        return (e + (a - c).relu() + (c - a).relu() * d) / 2 - (-a) ** 2

    assert gradcheck(f, [a, b, c])
