"""Smooth functions stay smooth at every order, even where a building block has a kink.

A function such as softplus is smooth everywhere, but a stable formula for
it may be built from pieces that are not (``abs``, ``max``, ``maximum``).
Then the first derivative can still come out right while the second one
vanishes at the piece's kink.  These tests run ``gradgradcheck`` on every
composite of ``nn.functional`` (and the Tensor methods that shift by a
maximum) exactly at those points: 0, ties, all-equal logits.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import Tensor, gradgradcheck


def _leaf(data) -> Tensor:
    return Tensor(np.asarray(data, dtype=np.float64), requires_grad=True)


def _hessian(loss_fn, w: Tensor) -> np.ndarray:
    """The Hessian of a scalar function of a vector, one row per create_graph gradient entry."""
    (g,) = cr.grad(loss_fn(w), [w], create_graph=True)
    rows = []
    for i in range(w.shape[0]):
        (row,) = cr.grad(g[i], [w], allow_unused=True)
        rows.append(np.zeros(w.shape) if row is None else row.data)
    return np.array(rows)


# Points including every kink of abs, max and maximum (0, and ties).
KINKED = [
    pytest.param([0.0], id="zero"),
    pytest.param([[0.0, 0.0], [0.0, 0.0]], id="zeros-2x2"),
    pytest.param([-1.5, 0.0, 0.0, 2.0], id="mixed"),
    pytest.param([[-3.0], [0.0], [25.0]], id="column"),
]


@pytest.mark.parametrize("x", KINKED)
def test_softplus_second_derivative_is_sigmoid_prime_everywhere(x):
    t = _leaf(x)
    assert gradgradcheck(F.softplus, [t])
    (g,) = cr.grad(F.softplus(t).sum(), [t], create_graph=True)
    (h,) = cr.grad(g.sum(), [t])
    s = 1.0 / (1.0 + np.exp(-t.data))
    np.testing.assert_allclose(h.data, s * (1.0 - s), rtol=1e-12, atol=0)


def test_softplus_module_second_derivative_at_zero_is_a_quarter():
    x = _leaf([0.0])
    (g,) = cr.grad(cr.nn.Softplus()(x).sum(), [x], create_graph=True)
    (h,) = cr.grad(g.sum(), [x])
    assert h.data[0] == pytest.approx(0.25, rel=1e-12)


@pytest.mark.parametrize("pos_weight", [None, [2.0, 0.5, 1.0]], ids=["plain", "pos_weight"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_gradgrad_at_zero_logits(pos_weight, reduction):
    x = _leaf([[0.0, 0.0, 0.0], [0.0, 1.0, -2.0]])
    y = np.array([[1.0, 0.0, 0.3], [0.0, 1.0, 1.0]])
    pw = None if pos_weight is None else np.array(pos_weight)

    def fn(x):
        return F.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction=reduction)

    assert gradgradcheck(fn, [x])


def test_logistic_regression_hessian_at_zero_weights_is_the_closed_form():
    # Newton's method usually starts at w = 0, where every logit is exactly 0.
    rng = np.random.default_rng(0)
    n, d = 12, 3
    X = rng.standard_normal((n, d))
    y = (rng.uniform(size=n) < 0.5).astype(np.float64)

    def loss(w):
        return F.binary_cross_entropy_with_logits(Tensor(X) @ w, y)

    for w0 in (np.zeros(d), np.array([0.3, -0.2, 0.1])):
        w = _leaf(w0)
        p = 1.0 / (1.0 + np.exp(-(X @ w0)))
        closed = X.T @ np.diag(p * (1.0 - p)) @ X / n
        np.testing.assert_allclose(_hessian(loss, w), closed, rtol=1e-10, atol=1e-14)
        assert gradgradcheck(loss, [w])


# ---------------------------------------------------------------------------
# The audit: every composite, at the kinks of its pieces.
# ---------------------------------------------------------------------------

TIED = [
    pytest.param([[0.0, 0.0, 0.0]], id="all-equal"),
    pytest.param([[1.0, 1.0, -1.0], [2.0, 0.5, 2.0]], id="tied-max"),
    pytest.param([[0.0, 0.0], [3.0, 3.0], [-1.0, 4.0]], id="rows"),
]


@pytest.mark.parametrize("x", TIED)
@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda x: F.softmax(x, axis=-1), id="softmax"),
        pytest.param(lambda x: F.softmax(x, axis=0), id="softmax-axis0"),
        pytest.param(lambda x: F.log_softmax(x, axis=-1), id="log_softmax"),
        pytest.param(lambda x: x.logsumexp(axis=-1), id="logsumexp"),
        pytest.param(lambda x: x.logsumexp(), id="logsumexp-all"),
        pytest.param(lambda x: x.logsumexp(axis=0, keepdims=True), id="logsumexp-keepdims"),
        pytest.param(lambda x: F.sigmoid(x), id="sigmoid"),
        pytest.param(lambda x: F.tanh(x), id="tanh"),
    ],
)
def test_max_shifted_functions_are_smooth_at_ties(fn, x):
    assert gradgradcheck(fn, [_leaf(x)])


@pytest.mark.parametrize("x", TIED)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_and_nll_are_smooth_at_all_equal_logits(x, reduction, weighted):
    t = _leaf(x)
    n, c = t.shape
    target = np.arange(n) % c
    w = np.linspace(0.5, 1.5, c) if weighted else None

    def ce(t):
        return F.cross_entropy(t, target, weight=w, reduction=reduction)

    def nll(t):
        return F.nll_loss(F.log_softmax(t, axis=1), target, weight=w, reduction=reduction)

    assert gradgradcheck(ce, [t])
    assert gradgradcheck(nll, [t])


def test_cross_entropy_hessian_at_equal_logits_is_the_closed_form():
    # One sample with all logits 0: softmax p = 1/C, Hessian diag(p) - p p^T.
    c = 4
    x = _leaf(np.zeros(c))
    h = _hessian(lambda x: F.cross_entropy(x, np.array(1)), x)
    p = np.full(c, 1.0 / c)
    np.testing.assert_allclose(h, np.diag(p) - np.outer(p, p), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shape", [(3,), (2, 3)])
def test_mse_is_smooth_where_input_equals_target(shape):
    y = np.linspace(-1.0, 1.0, int(np.prod(shape))).reshape(shape)
    x = _leaf(y.copy())  # the residual, x - y, is exactly 0: the kink of nothing
    for reduction in ("mean", "sum", "none"):
        assert gradgradcheck(lambda x, r=reduction: F.mse_loss(x, y, reduction=r), [x])


def test_bce_on_probabilities_is_smooth_at_one_half():
    p = _leaf([[0.5, 0.5], [0.25, 0.75]])
    y = np.array([[1.0, 0.0], [0.5, 1.0]])
    assert gradgradcheck(lambda p: F.binary_cross_entropy(p, y), [p])
    assert gradgradcheck(lambda p: F.binary_cross_entropy(p, y, weight=np.array([2.0, 1.0])), [p])


def test_linear_dropout_and_softplus_in_a_network_are_smooth_at_zero():
    # A softplus network with every pre-activation exactly 0.
    x = Tensor(np.zeros((2, 3)))
    w1 = _leaf(np.zeros((4, 3)))
    b1 = _leaf(np.zeros(4))
    w2 = _leaf(np.linspace(-1.0, 1.0, 4).reshape(1, 4))

    def net(w1, b1, w2):
        h = F.softplus(F.linear(x, w1, b1))
        return F.dropout(F.linear(h, w2), training=False).sum()

    assert gradgradcheck(net, [w1, b1, w2])
