"""Tensor constructors, spelled and defaulting as in PyTorch.

``zeros``, ``ones``, ``full``, ``arange``, ``linspace``, ``eye``, ``rand``,
``randn``, ``randint``, the ``*_like`` forms and ``from_numpy``.  Sizes may be
given as separate ints or as one tuple (``zeros(2, 3)`` or ``zeros((2, 3))``).
Each takes ``dtype=`` (a numpy dtype, or ``float``, ``int``, ``bool``) and
``requires_grad=`` (float dtypes only).

chainrule's default float is float64, so a float result is float64 unless
``dtype`` says otherwise (PyTorch's is float32); ``arange`` of ints and
``randint`` give int64, and ``full`` takes its dtype from the fill value.  The
random ones draw from the default generator that
:func:`chainrule.manual_seed` seeds, or from ``generator=`` (a
:class:`numpy.random.Generator`) when one is given.

>>> import chainrule as cr
>>> cr.zeros(2, 3).dtype, cr.arange(4).dtype, cr.full((2,), 7).dtype
(dtype('float64'), dtype('int64'), dtype('int64'))
>>> _ = cr.manual_seed(0)
>>> a = cr.randn(3)
>>> _ = cr.manual_seed(0)
>>> bool((cr.randn(3).data == a.data).all())
True
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import numpy as np

from .engine import Node
from .modes import Version
from .random import resolve
from .tensor import Tensor, _leaf, keyword_error

__all__ = [
    "arange",
    "eye",
    "from_numpy",
    "full",
    "full_like",
    "linspace",
    "ones",
    "ones_like",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "zeros",
    "zeros_like",
]

_FLOAT = np.dtype(np.float64)
_INT = np.dtype(np.int64)


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False, **unsupported: Any) -> Tensor:
    """A tensor of the given size filled with 0 (float64 unless ``dtype`` says otherwise).

    >>> import chainrule as cr
    >>> cr.zeros(2, 2)
    Tensor([[0., 0.],
            [0., 0.]])
    """
    _refuse("zeros", unsupported)
    dt = _dtype(dtype, _FLOAT, "zeros")
    return _new(np.zeros(_size(size, "zeros"), dt), requires_grad, "zeros")


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False, **unsupported: Any) -> Tensor:
    """A tensor of the given size filled with 1 (float64 unless ``dtype`` says otherwise)."""
    _refuse("ones", unsupported)
    dt = _dtype(dtype, _FLOAT, "ones")
    return _new(np.ones(_size(size, "ones"), dt), requires_grad, "ones")


def full(
    size: Any,
    fill_value: Any,
    *,
    dtype: Any = None,
    requires_grad: bool = False,
    **unsupported: Any,
) -> Tensor:
    """A tensor of the given size filled with ``fill_value``.

    The dtype follows the value, as in PyTorch: a bool gives bool, an int
    int64, a float float64.

    >>> import chainrule as cr
    >>> cr.full((2,), 1.5)
    Tensor([1.5, 1.5])
    """
    _refuse("full", unsupported)
    value = _number(fill_value, "full", "fill_value")
    dt = _dtype(dtype, _kind_of(value), "full")
    return _new(_filled(_size((size,), "full"), value, dt, "full"), requires_grad, "full")


def arange(
    start: Any = None,
    end: Any = None,
    step: Any = 1,
    *,
    dtype: Any = None,
    requires_grad: bool = False,
    **unsupported: Any,
) -> Tensor:
    """``start, start + step, ...`` up to but not including ``end``.

    ``arange(end)`` starts at 0.  All-int arguments give int64; a float among
    them gives float64.  A zero step, or a step pointing away from ``end``,
    is an error (as in PyTorch).

    >>> import chainrule as cr
    >>> cr.arange(1, 2, 0.25)
    Tensor([1.  , 1.25, 1.5 , 1.75])
    """
    _refuse("arange", unsupported)
    if end is None:
        if start is None:
            raise TypeError("arange: give an end, e.g. arange(5) or arange(0, 5, 1)")
        start, end = 0, start
    elif start is None:
        start = 0
    nums = [_number(v, "arange", n) for v, n in ((start, "start"), (end, "end"), (step, "step"))]
    for v, n in zip(nums, ("start", "end", "step"), strict=True):
        if isinstance(v, bool) or not math.isfinite(v):
            raise ValueError(f"arange: {n} must be a finite number, got {v!r}")
    lo, hi, st = nums
    if st == 0:
        raise ValueError("arange: step must not be zero")
    if (hi - lo) * st < 0:
        raise ValueError(
            f"arange: step {st} points away from end {hi} (start {lo}); "
            "give a step of the other sign"
        )
    every_int = all(isinstance(v, (int, np.integer)) for v in nums)
    dt = _dtype(dtype, _INT if every_int else _FLOAT, "arange")
    return _new(np.arange(lo, hi, st).astype(dt, copy=False), requires_grad, "arange")


def linspace(
    start: Any,
    end: Any,
    steps: int,
    *,
    dtype: Any = None,
    requires_grad: bool = False,
    **unsupported: Any,
) -> Tensor:
    """``steps`` evenly spaced numbers from ``start`` to ``end``, both included (float64).

    >>> import chainrule as cr
    >>> cr.linspace(0, 1, 5)
    Tensor([0.  , 0.25, 0.5 , 0.75, 1.  ])
    """
    _refuse("linspace", unsupported)
    lo = _number(start, "linspace", "start")
    hi = _number(end, "linspace", "end")
    n = _count(steps, "linspace", "steps")
    dt = _dtype(dtype, _FLOAT, "linspace")
    return _new(np.linspace(lo, hi, n).astype(dt, copy=False), requires_grad, "linspace")


def eye(
    n: int,
    m: int | None = None,
    *,
    dtype: Any = None,
    requires_grad: bool = False,
    **unsupported: Any,
) -> Tensor:
    """The n x m identity matrix (m = n unless given), float64 unless ``dtype`` says otherwise."""
    _refuse("eye", unsupported)
    rows = _count(n, "eye", "n")
    cols = rows if m is None else _count(m, "eye", "m")
    dt = _dtype(dtype, _FLOAT, "eye")
    return _new(np.eye(rows, cols, dtype=dt), requires_grad, "eye")


def rand(
    *size: Any,
    generator: np.random.Generator | None = None,
    dtype: Any = None,
    requires_grad: bool = False,
    **unsupported: Any,
) -> Tensor:
    """Uniform samples from [0, 1) of the given size (a float dtype; float64 by default).

    >>> import chainrule as cr
    >>> import numpy as np
    >>> x = cr.rand(2, 3, generator=np.random.default_rng(0))
    >>> x.shape, bool(((x.data >= 0) & (x.data < 1)).all())
    ((2, 3), True)
    """
    _refuse("rand", unsupported)
    shape = _size(size, "rand")
    dt = _float_dtype(dtype, "rand")
    return _new(_uniform(resolve(generator, "rand"), shape, dt), requires_grad, "rand")


def randn(
    *size: Any,
    generator: np.random.Generator | None = None,
    dtype: Any = None,
    requires_grad: bool = False,
    **unsupported: Any,
) -> Tensor:
    """Standard normal samples (mean 0, variance 1) of the given size, float64 by default."""
    _refuse("randn", unsupported)
    shape = _size(size, "randn")
    dt = _float_dtype(dtype, "randn")
    return _new(_normal(resolve(generator, "randn"), shape, dt), requires_grad, "randn")


def randint(
    low: Any,
    high: Any = None,
    size: Any = None,
    *,
    generator: np.random.Generator | None = None,
    dtype: Any = None,
    requires_grad: bool = False,
    **unsupported: Any,
) -> Tensor:
    """Integers drawn uniformly from [low, high), int64 unless ``dtype`` says otherwise.

    Called as in PyTorch: ``randint(high, size)`` or ``randint(low, high, size)``,
    the size a tuple.

    >>> import chainrule as cr
    >>> import numpy as np
    >>> x = cr.randint(3, 7, (4,), generator=np.random.default_rng(0))
    >>> x.dtype, bool(((x.data >= 3) & (x.data < 7)).all())
    (dtype('int64'), True)
    """
    _refuse("randint", unsupported)
    if size is None:
        if high is None:
            raise TypeError(
                "randint: give high and size, e.g. randint(10, (3,)) or randint(0, 10, (3,))"
            )
        low, high, size = 0, low, high  # randint(high, size)
    elif high is None:
        low, high = 0, low  # randint(high, size=...)
    lo = _integer(low, "randint", "low")
    hi = _integer(high, "randint", "high")
    if hi <= lo:
        raise ValueError(f"randint: high ({hi}) must be greater than low ({lo})")
    shape = _size((size,), "randint")
    dt = _dtype(dtype, _INT, "randint")
    data = resolve(generator, "randint").integers(lo, hi, shape, dtype=np.int64)
    return _new(data.astype(dt, copy=False), requires_grad, "randint")


def zeros_like(
    input: Any,  # noqa: A002
    *,
    dtype: Any = None,
    requires_grad: bool = False,
    **unsupported: Any,
) -> Tensor:
    """Zeros of ``input``'s shape and (unless ``dtype`` is given) dtype."""
    _refuse("zeros_like", unsupported)
    shape, dt = _like(input, dtype, "zeros_like")
    return _new(np.zeros(shape, dt), requires_grad, "zeros_like")


def ones_like(
    input: Any,  # noqa: A002
    *,
    dtype: Any = None,
    requires_grad: bool = False,
    **unsupported: Any,
) -> Tensor:
    """Ones of ``input``'s shape and (unless ``dtype`` is given) dtype."""
    _refuse("ones_like", unsupported)
    shape, dt = _like(input, dtype, "ones_like")
    return _new(np.ones(shape, dt), requires_grad, "ones_like")


def full_like(
    input: Any,  # noqa: A002
    fill_value: Any,
    *,
    dtype: Any = None,
    requires_grad: bool = False,
    **unsupported: Any,
) -> Tensor:
    """``fill_value`` in ``input``'s shape and (unless ``dtype`` is given) dtype."""
    _refuse("full_like", unsupported)
    value = _number(fill_value, "full_like", "fill_value")
    shape, dt = _like(input, dtype, "full_like")
    return _new(_filled(shape, value, dt, "full_like"), requires_grad, "full_like")


def rand_like(
    input: Any,  # noqa: A002
    *,
    generator: np.random.Generator | None = None,
    dtype: Any = None,
    requires_grad: bool = False,
    **unsupported: Any,
) -> Tensor:
    """Uniform samples from [0, 1) in ``input``'s shape and float dtype."""
    _refuse("rand_like", unsupported)
    shape, dt = _like(input, dtype, "rand_like")
    dt = _float_dtype(dt, "rand_like")
    return _new(_uniform(resolve(generator, "rand_like"), shape, dt), requires_grad, "rand_like")


def randn_like(
    input: Any,  # noqa: A002
    *,
    generator: np.random.Generator | None = None,
    dtype: Any = None,
    requires_grad: bool = False,
    **unsupported: Any,
) -> Tensor:
    """Standard normal samples in ``input``'s shape and float dtype."""
    _refuse("randn_like", unsupported)
    shape, dt = _like(input, dtype, "randn_like")
    dt = _float_dtype(dt, "randn_like")
    return _new(_normal(resolve(generator, "randn_like"), shape, dt), requires_grad, "randn_like")


def from_numpy(array: np.ndarray) -> Tensor:
    """A leaf Tensor holding ``array`` itself: no copy, the memory is shared.

    Changes made through the Tensor (in-place ops, ``t[i] = v``) show in the
    array, and are tracked as for any tensor.  Writes made through the numpy
    array are not tracked, as with writes to ``.data``: chainrule cannot see
    them, so a graph that already used the old numbers will not notice.
    To set ``requires_grad``, call ``.requires_grad_()`` on the result.

    >>> import numpy as np
    >>> import chainrule as cr
    >>> a = np.zeros(3)
    >>> t = cr.from_numpy(a)
    >>> _ = t.add_(1.0)
    >>> a
    array([1., 1., 1.])
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(
            f"from_numpy: expected a numpy.ndarray, got {type(array).__name__} "
            "(chainrule.tensor copies other data into a Tensor)"
        )
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"from_numpy: the array's dtype {array.dtype} is not supported; "
            "Tensors hold real numbers or booleans"
        )
    if type(array) is not np.ndarray:  # a subclass (masked, matrix): its plain array, same memory
        array = array.view(np.ndarray)
    t = _leaf(array, None)
    # Tensors made from one block of memory share one version, as views of each other
    # do: an in-place change through any of them is seen by graphs that used the others.
    version = _memory_version(array)
    version.share(t)
    t._vc = version
    return t


_MEMORY: dict[int, tuple[weakref.ref[np.ndarray], Version]] = {}


def _memory_version(array: np.ndarray) -> Version:
    """The Version of the memory ``array`` views (found through ``.base`` to its owner)."""
    root = array
    while isinstance(root.base, np.ndarray):
        root = root.base
    key = id(root)
    entry = _MEMORY.get(key)
    if entry is not None and entry[0]() is root:
        return entry[1]

    def forget(ref: weakref.ref[np.ndarray]) -> None:
        if _MEMORY.get(key, (None,))[0] is ref:
            del _MEMORY[key]

    version = Version()
    _MEMORY[key] = (weakref.ref(root, forget), version)
    return version


# ---------------------------------------------------------------------------
# Internals.
# ---------------------------------------------------------------------------

_PYTORCH_ONLY = {
    "device": "chainrule computes on the CPU with numpy; leave device out",
    "layout": "chainrule tensors are dense numpy arrays; leave layout out",
    "out": "chainrule returns a new tensor; assign the result instead",
    "pin_memory": "there is no device memory to pin; leave pin_memory out",
    "memory_format": "numpy arrays keep their own layout; leave memory_format out",
}


def _refuse(op: str, unsupported: dict[str, Any]) -> None:
    """Raise for a keyword ``op`` does not take, naming it and what to do instead."""
    if unsupported:
        word = next(iter(unsupported))
        why = _PYTORCH_ONLY.get(word, "it takes size, dtype= and requires_grad= (see its help)")
        raise keyword_error(op, word, why)


def _new(data: np.ndarray, requires_grad: bool, op: str) -> Tensor:
    t = _leaf(data, None)
    if requires_grad:
        if data.dtype.kind != "f":
            raise TypeError(
                f"{op}: only floating-point tensors can require grad; the result has dtype "
                f"{data.dtype} (give dtype=float)"
            )
        t.requires_grad = True
    return t


def _size(size: tuple[Any, ...], op: str) -> tuple[int, ...]:
    """The shape from ``f(2, 3)`` or ``f((2, 3))``; each entry a non-negative int."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    elif len(size) == 0:
        raise TypeError(f"{op}: give a size, e.g. {op}(2, 3), or {op}(()) for a 0-d tensor")
    for s in size:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(
                f"{op}: size must be ints, as in {op}(2, 3) or {op}((2, 3)); "
                f"got {s!r} ({type(s).__name__}) in {size!r}"
            )
        if s < 0:
            raise ValueError(f"{op}: size must not be negative, got {tuple(size)}")
    return tuple(int(s) for s in size)


def _dtype(dtype: Any, default: np.dtype[Any], op: str) -> np.dtype[Any]:
    if dtype is None:
        return default
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"{op}: dtype must be a numpy dtype, or float, int or bool; got {dtype!r}"
        ) from None
    if dt.kind not in "biuf":
        raise TypeError(f"{op}: dtype {dt} is not supported; Tensors hold real numbers or booleans")
    return dt


def _float_dtype(dtype: Any, op: str) -> np.dtype[Any]:
    dt = _dtype(dtype, _FLOAT, op)
    if dt.kind != "f":
        raise TypeError(f"{op}: draws floats; dtype must be a float type, got {dt}")
    return dt


def _number(x: Any, op: str, what: str) -> Any:
    if isinstance(x, Node):
        x = x.data
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x.item()
    if not isinstance(x, (bool, int, float, np.bool_, np.integer, np.floating)):
        raise TypeError(f"{op}: {what} must be a number, got {type(x).__name__} {x!r:.40}")
    return x


def _integer(x: Any, op: str, what: str) -> int:
    x = _number(x, op, what)
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{op}: {what} must be an int, got {x!r}")
    return int(x)


def _count(x: Any, op: str, what: str) -> int:
    n = _integer(x, op, what)
    if n < 0:
        raise ValueError(f"{op}: {what} must not be negative, got {n}")
    return n


def _kind_of(value: Any) -> np.dtype[Any]:
    """The default dtype for a fill value: bool, int64 or float64, as PyTorch's ``full``."""
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(value, (int, np.integer)):
        return _INT
    return _FLOAT


def _filled(shape: tuple[int, ...], value: Any, dt: np.dtype[Any], op: str) -> np.ndarray:
    try:
        with np.errstate(over="raise", invalid="raise"):
            return np.full(shape, value, dtype=dt)
    except (OverflowError, FloatingPointError, ValueError) as e:
        raise ValueError(f"{op}: fill value {value!r} does not fit dtype {dt}: {e}") from None


def _like(x: Any, dtype: Any, op: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """The shape and dtype of ``x`` (a Tensor, an array or a number), or ``dtype`` if given."""
    if isinstance(x, Node):
        data = np.asarray(x.data)
    else:
        try:
            data = np.asarray(x)
        except (TypeError, ValueError):
            data = np.asarray(None)
        if data.dtype.kind not in "biuf":
            raise TypeError(
                f"{op}: expected a Tensor or an array of numbers, got {type(x).__name__}"
            )
    return data.shape, _dtype(dtype, data.dtype, op)


def _uniform(gen: np.random.Generator, shape: tuple[int, ...], dt: np.dtype[Any]) -> np.ndarray:
    """Uniform [0, 1) in ``dt``; a value rounded up to 1 by a narrower dtype is moved below it."""
    if dt == np.float32:
        return gen.random(shape, dtype=np.float32)
    out = gen.random(shape).astype(dt, copy=False)
    if dt.itemsize < 8:
        np.minimum(out, np.nextafter(dt.type(1), dt.type(0)), out=out)
    return out


def _normal(gen: np.random.Generator, shape: tuple[int, ...], dt: np.dtype[Any]) -> np.ndarray:
    if dt == np.float32:
        return gen.standard_normal(shape, dtype=np.float32)
    return gen.standard_normal(shape).astype(dt, copy=False)
