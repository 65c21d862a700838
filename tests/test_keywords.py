"""PyTorch's keyword names (dim, keepdim) beside numpy's (axis, keepdims).

Each spelling is computed and compared with the other; max and min with
``dim=`` give PyTorch's (values, indices) pair, compared with numpy's argmax.
"""

import re

import numpy as np
import pytest

import chainrule as cr
from chainrule import Tensor, gradcheck

REDUCTIONS = ["sum", "mean", "max", "min", "logsumexp"]


def says(*parts: str) -> str:
    """A pattern for ``pytest.raises(match=...)``: the message contains every part."""
    return "(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in parts)


def _values(out):
    return out.values if isinstance(out, cr.ValuesIndices) else out


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1], ids=str)
@pytest.mark.parametrize("op", REDUCTIONS)
def test_dim_keepdim_equal_axis_keepdims(make, op, dim, keep):
    x = make.distinct((3, 4))
    torch_way = _values(getattr(x, op)(dim=dim, keepdim=keep))
    numpy_way = getattr(x, op)(axis=dim, keepdims=keep)
    np.testing.assert_array_equal(torch_way.data, numpy_way.data)
    assert torch_way.shape == numpy_way.shape
    assert gradcheck(lambda x: _values(getattr(x, op)(dim=dim, keepdim=keep)), [x])


@pytest.mark.parametrize("op", ["sum", "mean", "logsumexp"])
def test_dim_tuple_for_sums(make, op):
    x = make.uniform((2, 3, 4))
    a = getattr(x, op)(dim=(0, 2), keepdim=True)
    b = getattr(x, op)(axis=(0, 2), keepdims=True)
    np.testing.assert_array_equal(a.data, b.data)
    assert gradcheck(lambda x: getattr(x, op)(dim=(0, 2)), [x])


@pytest.mark.parametrize("op", REDUCTIONS)
def test_keepdim_with_no_dim_keeps_every_axis(make, op):
    x = make.distinct((2, 3))
    a = getattr(x, op)(keepdim=True)
    b = getattr(x, op)(keepdims=True)
    assert a.shape == b.shape == (1, 1)
    np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -2], ids=str)
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_with_dim_give_values_and_indices(make, op, dim, keep):
    x = make.distinct((3, 4))
    out = getattr(x, op)(dim=dim, keepdim=keep)
    assert isinstance(out, tuple) and type(out).__name__ == "ValuesIndices"
    values, indices = out
    assert out._fields == ("values", "indices")
    assert values is out.values and indices is out.indices
    arg = np.argmax if op == "max" else np.argmin
    ref = getattr(np, op)(x.data, axis=dim, keepdims=keep)
    np.testing.assert_array_equal(values.data, ref)
    np.testing.assert_array_equal(indices.data, arg(x.data, axis=dim, keepdims=keep))
    assert indices.dtype == np.int64 and not indices.requires_grad
    assert values.requires_grad
    # The indices pick the values out of x.
    picked = np.take_along_axis(
        x.data, indices.data if keep else np.expand_dims(indices.data, dim), axis=dim
    )
    np.testing.assert_array_equal(picked if keep else picked.squeeze(dim), values.data)


@pytest.mark.parametrize("shape,dim", [((5,), 0), ((3, 4), 1), ((2, 3, 4), 0), ((2, 3, 4), 2)])
@pytest.mark.parametrize("op", ["max", "min"])
def test_gradcheck_through_values_of_dim(make, op, shape, dim):
    x = make.distinct(shape)
    assert gradcheck(lambda x: getattr(x, op)(dim=dim).values, [x])
    assert gradcheck(lambda x: getattr(x, op)(dim=dim, keepdim=True).values * 2.0, [x])


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_with_axis_give_values_only(make, op):
    x = make.distinct((3, 4))
    for out in (getattr(x, op)(axis=1), getattr(x, op)(1), getattr(x, op)()):
        assert isinstance(out, Tensor)


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_dim_takes_one_axis(make, op):
    x = make.distinct((3, 4))
    with pytest.raises(TypeError, match=says(f"{op}:", "one axis", "(0, 1)", "axis=")):
        getattr(x, op)(dim=(0, 1))


@pytest.mark.parametrize("op", REDUCTIONS)
def test_both_spellings_of_axis_refused(make, op):
    x = make.distinct((3, 4))
    with pytest.raises(TypeError, match=says(f"{op}:", "axis=0", "dim=1")):
        getattr(x, op)(axis=0, dim=1)
    with pytest.raises(TypeError, match=says(f"{op}:", "axis=0", "dim=0")):
        getattr(x, op)(0, dim=0)  # even when they agree: one argument, given twice


@pytest.mark.parametrize("op", REDUCTIONS)
def test_both_spellings_of_keepdims_refused(make, op):
    x = make.distinct((3, 4))
    with pytest.raises(TypeError, match=says(f"{op}:", "keepdims=True", "keepdim=False")):
        getattr(x, op)(axis=0, keepdims=True, keepdim=False)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_dim(make, op):
    x = make.uniform((3, 4))
    for d in (0, 1, -1):
        np.testing.assert_array_equal(getattr(x, op)(dim=d).data, getattr(x, op)(axis=d).data)
        np.testing.assert_array_equal(getattr(cr, op)(x, dim=d).data, getattr(x, op)(d).data)
    with pytest.raises(TypeError, match=says(f"{op}:", "axis=0", "dim=1")):
        getattr(x, op)(axis=0, dim=1)


@pytest.mark.parametrize("join", [cr.cat, cr.concatenate, cr.stack])
def test_joins_take_dim(make, join):
    a, b = make.uniform((2, 3)), make.uniform((2, 3))
    for d in (0, 1, -1):
        np.testing.assert_array_equal(join([a, b], dim=d).data, join([a, b], axis=d).data)
        np.testing.assert_array_equal(join([a, b], dim=d).data, join([a, b], d).data)
    np.testing.assert_array_equal(join([a, b]).data, join([a, b], 0).data)
    assert gradcheck(lambda a, b: join([a, b], dim=1), [a, b])
    name = "stack" if join is cr.stack else "concatenate"
    with pytest.raises(TypeError, match=says(f"{name}:", "axis=0", "dim=1")):
        join([a, b], axis=0, dim=1)


@pytest.mark.parametrize(
    "call,op,word",
    [
        (lambda x: x.sum(dtype=np.float32), "sum", "dtype"),
        (lambda x: x.mean(out=None), "mean", "out"),
        (lambda x: x.max(dim=0, out=None), "max", "out"),
        (lambda x: x.min(foo=1), "min", "foo"),
        (lambda x: x.logsumexp(dim=0, dtype=None), "logsumexp", "dtype"),
        (lambda x: x.softmax(dim=0, dtype=np.float32), "softmax", "dtype"),
        (lambda x: x.log_softmax(0, dtype=np.float32), "log_softmax", "dtype"),
        (lambda x: cr.cat([x, x], dim=0, out=None), "concatenate", "out"),
        (lambda x: cr.stack([x, x], out=None), "stack", "out"),
    ],
)
def test_unsupported_keyword_named(make, call, op, word):
    x = make.uniform((2, 3))
    with pytest.raises(TypeError, match=says(f"{op}:", f"{word}=", "does not support", "dim=")):
        call(x)


def test_keepdim_axis_mixed_spellings_are_one_call(make):
    # dim and keepdims name different arguments, so mixing the styles is fine.
    x = make.distinct((3, 4))
    np.testing.assert_array_equal(
        x.sum(dim=1, keepdims=True).data, x.sum(axis=1, keepdim=True).data
    )


# -- PyTorch habits in training loops ------------------------------------------------


def test_backward_accepts_retain_graph_and_a_second_pass_adds_again():
    w = Tensor([1.0, -2.0], requires_grad=True)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    np.testing.assert_array_equal(w.grad, 2 * w.data)
    loss.backward()  # the graph was kept either way
    np.testing.assert_array_equal(w.grad, 4 * w.data)
    v = cr.Value(3.0)
    (v * v).backward(None, True)  # positionally too, PyTorch's order
    assert v.grad == 6.0


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_optimizer_step_with_a_closure_returns_its_loss_and_steps_as_without(name):
    def fresh():
        w = Tensor([0.5, -1.5], requires_grad=True)
        return w, getattr(cr.optim, name)([w], lr=0.1)

    w1, opt1 = fresh()
    calls = []

    def closure():
        opt1.zero_grad()
        loss = ((w1 - 1.0) ** 2).sum()
        loss.backward()
        calls.append(cr.is_grad_enabled())
        return loss

    with cr.no_grad():  # recording is turned on for the closure, as PyTorch does
        returned = opt1.step(closure)
    assert calls == [True]
    np.testing.assert_allclose(returned.item(), ((np.array([0.5, -1.5]) - 1.0) ** 2).sum())
    w2, opt2 = fresh()
    ((w2 - 1.0) ** 2).sum().backward()
    assert opt2.step() is None
    np.testing.assert_array_equal(w1.data, w2.data)


def test_relu_takes_inplace_false_and_names_inplace_true():
    assert cr.nn.ReLU(inplace=False)(Tensor([-1.0, 2.0])).data.tolist() == [0.0, 2.0]
    with pytest.raises(Exception, match="inplace"):
        cr.nn.ReLU(inplace=True)
