"""Losses: values against numpy versions of PyTorch's definitions, gradchecks, stability, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn

REDUCTIONS = ["mean", "sum", "none"]


def _reduce(values, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](values)


def _leaf(rng, shape, low=-2.0, high=2.0):
    return cr.Tensor(rng.uniform(low, high, size=shape), requires_grad=True)


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def _log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


# -- mse ---------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_values_and_gradients(reduction):
    rng = np.random.default_rng(0)
    x, y = _leaf(rng, (4, 3)), _leaf(rng, (4, 3))
    got = F.mse_loss(x, y, reduction=reduction).data
    assert np.allclose(got, _reduce((x.data - y.data) ** 2, reduction), rtol=1e-12)
    cr.gradcheck(lambda x, y: F.mse_loss(x, y, reduction=reduction), [x, y])


def test_mse_loss_target_may_be_an_array_or_list():
    x = cr.Tensor([1.0, 2.0], requires_grad=True)
    loss = F.mse_loss(x, [0.0, 0.0])
    loss.backward()
    assert loss.item() == pytest.approx(2.5)
    assert np.allclose(x.grad, [1.0, 2.0])  # 2 (x - y) / n


def test_mse_loss_refuses_a_target_of_another_shape():
    with pytest.raises(
        ValueError, match=r"target shape \(3,\) does not match input shape \(3, 1\)"
    ):
        F.mse_loss(cr.Tensor(np.zeros((3, 1))), cr.Tensor(np.zeros(3)))


def test_unknown_reduction_is_refused():
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.mse_loss(cr.Tensor([1.0]), [1.0], reduction="average")
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.CrossEntropyLoss(reduction="avg")


# -- binary cross-entropy ------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_values_and_gradients(reduction):
    rng = np.random.default_rng(1)
    p = _leaf(rng, (5, 2), 0.05, 0.95)
    y = rng.integers(0, 2, size=(5, 2)).astype(float)
    ref = -(y * np.log(p.data) + (1 - y) * np.log(1 - p.data))
    got = F.binary_cross_entropy(p, y, reduction=reduction).data
    assert np.allclose(got, _reduce(ref, reduction), rtol=1e-12)
    cr.gradcheck(lambda p: F.binary_cross_entropy(p, y, reduction=reduction), [p])


def test_binary_cross_entropy_soft_targets_and_weights_broadcast():
    rng = np.random.default_rng(2)
    p = _leaf(rng, (4, 3), 0.05, 0.95)
    y = _leaf(rng, (4, 3), 0.0, 1.0)
    w = rng.uniform(0.5, 2.0, size=(3,))
    ref = -w * (y.data * np.log(p.data) + (1 - y.data) * np.log(1 - p.data))
    assert np.allclose(F.binary_cross_entropy(p, y, weight=w).data, ref.mean(), rtol=1e-12)
    cr.gradcheck(lambda p, y: F.binary_cross_entropy(p, y, weight=w), [p, y])


def test_binary_cross_entropy_at_exactly_zero_and_one_is_finite():
    p = cr.Tensor([0.0, 1.0, 0.0, 1.0], requires_grad=True)
    y = np.array([1.0, 0.0, 0.0, 1.0])
    loss = F.binary_cross_entropy(p, y, reduction="sum")
    assert loss.item() == pytest.approx(200.0)  # two logs clamped at -100, two exact zeros
    loss.backward()
    assert np.all(np.isfinite(p.grad))


def test_binary_cross_entropy_refuses_non_probabilities():
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*-0.5 to 2"):
        F.binary_cross_entropy(cr.Tensor([-0.5, 2.0]), [0.0, 1.0])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_values_and_gradients(reduction):
    rng = np.random.default_rng(3)
    x = _leaf(rng, (6, 2), -4, 4)
    y = rng.integers(0, 2, size=(6, 2)).astype(float)
    ref = -(y * _log_sigmoid(x.data) + (1 - y) * _log_sigmoid(-x.data))
    got = F.binary_cross_entropy_with_logits(x, y, reduction=reduction).data
    assert np.allclose(got, _reduce(ref, reduction), rtol=1e-12)
    cr.gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, y, reduction=reduction), [x])


def test_bce_with_logits_pos_weight_and_weight_broadcast():
    rng = np.random.default_rng(4)
    x = _leaf(rng, (5, 3), -3, 3)
    y = _leaf(rng, (5, 3), 0, 1)
    pw = rng.uniform(0.5, 3.0, size=3)
    w = rng.uniform(0.5, 2.0, size=(5, 1))
    ref = -w * (pw * y.data * _log_sigmoid(x.data) + (1 - y.data) * _log_sigmoid(-x.data))
    got = F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, reduction="sum")
    assert np.allclose(got.data, ref.sum(), rtol=1e-12)
    loss = nn.BCEWithLogitsLoss(weight=w, pos_weight=pw, reduction="sum")
    cr.gradcheck(loss, [x, y])


def test_bce_with_logits_is_stable_for_huge_logits():
    x = cr.Tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0], requires_grad=True)
    y = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="sum")
    assert np.isfinite(loss.item())
    assert loss.item() == pytest.approx(2000.0 + np.log(2), rel=1e-12)
    loss.backward()
    sigmoid = np.exp(-np.logaddexp(0.0, -x.data))
    assert np.allclose(x.grad, sigmoid - y, rtol=1e-12, atol=1e-15)


def test_bce_with_logits_equals_bce_of_sigmoid():
    x = _leaf(np.random.default_rng(5), (8,), -3, 3)
    y = (np.arange(8) % 2).astype(float)
    a = F.binary_cross_entropy_with_logits(x, y)
    b = F.binary_cross_entropy(x.sigmoid(), y)
    assert a.item() == pytest.approx(b.item(), rel=1e-12)


def test_bce_target_shape_mismatch_names_both_shapes():
    with pytest.raises(
        ValueError, match=r"target shape \(4,\) does not match input shape \(4, 1\)"
    ):
        nn.BCEWithLogitsLoss()(cr.Tensor(np.zeros((4, 1))), np.zeros(4))


# -- cross-entropy -------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_values_and_gradients(reduction):
    rng = np.random.default_rng(6)
    x = _leaf(rng, (5, 4))
    t = rng.integers(0, 4, size=5)
    ref = -_log_softmax(x.data, 1)[np.arange(5), t]
    got = F.cross_entropy(x, t, reduction=reduction).data
    assert np.allclose(got, _reduce(ref, reduction), rtol=1e-12)
    cr.gradcheck(lambda x: F.cross_entropy(x, t, reduction=reduction), [x])


def test_cross_entropy_gradient_is_softmax_minus_one_hot():
    rng = np.random.default_rng(7)
    x = _leaf(rng, (6, 3))
    t = rng.integers(0, 3, size=6)
    F.cross_entropy(x, t).backward()
    s = np.exp(_log_softmax(x.data, 1))
    assert np.allclose(x.grad, (s - np.eye(3)[t]) / 6, rtol=1e-10)


def test_cross_entropy_single_sample_and_spatial_inputs():
    rng = np.random.default_rng(8)
    x1 = _leaf(rng, (4,))
    assert np.isclose(F.cross_entropy(x1, 2).item(), -_log_softmax(x1.data, 0)[2], rtol=1e-12)
    cr.gradcheck(lambda x: F.cross_entropy(x, 2), [x1])
    x = _leaf(rng, (2, 3, 4, 5))  # (N, C, d1, d2)
    t = rng.integers(0, 3, size=(2, 4, 5))
    ls = _log_softmax(x.data, 1)
    n, i, j = np.meshgrid(np.arange(2), np.arange(4), np.arange(5), indexing="ij")
    ref = -ls[n, t, i, j]
    assert np.allclose(F.cross_entropy(x, t, reduction="none").data, ref, rtol=1e-12)
    cr.gradcheck(lambda x: F.cross_entropy(x, t), [x])


def test_cross_entropy_class_weights_and_ignore_index():
    rng = np.random.default_rng(9)
    x = _leaf(rng, (6, 3))
    t = np.array([0, 2, 1, -100, 2, 0])
    w = np.array([0.5, 2.0, 1.5])
    keep = t != -100
    tt = np.where(keep, t, 0)
    per = -_log_softmax(x.data, 1)[np.arange(6), tt] * w[tt] * keep
    got_mean = F.cross_entropy(x, t, weight=w)
    assert np.isclose(got_mean.item(), per.sum() / (w[tt] * keep).sum(), rtol=1e-12)
    assert np.allclose(F.cross_entropy(x, t, weight=w, reduction="none").data, per, rtol=1e-12)
    cr.gradcheck(lambda x: F.cross_entropy(x, t, weight=w), [x])
    # Without weights, ignored samples drop out of the mean too.
    plain = F.cross_entropy(x, t)
    ref = -_log_softmax(x.data, 1)[np.arange(6), tt][keep].mean()
    assert np.isclose(plain.item(), ref, rtol=1e-12)
    cr.gradcheck(lambda x: nn.CrossEntropyLoss(ignore_index=-100)(x, t), [x])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "shape, weighted, ignored",
    [
        ((5, 4), False, None),
        ((5, 4), True, -100),
        ((6, 3), False, 1),
        ((4,), True, None),
        ((2, 3, 4), True, -100),
    ],
    ids=["plain", "weights+ignore", "ignore-a-class", "one-sample", "spatial"],
)
def test_cross_entropy_node_matches_log_softmax_then_nll(shape, weighted, ignored, reduction):
    """cross_entropy is one graph node; it must agree with the chain of ops it stands for."""
    rng = np.random.default_rng(11)
    axis = 0 if len(shape) == 1 else 1
    n_cls = shape[axis]
    x = _leaf(rng, shape)
    t = rng.integers(0, n_cls, size=shape[:axis] + shape[axis + 1 :])
    ignore = -100 if ignored is None else ignored
    if ignored is not None:
        t.reshape(-1)[1] = ignored  # ignore_index may also be one of the classes
        t.reshape(-1)[0] = 0 if ignored != 0 else 1
    w = rng.uniform(0.5, 2.0, size=n_cls) if weighted else None
    kw = {"weight": w, "reduction": reduction, "ignore_index": ignore}
    fused = F.cross_entropy(x, t, **kw)
    assert fused.op == "cross_entropy"
    x2 = cr.Tensor(x.data, requires_grad=True)
    chain = F.nll_loss(x2.log_softmax(axis=axis), t, **kw)
    np.testing.assert_allclose(fused.data, chain.data, rtol=1e-12, atol=1e-15)
    seed = rng.normal(size=fused.shape)
    fused.backward(seed)
    chain.backward(seed)
    np.testing.assert_allclose(x.grad, x2.grad, rtol=1e-10, atol=1e-15)
    cr.gradcheck(lambda x: F.cross_entropy(x, t, **kw), [x])
    cr.gradgradcheck(lambda x: F.cross_entropy(x, t, **kw), [x])


def test_cross_entropy_in_float32_stays_float32():
    rng = np.random.default_rng(12)
    x64 = rng.normal(size=(6, 5))
    t = rng.integers(0, 5, size=6)
    x = cr.Tensor(x64.astype(np.float32), requires_grad=True)
    loss = F.cross_entropy(x, t)
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32
    ref = cr.Tensor(x.data.astype(np.float64), requires_grad=True)
    F.cross_entropy(ref, t).backward()
    np.testing.assert_allclose(x.grad, ref.grad, rtol=1e-5, atol=1e-7)


def test_cross_entropy_with_masked_logits_matches_the_chain_without_warnings():
    """-inf logits mask classes out; the fused node and the chain agree, silently."""
    data = np.array([[0.0, -np.inf, 1.0], [2.0, 0.5, -np.inf]])
    t = [2, 0]
    x, x2 = cr.Tensor(data, requires_grad=True), cr.Tensor(data, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fused = F.cross_entropy(x, t, reduction="none")
        chain = F.nll_loss(x2.log_softmax(axis=1), t, reduction="none")
        fused.sum().backward()
        chain.sum().backward()
    np.testing.assert_allclose(fused.data, chain.data, rtol=1e-12)
    np.testing.assert_allclose(x.grad, x2.grad, rtol=1e-12)
    assert np.all(np.isfinite(fused.data)) and x.grad[0, 1] == 0.0


def test_cross_entropy_mean_over_only_ignored_targets_is_nan_without_warnings():
    x = cr.Tensor(np.zeros((2, 3)), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = F.cross_entropy(x, [-100, -100])
        loss.backward()
    assert np.isnan(loss.item())  # as in PyTorch: 0 / 0


def test_cross_entropy_is_stable_for_huge_logits():
    x = cr.Tensor([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]], requires_grad=True)
    loss = F.cross_entropy(x, [2, 1])
    assert np.isfinite(loss.item())
    assert loss.item() == pytest.approx(1000.0)  # (2000 + 0) / 2
    loss.backward()
    assert np.all(np.isfinite(x.grad))


def test_nll_loss_after_log_softmax_equals_cross_entropy():
    rng = np.random.default_rng(10)
    x = _leaf(rng, (4, 5))
    t = rng.integers(0, 5, size=4)
    a = nn.NLLLoss()(nn.LogSoftmax(axis=1)(x), t)
    b = nn.CrossEntropyLoss()(x, t)
    assert a.item() == pytest.approx(b.item(), rel=1e-12)
    logp = _leaf(rng, (4, 5), -3.0, -0.1)
    w = rng.uniform(0.5, 2.0, size=5)
    ref = -(logp.data[np.arange(4), t] * w[t]).sum() / w[t].sum()
    assert F.nll_loss(logp, t, weight=w).item() == pytest.approx(ref, rel=1e-12)
    for reduction in REDUCTIONS:
        cr.gradcheck(lambda lp, r=reduction: F.nll_loss(lp, t, weight=w, reduction=r), [logp])


def test_cross_entropy_errors_name_the_problem():
    x = cr.Tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"target 4 at position \(1,\).*\[0, 3\]"):
        F.cross_entropy(x, [0, 4, 1])
    with pytest.raises(ValueError, match=r"target -1 at position \(2,\)"):
        F.cross_entropy(x, [0, 1, -1])
    with pytest.raises(ValueError, match=r"target shape \(3, 1\).*must have shape \(3,\)"):
        F.cross_entropy(x, np.zeros((3, 1), dtype=int))
    with pytest.raises(TypeError, match="integer class indices, got dtype float64"):
        F.cross_entropy(x, [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"one entry per class, shape \(4,\)"):
        F.cross_entropy(x, [0, 1, 2], weight=[1.0, 2.0])


def test_loss_modules_match_the_functions():
    rng = np.random.default_rng(11)
    x = _leaf(rng, (3, 2), 0.1, 0.9)
    y = rng.uniform(0, 1, size=(3, 2))
    pairs = [
        (nn.MSELoss(reduction="sum")(x, y), F.mse_loss(x, y, reduction="sum")),
        (nn.BCELoss()(x, y), F.binary_cross_entropy(x, y)),
        (nn.BCEWithLogitsLoss()(x, y), F.binary_cross_entropy_with_logits(x, y)),
        (nn.CrossEntropyLoss()(x, [0, 1, 1]), F.cross_entropy(x, [0, 1, 1])),
    ]
    for a, b in pairs:
        assert a.item() == b.item()
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"


def test_losses_in_float32_stay_float32():
    x = cr.Tensor(np.array([[0.2, -0.3], [1.0, 0.5]], dtype=np.float32), requires_grad=True)
    loss = F.cross_entropy(x, [1, 0]) + F.binary_cross_entropy_with_logits(x, np.ones((2, 2)))
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32
