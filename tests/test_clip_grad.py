"""Gradient clipping (nn.utils.clip_grad_norm_ / clip_grad_value_) against numpy."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn.utils import clip_grad_norm_, clip_grad_value_

SHAPES = [(3,), (2, 4), (1,), (2, 1, 3)]


def _params(scale, seed=0, dtype=np.float64):
    """Parameters with random gradients set through backward (loss = sum(c * p))."""
    rng = np.random.default_rng(seed)
    ps, coefs = [], []
    for shape in SHAPES:
        p = nn.Parameter(rng.normal(size=shape).astype(dtype))
        c = (scale * rng.normal(size=shape)).astype(dtype)
        (p * cr.Tensor(c)).sum().backward()
        ps.append(p)
        coefs.append(c)
    return ps, coefs


def _reference_norm(grads, norm_type):
    flat = np.concatenate([g.ravel() for g in grads])
    if np.isinf(norm_type):
        return np.max(np.abs(flat))
    return np.sum(np.abs(flat) ** norm_type) ** (1.0 / norm_type)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, 0.5, float("inf"), "inf"])
@pytest.mark.parametrize("scale", [0.01, 1.0, 10.0])
def test_clip_grad_norm_against_numpy(norm_type, scale):
    ps, coefs = _params(scale)
    max_norm = 1.5
    total = _reference_norm(coefs, float(norm_type))
    got = clip_grad_norm_(ps, max_norm, norm_type=norm_type)
    assert isinstance(got, cr.Tensor) and got.shape == ()
    assert np.isclose(got.item(), total, rtol=1e-12)
    coef = max_norm / (total + 1e-6)
    for p, c in zip(ps, coefs):
        want = c * coef if coef < 1 else c
        assert np.allclose(p.grad, want, rtol=1e-12, atol=0)
    if coef < 1:  # afterwards the norm is max_norm (up to the 1e-6)
        after = _reference_norm([p.grad for p in ps], float(norm_type))
        assert np.isclose(after, max_norm, rtol=1e-5)
    else:  # nothing to clip: the gradients are untouched, bit for bit
        assert all(np.array_equal(p.grad, c) for p, c in zip(ps, coefs))


def test_clip_grad_norm_skips_gradless_parameters_and_keeps_arrays_and_dtypes():
    ps, coefs = _params(10.0, dtype=np.float32)
    none = nn.Parameter([1.0, 2.0])
    arrays = [p.grad for p in ps]
    total = clip_grad_norm_([*ps, none], max_norm=0.1)
    assert none.grad is None
    assert all(p.grad is a and a.dtype == np.float32 for p, a in zip(ps, arrays))  # in place
    assert np.isclose(total.item(), _reference_norm(coefs, 2.0), rtol=1e-5)
    # No gradients at all: total norm 0, nothing changes.
    assert clip_grad_norm_([none], 1.0).item() == 0.0
    # A single Tensor is accepted as well as an iterable.
    w = nn.Parameter([3.0, 4.0])
    w.sum().backward()
    w.grad = np.array([3.0, 4.0])
    assert clip_grad_norm_(w, 1.0).item() == 5.0
    assert np.allclose(w.grad, np.array([3.0, 4.0]) / (5.0 + 1e-6))


def test_clip_grad_norm_nonfinite():
    w = nn.Parameter([1.0, 2.0])
    w.grad = np.array([np.inf, 1.0])
    with pytest.raises(RuntimeError, match=r"clip_grad_norm_: the total norm of order 2\.0"):
        clip_grad_norm_([w], 1.0, error_if_nonfinite=True)
    assert np.array_equal(w.grad, [np.inf, 1.0])  # unchanged by the refusal
    total = clip_grad_norm_([w], 1.0)  # scaled by 1 / inf = 0, as PyTorch does
    assert total.item() == np.inf
    assert np.isnan(w.grad[0]) and w.grad[1] == 0.0


def test_clip_grad_value_against_numpy():
    ps, coefs = _params(3.0, seed=4)
    none = nn.Parameter([5.0])
    clip_grad_value_([*ps, none], 1.25)
    assert none.grad is None
    for p, c in zip(ps, coefs):
        assert np.array_equal(p.grad, np.minimum(np.maximum(c, -1.25), 1.25))
    assert any((np.abs(c) > 1.25).any() for c in coefs)  # something was clipped


def test_clipping_a_create_graph_gradient():
    w = nn.Parameter([1.0, -2.0])
    (w**3).sum().backward(create_graph=True)  # grad 3 w^2 = [3, 12], a Tensor
    assert isinstance(w.grad, cr.Tensor)
    total = clip_grad_norm_([w], 1.0)
    assert np.isclose(total.item(), np.hypot(3.0, 12.0))
    assert np.allclose(w.grad.data, np.array([3.0, 12.0]) / (np.hypot(3.0, 12.0) + 1e-6))
    clip_grad_value_(w, 0.5)
    assert np.all(np.abs(w.grad.data) <= 0.5)
    opt = cr.optim.SGD([w], lr=1.0)
    before = w.data.copy()
    opt.step()
    assert np.allclose(w.data, before - w.grad.data)


def test_bad_clipping_arguments_are_explained():
    w = nn.Parameter([1.0])
    w.sum().backward()
    with pytest.raises(ValueError, match="clip_grad_norm_: max_norm must be non-negative"):
        clip_grad_norm_([w], -1.0)
    with pytest.raises(TypeError, match="max_norm must be a number, got '1'"):
        clip_grad_norm_([w], "1")
    with pytest.raises(ValueError, match="norm_type must be a positive number or inf, got 0"):
        clip_grad_norm_([w], 1.0, norm_type=0)
    with pytest.raises(ValueError, match="norm_type must be a positive number or inf, got 'fro'"):
        clip_grad_norm_([w], 1.0, norm_type="fro")
    with pytest.raises(ValueError, match="clip_grad_value_: clip_value must be non-negative"):
        clip_grad_value_([w], -0.5)
    with pytest.raises(TypeError, match="clip_grad_value_: parameter 1 is a float"):
        clip_grad_value_([w, 2.0], 0.5)
    with pytest.raises(TypeError, match="must be a Tensor or an iterable of Tensors, got int"):
        clip_grad_norm_(3, 1.0)
    assert np.array_equal(w.grad, [1.0])
