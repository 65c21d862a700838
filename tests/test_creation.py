"""Constructors (zeros, ones, full, arange, linspace, eye, rand, randn, randint,
the *_like forms, from_numpy): computed, then compared with numpy."""

import re

import numpy as np
import pytest

import chainrule as cr


def says(*parts: str) -> str:
    """A pattern for ``pytest.raises(match=...)``: the message contains every part."""
    return "(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in parts)


SIZED = {"zeros": np.zeros, "ones": np.ones}
RANDOM = ["rand", "randn"]


@pytest.mark.parametrize("name", ["zeros", "ones"])
@pytest.mark.parametrize("size", [(2, 3), (4,), (0, 2), (1, 1, 2)], ids=str)
def test_zeros_ones_both_size_styles(name, size):
    f = getattr(cr, name)
    for t in (f(*size), f(size), f(list(size))):
        assert isinstance(t, cr.Tensor) and t.is_leaf
        assert t.shape == size and t.dtype == np.float64
        np.testing.assert_array_equal(t.data, SIZED[name](size))
        assert not t.requires_grad


@pytest.mark.parametrize("name", ["zeros", "ones"])
def test_zeros_ones_0d_dtype_and_grad(name):
    f = getattr(cr, name)
    assert f(()).shape == ()
    assert f(2, dtype=np.float32).dtype == np.float32
    assert f(2, dtype=int).dtype == np.int64
    assert f(2, dtype="bool").dtype == np.bool_
    t = f(2, 3, requires_grad=True)
    assert t.requires_grad and t.is_leaf
    (t * t).sum().backward()
    np.testing.assert_array_equal(t.grad, 2 * SIZED[name]((2, 3)))


def test_full():
    t = cr.full((2, 3), 1.5)
    np.testing.assert_array_equal(t.data, np.full((2, 3), 1.5))
    assert t.dtype == np.float64
    assert cr.full((2,), 7).dtype == np.int64  # the value decides, as in PyTorch
    assert cr.full((2,), True).dtype == np.bool_
    assert cr.full((2,), 7, dtype=np.float32).dtype == np.float32
    assert cr.full([3], -2.0, requires_grad=True).requires_grad


@pytest.mark.parametrize(
    "args,ref",
    [
        ((5,), np.arange(5)),
        ((2, 9, 3), np.arange(2, 9, 3)),
        ((5, 0, -2), np.arange(5, 0, -2)),
        ((3, 3), np.arange(3, 3)),
    ],
    ids=str,
)
def test_arange_of_ints_is_int64(args, ref):
    t = cr.arange(*args)
    assert t.dtype == np.int64
    np.testing.assert_array_equal(t.data, ref)


def test_arange_of_floats():
    t = cr.arange(0, 1, 0.1)
    assert t.dtype == np.float64
    np.testing.assert_allclose(t.data, np.arange(0, 1, 0.1))
    assert cr.arange(2.0).dtype == np.float64
    assert cr.arange(4, dtype=np.float32).dtype == np.float32
    assert cr.arange(end=3).tolist() == [0, 1, 2]
    x = cr.arange(3, dtype=float, requires_grad=True)
    assert x.requires_grad


def test_arange_errors():
    with pytest.raises(ValueError, match=says("arange", "step", "zero")):
        cr.arange(0, 5, 0)
    with pytest.raises(ValueError, match=says("arange", "step -1", "end 5")):
        cr.arange(0, 5, -1)
    with pytest.raises(TypeError, match=says("arange", "end")):
        cr.arange()
    with pytest.raises(ValueError, match=says("arange", "finite")):
        cr.arange(0, float("inf"))
    with pytest.raises(TypeError, match=says("arange", "only floating-point", "int64")):
        cr.arange(3, requires_grad=True)


@pytest.mark.parametrize("start,end,steps", [(0, 1, 5), (-2.5, 3, 7), (1, 1, 1), (0, 1, 0)])
def test_linspace(start, end, steps):
    t = cr.linspace(start, end, steps)
    assert t.dtype == np.float64 and t.shape == (steps,)
    np.testing.assert_array_equal(t.data, np.linspace(start, end, steps))
    assert cr.linspace(start, end, steps, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("n,m", [(3, None), (2, 4), (4, 2), (0, None)])
def test_eye(n, m):
    t = cr.eye(n, m)
    assert t.dtype == np.float64
    np.testing.assert_array_equal(t.data, np.eye(n, m))
    assert cr.eye(n, m, dtype=bool).dtype == np.bool_


@pytest.mark.parametrize("name", RANDOM)
def test_random_seeded_by_manual_seed(name):
    f = getattr(cr, name)
    cr.manual_seed(3)
    a = f(2, 3)
    b = f(2, 3)
    cr.manual_seed(3)
    c = f((2, 3))
    assert a.shape == (2, 3) and a.dtype == np.float64
    np.testing.assert_array_equal(a.data, c.data)
    assert not np.array_equal(a.data, b.data)
    # The same numbers numpy draws from a generator with that seed.
    g = np.random.default_rng(3)
    ref = g.random((2, 3)) if name == "rand" else g.standard_normal((2, 3))
    np.testing.assert_array_equal(a.data, ref)


@pytest.mark.parametrize("name", RANDOM)
def test_random_with_a_generator(name):
    f = getattr(cr, name)
    cr.manual_seed(0)
    before = cr.random.get_rng_state()
    a = f(4, generator=np.random.default_rng(11))
    b = f(4, generator=np.random.default_rng(11))
    np.testing.assert_array_equal(a.data, b.data)
    assert cr.random.get_rng_state() == before  # the default generator was not used
    with pytest.raises(TypeError, match=says(name, "numpy.random.Generator")):
        f(2, generator=11)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_rand_range_and_dtype(dtype):
    x = cr.rand(1000, dtype=dtype, generator=np.random.default_rng(0))
    assert x.dtype == dtype
    assert (x.data >= 0).all() and (x.data < 1).all()
    y = cr.randn(1000, dtype=dtype, generator=np.random.default_rng(0))
    assert y.dtype == dtype and abs(float(y.data.astype(np.float64).mean())) < 0.2


def test_rand_randn_refuse_int_dtype():
    for name in ("rand", "randn", "rand_like", "randn_like"):
        f = getattr(cr, name)
        arg = (cr.zeros(2),) if name.endswith("like") else (2,)
        with pytest.raises(TypeError, match=says(name, "float", "int64")):
            f(*arg, dtype=np.int64)
    with pytest.raises(TypeError, match=says("rand_like", "float", "int64")):
        cr.rand_like(cr.arange(3))


def test_random_requires_grad():
    x = cr.randn(3, requires_grad=True)
    assert x.requires_grad and x.is_leaf
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)


def test_randint():
    cr.manual_seed(5)
    a = cr.randint(10, (3, 4))
    cr.manual_seed(5)
    b = cr.randint(0, 10, (3, 4))
    assert a.dtype == np.int64 and a.shape == (3, 4)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(
        a.data, np.random.default_rng(5).integers(0, 10, (3, 4), dtype=np.int64)
    )
    c = cr.randint(-3, 2, size=(500,), generator=np.random.default_rng(1))
    assert c.data.min() >= -3 and c.data.max() < 2
    assert set(c.data.tolist()) == {-3, -2, -1, 0, 1}
    assert cr.randint(5, size=(2,)).data.max() < 5
    f = cr.randint(0, 4, (3,), dtype=np.float64, requires_grad=True)
    assert f.dtype == np.float64 and f.requires_grad
    with pytest.raises(ValueError, match=says("randint", "high (2)", "low (2)")):
        cr.randint(2, 2, (3,))
    with pytest.raises(TypeError, match=says("randint", "size")):
        cr.randint(5)
    with pytest.raises(TypeError, match=says("randint", "only floating-point")):
        cr.randint(5, (2,), requires_grad=True)


@pytest.mark.parametrize(
    "src", [cr.Tensor([[1.0, 2.0, 3.0]]), np.arange(4, dtype=np.float32), np.arange(3)]
)
def test_like(src):
    data = src.data if isinstance(src, cr.Tensor) else src
    for name, ref in (("zeros_like", np.zeros_like), ("ones_like", np.ones_like)):
        t = getattr(cr, name)(src)
        assert t.dtype == data.dtype
        np.testing.assert_array_equal(t.data, ref(data))
    t = cr.full_like(src, 3)
    assert t.dtype == data.dtype
    np.testing.assert_array_equal(t.data, np.full_like(data, 3))
    assert cr.zeros_like(src, dtype=np.float32).dtype == np.float32
    g = cr.ones_like(src, dtype=float, requires_grad=True)
    assert g.requires_grad and g.shape == data.shape
    if data.dtype.kind == "f":
        for name in ("rand_like", "randn_like"):
            r = getattr(cr, name)(src, generator=np.random.default_rng(0))
            assert r.shape == data.shape and r.dtype == data.dtype
            np.testing.assert_array_equal(
                r.data,
                getattr(cr, name[:-5])(
                    data.shape, dtype=data.dtype, generator=np.random.default_rng(0)
                ).data,
            )


def test_like_does_not_keep_the_graph():
    x = cr.Tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    z = cr.zeros_like(y)
    assert z.is_leaf and not z.requires_grad


def test_from_numpy_shares_memory():
    a = np.arange(6.0).reshape(2, 3)
    t = cr.from_numpy(a)
    assert t.data is a and t.is_leaf and t.dtype == np.float64
    a[0, 0] = 10.0  # untracked, like a write to .data, but visible
    assert t.data[0, 0] == 10.0
    ref = np.arange(6.0).reshape(2, 3)
    ref[0, 0] = 10.0
    with cr.no_grad():
        t.mul_(2.0)  # tracked, and seen through the array
    np.testing.assert_array_equal(a, ref * 2)
    t.requires_grad_()
    (t * t).sum().backward()
    np.testing.assert_array_equal(t.grad, 2 * a)


def test_from_numpy_keeps_int_dtype():
    a = np.arange(3, dtype=np.int32)
    assert cr.from_numpy(a).dtype == np.int32


def test_from_numpy_two_tensors_of_one_array_share_a_version():
    # A change through one must be seen by a graph that saved the other.
    a = np.ones(3)
    t1 = cr.from_numpy(a)
    t2 = cr.from_numpy(a[1:])
    w = cr.Tensor([2.0, 3.0], requires_grad=True)
    y = (w * t2).sum()
    with cr.no_grad():
        t1.add_(1.0)
    with pytest.raises(cr.InplaceError):
        y.backward()


def test_from_numpy_refuses_other_data():
    with pytest.raises(TypeError, match=says("from_numpy", "list", "chainrule.tensor")):
        cr.from_numpy([1.0, 2.0])
    with pytest.raises(TypeError, match=says("from_numpy", "complex")):
        cr.from_numpy(np.zeros(2, dtype=complex))


@pytest.mark.parametrize(
    "call,name,parts",
    [
        (lambda: cr.zeros(2, -1), "zeros", ("negative", "(2, -1)")),
        (lambda: cr.ones(2.0, 3), "ones", ("size must be ints", "2.0")),
        (lambda: cr.zeros(), "zeros", ("give a size",)),
        (lambda: cr.full((2, True), 1.0), "full", ("size must be ints",)),
        (lambda: cr.rand("3"), "rand", ("size must be ints",)),
        (lambda: cr.zeros(2, dtype="nonsense"), "zeros", ("dtype", "nonsense")),
        (lambda: cr.ones(2, dtype=complex), "ones", ("complex128", "not supported")),
        (lambda: cr.eye(-1), "eye", ("n must not be negative",)),
        (lambda: cr.linspace(0, 1, 2.5), "linspace", ("steps", "int")),
        (lambda: cr.full((2,), "a"), "full", ("fill_value", "number")),
        (lambda: cr.zeros_like("abc"), "zeros_like", ("Tensor or an array",)),
        (lambda: cr.full((2,), 1000, dtype=np.int8), "full", ("1000", "int8")),
        (lambda: cr.zeros(2, requires_grad=True, dtype=int), "zeros", ("only floating-point",)),
    ],
)
def test_bad_input_named(call, name, parts):
    with pytest.raises((TypeError, ValueError), match=says(f"{name}:", *parts)):
        call()


@pytest.mark.parametrize(
    "call,name,word",
    [
        (lambda: cr.zeros(2, device="cuda"), "zeros", "device"),
        (lambda: cr.randn(2, layout=None), "randn", "layout"),
        (lambda: cr.arange(3, out=None), "arange", "out"),
        (lambda: cr.ones_like(cr.zeros(2), memory_format=None), "ones_like", "memory_format"),
    ],
)
def test_pytorch_keywords_refused_by_name(call, name, word):
    with pytest.raises(TypeError, match=says(f"{name}:", f"{word}=", "does not support")):
        call()
