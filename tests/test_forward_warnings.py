"""Forward ops follow IEEE 754 silently: overflow gives inf, inf - inf nan, and nothing warns.

Each op runs on inputs that make numpy warn (overflow, invalid, divide by
zero, nan inputs) with every warning turned into an error, and its result
must equal numpy's own result computed with the warnings switched off.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import Tensor, numerics

BIG = np.array([[1e308, -1e308, np.inf], [-np.inf, np.nan, 0.0]])
OTHER = np.array([[10.0, 1e308, -np.inf], [-np.inf, 1.0, 0.0]])


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# (chainrule op, the same computation in numpy)
OPS = [
    pytest.param(lambda a, b: a + b, np.add, id="add"),
    pytest.param(lambda a, b: a - b, np.subtract, id="sub"),
    pytest.param(lambda a, b: a * b, np.multiply, id="mul"),
    pytest.param(lambda a, b: a / b, np.divide, id="div"),
    pytest.param(lambda a, b: a**b, np.power, id="pow"),
    pytest.param(lambda a, b: 10.0 * a, lambda a, b: 10.0 * a, id="rmul-number"),
    pytest.param(lambda a, b: a @ b.T, lambda a, b: a @ b.T, id="matmul"),
    pytest.param(lambda a, b: cr.maximum(a, b), np.maximum, id="maximum"),
    pytest.param(lambda a, b: a.exp(), lambda a, b: np.exp(a), id="exp"),
    pytest.param(lambda a, b: a.log(), lambda a, b: np.log(a), id="log"),
    pytest.param(lambda a, b: a.sqrt(), lambda a, b: np.sqrt(a), id="sqrt"),
    pytest.param(lambda a, b: a.sigmoid(), lambda a, b: _sigmoid(a), id="sigmoid"),
    pytest.param(lambda a, b: a.astype(np.float32), lambda a, b: a.astype(np.float32), id="astype"),
    pytest.param(lambda a, b: a.sum(axis=1), lambda a, b: a.sum(axis=1), id="sum"),
    pytest.param(lambda a, b: b.sum(), lambda a, b: b.sum(), id="sum-inf-minus-inf"),
    pytest.param(lambda a, b: a.mean(axis=0), lambda a, b: a.mean(axis=0), id="mean"),
]


@pytest.mark.parametrize(("op", "reference"), OPS)
def test_forward_ops_do_not_warn(op, reference):
    with np.errstate(all="ignore"):
        expected = reference(BIG, OTHER)
    with np.errstate(all="warn"), warnings.catch_warnings():
        warnings.simplefilter("error")
        out = op(Tensor(BIG), Tensor(OTHER))
    np.testing.assert_array_equal(out.data, expected)


def test_the_backward_of_overflowing_ops_does_not_warn():
    a = Tensor(BIG, requires_grad=True)
    b = Tensor(OTHER, requires_grad=True)
    with np.errstate(all="warn"), warnings.catch_warnings():
        warnings.simplefilter("error")
        (a * b + a @ b.T @ b).sum().backward()
    assert a.grad.shape == BIG.shape and b.grad.shape == OTHER.shape


@pytest.mark.parametrize(
    "op",
    [
        pytest.param(lambda x: x.softmax(axis=1), id="softmax"),
        pytest.param(lambda x: x.log_softmax(axis=1), id="log_softmax"),
        pytest.param(lambda x: x.logsumexp(axis=1), id="logsumexp"),
    ],
)
def test_softmax_family_on_infinite_rows_does_not_warn(op):
    """A row of -inf has nothing to normalise: 0/0 is nan, log 0 is -inf, silently."""
    rows = np.array([[-np.inf, -np.inf], [np.inf, 1.0], [np.nan, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = op(Tensor(rows))
    assert out.shape[0] == 3
    assert not np.isfinite(out.data[0]).any()


def test_forward_ops_leave_numpy_error_state_as_it_was():
    before = np.geterr()
    with np.errstate(over="raise", invalid="warn"):
        inside = np.geterr()
        (Tensor([1e308]) * 10.0).sum().exp()
        assert np.geterr() == inside
        with pytest.raises(FloatingPointError):  # the caller's own numpy code still raises
            np.multiply(np.array([1e308]), 10.0)
    assert np.geterr() == before


def test_ops_run_silently_when_the_quiet_state_is_busy():
    """Nested in chainrule's own quiet numpy state (as another thread can be), ops still work."""
    if numerics._EXTOBJ is None:
        pytest.skip("this numpy keeps no error state in a context variable")
    quiet = numerics._QUIET_CONTEXT

    def inside():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            big = Tensor([[1e308]]) * 10.0 + Tensor([[1.0]]) @ Tensor([[1e308]])
            return (big.exp() + big.mean(axis=0) + big.softmax(axis=1)).sum()

    with np.errstate(all="warn"):
        out = quiet.run(inside)
    assert np.isnan(out.item())  # softmax of [inf] is inf/inf = nan


def test_ops_from_many_threads_agree():
    """Threads share chainrule's quiet state; each op runs quietly, whichever thread has it."""
    results: list[object] = []

    def work():
        try:
            for _ in range(200):
                x = Tensor([[1.0, 2.0]])
                y = (x @ Tensor([[3.0], [-4.0]]) * 1e308 + x.sum()).sigmoid().sum()
                results.append(y.item())
        except Exception as e:  # a warning turned error, in this thread
            results.append(e)

    # Warning filters are global: set them here, once, for all the threads.
    with np.errstate(all="warn"), warnings.catch_warnings():
        warnings.simplefilter("error")
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == [0.0] * 800  # -1e308 overflows to -inf, whose sigmoid is 0


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.__imul__(10.0),
        lambda t: t.__iadd__(np.array([-np.inf, np.inf])),
        lambda t: t.mul_(1e308),
        lambda t: t.__itruediv__(0.0),
    ],
    ids=["*= overflow", "+= inf", "mul_ overflow", "/= zero"],
)
def test_in_place_arithmetic_does_not_warn(change):
    t = Tensor([1e308, np.inf])
    reference = Tensor(t)  # a copy, changed with numpy's warnings off
    with np.errstate(all="ignore"):
        change(reference)
    with np.errstate(all="warn"), warnings.catch_warnings():
        warnings.simplefilter("error")
        change(t)
    np.testing.assert_array_equal(t.data, reference.data)
