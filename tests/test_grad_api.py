"""``chainrule.grad`` (the semantics of ``torch.autograd.grad``) and higher-order gradients."""

from __future__ import annotations

import math
import weakref

import numpy as np
import pytest

import chainrule as cr
from chainrule.engine import iter_graph

# ---------------------------------------------------------------------------
# First-order grad
# ---------------------------------------------------------------------------


def test_grad_returns_a_tuple_and_leaves_dot_grad_alone():
    x = cr.Value(0.3)
    h = x * x
    y = h.tanh()
    result = cr.grad(y, x)
    assert type(result) is tuple and len(result) == 1
    (gx,) = result
    assert isinstance(gx, cr.Value) and not gx.requires_grad
    t = math.tanh(0.09)
    assert gx.data == pytest.approx((1 - t * t) * 2 * 0.3, abs=1e-15)
    assert x.grad is None and h.grad is None and y.grad is None


def test_grad_does_not_change_a_stored_grad():
    x = cr.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    before = x.grad.copy()
    (gx,) = cr.grad(y, [x])
    np.testing.assert_array_equal(x.grad, before)
    np.testing.assert_array_equal(gx.data, before)


def test_grad_of_tensors_gives_tensors_of_matching_shape_and_dtype():
    rng = np.random.default_rng(1)
    w = cr.Tensor(rng.normal(size=(3, 2)).astype(np.float32), requires_grad=True)
    b = cr.Tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
    x = cr.Tensor(rng.normal(size=(4, 3)).astype(np.float32))
    loss = ((x @ w + b).tanh() ** 2).mean()
    gw, gb = cr.grad(loss, [w, b])
    for g, p in ((gw, w), (gb, b)):
        assert isinstance(g, cr.Tensor) and not g.requires_grad
        assert g.shape == p.shape and g.dtype == p.dtype
    loss.backward()
    np.testing.assert_array_equal(gw.data, w.grad)
    np.testing.assert_array_equal(gb.data, b.grad)


def test_grad_with_several_outputs_and_grad_outputs():
    xd = np.array([0.5, -1.0, 2.0])
    x = cr.Tensor(xd, requires_grad=True)
    y1 = x * x
    y2 = x.exp()
    v1 = np.array([1.0, 2.0, 3.0])
    v2 = np.array([-0.5, 0.25, 1.0])
    (gx,) = cr.grad([y1, y2], [x], grad_outputs=[v1, cr.Tensor(v2)])
    np.testing.assert_allclose(gx.data, 2 * xd * v1 + np.exp(xd) * v2, rtol=1e-15)


def test_grad_with_several_inputs_values():
    x, y = cr.Value(1.5), cr.Value(-2.0)
    f = x * y * y + x.exp()
    gx, gy = cr.grad(f, (x, y))
    assert gx.data == pytest.approx(4.0 + math.exp(1.5), abs=1e-14)
    assert gy.data == pytest.approx(2 * 1.5 * -2.0, abs=1e-14)


def test_grad_outputs_scale_a_value_output():
    x = cr.Value(3.0)
    (g,) = cr.grad(x * x, x, grad_outputs=0.5)
    assert g.data == 3.0


def test_grad_outputs_must_pair_with_outputs():
    x = cr.Value(3.0)
    with pytest.raises(ValueError, match="2 grad_outputs for 1 outputs"):
        cr.grad([x * x], x, grad_outputs=[1.0, 2.0])


def test_unused_input_raises_unless_allowed():
    x = cr.Value(1.0, name="x")
    z = cr.Value(2.0, name="z")
    y = x * 3
    with pytest.raises(RuntimeError, match=r"inputs\[1\] \(Value z\) is not used"):
        cr.grad(y, [x, z])
    gx, gz = cr.grad(y, [x, z], allow_unused=True)
    assert gx.data == 3.0 and gz is None


def test_grad_with_respect_to_an_intermediate_node():
    x = cr.Tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    y = (h * h).sum()
    gh, gx = cr.grad(y, [h, x])
    np.testing.assert_array_equal(gh.data, 2 * np.array([3.0, 6.0]))
    np.testing.assert_array_equal(gx.data, 3 * gh.data)


def test_grad_of_an_input_with_respect_to_itself_is_one():
    x = cr.Value(4.0)
    (g,) = cr.grad(x, x)
    assert g.data == 1.0


def test_same_input_twice_gets_the_same_gradient():
    x = cr.Value(2.0)
    g1, g2 = cr.grad(x**3, [x, x])
    assert g1.data == g2.data == 12.0


def test_grad_needs_inputs_that_require_grad():
    x = cr.Tensor([1.0], requires_grad=True)
    c = cr.Tensor([2.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.grad((x * c).sum(), [x, c])


def test_grad_rejects_a_non_node_input():
    x = cr.Value(1.0)
    with pytest.raises(TypeError, match=r"grad: inputs\[0\] is a float"):
        cr.grad(x * x, [1.0])


# ---------------------------------------------------------------------------
# Higher order
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("x0", [2.0, -0.5, 1.25])
def test_derivatives_of_x_cubed_up_to_third_order(x0):
    x = cr.Value(x0)
    (d1,) = cr.grad(x**3, x, create_graph=True)
    (d2,) = cr.grad(d1, x, create_graph=True)
    (d3,) = cr.grad(d2, x)
    assert d1.requires_grad and d2.requires_grad and not d3.requires_grad
    assert d1.data == pytest.approx(3 * x0**2, rel=1e-14)
    assert d2.data == pytest.approx(6 * x0, rel=1e-14)
    assert d3.data == pytest.approx(6.0, rel=1e-14)
    assert x.grad is None


def test_derivatives_of_x_cubed_on_a_tensor():
    xd = np.array([[2.0, -0.5], [1.25, 3.0]])
    x = cr.Tensor(xd, requires_grad=True)
    (d1,) = cr.grad((x**3).sum(), x, create_graph=True)
    (d2,) = cr.grad(d1.sum(), x, create_graph=True)
    (d3,) = cr.grad(d2.sum(), x)
    np.testing.assert_allclose(d1.data, 3 * xd**2, rtol=1e-14)
    np.testing.assert_allclose(d2.data, 6 * xd, rtol=1e-14)
    np.testing.assert_allclose(d3.data, np.full_like(xd, 6.0), rtol=1e-14)


@pytest.mark.parametrize(
    ("f", "second"),
    [
        (lambda x: x.exp(), lambda v: math.exp(v)),
        (lambda x: x.log(), lambda v: -1.0 / v**2),
        (lambda x: x.tanh(), lambda v: -2 * math.tanh(v) * (1 - math.tanh(v) ** 2)),
        (
            lambda x: x.sigmoid(),
            lambda v: (lambda s: s * (1 - s) * (1 - 2 * s))(1 / (1 + math.exp(-v))),
        ),
        (lambda x: 1 / x, lambda v: 2 / v**3),
    ],
    ids=["exp", "log", "tanh", "sigmoid", "reciprocal"],
)
def test_second_derivatives_against_closed_forms(f, second):
    v = 0.8
    x = cr.Value(v)
    (d1,) = cr.grad(f(x), x, create_graph=True)
    (d2,) = cr.grad(d1, x)
    assert d2.data == pytest.approx(second(v), rel=1e-12)


def test_mixed_partial_derivative():
    x, y = cr.Value(1.5), cr.Value(-2.0)
    f = x * y * y
    gx, gy = cr.grad(f, [x, y], create_graph=True)
    (dxy,) = cr.grad(gx, y)  # d/dy (y^2) = 2y
    (dyx,) = cr.grad(gy, x)  # d/dx (2xy) = 2y
    assert dxy.data == dyx.data == 2 * -2.0


def test_hessian_vector_product_through_matmul():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(3, 3))
    xd, v = rng.normal(size=3), rng.normal(size=3)
    x = cr.Tensor(xd, requires_grad=True)
    f = x @ cr.Tensor(a) @ x  # gradient (A + A^T) x, Hessian A + A^T
    (g,) = cr.grad(f, x, create_graph=True)
    np.testing.assert_allclose(g.data, (a + a.T) @ xd, rtol=1e-13)
    (hv,) = cr.grad(g, x, grad_outputs=v)
    np.testing.assert_allclose(hv.data, (a + a.T) @ v, rtol=1e-13)


def test_gradgradcheck_on_a_small_network():
    rng = np.random.default_rng(3)
    w = cr.Tensor(rng.normal(size=(3, 2)), requires_grad=True)
    x = cr.Tensor(rng.normal(size=(4, 3)), requires_grad=True)
    assert cr.gradgradcheck(lambda w, x: (x @ w).tanh().sum(), [w, x])


# ---------------------------------------------------------------------------
# backward(create_graph=True)
# ---------------------------------------------------------------------------


def test_backward_create_graph_makes_grad_a_node_value():
    x = cr.Value(2.0)
    y = x**3
    y.backward(create_graph=True)
    assert isinstance(x.grad, cr.Value)
    assert x.grad.requires_grad and not x.grad.is_leaf
    assert x.grad.data == 12.0
    (d2,) = cr.grad(x.grad, x)
    assert d2.data == 12.0


def test_backward_create_graph_makes_grad_a_node_tensor():
    xd = np.array([1.0, -2.0, 0.5])
    x = cr.Tensor(xd, requires_grad=True)
    (x**3).sum().backward(create_graph=True)
    assert isinstance(x.grad, cr.Tensor) and x.grad.requires_grad
    np.testing.assert_array_equal(x.grad.data, 3 * xd**2)
    (d2,) = cr.grad(x.grad.sum(), x)
    np.testing.assert_array_equal(d2.data, 6 * xd)


def test_backward_create_graph_twice_adds_one_copy():
    x = cr.Value(2.0)
    y = x**3
    y.backward(create_graph=True)
    y.backward(create_graph=True)
    assert x.grad.data == 24.0
    (d2,) = cr.grad(x.grad, x)
    assert d2.data == 24.0


def test_without_create_graph_grads_are_plain_numbers_and_record_nothing():
    x = cr.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    n_before = len(iter_graph([y]))
    y.backward()
    assert type(x.grad) is np.ndarray
    (g,) = cr.grad(y, x)
    assert g.is_leaf and not g.requires_grad
    assert len(iter_graph([y])) == n_before
    v = cr.Value(1.0)
    (v * v).backward()
    assert type(v.grad) is float


def test_create_graph_gradient_can_be_used_in_a_loss():
    """A gradient penalty: minimise f(w) + |df/dw|^2, which needs d/dw of a gradient."""
    wd = np.array([0.3, -0.7])
    w = cr.Tensor(wd, requires_grad=True)
    f = (w**4).sum()
    (gw,) = cr.grad(f, w, create_graph=True)
    loss = f + (gw * gw).sum()
    loss.backward()
    # d/dw [w^4 + (4w^3)^2] = 4w^3 + 96 w^5
    np.testing.assert_allclose(w.grad, 4 * wd**3 + 96 * wd**5, rtol=1e-13)


# ---------------------------------------------------------------------------
# Memory with create_graph
# ---------------------------------------------------------------------------


@pytest.mark.usefixtures("refcount_only")
def test_grad_with_create_graph_leaves_no_cycle():
    x = cr.Value(0.5)
    y = x.exp()
    out = weakref.ref(y)
    (g,) = cr.grad(y, x, create_graph=True)  # d exp(x)/dx is built from y itself
    del y
    assert out() is not None  # kept alive by the gradient's graph
    del g
    assert out() is None


@pytest.mark.usefixtures("refcount_only")
def test_zero_grad_releases_a_graph_held_by_a_create_graph_grad():
    x = cr.Value(0.5)
    y = x.exp()
    out = weakref.ref(y)
    y.backward(create_graph=True)
    del y
    x.zero_grad()  # x.grad's graph refers to y, which refers to x: break the loop
    assert out() is None
