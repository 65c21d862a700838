"""Edge points of single rules and operand kinds, where a gradient used to come back wrong.

A zero exponent at a zero base, a Value's ``.grad`` after a ``create_graph`` pass,
numpy scalars as Value operands: each is computed and compared with its closed form.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr


@pytest.mark.parametrize(
    "exponent",
    [np.zeros(2), cr.Tensor([0.0, 0.0]), np.array([0.0, 2.0]), cr.Tensor([[0.0], [3.0]])],
    ids=["array zeros", "tensor zeros", "array mixed", "tensor broadcast"],
)
def test_pow_base_gradient_is_finite_at_zero_base_for_a_zero_exponent(exponent):
    a = cr.Tensor([0.0, 2.0], requires_grad=True)
    (a**exponent).sum().backward()
    e = np.asarray(exponent.data if isinstance(exponent, cr.Tensor) else exponent)
    base = np.broadcast_to(a.data, np.broadcast_shapes(a.shape, e.shape))
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(e == 0, 0.0, e * base ** (e - 1))
    expected = expected.reshape(-1, 2).sum(axis=0)
    np.testing.assert_array_equal(a.grad, expected)
    assert np.isfinite(a.grad).all()


def test_pow_with_array_exponent_passes_gradcheck_and_gradgradcheck_near_zero_exponents():
    e = np.array([[0.0, 1.0, 2.5], [0.0, 3.0, -1.0]])
    a = cr.Tensor([0.7, 1.3, 2.0], requires_grad=True)
    cr.gradcheck(lambda a: a**e, [a])
    cr.gradgradcheck(lambda a: a**e, [a])


@pytest.mark.parametrize("kind", ["value", "tensor"])
def test_pow_cross_second_derivative_at_a_zero_exponent_is_one_over_the_base(kind):
    # d/db (d(a^b)/da) = a^(b-1) (1 + b ln a), which is 1/a at b = 0: the zero
    # exponent's mending of d/da must not cut the product's dependence on b.
    bases = [0.7, 2.0, 1.3]
    if kind == "value":
        got = []
        for a0 in bases:
            a, b = cr.Value(a0), cr.Value(0.0)
            (da,) = cr.grad(a**b, a, create_graph=True)
            got.append(cr.grad(da, b)[0].data)
        got = np.array(got)
    else:
        a = cr.Tensor(bases, requires_grad=True)
        b = cr.Tensor(np.zeros(3), requires_grad=True)
        (da,) = cr.grad((a**b).sum(), a, create_graph=True)
        got = cr.grad(da.sum(), b)[0].data
    np.testing.assert_allclose(got, 1 / np.array(bases), rtol=1e-12)
    b = cr.Tensor([0.0, 0.0, 0.0, 1.5], requires_grad=True)
    a = cr.Tensor([0.7, 2.0, 1.3, 0.9], requires_grad=True)
    cr.gradgradcheck(lambda a, b: a**b, [a, b])


def test_value_backward_after_create_graph_keeps_a_value_grad():
    x = cr.Value(2.0)
    y = x * x * x
    y.backward(create_graph=True)
    y.backward()
    y.backward()
    assert isinstance(x.grad, cr.Value)
    assert x.grad.data == 3 * 12.0


def test_tensor_backward_after_create_graph_keeps_a_tensor_grad():
    x = cr.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x * x).sum()
    y.backward(create_graph=True)
    y.backward()
    assert isinstance(x.grad, cr.Tensor)
    np.testing.assert_array_equal(x.grad.data, 2 * 3 * x.data**2)


@pytest.mark.parametrize(
    "scalar", [np.float64(2.0), np.float32(2.0), np.int64(2), np.bool_(True), True]
)
def test_value_arithmetic_with_numpy_scalars_keeps_python_floats(scalar):
    x = cr.Value(3.0)
    for y in (x * scalar, scalar * x, x / scalar, x**scalar, scalar - x):
        assert type(y.data) is float
        y.backward()
    assert type(x.grad) is float
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = cr.Value(1.0) / (scalar * 0)  # IEEE: inf, with no numpy warning
        assert z.data == float("inf")


def test_value_abs_and_sqrt_and_the_function_forms_on_values():
    x = cr.Value(-4.0)
    y = cr.sqrt(x.abs())  # the function form takes a Value too
    y.backward()
    assert (y.data, x.grad) == (2.0, -0.25)  # d sqrt|x| / dx = sign(x) / (2 sqrt|x|)
    assert isinstance(cr.exp(cr.Value(0.0)), cr.Value)
    assert np.isnan(cr.Value(-1.0).sqrt().data)
    with pytest.raises(TypeError, match=r"softmax: a Value has no softmax"):
        cr.softmax(cr.Value(1.0))
