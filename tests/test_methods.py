"""Tensor's methods in PyTorch's names: forward against numpy, gradients, errors, keywords.

Each differentiable method is checked with ``cr.gradcheck`` (and
``gradgradcheck`` where it is smooth); its forward is compared with numpy or
with the formula it stands for; bad arguments must raise errors that name
the method and what was wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr

RNG = np.random.default_rng(16)


def leaf(shape: tuple[int, ...] = (2, 3), low: float | None = None) -> cr.Tensor:
    data = RNG.standard_normal(shape) if low is None else RNG.uniform(low, low + 2.0, shape)
    return cr.Tensor(data, requires_grad=True)


def check(fn: Callable[[cr.Tensor], cr.Tensor], *xs: cr.Tensor, second: bool = True) -> None:
    cr.gradcheck(fn, list(xs))
    if second:
        cr.gradgradcheck(fn, list(xs))


# -- shape methods ---------------------------------------------------------------


def test_view_and_reshape_take_a_tuple_or_varargs_and_one_minus_one() -> None:
    x = leaf((3, 4))
    for shape in [(2, 6), (2, -1), (-1, 3), (12,), (-1,), (2, 2, 3), (1, 12, 1)]:
        want = x.data.reshape(shape)
        for method in ("view", "reshape"):
            m = getattr(x, method)
            assert np.array_equal(m(*shape).data, want), (method, shape)
            assert np.array_equal(m(shape).data, want), (method, shape)
            assert np.array_equal(m(list(shape)).data, want), (method, shape)
    check(lambda a: a.view(2, -1) ** 2.0, x)
    check(lambda a: a.view((4, 3)).T * a.view(4, 3).T, x)


def test_view_shares_memory_and_refuses_what_would_need_a_copy() -> None:
    x = cr.Tensor(np.arange(6.0))
    v = x.view(2, 3)
    x.data[0] = 7.0
    assert v.data[0, 0] == 7.0  # a view, not a copy
    with pytest.raises(RuntimeError, match=r"view: .*shape \(3, 2\).*\.reshape\(\.\.\.\)"):
        x.view(2, 3).t().view(-1)
    # .contiguous() makes the copy that view needs, as in PyTorch
    y = x.view(2, 3).t().contiguous().view(-1)
    assert np.array_equal(y.data, x.data.reshape(2, 3).T.reshape(-1))


@pytest.mark.parametrize("method", ["view", "reshape"])
def test_view_and_reshape_errors_name_the_shapes(method: str) -> None:
    x = cr.Tensor(np.zeros((3, 4)))
    with pytest.raises(
        ValueError, match=r"reshape: .*\(3, 4\) \(12 elements\) into shape \(3, 5\)"
    ):
        x.reshape(3, 5)
    with pytest.raises(
        ValueError, match=r"view: shape \[3, 5\] is invalid for a Tensor of 12 elements"
    ):
        x.view(3, 5)
    if method == "view":
        with pytest.raises(ValueError, match=r"view: shape \[-1, -1\] is invalid"):
            x.view(-1, -1)
        with pytest.raises(
            ValueError, match=r"view: shape \[5, -1\] is invalid for a Tensor of 12"
        ):
            x.view(5, -1)
        with pytest.raises(ValueError, match=r"view: shape \[0, -1\] is invalid"):
            cr.Tensor(np.zeros((0, 3))).view(0, -1)
        with pytest.raises(TypeError, match=r"view: expected sizes, got type .*\.to\(dtype\)"):
            x.view(np.float32)
        with pytest.raises(TypeError, match="view: sizes must be integers"):
            x.view(2.0, 6)


def test_unsqueeze_squeeze_and_flatten_match_numpy() -> None:
    x = leaf((2, 1, 3))
    for d in (0, 1, 3, -1, -4):
        assert x.unsqueeze(d).shape == np.expand_dims(x.data, d).shape
    assert x.unsqueeze(dim=1).shape == x.unsqueeze(axis=1).shape == (2, 1, 1, 3)
    assert x.squeeze().shape == (2, 3)
    assert x.squeeze(1).shape == (2, 3)
    assert x.squeeze(-2).shape == (2, 3)
    assert x.squeeze(0).shape == (2, 1, 3)  # not of size 1: left as it is, as in PyTorch
    assert x.squeeze((0, 1)).shape == (2, 3)
    assert cr.Tensor(np.ones((1, 1))).squeeze().shape == ()
    assert cr.Tensor(5.0).squeeze(0).shape == ()
    assert np.array_equal(x.flatten().data, x.data.reshape(-1))
    y = leaf((2, 3, 4, 5))
    assert y.flatten(1).shape == (2, 60)
    assert y.flatten(1, 2).shape == (2, 12, 5)
    assert y.flatten(-3, -2).shape == (2, 12, 5)
    assert y.flatten(2, 2).shape == (2, 3, 4, 5)
    assert cr.Tensor(3.0).flatten().shape == (1,)
    check(lambda a: a.unsqueeze(0) * a.unsqueeze(-1), x)
    check(lambda a: a.squeeze() ** 2.0, x)
    check(lambda a: a.flatten(0, 1).sin(), x)


def test_unsqueeze_squeeze_flatten_errors() -> None:
    x = cr.Tensor(np.zeros((2, 3)), name="x")
    with pytest.raises(
        ValueError, match=r"unsqueeze: dim 3 is out of range for tensor 'x'.*-3 to 2"
    ):
        x.unsqueeze(3)
    with pytest.raises(ValueError, match=r"unsqueeze: dim -4"):
        x.unsqueeze(-4)
    with pytest.raises(TypeError, match="unsqueeze: dim must be an int"):
        x.unsqueeze()
    with pytest.raises(TypeError, match="unsqueeze: got axis=0 and dim=0"):
        x.unsqueeze(0, axis=0)
    with pytest.raises(ValueError, match=r"squeeze: axis 2 is out of range .*shape \(2, 3\)"):
        x.squeeze(2)
    with pytest.raises(ValueError, match=r"squeeze: dim 1 is out of range .* 0-d"):
        cr.Tensor(1.0).squeeze(1)
    with pytest.raises(ValueError, match=r"flatten: start_dim=2 is out of range"):
        x.flatten(2)
    with pytest.raises(ValueError, match=r"flatten: start_dim \(1\) comes after end_dim \(0\)"):
        x.flatten(1, 0)


def test_permute_and_t() -> None:
    x = leaf((2, 3, 4))
    for dims in [(2, 0, 1), (0, 1, 2), (-1, 0, 1)]:
        want = np.transpose(x.data, dims)
        assert np.array_equal(x.permute(*dims).data, want)
        assert np.array_equal(x.permute(dims).data, want)
    check(lambda a: a.permute(2, 0, 1) ** 2.0, x)
    m = leaf((2, 3))
    assert np.array_equal(m.t().data, m.data.T)
    check(lambda a: a.t() @ a, m)
    v = leaf((3,))
    assert v.t() is v
    s = leaf(())
    assert s.t() is s
    with pytest.raises(ValueError, match=r"permute: dims \(0, 1\) are not a permutation of the 3"):
        x.permute(0, 1)
    with pytest.raises(ValueError, match=r"permute: dims \(0, 0, 1\)"):
        x.permute(0, 0, 1)
    with pytest.raises(ValueError, match=r"permute: dims \(0, 1, 3\)"):
        x.permute(0, 1, 3)
    with pytest.raises(
        ValueError, match=r"t: expects a tensor with at most 2 dimensions.*\(2, 3, 4\)"
    ):
        x.t()


def test_expand_keeps_sizes_with_minus_one_and_adds_leading_axes() -> None:
    x = leaf((3, 1))
    assert np.array_equal(x.expand(3, 4).data, np.broadcast_to(x.data, (3, 4)))
    assert np.array_equal(x.expand(-1, 4).data, np.broadcast_to(x.data, (3, 4)))
    assert np.array_equal(x.expand((2, 3, 4)).data, np.broadcast_to(x.data, (2, 3, 4)))
    assert x.expand(2, -1, -1).shape == (2, 3, 1)
    assert x.expand(3, 0).shape == (3, 0)
    check(lambda a: a.expand(2, -1, 4) ** 2.0, x)
    with pytest.raises(ValueError, match=r"expand: cannot expand shape \(3, 1\) to \[2, 4\]: dim"):
        x.expand(2, 4)
    with pytest.raises(ValueError, match=r"expand: .*new leading dimension 0"):
        x.expand(-1, 3, 4)
    with pytest.raises(ValueError, match=r"expand: 1 sizes \[4\] are fewer than the 2"):
        x.expand(4)
    with pytest.raises(ValueError, match=r"expand: cannot expand shape \(3, 1\) to \[3, -2\]"):
        x.expand(3, -2)


def test_repeat_tiles_as_numpy_tile() -> None:
    x = leaf((2, 3))
    for reps in [(1, 1), (2, 1), (2, 3), (3, 1, 2), (0, 2), (2, 2, 1, 1)]:
        assert np.array_equal(x.repeat(*reps).data, np.tile(x.data, reps)), reps
        assert np.array_equal(x.repeat(reps).data, np.tile(x.data, reps)), reps
    check(lambda a: a.repeat(2, 3) ** 2.0, x)
    check(lambda a: a.repeat(2, 1, 2).sin(), leaf((3,)))
    # Each element appears 6 times: its gradient is 6 times the incoming one.
    y = leaf((2,))
    y.repeat(2, 3).sum().backward()
    assert np.array_equal(y.grad, [6.0, 6.0])
    with pytest.raises(
        ValueError, match=r"repeat: needs a count >= 0 for each of the 2 dimensions"
    ):
        x.repeat(2)
    with pytest.raises(ValueError, match=r"repeat: .*got \[2, -1\]"):
        x.repeat(2, -1)


def test_clone_copies_and_stays_in_the_graph() -> None:
    x = leaf((2, 3))
    c = x.clone()
    assert c is not x and c.requires_grad and c._op is cr.OPS["clone"]
    assert np.array_equal(c.data, x.data) and not np.shares_memory(c.data, x.data)
    c.data[0, 0] = 99.0
    assert x.data[0, 0] != 99.0
    check(lambda a: a.clone() * a, x)
    n = cr.Tensor([1, 2])  # no grad, integers: a plain copy
    assert n.clone().dtype == n.dtype and not n.clone().requires_grad


def test_contiguous_is_self_when_already_contiguous() -> None:
    x = leaf((2, 3))
    assert x.contiguous() is x
    y = x.t().contiguous()
    assert y.data.flags.c_contiguous and np.array_equal(y.data, x.data.T)
    check(lambda a: a.t().contiguous().view(-1) ** 2.0, x)


def test_size_numel_dim() -> None:
    x = cr.Tensor(np.zeros((2, 3, 4)))
    assert x.size() == (2, 3, 4)
    assert (x.size(0), x.size(-1), x.size(1)) == (2, 4, 3)
    assert x.numel() == 24 and x.dim() == 3 and cr.Tensor(1.0).dim() == 0
    assert cr.numel(x) == 24
    with pytest.raises(ValueError, match=r"size: dim 3 is out of range .*3 dimensions"):
        x.size(3)


# -- elementwise ----------------------------------------------------------------

ELEMENTWISE: list[tuple[str, Callable[[np.ndarray], np.ndarray], float | None]] = [
    ("sin", np.sin, None),
    ("cos", np.cos, None),
    ("exp2", np.exp2, None),
    ("log2", np.log2, 0.3),
    ("log1p", np.log1p, -0.5),
    ("expm1", np.expm1, None),
    ("square", np.square, None),
    ("rsqrt", lambda a: 1.0 / np.sqrt(a), 0.3),
    ("softplus", lambda a: np.log1p(np.exp(a)), None),
]


@pytest.mark.parametrize(("name", "ref", "low"), ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_elementwise_forward_gradients_and_function_form(
    name: str, ref: Callable[[np.ndarray], np.ndarray], low: float | None
) -> None:
    for shape in [(), (4,), (2, 3)]:
        x = leaf(shape, low)
        out = getattr(x, name)()
        assert np.allclose(out.data, ref(x.data), rtol=1e-13, atol=0), (name, shape)
        check(lambda a: getattr(a, name)(), x)
        if name != "softplus":
            assert np.array_equal(getattr(cr, name)(x).data, out.data)
    # float32 stays float32
    x32 = cr.Tensor(np.array([0.5, 1.5], dtype=np.float32))
    assert getattr(x32, name)().dtype == np.float32


def test_exp2_log2_exact_and_log1p_expm1_accurate_near_zero() -> None:
    k = np.arange(-10.0, 11.0)
    assert np.array_equal(cr.Tensor(k).exp2().data, 2.0**k)
    assert np.array_equal(cr.Tensor(2.0**k).log2().data, k)
    tiny = cr.Tensor([1e-18, -3e-17])
    assert np.array_equal(tiny.log1p().data, tiny.data)  # log(1 + x) would give 0
    assert np.array_equal(tiny.expm1().data, tiny.data)


def test_elementwise_derivatives_match_their_formulas() -> None:
    x = leaf((5,), 0.2)
    for name, deriv in [
        ("sin", np.cos(x.data)),
        ("cos", -np.sin(x.data)),
        ("exp2", np.log(2.0) * np.exp2(x.data)),
        ("log2", 1.0 / (x.data * np.log(2.0))),
        ("log1p", 1.0 / (1.0 + x.data)),
        ("expm1", np.exp(x.data)),
        ("square", 2.0 * x.data),
        ("rsqrt", -0.5 * x.data**-1.5),
        ("softplus", 1.0 / (1.0 + np.exp(-x.data))),
    ]:
        (g,) = cr.grad(getattr(x, name)().sum(), [x])
        assert np.allclose(g.data, deriv, rtol=1e-12), name


def test_pow_and_function_forms_take_values_too() -> None:
    x = leaf((2, 3), 0.5)
    assert np.array_equal(x.pow(3.0).data, x.data**3.0)
    assert np.array_equal(x.pow(x).data, x.data**x.data)
    check(lambda a: a.pow(2.5), x)
    check(lambda a: cr.pow(a, a), x)
    assert np.array_equal(cr.pow([1.0, 2.0], 2).data, [1.0, 4.0])
    v = cr.Value(1.5)
    assert cr.pow(v, 2).data == 2.25
    assert cr.abs(cr.Value(-2.0)).data == 2.0
    assert np.array_equal(cr.abs(cr.Tensor([-1.0, 2.0])).data, [1.0, 2.0])
    with pytest.raises(TypeError, match="sin: a Value has no sin; use a Tensor"):
        cr.sin(v)
    assert np.array_equal(cr.sin([0.0, 1.0]).data, np.sin([0.0, 1.0]))


# -- clamp ----------------------------------------------------------------------


def test_clamp_forward_and_gradient_at_the_bounds() -> None:
    x = cr.Tensor([-2.0, -1.0, 0.0, 1.0, 2.0], requires_grad=True)
    y = x.clamp(-1.0, 1.0)
    assert np.array_equal(y.data, np.clip(x.data, -1.0, 1.0))
    y.backward(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    # PyTorch's convention: the gradient passes where min <= x <= max, bounds included.
    assert np.array_equal(x.grad, [0.0, 2.0, 3.0, 4.0, 0.0])
    x.grad = None
    x.clamp_min(0.0).sum().backward()
    assert np.array_equal(x.grad, [0.0, 0.0, 1.0, 1.0, 1.0])
    x.grad = None
    x.clamp_max(0.0).sum().backward()
    assert np.array_equal(x.grad, [1.0, 1.0, 1.0, 0.0, 0.0])
    x.grad = None
    assert np.array_equal(cr.clamp(x, min=-1).data, np.maximum(x.data, -1.0))
    # min > max: every element is max, and no element gets a gradient (as in PyTorch)
    z = x.clamp(1.0, -1.0)
    assert np.array_equal(z.data, np.full(5, -1.0))
    z.sum().backward()
    assert np.array_equal(x.grad, np.zeros(5))
    check(lambda a: a.clamp(-0.3, 0.3) * a, cr.Tensor([-1.1, -0.1, 0.2, 0.9], requires_grad=True))
    # integers stay integers
    assert cr.Tensor([-3, 0, 5]).clamp(0, 2).dtype == np.int64


def test_clamp_errors() -> None:
    x = cr.Tensor([1.0])
    with pytest.raises(TypeError, match="clamp: give min=, max= or both"):
        x.clamp()
    with pytest.raises(TypeError, match=r"clamp: min must be a number, got Tensor.*cr\.maximum"):
        x.clamp(cr.Tensor([0.0]))
    with pytest.raises(TypeError, match="clamp: max must be a number, got str"):
        x.clamp(max="1")


# -- matmul and dtype conversions -------------------------------------------------


def test_matmul_method_and_function() -> None:
    a, b = leaf((2, 3)), leaf((3, 4))
    assert np.array_equal(a.matmul(b).data, a.data @ b.data)
    assert np.array_equal(cr.matmul(a, b).data, a.data @ b.data)
    assert np.array_equal(cr.matmul(a.data, b).data, a.data @ b.data)
    assert np.array_equal(cr.matmul([1.0, 2.0], [3.0, 4.0]).data, 11.0)
    cr.gradcheck(lambda p, q: p.matmul(q), [a, b])
    with pytest.raises(ValueError, match=r"matmul \(a @ b\): shapes \(2, 3\) and \(2, 3\)"):
        a.matmul(a)


def test_float_double_and_to() -> None:
    x = leaf((3,))
    f = x.float()
    assert f.dtype == np.float32 and f.requires_grad
    assert f.double().dtype == np.float64
    assert x.double() is x
    assert x.to(np.float32).dtype == np.float32
    assert x.to("float32").dtype == np.float32
    assert x.to(dtype=np.float16).dtype == np.float16
    assert x.to(f).dtype == np.float32
    assert x.to("cpu") is x and x.to(device="cpu") is x
    assert x.to("cpu", np.float32).dtype == np.float32
    assert cr.Tensor([1, 2]).float().dtype == np.float32
    # differentiable between float types; the gradient comes back in the source's dtype
    x.to(np.float32).sum().backward()
    assert x.grad.dtype == np.float64 and np.array_equal(x.grad, np.ones(3))
    # (float32 keeps 7 digits: a wide step gives exact central differences of the identity)
    cr.gradcheck(lambda a: a.to(np.float32).double() * a, [x], eps=1e-2)
    with pytest.raises(
        ValueError, match="to: chainrule computes with numpy on the CPU; device 'cuda'"
    ):
        x.to("cuda")
    with pytest.raises(TypeError, match="to: 'floaty' is not a dtype"):
        x.to("floaty")
    with pytest.raises(TypeError, match="to: chainrule does not support the keyword copy="):
        x.to(np.float32, copy=True)
    with pytest.raises(TypeError, match=r"astype: .*requires grad"):
        x.to(np.int64)


# -- argmax, argmin ----------------------------------------------------------------


def test_argmax_argmin_match_numpy_and_have_no_grad() -> None:
    x = leaf((3, 4))
    for name in ("argmax", "argmin"):
        ref = getattr(np, name)
        m = getattr(x, name)
        full = m()
        assert full.shape == () and full.item() == ref(x.data)
        assert full.dtype == np.int64 and not full.requires_grad and full._op is None
        for d in (0, 1, -1):
            assert np.array_equal(m(d).data, ref(x.data, axis=d))
            assert np.array_equal(m(dim=d).data, ref(x.data, axis=d))
            assert np.array_equal(m(axis=d).data, ref(x.data, axis=d))
            kept = m(d, keepdim=True)
            assert np.array_equal(kept.data, ref(x.data, axis=d, keepdims=True))
            assert np.array_equal(m(axis=d, keepdims=True).data, kept.data)
        assert m(keepdim=True).shape == (1, 1)
        assert getattr(cr, name)(x, 1).shape == (3,)
    assert cr.Tensor([1.0, np.nan, 3.0]).argmax().item() == 1  # NaN counts as the largest
    with pytest.raises(TypeError, match=r"argmax: takes one axis \(an int\), got \(0, 1\)"):
        x.argmax(dim=(0, 1))
    with pytest.raises(ValueError, match=r"argmin: axis 1 of .* is empty"):
        cr.Tensor(np.zeros((2, 0))).argmin(dim=1)
    with pytest.raises(ValueError, match="argmax: axis 2 is out of range"):
        x.argmax(2)
    with pytest.raises(TypeError, match="argmax: got axis=0 and dim=0"):
        x.argmax(0, axis=0)


# -- var, std ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_match_numpy_with_each_correction(name: str) -> None:
    x = leaf((3, 4, 2))
    ref = getattr(np, name)
    m = getattr(x, name)
    assert np.allclose(m().data, ref(x.data, ddof=1), rtol=1e-13)  # PyTorch's default
    assert np.allclose(m(axis=1).data, ref(x.data, axis=1, ddof=1), rtol=1e-13)  # numpy's way
    assert np.allclose(m(1).data, ref(x.data, axis=1, ddof=1), rtol=1e-13)
    assert np.allclose(m(dim=(0, 2)).data, ref(x.data, axis=(0, 2), ddof=1), rtol=1e-13)
    assert np.allclose(m(1, False).data, ref(x.data, axis=1, ddof=0), rtol=1e-13)
    assert np.allclose(m(False).data, ref(x.data, ddof=0), rtol=1e-13)
    assert np.allclose(m(unbiased=False).data, ref(x.data, ddof=0), rtol=1e-13)
    assert np.allclose(m(0, correction=0).data, ref(x.data, axis=0, ddof=0), rtol=1e-13)
    assert np.allclose(m(2, correction=0.5).data, ref(x.data, axis=2, ddof=0.5), rtol=1e-13)
    assert np.allclose(m(axis=1, ddof=2).data, ref(x.data, axis=1, ddof=2), rtol=1e-13)
    kept = m(1, keepdim=True)
    assert np.allclose(kept.data, ref(x.data, axis=1, ddof=1, keepdims=True), rtol=1e-13)
    assert np.array_equal(m(axis=1, keepdims=True).data, kept.data)
    assert np.array_equal(getattr(cr, name)(x, 1).data, m(1).data)
    # gradients, first and second, over several axes and corrections
    check(lambda a: getattr(a, name)(), x)
    check(lambda a: getattr(a, name)(dim=1, keepdim=True) * a, x)
    check(lambda a: getattr(a, name)((0, 2), correction=0), x)
    check(lambda a: getattr(a, name)(-1, unbiased=False), leaf((4, 3)))


def test_var_gradient_is_its_formula() -> None:
    x = leaf((5,))
    (g,) = cr.grad(x.var(), [x])
    assert np.allclose(g.data, 2.0 * (x.data - x.data.mean()) / 4.0, rtol=1e-13)


def test_var_std_edge_cases_as_pytorch() -> None:
    # One element with correction 1: 0/0 = nan, without a warning.
    with np.errstate(all="raise"):
        assert np.isnan(cr.Tensor([3.0]).var().item())
        assert np.isnan(cr.Tensor([3.0]).std().item())
    # A constant input: std is 0 and PyTorch's gradient there is 0, not nan.
    c = cr.Tensor([2.0, 2.0, 2.0], requires_grad=True)
    c.std().backward()
    assert np.array_equal(c.grad, np.zeros(3))
    rows = cr.Tensor([[1.0, 1.0], [1.0, 3.0]], requires_grad=True)
    rows.std(dim=1).sum().backward()
    assert np.array_equal(rows.grad[0], [0.0, 0.0])
    assert np.allclose(rows.grad[1], [-1 / np.sqrt(2), 1 / np.sqrt(2)])


def test_var_std_keyword_errors() -> None:
    x = cr.Tensor(np.ones((2, 3)))
    with pytest.raises(TypeError, match="var: got unbiased= and correction=, which say the same"):
        x.var(unbiased=True, correction=1)
    with pytest.raises(TypeError, match="std: got correction= and ddof="):
        x.std(correction=1, ddof=1)
    with pytest.raises(TypeError, match="var: got axis=0 and dim=1"):
        x.var(1, axis=0)
    with pytest.raises(TypeError, match="std: got keepdims=True and keepdim=True"):
        x.std(0, keepdim=True, keepdims=True)
    with pytest.raises(TypeError, match="var: chainrule does not support the keyword dtype="):
        x.var(dtype=np.float32)
    with pytest.raises(TypeError, match="std: correction must be a number"):
        x.std(correction="1")
    with pytest.raises(ValueError, match="var: axis 2 is out of range"):
        x.var(2)


# -- norm ------------------------------------------------------------------------


def test_norm_matches_numpy_for_each_p() -> None:
    x = leaf((3, 4))
    lin = np.linalg.norm
    assert np.allclose(x.norm().data, lin(x.data), rtol=1e-13)
    assert np.allclose(x.norm("fro").data, lin(x.data), rtol=1e-13)
    for p in (1, 2, 3, 0.5, -1, np.inf, -np.inf):
        for d in (0, 1):
            assert np.allclose(x.norm(p, d).data, lin(x.data, p, axis=d), rtol=1e-12), (p, d)
            kept = x.norm(p, dim=d, keepdim=True)
            assert np.allclose(kept.data, lin(x.data, p, axis=d, keepdims=True), rtol=1e-12)
            assert np.array_equal(x.norm(p, axis=d, keepdims=True).data, kept.data)
    assert np.allclose(x.norm(1).data, np.abs(x.data).sum(), rtol=1e-13)
    assert np.allclose(x.norm(np.inf).data, np.abs(x.data).max())
    assert np.allclose(x.norm(3, (0, 1)).data, (np.abs(x.data) ** 3).sum() ** (1 / 3))
    assert np.allclose(cr.norm(x, dim=0).data, lin(x.data, axis=0))


def test_norm_gradients() -> None:
    x = leaf((3, 4))
    for p in (2, 3, 1.5, "fro"):
        check(lambda a, p=p: a.norm(p, dim=1), x)
    check(lambda a: a.norm(1, dim=0), x, second=False)  # abs: piecewise linear
    check(lambda a: a.norm(np.inf, dim=1), x, second=False)
    (g,) = cr.grad(x.norm(), [x])
    assert np.allclose(g.data, x.data / np.linalg.norm(x.data), rtol=1e-13)


def test_norm_of_zero_has_gradient_zero_as_in_pytorch() -> None:
    z = cr.Tensor(np.zeros((2, 3)), requires_grad=True)
    z.norm().backward()
    assert np.array_equal(z.grad, np.zeros((2, 3)))
    for p in (1, 3, 1.5, np.inf):
        z.grad = None
        z.norm(p).backward()
        assert np.array_equal(z.grad, np.zeros((2, 3))), p
    z.grad = None
    z.norm(3, dim=1).sum().backward()
    assert np.array_equal(z.grad, np.zeros((2, 3)))
    u = cr.Tensor([[0.0, 0.0], [1.0, -2.0]], requires_grad=True)
    u.norm(3, dim=1).sum().backward()
    assert np.array_equal(u.grad[0], [0.0, 0.0])
    assert np.allclose(u.grad[1], np.array([1.0, -4.0]) / 9.0 ** (2 / 3), rtol=1e-13)
    # One zero row among nonzero ones: 0 for that row, x/||x|| for the others.
    w = cr.Tensor([[0.0, 0.0], [3.0, 4.0]], requires_grad=True)
    w.norm(dim=1).sum().backward()
    assert np.array_equal(w.grad[0], [0.0, 0.0])
    assert np.allclose(w.grad[1], [0.6, 0.8], rtol=1e-15)
    # Second order at the zero: 0 too, never nan.
    (g,) = cr.grad(z.norm(), [z], create_graph=True)
    (h,) = cr.grad(g.sum(), [z])
    assert np.array_equal(h.data, np.zeros((2, 3)))


def test_norm_errors() -> None:
    x = cr.Tensor(np.ones(3))
    with pytest.raises(ValueError, match="norm: p='nuc' is not supported"):
        x.norm("nuc")
    with pytest.raises(ValueError, match=r"norm: p=0\.0 is not supported"):
        x.norm(0)
    with pytest.raises(TypeError, match="norm: p must be a number or 'fro', got list"):
        x.norm([2])
    with pytest.raises(TypeError, match="norm: got axis=0 and dim=0"):
        x.norm(2, 0, axis=0)


# -- prod ------------------------------------------------------------------------


def _others(x: np.ndarray) -> np.ndarray:
    """d prod/dx_i by brute force: the product of every element but x_i."""
    flat = x.reshape(-1)
    return np.array([np.prod(np.delete(flat, i)) for i in range(flat.size)]).reshape(x.shape)


def test_prod_matches_numpy_and_its_keywords() -> None:
    x = leaf((2, 3, 4))
    assert np.allclose(x.prod().data, np.prod(x.data), rtol=1e-13)
    for d in (0, 1, -1):
        assert np.allclose(x.prod(d).data, np.prod(x.data, axis=d), rtol=1e-13)
        assert np.allclose(x.prod(axis=d).data, np.prod(x.data, axis=d), rtol=1e-13)
        kept = x.prod(dim=d, keepdim=True)
        assert np.allclose(kept.data, np.prod(x.data, axis=d, keepdims=True), rtol=1e-13)
        assert np.array_equal(x.prod(axis=d, keepdims=True).data, kept.data)
    assert np.allclose(x.prod((0, 2)).data, np.prod(x.data, axis=(0, 2)), rtol=1e-13)
    assert cr.Tensor(np.zeros((2, 0))).prod(1).data.tolist() == [1.0, 1.0]
    assert cr.Tensor([2, 3]).prod().dtype == np.int64
    assert np.array_equal(cr.prod(x, 1).data, x.prod(1).data)
    with pytest.raises(TypeError, match="prod: chainrule does not support the keyword dtype="):
        x.prod(dtype=np.float32)


@pytest.mark.parametrize(
    "data",
    [
        [1.5, -2.0, 0.5, 3.0],  # no zero
        [1.5, 0.0, 0.5, 3.0],  # one zero
        [0.0, -2.0, 0.0, 3.0],  # two zeros
        [0.0, 0.0, 0.0, 0.0],  # all zeros
    ],
)
def test_prod_gradient_with_zeros(data: list[float]) -> None:
    x = cr.Tensor(data, requires_grad=True)
    x.prod().backward()
    assert np.array_equal(x.grad, _others(x.data))
    assert np.all(np.isfinite(x.grad))
    check(lambda a: a.prod(), x)
    check(lambda a: a.prod() * a.sum(), x)


def test_prod_gradient_along_an_axis_with_zeros() -> None:
    x = cr.Tensor([[2.0, 0.0, 3.0], [0.0, 0.0, 1.0], [1.0, 2.0, -1.0]], requires_grad=True)
    x.prod(dim=1).sum().backward()
    want = np.stack([_others(row) for row in x.data])
    assert np.array_equal(x.grad, want)
    check(lambda a: a.prod(dim=0) ** 2.0, x)
    check(lambda a: a.prod(dim=(0, 1), keepdim=True) * a, x)


# -- cumsum ----------------------------------------------------------------------


def test_cumsum_matches_numpy() -> None:
    x = leaf((2, 3, 4))
    for d in (0, 1, 2, -1):
        assert np.allclose(x.cumsum(d).data, np.cumsum(x.data, axis=d), rtol=1e-13)
        assert np.allclose(x.cumsum(dim=d).data, np.cumsum(x.data, axis=d), rtol=1e-13)
        assert np.allclose(x.cumsum(axis=d).data, np.cumsum(x.data, axis=d), rtol=1e-13)
        check(lambda a, d=d: a.cumsum(d) * a, x)
    assert cr.Tensor([1, 2, 3]).cumsum(0).tolist() == [1, 3, 6]
    s = cr.Tensor(2.0, requires_grad=True)
    assert s.cumsum(0).item() == 2.0 and s.cumsum(-1).requires_grad
    # d/dx_i of sum_k w_k y_k is sum_{k>=i} w_k
    v = leaf((4,))
    w = np.array([1.0, 2.0, 3.0, 4.0])
    v.cumsum(0).backward(w)
    assert np.array_equal(v.grad, [10.0, 9.0, 7.0, 4.0])


def test_cumsum_errors() -> None:
    x = cr.Tensor(np.ones((2, 3)))
    with pytest.raises(
        TypeError, match=r"cumsum: give the axis to sum along, as dim= \(or axis=\)"
    ):
        x.cumsum()
    with pytest.raises(ValueError, match="cumsum: axis 2 is out of range"):
        x.cumsum(2)
    with pytest.raises(TypeError, match="cumsum: got axis=1 and dim=0"):
        x.cumsum(0, axis=1)
    with pytest.raises(ValueError, match=r"cumsum: dim 1 is out of range .* 0-d"):
        cr.Tensor(1.0).cumsum(1)
    with pytest.raises(TypeError, match="cumsum: chainrule does not support the keyword dtype="):
        x.cumsum(0, dtype=np.float32)


# -- the function forms ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("sin", ()),
        ("cos", ()),
        ("exp2", ()),
        ("expm1", ()),
        ("square", ()),
        ("clamp", (-0.5, 0.5)),
        ("clone", ()),
        ("cumsum", (1,)),
        ("prod", (0,)),
        ("var", (1,)),
        ("std", (0,)),
        ("norm", (2, 1)),
        ("argmax", (1,)),
        ("argmin", (0,)),
        ("reshape", (3, 2)),
        ("flatten", ()),
        ("squeeze", ()),
        ("unsqueeze", (1,)),
        ("permute", ((1, 0),)),
        ("t", ()),
    ],
)
def test_function_forms_equal_the_methods(name: str, args: tuple[Any, ...]) -> None:
    x = leaf((2, 3))
    assert np.array_equal(getattr(cr, name)(x, *args).data, getattr(x, name)(*args).data)
    assert np.array_equal(
        getattr(cr, name)(x.data.tolist(), *args).data, getattr(x, name)(*args).data
    )


def test_positive_only_forms_through_their_function() -> None:
    x = leaf((2, 2), 0.5)
    for name in ("log2", "log1p", "rsqrt"):
        assert np.array_equal(getattr(cr, name)(x).data, getattr(x, name)().data)
    assert math.isclose(cr.log2(cr.Tensor(8.0)).item(), 3.0)
