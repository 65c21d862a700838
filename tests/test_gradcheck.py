"""gradcheck and gradgradcheck must catch wrong rules and say where."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import rules as R


@pytest.fixture
def broken_tanh(monkeypatch):
    """Make tanh's rule wrong (d tanh/dx = 1 - t instead of 1 - t^2) for one test."""
    monkeypatch.setattr(R.TANH, "vjps", (lambda g, out, ctx, a: g * (1 - out),))


def test_gradcheck_passes_a_correct_rule_and_returns_true():
    x = cr.Tensor(np.array([[0.3, -0.2], [0.1, 0.8]]), requires_grad=True, name="x")
    assert cr.gradcheck(lambda t: (t * t).tanh(), [x]) is True


def test_gradcheck_catches_a_wrong_rule_and_names_input_index_and_values(broken_tanh):
    x = cr.Tensor(np.array([[0.3, -0.2], [0.1, 0.8]]), requires_grad=True, name="x")
    with pytest.raises(cr.GradcheckError) as info:
        cr.gradcheck(lambda t: t.tanh(), [x])
    msg = str(info.value)
    assert "input 0 ('x')" in msg
    assert "[0, 0]" in msg
    # Both numbers are reported: the wrong autodiff one and the true slope.
    t = np.tanh(0.3)
    assert repr(float(1 - t))[:8] in msg
    assert repr(float(1 - t * t))[:6] in msg


def test_gradcheck_works_for_values():
    a, b = cr.Value(0.7, name="a"), cr.Value(-1.3, name="b")
    assert cr.gradcheck(lambda x, y: (x * y).sigmoid() + x**2 / y, [a, b])


def test_gradcheck_checks_every_output_of_a_tuple():
    x = cr.Tensor(np.array([0.5, 1.5]), requires_grad=True)
    assert cr.gradcheck(lambda t: (t.exp(), t.log().sum()), [x])


def test_gradgradcheck_catches_a_node_form_that_disagrees_with_the_array_form(monkeypatch):
    def tanh_vjp(g, out, ctx, a):
        if isinstance(out, cr.Node):  # the create_graph path only
            return g * (1 - out)
        return g * (1 - out * out)

    monkeypatch.setattr(R.TANH, "vjps", (tanh_vjp,))
    x = cr.Tensor(np.array([0.3, -0.4]), requires_grad=True)
    assert cr.gradcheck(lambda t: t.tanh(), [x])  # first order never sees the node form
    with pytest.raises(cr.GradcheckError, match="create_graph"):
        cr.gradgradcheck(lambda t: t.tanh(), [x])


def test_gradgradcheck_catches_a_wrong_second_derivative(broken_tanh):
    x = cr.Tensor(np.array([0.3, -0.4]), requires_grad=True)
    with pytest.raises(cr.GradcheckError):
        cr.gradgradcheck(lambda t: t.tanh() * 2.0, [x])


def test_gradcheck_refuses_float32_and_inputs_without_grad():
    x32 = cr.Tensor(np.array([1.0], dtype=np.float32), requires_grad=True)
    with pytest.raises(TypeError, match=r"float32.*float64"):
        cr.gradcheck(lambda t: t * 2, [x32])
    x = cr.Tensor(np.array([1.0]))
    with pytest.raises(ValueError, match="no input requires grad"):
        cr.gradcheck(lambda t: t * 2, [x])
