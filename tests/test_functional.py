"""nn.functional layers and activations: values against numpy, gradients by gradcheck."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F


def _t(rng, shape, low=-2.0, high=2.0):
    return cr.Tensor(rng.uniform(low, high, size=shape), requires_grad=True)


def test_linear_matches_numpy_and_gradchecks():
    rng = np.random.default_rng(0)
    x, w, b = _t(rng, (5, 3)), _t(rng, (4, 3)), _t(rng, (4,))
    assert np.allclose(F.linear(x, w, b).data, x.data @ w.data.T + b.data)
    assert np.allclose(F.linear(x, w).data, x.data @ w.data.T)
    cr.gradcheck(F.linear, [x, w, b])
    x1 = _t(rng, (3,))  # one sample: computed as w @ x, no transpose in the graph
    assert np.allclose(F.linear(x1, w, b).data, w.data @ x1.data + b.data)
    assert [n.op for n in cr.engine.iter_graph([F.linear(x1, w, b)]) if n.op] == ["matmul", "add"]
    cr.gradcheck(F.linear, [x1, w, b])
    cr.gradcheck(lambda x, w: F.linear(x, w), [_t(rng, (2, 2, 3)), w])


def test_linear_accepts_arrays_and_checks_shapes():
    w = cr.Tensor(np.eye(2))
    assert np.array_equal(F.linear(np.array([1.0, 2.0]), w).data, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"input of shape \(3,\) does not fit weight"):
        F.linear(cr.Tensor([1.0, 2.0, 3.0]), w)
    with pytest.raises(ValueError, match=r"bias has shape \(3,\), expected \(2,\)"):
        F.linear(cr.Tensor([1.0, 2.0]), w, cr.Tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="2-D"):
        F.linear(cr.Tensor([1.0, 2.0]), cr.Tensor([1.0, 2.0]))


@pytest.mark.parametrize(
    ("fn", "ref"),
    [
        (F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
        (F.tanh, np.tanh),
        (F.softplus, lambda x: np.log1p(np.exp(x))),
    ],
)
def test_elementwise_activations(fn, ref):
    x = _t(np.random.default_rng(1), (3, 4))
    assert np.allclose(fn(x).data, ref(x.data), rtol=1e-12, atol=0)
    cr.gradcheck(fn, [x])


def test_relu_values_and_gradient_away_from_the_kink():
    rng = np.random.default_rng(2)
    x = cr.Tensor(rng.choice([-1.0, 1.0], size=(4, 3)) * rng.uniform(0.1, 2, (4, 3)), True)
    assert np.array_equal(F.relu(x).data, np.maximum(x.data, 0))
    cr.gradcheck(F.relu, [x])


def test_softplus_is_stable_and_its_gradient_is_the_sigmoid():
    x = cr.Tensor([-800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0], requires_grad=True)
    y = F.softplus(x)
    assert np.all(np.isfinite(y.data))
    assert np.allclose(y.data, np.logaddexp(0.0, x.data), rtol=1e-12)
    y.sum().backward()
    sigmoid = np.exp(-np.logaddexp(0.0, -x.data))
    assert np.allclose(x.grad, sigmoid, rtol=1e-12, atol=0)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_and_log_softmax(axis):
    x = _t(np.random.default_rng(3), (3, 4))
    e = np.exp(x.data - x.data.max(axis=axis, keepdims=True))
    ref = e / e.sum(axis=axis, keepdims=True)
    assert np.allclose(F.softmax(x, axis).data, ref, rtol=1e-12)
    assert np.allclose(F.log_softmax(x, dim=axis).data, np.log(ref), rtol=1e-12)
    cr.gradcheck(lambda x: F.softmax(x, axis) * cr.Tensor(np.arange(12.0).reshape(3, 4)), [x])
    cr.gradcheck(lambda x: F.log_softmax(x, axis), [x])


def test_dropout_is_identity_when_not_training_and_scales_when_training():
    x = cr.Tensor(np.ones(1000))
    assert F.dropout(x, 0.5, training=False) is x
    y = F.dropout(x, 0.5, generator=np.random.default_rng(0))
    assert set(np.unique(y.data)) == {0.0, 2.0}
    assert np.all(F.dropout(x, 1.0).data == 0)
    with pytest.raises(ValueError, match="probability"):
        F.dropout(x, -0.1)
