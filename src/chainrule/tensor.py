"""Tensor: a numpy array that records the operations applied to it.

Forward computations are numpy calls; derivatives come from the table in
:mod:`chainrule.rules`, through the same engine as :class:`~chainrule.Value`.
Every binary operation broadcasts as numpy does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, overload

import numpy as np

from . import rules as R
from .engine import Node, init_node
from .modes import INPLACE, STATE, Version, tick
from .naming import name_of
from .numerics import quietly, run_quietly
from .ops import Op

Axis = int | Sequence[int] | None


_SUM: Any = np.add.reduce  # what ndarray.sum calls, without its Python wrapper


def _arithmetic(
    op: Op, fn: Callable[[Any, Any], Any], reflected: bool = False
) -> Callable[[Tensor, Any], Tensor]:
    """The method for ``tensor <op> other`` (or, reflected, ``other <op> tensor``).

    A Tensor or a float operand is used as it is, with no call to check it:
    those are most operands, and an arithmetic op is the commonest call.
    """

    def method(self: Tensor, other: Any) -> Tensor:
        if other.__class__ is not float and not isinstance(other, Tensor):
            other = _operand(other, self, op.name)
        return (
            _apply_binary(op, fn, other, self) if reflected else _apply_binary(op, fn, self, other)
        )

    method.__name__ = f"__r{op.name}__" if reflected else f"__{op.name}__"
    method.__doc__ = op.doc
    return method


class Tensor(Node):
    """An n-dimensional array node.

    Args:
        data: anything ``numpy.array`` accepts (numbers, nested lists, arrays).
            The data is copied.  Python floats become float64; float32 input
            stays float32.
        requires_grad: whether gradients flow to it; only floating-point
            tensors can require grad.
        dtype: a numpy dtype to convert the data to.
        name: a label for pictures and explanations.

    ``.grad`` is None until a backward pass reaches the tensor, then a numpy
    array of the same shape and dtype as ``.data``.

    >>> from chainrule import Tensor
    >>> w = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, name="W")
    >>> x = Tensor([1.0, -1.0])
    >>> (w @ x).sigmoid().sum().backward()
    >>> w.grad.shape
    (2, 2)
    """

    __slots__ = ("_vc",)
    __array_ufunc__ = None  # numpy defers to our reflected operators

    #: The version of this tensor's memory, shared with its views; set only
    #: once the tensor is changed in place or viewed (see :class:`Version`).
    _vc: Version

    def __init__(
        self,
        data: Any,
        requires_grad: bool = False,
        dtype: Any = None,
        name: str | None = None,
    ) -> None:
        if isinstance(data, Tensor):
            data = data.data
        elif isinstance(data, Node):
            raise TypeError(
                f"Tensor: cannot make a Tensor from a {type(data).__name__} "
                "(use its .data to take the number)"
            )
        try:
            arr = np.array(data, dtype=dtype)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"Tensor: cannot make a numeric array from {_brief(data)}: {e}"
            ) from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(
                f"Tensor: data must be real numbers or booleans, got dtype {arr.dtype} "
                f"from {_brief(data)}"
            )
        init_node(self, arr)
        self.name = name
        if requires_grad:
            self.requires_grad_(True)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place (only float tensors can require grad)."""
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"requires_grad: only floating-point tensors can require grad; "
                f"{_label(self)} has dtype {self.data.dtype} (make it with dtype=float)"
            )
        if not requires_grad and self._op is not None:
            raise RuntimeError(
                f"requires_grad: {_label(self)} was computed by {self._op.name}; only a leaf's "
                "requires_grad can be switched off (use .detach() for a copy without graph)"
            )
        self.requires_grad = bool(requires_grad)
        return self

    # -- array attributes ------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.data.dtype

    def numel(self) -> int:
        """Number of elements."""
        return int(self.data.size)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len: a 0-d tensor has no length")
        return len(self.data)

    def item(self) -> float:
        """The single number inside a one-element tensor."""
        if STATE.tracing is not None:
            STATE.tracing.refuse(".item()", self)
        if self.data.size != 1:
            raise ValueError(
                f"item: only a tensor with one element can become a Python number; "
                f"{_label(self)} has shape {self.shape}"
            )
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The data as a numpy array (shared, not copied)."""
        if STATE.tracing is not None:
            STATE.tracing.refuse(".numpy()", self)
        return self.data

    def tolist(self) -> Any:
        if STATE.tracing is not None:
            STATE.tracing.refuse(".tolist()", self)
        return self.data.tolist()

    def __float__(self) -> float:
        """The number inside a one-element tensor, as a Python float (PyTorch's ``float(t)``)."""
        if STATE.tracing is not None:
            STATE.tracing.refuse("float()", self)
        return float(self.item())

    def __int__(self) -> int:
        """The number inside a one-element tensor, truncated to a Python int."""
        if STATE.tracing is not None:
            STATE.tracing.refuse("int()", self)
        return int(self.item())

    def __index__(self) -> int:
        """A one-element integer tensor used as an index (``range(t)``, ``seq[t]``)."""
        if STATE.tracing is not None:
            STATE.tracing.refuse("an index", self)
        if self.data.dtype.kind not in "iub":
            raise TypeError(
                f"index: only an integer tensor can be used as an index; {_label(self)} has "
                f"dtype {self.data.dtype}"
            )
        return int(self.item())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if STATE.tracing is not None:
            STATE.tracing.refuse("a numpy array", self)
        return self.data if dtype is None else self.data.astype(dtype)

    def detach(self) -> Tensor:
        """A new leaf sharing this data, with no graph and no grad.

        It shares the version of the memory too: changing either in place
        makes every saved use of both stale (backward through them raises).
        """
        t = _leaf(self.data, self.name)
        _view_of(self, t)
        if STATE.tracing is not None:  # chainrule.compile: recomputed at every call
            STATE.tracing.detach(t, self)
        return t

    def __bool__(self) -> bool:
        if STATE.tracing is not None:
            STATE.tracing.refuse("bool()", self)
        if self.data.size != 1:
            raise ValueError(
                f"bool: the truth value of a tensor of shape {self.shape} is ambiguous; "
                "use (t).data.any() or .all()"
            )
        return bool(self.data)

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        """What pickle and ``copy`` keep: every slot but the memory's version.

        A copy has memory of its own, so it starts with no version to share.
        """
        slots = {}
        for cls in type(self).__mro__:
            for name in getattr(cls, "__slots__", ()):
                if name not in ("__weakref__", "_vc") and hasattr(self, name):
                    slots[name] = getattr(self, name)
        return None, slots

    def __copy__(self) -> Tensor:
        """A shallow copy: it shares the data, and so the version of its memory."""
        twin = type(self).__new__(type(self))
        for name, value in self.__getstate__()[1].items():
            setattr(twin, name, value)
        _view_of(self, twin)
        return twin

    @classmethod
    def _wrap_grad(cls, g: Any) -> Tensor:
        return g if isinstance(g, Tensor) else _leaf(np.asarray(g), None)

    def __repr__(self) -> str:
        body = np.array2string(self.data, prefix="Tensor(", separator=", ")
        extra = ""
        if self.data.dtype not in (np.float64, np.int64, np.bool_):
            extra += f", dtype={self.data.dtype}"
        if self.requires_grad:
            extra += ", requires_grad=True"
        if self.name:
            extra += f", name={self.name!r}"
        return f"Tensor({body}{extra})"

    # -- arithmetic (all broadcast like numpy) -----------------------------
    __add__ = _arithmetic(R.ADD, np.add)
    __radd__ = _arithmetic(R.ADD, np.add, reflected=True)
    __sub__ = _arithmetic(R.SUB, np.subtract)
    __rsub__ = _arithmetic(R.SUB, np.subtract, reflected=True)
    __mul__ = _arithmetic(R.MUL, np.multiply)
    __rmul__ = _arithmetic(R.MUL, np.multiply, reflected=True)
    __truediv__ = _arithmetic(R.DIV, np.true_divide)
    __rtruediv__ = _arithmetic(R.DIV, np.true_divide, reflected=True)
    __pow__ = _arithmetic(R.POW, np.power)
    __rpow__ = _arithmetic(R.POW, np.power, reflected=True)

    def __matmul__(self, other: Any) -> Tensor:
        return _matmul(
            self, other if isinstance(other, Tensor) else _operand(other, self, "matmul")
        )

    def __rmatmul__(self, other: Any) -> Tensor:
        return _matmul(_operand(other, self, "matmul"), self)

    def __neg__(self) -> Tensor:
        try:
            data = np.negative(self.data)
        except TypeError:  # numpy defines no negative for booleans
            raise TypeError(
                f"neg (-a): {_label(self)} has dtype {self.dtype}, which has no negative; "
                "convert it first, e.g. with .astype(int) or .astype(float)"
            ) from None
        return _make(data, R.NEG, (self,))

    def __pos__(self) -> Tensor:
        return self

    # -- in-place changes ---------------------------------------------------
    # Every change moves on the version of the tensor's memory, which its views
    # share, so a backward step that saved these numbers before the change
    # raises instead of returning a wrong gradient.  A change whose new numbers
    # depend on something that requires grad is recorded: the tensor joins the
    # graph, as in PyTorch (see docs/reliability.md, "In-place changes").
    def __iadd__(self, other: Any) -> Tensor:
        return self._augmented("+=", R.ADD, np.add, other)

    def __isub__(self, other: Any) -> Tensor:
        return self._augmented("-=", R.SUB, np.subtract, other)

    def __imul__(self, other: Any) -> Tensor:
        return self._augmented("*=", R.MUL, np.multiply, other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self._augmented("/=", R.DIV, np.true_divide, other)

    def add_(self, other: Any, *, alpha: float = 1.0) -> Tensor:
        """In place: ``self += alpha * other`` (PyTorch's ``add_``)."""
        return self._apply_in_place("add_", R.ADD, np.add, _scaled(other, alpha, self, "add_"))

    def sub_(self, other: Any, *, alpha: float = 1.0) -> Tensor:
        """In place: ``self -= alpha * other``."""
        return self._apply_in_place("sub_", R.SUB, np.subtract, _scaled(other, alpha, self, "sub_"))

    def mul_(self, other: Any) -> Tensor:
        """In place: ``self *= other``."""
        return self._apply_in_place("mul_", R.MUL, np.multiply, other)

    def copy_(self, src: Any) -> Tensor:
        """In place: overwrite every element with ``src`` (broadcast to this shape)."""
        return self._assign("copy_", ..., src, "same_kind")

    def zero_(self) -> Tensor:
        """In place: set every element to 0."""
        return self._assign("zero_", ..., 0.0, "unsafe")

    def fill_(self, value: float) -> Tensor:
        """In place: set every element to ``value``."""
        return self._assign("fill_", ..., value, "unsafe")

    def __setitem__(self, index: Any, value: Any) -> None:
        self._assign("setitem", _numpy_index(index), value, "unsafe")

    def _augmented(self, name: str, op: Op, fn: Callable[..., Any], other: Any) -> Tensor:
        """``self <op>= other``.

        When the result carries a graph (``self`` is an intermediate, or
        ``other`` requires grad), the name is rebound to a new node, exactly as
        ``x = x <op> other`` would: every value the old node fed keeps its
        meaning, and the result keeps ``self``'s dtype.  Otherwise the numbers
        change in place.
        """
        other = _operand(other, self, name)
        if (
            STATE.grad and (self._op is not None or (not self.requires_grad and _tracked(other)))
        ) or _carries_tangent(self, other):
            out = _apply_binary(op, fn, self, other)
            if out.data.dtype == self.data.dtype:
                return out
            if not np.can_cast(out.data.dtype, self.data.dtype, "same_kind"):
                raise TypeError(
                    f"{name}: cannot store a result of dtype {out.data.dtype} in {_label(self)} "
                    f"of dtype {self.data.dtype}"
                )
            return out.astype(self.data.dtype)
        return self._apply_in_place(name, op, fn, other)

    def _apply_in_place(self, name: str, op: Op, fn: Callable[..., Any], other: Any) -> Tensor:
        """In place: ``self = fn(self, other)``, recorded as ``op`` when it carries a gradient."""
        return self._change(
            name, lambda a, b: fn(a, b, out=a, casting="same_kind"), other, op, None
        )

    def _assign(self, name: str, index: Any, value: Any, casting: str) -> Tensor:
        """In place: ``self[index] = value``, recorded as ``setitem`` when it carries a gradient."""

        def write(a: np.ndarray, b: Any) -> None:
            if index is ...:
                np.copyto(a, b, casting=casting)  # type: ignore[arg-type]
            else:
                a[index] = b

        return self._change(name, write, value, R.SETITEM, index)

    def _change(
        self, name: str, write: Callable[[np.ndarray, Any], Any], value: Any, op: Op, ctx: Any
    ) -> Tensor:
        """Run ``write(self.data, value)`` in place and keep every gradient right.

        With grad mode on, a change that involves a gradient (``self`` is part
        of a graph, or ``value`` requires grad) is recorded as ``op`` with
        operands ``(old self, value)``: ``self`` becomes that node, and the node
        it was before moves to a new object holding the old numbers.
        """
        value = _operand(value, self, name)
        if STATE.tracing is not None:
            STATE.tracing.refuse_change(name, self)
        if _carries_tangent(self, value):
            raise RuntimeError(
                f"{name}: {_label(self)} or the value written carries a forward-mode tangent "
                "(inside func.jvp, jacfwd or hessian); an in-place change would leave the "
                "tangent behind. Compute a new tensor instead (for example t = t * 2, or "
                "cr.where for a masked change)"
            )
        recorded = STATE.grad and (self.requires_grad or _tracked(value))
        before = None
        if recorded:
            self._check_recordable(name, op, ctx)
            before = self.data.copy()
        v = _data(value)
        try:
            quietly(write, self.data, v)
        except (ValueError, TypeError, IndexError) as e:
            if name == "setitem":
                why = (
                    f"cannot assign a value of shape {np.shape(v)} to index {ctx!r:.60} of "
                    f"{_label(self)} (shape {self.shape})"
                )
            elif isinstance(e, TypeError):
                why = f"cannot store the result in {_label(self)} of dtype {self.dtype}"
            else:
                why = (
                    f"cannot apply a value of shape {np.shape(v)} in place to {_label(self)} "
                    f"of shape {self.shape}"
                )
            kind = next(k for k in (TypeError, IndexError, ValueError) if isinstance(e, k))
            raise kind(f"{name}: {why}: {e}") from None
        self._bump()
        if before is not None:
            self._join_graph(op, before, value, ctx)
        return self

    def _check_recordable(self, name: str, op: Op, ctx: Any) -> None:
        """Refuse an in-place change whose gradient chainrule could not get right."""
        if self._op is None and self.requires_grad:
            raise RuntimeError(
                f"{name}: {_label(self)} is a leaf that requires grad; changing it in place "
                "would corrupt the gradients of graphs that use it. Do it inside "
                "chainrule.no_grad(), as optimizers do"
            )
        version = getattr(self, "_vc", None)
        for other in version.others(self) if version is not None else ():
            if other._op is None:  # a leaf: it would hold the new numbers with no graph
                kind = "requires grad" if other.requires_grad else "is a constant"
                raise RuntimeError(
                    f"{name}: {_label(self)} shares its memory with another tensor"
                    f"{' ' + repr(other.name) if other.name else ''} of shape {other.shape} "
                    f"(one is a view of the other), which {kind}; the numbers written depend "
                    "on tensors that require grad, and that tensor would hold them with no "
                    "graph behind it. Write into a tensor with memory of its own "
                    "(cr.Tensor(t) makes a copy)"
                )
        if op is R.SETITEM and _repeats(self.shape, ctx):
            raise RuntimeError(
                f"{name}: index {ctx!r:.60} names some elements of {_label(self)} more than "
                "once; with a gradient to record, each element may be written only once"
            )

    def _join_graph(self, op: Op, before: np.ndarray, value: Any, ctx: Any) -> None:
        """Make ``self`` the node ``op(old self, value)`` after an in-place change."""
        old: Any = before  # a constant until now: its old numbers are a constant operand
        if self._op is not None:
            # An intermediate: its node moves to a new object with the old numbers,
            # so the rules of that node (and of this one) still see what they saw.
            old = _leaf(before, None)
            old.requires_grad = True
            old._op, old._parents, old._ctx = self._op, self._parents, self._ctx
            old._seq, old.grad = self._seq, self.grad
            for slot in ("_scope", "_trace"):
                if hasattr(self, slot):
                    setattr(old, slot, getattr(self, slot))
        name = self.name
        # A fresh stamp, newer than the change, so this node itself is not stale.
        init_node(self, self.data, op, (old, value), ctx, recorded=True)
        self.name = name

    def _bump(self) -> None:
        version = getattr(self, "_vc", None)
        if version is None:
            version = self._vc = Version()
        version.tick = INPLACE.last = tick()

    # -- comparisons: boolean tensors with no graph ------------------------
    def __lt__(self, other: Any) -> Tensor:
        return _compare(np.less, self, other, "<")

    def __le__(self, other: Any) -> Tensor:
        return _compare(np.less_equal, self, other, "<=")

    def __gt__(self, other: Any) -> Tensor:
        return _compare(np.greater, self, other, ">")

    def __ge__(self, other: Any) -> Tensor:
        return _compare(np.greater_equal, self, other, ">=")

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _compare(np.equal, self, other, "==")

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _compare(np.not_equal, self, other, "!=")

    __hash__ = Node.__hash__

    # -- elementwise functions ---------------------------------------------
    def exp(self) -> Tensor:
        return _make(quietly(np.exp, self.data), R.EXP, (self,))

    def log(self) -> Tensor:
        return _make(quietly(np.log, self.data), R.LOG, (self,))

    def tanh(self) -> Tensor:
        return _make(np.tanh(self.data), R.TANH, (self,))

    def sigmoid(self) -> Tensor:
        try:  # (quietly, spelled out: sigmoid is among the commonest ops)
            data = run_quietly(_sigmoid, self.data)
        except RuntimeError:  # the quiet context is busy
            data = quietly(_sigmoid, self.data)
        return _make(data, R.SIGMOID, (self,))

    def relu(self) -> Tensor:
        return _make(np.maximum(self.data, 0), R.RELU, (self,))

    def abs(self) -> Tensor:
        return _make(np.abs(self.data), R.ABS, (self,))

    def sqrt(self) -> Tensor:
        return _make(quietly(np.sqrt, self.data), R.SQRT, (self,))

    def erf(self) -> Tensor:
        """The error function, elementwise; derivative 2 exp(-x^2)/sqrt(pi)."""
        return _make(R.erf(self.data), R.ERF, (self,))

    def sin(self) -> Tensor:
        """Sine, elementwise; d sin(x)/dx = cos(x)."""
        return _make(quietly(np.sin, self.data), R.SIN, (self,))

    def cos(self) -> Tensor:
        """Cosine, elementwise; d cos(x)/dx = -sin(x)."""
        return _make(quietly(np.cos, self.data), R.COS, (self,))

    def exp2(self) -> Tensor:
        """``2 ** x``, elementwise; d 2^x/dx = ln(2) 2^x.

        >>> from chainrule import Tensor
        >>> Tensor([0.0, 3.0, -1.0]).exp2()
        Tensor([1. , 8. , 0.5])
        """
        return _make(quietly(np.exp2, self.data), R.EXP2, (self,))

    def log2(self) -> Tensor:
        """Base-2 logarithm, elementwise (exact at powers of 2); d log2(x)/dx = 1/(x ln 2)."""
        return _make(quietly(np.log2, self.data), R.LOG2, (self,))

    def log1p(self) -> Tensor:
        """``log(1 + x)``, accurate where x is tiny; d/dx = 1/(1 + x)."""
        return _make(quietly(np.log1p, self.data), R.LOG1P, (self,))

    def expm1(self) -> Tensor:
        """``exp(x) - 1``, accurate where x is tiny; d/dx = exp(x)."""
        return _make(quietly(np.expm1, self.data), R.EXPM1, (self,))

    def square(self) -> Tensor:
        """``x * x``; the product's rule gives the derivative 2x, at every order exactly."""
        return self * self

    def rsqrt(self) -> Tensor:
        """``1 / sqrt(x)``, a quotient of the table's sqrt: d/dx = -1 / (2 x^(3/2))."""
        return 1.0 / self.sqrt()

    def softplus(self) -> Tensor:
        """``log(1 + e^x)`` without overflow; d/dx = sigmoid(x) (see ``nn.functional.softplus``)."""
        return _make(np.logaddexp(0.0, self.data), R.SOFTPLUS, (self,))

    def pow(self, exponent: Any) -> Tensor:
        """``self ** exponent`` (PyTorch's spelling): d/dx x^p = p x^(p-1)."""
        return self**exponent

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        """Limit values to [min, max]; the gradient is zero where clipped."""
        lo = -np.inf if min is None else float(min)
        hi = np.inf if max is None else float(max)
        if lo > hi:
            raise ValueError(f"clip: min ({lo}) is greater than max ({hi})")
        return _make(np.clip(self.data, lo, hi), R.CLIP, (self,), (lo, hi))

    def clamp(
        self,
        min: float | None = None,  # noqa: A002
        max: float | None = None,  # noqa: A002
    ) -> Tensor:
        """Limit values to [min, max], PyTorch's ``clamp``; either bound may be left out.

        The gradient passes where min <= x <= max (both ends included) and is
        0 where x was clamped, as in PyTorch.  When min > max every element
        becomes max, as in PyTorch (:meth:`clip` refuses such bounds).

        >>> from chainrule import Tensor
        >>> Tensor([-2.0, 0.5, 3.0]).clamp(min=0.0, max=1.0)
        Tensor([0. , 0.5, 1. ])
        """
        if min is None and max is None:
            raise TypeError("clamp: give min=, max= or both; with neither there is nothing to do")
        lo = -np.inf if min is None else _bound(min, "min", "clamp")
        hi = np.inf if max is None else _bound(max, "max", "clamp")
        return _make(quietly(np.clip, self.data, min, max), R.CLIP, (self,), (lo, hi))

    def clamp_min(self, min: float) -> Tensor:  # noqa: A002
        """``clamp(min=min)``: values below ``min`` become ``min`` (and get no gradient)."""
        return self.clamp(min=min)

    def clamp_max(self, max: float) -> Tensor:  # noqa: A002
        """``clamp(max=max)``: values above ``max`` become ``max`` (and get no gradient)."""
        return self.clamp(max=max)

    def astype(self, dtype: Any) -> Tensor:
        """The same values in another dtype (differentiable between float types)."""
        dt = np.dtype(dtype)
        if dt == self.data.dtype:
            return self
        if self.requires_grad and dt.kind != "f":
            raise TypeError(
                f"astype: {_label(self)} requires grad, so it can only become another "
                f"float type, not {dt}"
            )
        # A float64 beyond float32's range becomes inf, as IEEE rounding says, without a warning.
        return _make(quietly(self.data.astype, dt), R.ASTYPE, (self,))

    # -- reductions ---------------------------------------------------------
    # Over an empty axis (size 0) they follow PyTorch: the sum is 0, the mean
    # 0/0 = nan, logsumexp log(0) = -inf, softmax and log_softmax give empty
    # results, and max/min raise, having no value to give.
    def sum(
        self,
        axis: Axis = None,
        keepdims: bool | None = None,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
        **unsupported: Any,
    ) -> Tensor:
        """Sum over ``axis`` (an int, a tuple, or None for all); ``dim``/``keepdim`` are aliases.

        The derivative of a sum by each of its terms is 1, so the gradient is
        copied back over the summed axes.  A sum of no numbers is 0.
        """
        # (_reduction_args written out: the commonest reduction, and the call costs 0.5%
        # of a small training step)
        if unsupported:
            raise _refused("sum", unsupported)
        keep = bool(keepdims) if keepdim is None else _keepdim(keepdims, keepdim, "sum")
        ax = _axes(self, axis, dim, "sum")
        try:  # (quietly, spelled out; np.add.reduce(x, axis, dtype, out, keepdims))
            data = run_quietly(_SUM, self.data, ax, None, None, keep)
        except RuntimeError:  # the quiet context is busy
            data = quietly(_SUM, self.data, ax, None, None, keep)
        return _make(data, R.SUM, (self,), (ax, keep))

    def mean(
        self,
        axis: Axis = None,
        keepdims: bool | None = None,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
        **unsupported: Any,
    ) -> Tensor:
        """Mean over ``axis``; ``dim``/``keepdim`` are aliases.

        Each of the n averaged elements has derivative 1/n.  The mean of no
        numbers is nan (0/0), as in numpy and PyTorch, without a warning.

        >>> from chainrule import Tensor
        >>> Tensor([[1.0, 2.0], [3.0, 5.0]]).mean(axis=1)
        Tensor([1.5, 4. ])
        """
        ax, keep = _reduction_args(self, "mean", axis, dim, keepdims, keepdim, unsupported)
        x = self.data
        if x.size:
            data = quietly(x.mean, axis=ax, keepdims=keep)
        else:  # numpy's mean would warn about the empty slices; their sum is 0, and 0/0 nan
            n = 0 if ax is None else math.prod(x.shape[a] for a in ax)
            data = quietly(np.true_divide, _SUM(x, axis=ax, keepdims=keep), n)
        return _make(data, R.MEAN, (self,), (ax, keep))

    @overload
    def max(
        self,
        axis: Axis = ...,
        keepdims: bool | None = ...,
        *,
        dim: None = ...,
        keepdim: bool | None = ...,
        **unsupported: Any,
    ) -> Tensor: ...
    @overload
    def max(
        self,
        axis: Axis = ...,
        keepdims: bool | None = ...,
        *,
        dim: int,
        keepdim: bool | None = ...,
        **unsupported: Any,
    ) -> ValuesIndices: ...
    def max(
        self,
        axis: Axis = None,
        keepdims: bool | None = None,
        *,
        dim: int | None = None,
        keepdim: bool | None = None,
        **unsupported: Any,
    ) -> Tensor | ValuesIndices:
        """Largest element over ``axis``; tied maxima share the gradient evenly.

        Called PyTorch's way, with ``dim=`` (one axis), it returns the named
        tuple ``(values, indices)``, the indices an int64 Tensor without grad;
        with ``axis`` (keyword or positional) it returns the values only, as
        numpy does.  An empty axis has no largest element: reducing over one raises.

        >>> from chainrule import Tensor
        >>> Tensor([[1.0, 5.0], [7.0, 2.0]]).max(dim=1)
        ValuesIndices(values=Tensor([5., 7.]), indices=Tensor([1, 0]))
        """
        ax, keep = _reduction_args(self, "max", axis, dim, keepdims, keepdim, unsupported)
        if _reduces_empty(self.data.shape, ax):
            raise _empty_reduction("max", self, ax)
        values = _make(self.data.max(axis=ax, keepdims=keep), R.MAX, (self,), (ax, keep))
        if dim is None:
            return values
        return ValuesIndices(values, _indices(self, np.argmax, ax, keep, dim, "max"))

    @overload
    def min(
        self,
        axis: Axis = ...,
        keepdims: bool | None = ...,
        *,
        dim: None = ...,
        keepdim: bool | None = ...,
        **unsupported: Any,
    ) -> Tensor: ...
    @overload
    def min(
        self,
        axis: Axis = ...,
        keepdims: bool | None = ...,
        *,
        dim: int,
        keepdim: bool | None = ...,
        **unsupported: Any,
    ) -> ValuesIndices: ...
    def min(
        self,
        axis: Axis = None,
        keepdims: bool | None = None,
        *,
        dim: int | None = None,
        keepdim: bool | None = None,
        **unsupported: Any,
    ) -> Tensor | ValuesIndices:
        """Smallest element over ``axis`` (as ``-max(-x)``); ``dim=`` gives (values, indices).

        The keywords and the empty-axis rule are those of :meth:`max`.
        """
        # (min's own arguments, so a bad axis is reported as min's, not max's)
        ax, keep = _reduction_args(self, "min", axis, dim, keepdims, keepdim, unsupported)
        if _reduces_empty(self.data.shape, ax):
            raise _empty_reduction("min", self, ax)
        values = -((-self).max(ax, keep))
        if dim is None:
            return values
        return ValuesIndices(values, _indices(self, np.argmin, ax, keep, dim, "min"))

    def logsumexp(
        self,
        axis: Axis = None,
        keepdims: bool | None = None,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
        **unsupported: Any,
    ) -> Tensor:
        """``log(sum(exp(x)))`` over ``axis``, computed without overflow.

        Its derivative by x_i is e^x_i / sum_j e^x_j = softmax(x)_i.  Over an
        empty axis it is log(0) = -inf.  ``dim``/``keepdim`` are aliases.

        >>> from chainrule import Tensor
        >>> Tensor([[0.0, 0.0], [1.0, 1.0]]).logsumexp(axis=1).data.round(4)
        array([0.6931, 1.6931])
        """
        ax, keep = _reduction_args(self, "logsumexp", axis, dim, keepdims, keepdim, unsupported)
        return _make(quietly(_logsumexp, self.data, ax, keep), R.LOGSUMEXP, (self,), (ax, keep))

    def softmax(
        self, axis: int | None = -1, *, dim: int | None = None, **unsupported: Any
    ) -> Tensor:
        """``exp(x) / sum(exp(x))`` along one axis, computed without overflow.

        With s = softmax(x), ds_i/dx_j = s_i (delta_ij - s_j).
        """
        if unsupported:
            raise _refused("softmax", unsupported, _ONE_AXIS)
        ax = _one_axis(self, axis, dim, "softmax")
        return _make(quietly(_softmax, self.data, ax), R.SOFTMAX, (self,), ax)

    def log_softmax(
        self, axis: int | None = -1, *, dim: int | None = None, **unsupported: Any
    ) -> Tensor:
        """``x - logsumexp(x)`` along one axis, computed without overflow.

        Its derivative: d(log_softmax(x)_i)/dx_j = delta_ij - softmax(x)_j.
        """
        if unsupported:
            raise _refused("log_softmax", unsupported, _ONE_AXIS)
        ax = _one_axis(self, axis, dim, "log_softmax")
        return _make(R.log_softmax(self.data, ax), R.LOG_SOFTMAX, (self,), ax)

    def prod(
        self,
        dim: Axis = None,
        keepdim: bool | None = None,
        *,
        axis: Axis = None,
        keepdims: bool | None = None,
        **unsupported: Any,
    ) -> Tensor:
        """Product over ``dim`` (an int, a tuple, or None for all); ``axis``/``keepdims`` too.

        d prod/dx_i is the product of the other elements, computed without
        dividing by x_i: right with one zero (only that element's gradient is
        nonzero) and with several (every gradient is 0).  An empty product is 1.

        >>> from chainrule import Tensor
        >>> x = Tensor([2.0, 0.0, 5.0], requires_grad=True)
        >>> x.prod().backward()
        >>> x.grad
        array([ 0., 10.,  0.])
        """
        ax, keep = _reduction_args(self, "prod", axis, dim, keepdims, keepdim, unsupported)
        data = quietly(np.prod, self.data, axis=ax, keepdims=keep)
        return _make(data, R.PROD, (self,), (ax, keep))

    def cumsum(
        self, dim: int | None = None, *, axis: int | None = None, **unsupported: Any
    ) -> Tensor:
        """Running sum along ``dim`` (or ``axis``), which must be given, as in PyTorch.

        y_k = x_1 + ... + x_k, so the gradient of x_i is the sum of the
        incoming gradients at positions k >= i.

        >>> from chainrule import Tensor
        >>> Tensor([[1.0, 2.0, 3.0]]).cumsum(1)
        Tensor([[1., 3., 6.]])
        """
        if unsupported:
            raise _refused("cumsum", unsupported, _ONE_AXIS)
        if dim is None and axis is None:
            raise TypeError(
                "cumsum: give the axis to sum along, as dim= (or axis=), e.g. x.cumsum(0)"
            )
        if self.data.ndim == 0:  # a 0-d tensor has the axes 0 and -1 of a 1-element one
            _dim_of_scalar(self, _either(axis, dim, "cumsum", None), "cumsum")
            return self.clone()
        ax = _one_axis(self, axis, dim, "cumsum")
        return _make(quietly(np.cumsum, self.data, axis=ax), R.CUMSUM, (self,), ax)

    def var(
        self,
        dim: Axis | bool = None,
        unbiased: bool | None = None,
        keepdim: bool | None = None,
        *,
        correction: float | None = None,
        axis: Axis = None,
        keepdims: bool | None = None,
        ddof: float | None = None,
        **unsupported: Any,
    ) -> Tensor:
        """Variance over ``dim``: sum((x - mean)^2) / max(0, N - correction).

        ``correction`` is 1 by default (Bessel's correction, PyTorch's default,
        also when called numpy's way); ``unbiased=False`` is ``correction=0``,
        and ``ddof`` is numpy's name for ``correction``.  It is built from
        mean, subtraction, product and sum, so d var/dx_i =
        2 (x_i - mean) / (N - correction) comes from their rules, at every order.

        >>> from chainrule import Tensor
        >>> Tensor([1.0, 2.0, 3.0, 4.0]).var()
        Tensor(1.66666667)
        """
        d, ax, keep, dof = _deviations(
            self, "var", dim, unbiased, keepdim, correction, axis, keepdims, ddof, unsupported
        )
        return (d * d).sum(ax, keep) / dof

    def std(
        self,
        dim: Axis | bool = None,
        unbiased: bool | None = None,
        keepdim: bool | None = None,
        *,
        correction: float | None = None,
        axis: Axis = None,
        keepdims: bool | None = None,
        ddof: float | None = None,
        **unsupported: Any,
    ) -> Tensor:
        """Standard deviation over ``dim``: the square root of :meth:`var` (same arguments).

        It is computed as ||x - mean|| / sqrt(N - correction) with the table's
        Euclidean norm, so where every element is equal the gradient is 0, as
        PyTorch gives it, not 0/0.

        >>> from chainrule import Tensor
        >>> Tensor([[1.0, 3.0], [2.0, 2.0]]).std(dim=1)
        Tensor([1.41421356, 0.        ])
        """
        d, ax, keep, dof = _deviations(
            self, "std", dim, unbiased, keepdim, correction, axis, keepdims, ddof, unsupported
        )
        if dof > 0:
            return _norm2(d, ax, keep) / math.sqrt(dof)
        return ((d * d).sum(ax, keep) / dof).sqrt()  # nan or inf, as PyTorch's

    def norm(
        self,
        p: float | str = "fro",
        dim: Axis = None,
        keepdim: bool | None = None,
        *,
        axis: Axis = None,
        keepdims: bool | None = None,
        **unsupported: Any,
    ) -> Tensor:
        """The vector p-norm over ``dim`` (all elements by default), as PyTorch's ``Tensor.norm``.

        ``p`` is 2 (or ``'fro'``, the default: the same numbers), 1, ``inf``,
        ``-inf`` or another nonzero number: (sum |x|^p)^(1/p).  For p = 2,
        d||x||/dx = x/||x||, and 0 at x = 0, as in PyTorch; p = 1 and inf are
        ``abs().sum()`` and ``abs().max()``.  (For 0 < p < 1 the gradient at
        an element equal to 0 is nan, where PyTorch gives 0.)

        >>> from chainrule import Tensor
        >>> Tensor([[3.0, 4.0], [1.0, -1.0]]).norm(dim=1, p=1)
        Tensor([7., 2.])
        """
        ax, keep = _reduction_args(self, "norm", axis, dim, keepdims, keepdim, unsupported)
        if isinstance(p, str):
            if p != "fro":
                raise ValueError(
                    f"norm: p={p!r} is not supported; chainrule has the vector norms: "
                    "p='fro' (the same as 2), a number, inf or -inf"
                )
            p = 2.0
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
            raise TypeError(f"norm: p must be a number or 'fro', got {type(p).__name__} {p!r:.30}")
        p = float(p)
        if p == 2.0:
            return _norm2(self, ax, keep)
        if p == 1.0:
            return self.abs().sum(ax, keep)
        if p == math.inf:
            return self.abs().max(ax, keep)
        if p == -math.inf:
            return self.abs().min(ax, keep)
        if p == 0.0 or math.isnan(p):
            raise ValueError(
                f"norm: p={p} is not supported (p=0 counts the nonzero elements: use "
                "(x != 0).sum() for that)"
            )
        total = (self.abs() ** p).sum(ax, keep)
        zero = total.data == 0
        if not zero.any():
            return total ** (1.0 / p)
        # An all-zero slice has norm 0 and, as PyTorch takes it, gradient 0: the root's
        # slope there (infinite) is kept out of the graph rather than multiplied by 0.
        return where(zero, 0.0, where(zero, 1.0, total) ** (1.0 / p))

    def argmax(
        self,
        dim: int | None = None,
        keepdim: bool | None = None,
        *,
        axis: int | None = None,
        keepdims: bool | None = None,
        **unsupported: Any,
    ) -> Tensor:
        """Index of the largest element along ``dim``, or in the flattened tensor without one.

        An int64 Tensor that does not require grad (an index has no
        derivative).  A NaN counts as the largest, as in numpy and PyTorch.

        >>> from chainrule import Tensor
        >>> Tensor([[1.0, 5.0], [7.0, 2.0]]).argmax(dim=1)
        Tensor([1, 0])
        """
        return _arg_index(self, np.argmax, "argmax", axis, dim, keepdims, keepdim, unsupported)

    def argmin(
        self,
        dim: int | None = None,
        keepdim: bool | None = None,
        *,
        axis: int | None = None,
        keepdims: bool | None = None,
        **unsupported: Any,
    ) -> Tensor:
        """Index of the smallest element along ``dim`` (see :meth:`argmax`)."""
        return _arg_index(self, np.argmin, "argmin", axis, dim, keepdims, keepdim, unsupported)

    # -- shape ----------------------------------------------------------------
    def reshape(self, *shape: Any) -> Tensor:
        """The same elements in a new shape (one entry may be -1)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        try:
            data = np.reshape(self.data, shape)
        except (ValueError, TypeError):
            raise ValueError(
                f"reshape: cannot reshape {_label(self)} of shape {self.shape} "
                f"({self.data.size} elements) into shape {tuple(shape)}"
            ) from None
        if data.shape == self.data.shape:
            return self
        return _make(data, R.RESHAPE, (self,))

    def transpose(self, *axes: Any) -> Tensor:
        """Permute the axes (numpy's ``transpose``; none given reverses them)."""
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = () if axes[0] is None else tuple(axes[0])
        n = self.data.ndim
        perm = tuple(range(n - 1, -1, -1)) if not axes else tuple(int(a) for a in axes)
        if sorted(a % n if n else a for a in perm) != list(range(n)) or any(
            not -n <= a < n for a in perm
        ):
            raise ValueError(
                f"transpose: axes {perm} are not a permutation of the {n} axes of "
                f"{_label(self)} (shape {self.shape}); to swap two axes use swapaxes"
            )
        perm = tuple(a % n for a in perm)
        if perm == tuple(range(n)):
            return self
        return _make(np.transpose(self.data, perm), R.TRANSPOSE, (self,), perm)

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        """Exchange two axes."""
        n = self.data.ndim
        for a in (axis1, axis2):
            if not -n <= a < n:
                raise ValueError(
                    f"swapaxes: axis {a} is out of range for {_label(self)} with {n} dimensions"
                )
        perm = list(range(n))
        perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
        return self.transpose(tuple(perm))

    @property
    def T(self) -> Tensor:
        """The tensor with its axes reversed."""
        return self.transpose()

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        """A read-only broadcast view of shape ``shape``."""
        shape = tuple(shape)
        if shape == self.data.shape:
            return self
        try:
            data = np.broadcast_to(self.data, shape)
        except ValueError:
            raise ValueError(
                f"broadcast_to: cannot broadcast {_label(self)} of shape {self.shape} "
                f"to shape {shape}"
            ) from None
        return _make(data, R.BROADCAST_TO, (self,))

    def view(self, *shape: Any) -> Tensor:
        """The same memory seen in a new shape (one size may be -1), as PyTorch's ``view``.

        Like PyTorch it never copies: a tensor whose memory cannot be read in
        the new shape without copying (a transpose, say) is refused; use
        :meth:`reshape`, or ``.contiguous().view(...)``.  The gradient is
        reshaped back.

        >>> from chainrule import Tensor
        >>> Tensor([1.0, 2.0, 3.0, 4.0]).view(2, -1)
        Tensor([[1., 2.],
                [3., 4.]])
        """
        new = _new_shape(self, shape, "view")
        data = self.data.reshape(new)
        if data.size and not np.may_share_memory(data, self.data):
            raise RuntimeError(
                f"view: {_label(self)} of shape {self.shape} is not laid out in memory in a way "
                f"that shape {list(new)} can read without a copy (it is a transpose or a "
                "strided slice); use .reshape(...) or .contiguous().view(...)"
            )
        if new == self.data.shape:
            return self
        return _make(data, R.RESHAPE, (self,))

    def unsqueeze(self, dim: int | None = None, *, axis: int | None = None) -> Tensor:
        """A new axis of size 1 at position ``dim`` (``-1`` appends it at the end)."""
        d = _either(axis, dim, "unsqueeze", None)
        n = self.data.ndim
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise TypeError(f"unsqueeze: dim must be an int, got {d!r}")
        if not -n - 1 <= d <= n:
            raise ValueError(
                f"unsqueeze: dim {d} is out of range for {_label(self)} of shape {self.shape}; "
                f"a new axis can go at -{n + 1} to {n}"
            )
        d = int(d) % (n + 1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def squeeze(self, dim: Axis = None, *, axis: Axis = None) -> Tensor:
        """Remove axes of size 1: all of them, or those among ``dim`` (an int or a tuple).

        As in PyTorch, an axis named in ``dim`` whose size is not 1 is left as it is.
        """
        d = _either(axis, dim, "squeeze", None)
        if d is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        if self.data.ndim == 0:
            for a in d if isinstance(d, (tuple, list)) else (d,):
                _dim_of_scalar(self, a, "squeeze")
            return self
        ax = _axes(self, d, None, "squeeze") or ()
        return self.reshape(tuple(s for i, s in enumerate(self.shape) if i not in ax or s != 1))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge the axes ``start_dim`` to ``end_dim`` (both included) into one.

        >>> from chainrule import Tensor
        >>> Tensor([[[1.0], [2.0]], [[3.0], [4.0]]]).flatten(1).shape
        (2, 2)
        """
        n = self.data.ndim
        if n == 0:
            _dim_of_scalar(self, start_dim, "flatten")
            _dim_of_scalar(self, end_dim, "flatten")
            return self.reshape(1)
        ends = []
        for name, d in (("start_dim", start_dim), ("end_dim", end_dim)):
            if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not -n <= d < n:
                raise ValueError(
                    f"flatten: {name}={d!r} is out of range for {_label(self)} with {n} "
                    f"dimensions (shape {self.shape})"
                )
            ends.append(int(d) % n)
        s, e = ends
        if s > e:
            raise ValueError(
                f"flatten: start_dim ({start_dim}) comes after end_dim ({end_dim}) for "
                f"{_label(self)} of shape {self.shape}"
            )
        shape = self.shape
        return self.reshape(shape[:s] + (math.prod(shape[s : e + 1]),) + shape[e + 1 :])

    def permute(self, *dims: Any) -> Tensor:
        """Reorder the axes: axis ``i`` of the result is axis ``dims[i]`` of this tensor.

        ``dims`` names every axis once (varargs or one tuple).  The gradient is
        permuted back with the inverse permutation.
        """
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        n = self.data.ndim
        if (
            len(dims) != n
            or not all(isinstance(d, (int, np.integer)) and -n <= d < n for d in dims)
            or sorted(int(d) % n for d in dims) != list(range(n))
        ):
            raise ValueError(
                f"permute: dims {tuple(dims)} are not a permutation of the {n} axes of "
                f"{_label(self)} (shape {self.shape})"
            )
        return self.transpose(tuple(int(d) % n for d in dims))

    def t(self) -> Tensor:
        """The transpose of a matrix; a 0-d or 1-d tensor is returned as it is (PyTorch's ``t``)."""
        if self.data.ndim > 2:
            raise ValueError(
                f"t: expects a tensor with at most 2 dimensions, but {_label(self)} has "
                f"{self.data.ndim} (shape {self.shape}); use .permute(...) or .swapaxes(...)"
            )
        return self.transpose()

    def expand(self, *sizes: Any) -> Tensor:
        """This tensor broadcast to ``sizes`` without copying; -1 keeps an axis's size.

        Only axes of size 1 can grow, and new axes go in front, as in PyTorch.
        The gradients of the copies of an element add up.

        >>> from chainrule import Tensor
        >>> Tensor([[1.0], [2.0]]).expand(-1, 3)
        Tensor([[1., 1., 1.],
                [2., 2., 2.]])
        """
        sizes = _sizes(sizes, "expand")
        shape = self.shape
        lead = len(sizes) - len(shape)
        if lead < 0:
            raise ValueError(
                f"expand: {len(sizes)} sizes {list(sizes)} are fewer than the {len(shape)} "
                f"dimensions of {_label(self)} (shape {shape})"
            )
        target = []
        for i, s in enumerate(sizes):
            own = shape[i - lead] if i >= lead else None
            if s == -1 and own is not None:
                target.append(own)
            elif s >= 0 and own in (None, 1, s):
                target.append(s)
            else:
                why = (
                    f"the new leading dimension {i} needs a size >= 0 (-1 keeps an existing size)"
                    if own is None
                    else f"dimension {i} has size {own}, not 1, so it cannot become {s}"
                )
                raise ValueError(f"expand: cannot expand shape {shape} to {list(sizes)}: {why}")
        return self.broadcast_to(tuple(target))

    def repeat(self, *sizes: Any) -> Tensor:
        """Tile the tensor ``sizes[i]`` times along axis ``i`` (numpy's ``tile``, not ``repeat``).

        With more sizes than axes, the tensor is first given leading axes of
        size 1.  Built from broadcast_to and reshape, so each element's
        gradient is the sum over its copies.

        >>> from chainrule import Tensor
        >>> Tensor([1.0, 2.0]).repeat(2, 2)
        Tensor([[1., 2., 1., 2.],
                [1., 2., 1., 2.]])
        """
        sizes = _sizes(sizes, "repeat")
        if len(sizes) < self.data.ndim or any(r < 0 for r in sizes):
            raise ValueError(
                f"repeat: needs a count >= 0 for each of the {self.data.ndim} dimensions of "
                f"{_label(self)} (shape {self.shape}), or more; got {list(sizes)}"
            )
        padded = (1,) * (len(sizes) - self.data.ndim) + self.shape
        if all(r == 1 for r in sizes):
            return self.reshape(padded)
        spread = tuple(n for s in padded for n in (1, s))  # a size-1 axis before each axis
        tiled = tuple(n for r, s in zip(sizes, padded, strict=True) for n in (r, s))
        return (
            self.reshape(spread)
            .broadcast_to(tiled)
            .reshape(tuple(r * s for r, s in zip(sizes, padded, strict=True)))
        )

    def contiguous(self) -> Tensor:
        """This tensor, when its memory is already in row-major order (nearly always);
        otherwise a copy that is (as PyTorch's ``contiguous``), so :meth:`view` can read it."""
        if self.data.flags.c_contiguous:
            return self
        return self.clone()

    def clone(self) -> Tensor:
        """A copy with memory of its own that stays in the graph: the gradient passes through.

        >>> from chainrule import Tensor
        >>> x = Tensor([1.0, 2.0], requires_grad=True)
        >>> (x.clone() * 3.0).sum().backward()
        >>> x.grad
        array([3., 3.])
        """
        return _make(self.data.copy(), R.CLONE, (self,))

    @overload
    def size(self, dim: None = ...) -> tuple[int, ...]: ...
    @overload
    def size(self, dim: int) -> int: ...
    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        """The shape, or the size of axis ``dim`` (PyTorch's ``size()``; numpy's is ``.size``)."""
        if dim is None:
            return self.shape
        n = self.data.ndim
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not -n <= dim < n:
            raise ValueError(
                f"size: dim {dim!r} is out of range for {_label(self)} with {n} dimensions "
                f"(shape {self.shape})"
            )
        return self.shape[dim]

    def dim(self) -> int:
        """The number of axes (PyTorch's name for ``ndim``)."""
        return self.data.ndim

    def matmul(self, other: Any) -> Tensor:
        """``self @ other``: the matrix product, with numpy's rules for 1-d and batched operands."""
        return self @ other

    def __getitem__(self, index: Any) -> Tensor:
        idx = _numpy_index(index)
        try:
            data = self.data[idx]
        except IndexError as e:
            bad = _not_an_index(idx)
            if bad is not None:
                raise IndexError(
                    f"getitem: {bad}; index {_label(self)} with integers, slices, ..., None, "
                    "or integer or boolean arrays (e.g. Tensor([0, 2]) or a comparison's result)"
                ) from None
            raise IndexError(
                f"getitem: index {index!r:.60} does not fit {_label(self)} of shape "
                f"{self.shape}: {e}"
            ) from None
        return _make(data, R.GETITEM, (self,), idx)

    def where(self, condition: Any, other: Any) -> Tensor:
        """``self`` where ``condition`` holds, else ``other`` (PyTorch's ``Tensor.where``)."""
        return where(condition, self, other)

    def _scatter(self, shape: tuple[int, ...], index: Any) -> Tensor:
        """zeros(shape) with ``self`` added at ``index``: indexing's gradient, differentiable."""
        return _make(R.scatter(self.data, shape, index), R.SCATTER, (self,), (shape, index))

    def __iter__(self) -> Any:
        for i in range(len(self)):
            yield self[i]

    def to(self, *args: Any, dtype: Any = None, device: Any = None, **unsupported: Any) -> Tensor:
        """This tensor as ``dtype`` (PyTorch's ``to``): differentiable between float types.

        ``args`` may be a dtype (numpy's, a name such as ``"float32"``, or
        PyTorch's), a Tensor whose dtype to take, or the device ``"cpu"``, the
        only one chainrule has.  Without a change it returns this tensor.
        """
        if unsupported:
            word = next(iter(unsupported))
            raise keyword_error("to", word, "to takes a dtype (or a Tensor) and device='cpu'")
        targets = [*args] + ([] if dtype is None else [dtype])
        out = self
        for a in targets if device is None else [*targets, device]:
            if a is device or str(a).split(":")[0] in _DEVICES:
                if str(a).split(":")[0] != "cpu":
                    raise ValueError(
                        f"to: chainrule computes with numpy on the CPU; device {str(a)!r} "
                        "is not available"
                    )
                continue
            out = out.astype(a.dtype if isinstance(a, Tensor) else _as_dtype(a, "to"))
        return out

    def double(self) -> Tensor:
        """This tensor as float64 (PyTorch's ``double``)."""
        return self.astype(np.float64)

    # (Last in the class: from here on the name float means this method, not the type.)
    def float(self) -> Tensor:
        """This tensor as float32, as PyTorch's ``float()`` (``float(t)`` is not this method)."""
        return self.astype(np.float32)


# ---------------------------------------------------------------------------
# Functions.
# ---------------------------------------------------------------------------


def tensor(
    data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None
) -> Tensor:
    """Make a Tensor (same as the constructor, PyTorch spelling)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)


def concatenate(
    tensors: Sequence[Any], axis: int | None = None, *, dim: int | None = None, **unsupported: Any
) -> Tensor:
    """Join tensors along an existing axis (``axis``, or ``dim``; 0 by default).

    Each input gets back its slice of the gradient.
    """
    if unsupported:
        raise _refused("concatenate", unsupported, _ONE_AXIS)
    axis = _either(axis, dim, "concatenate", 0)
    parts = _sequence(tensors, "concatenate")
    datas = [_data(p) for p in parts]
    try:
        out = np.concatenate(datas, axis=axis)
    except (ValueError, TypeError, np.exceptions.AxisError) as e:
        shapes = [np.shape(d) for d in datas]
        raise ValueError(
            f"concatenate: cannot join shapes {shapes} along axis {axis}: {e}"
        ) from None
    ax = axis % out.ndim
    bounds = np.cumsum([0] + [np.shape(d)[ax] for d in datas]).tolist()
    return _make(out, R.CONCATENATE, tuple(parts), (ax, bounds))


cat = concatenate


def stack(
    tensors: Sequence[Any], axis: int | None = None, *, dim: int | None = None, **unsupported: Any
) -> Tensor:
    """Join same-shaped tensors along a new axis (``axis``, or ``dim``; 0 by default)."""
    if unsupported:
        raise _refused("stack", unsupported, _ONE_AXIS)
    axis = _either(axis, dim, "stack", 0)
    parts = _sequence(tensors, "stack")
    datas = [_data(p) for p in parts]
    try:
        out = np.stack(datas, axis=axis)
    except (ValueError, TypeError, np.exceptions.AxisError) as e:
        shapes = [np.shape(d) for d in datas]
        raise ValueError(f"stack: cannot stack shapes {shapes} along axis {axis}: {e}") from None
    return _make(out, R.STACK, tuple(parts), axis % out.ndim)


class ValuesIndices(NamedTuple):
    """What ``max`` and ``min`` return when called with ``dim=``: PyTorch's pair.

    ``values`` is differentiable; ``indices`` (int64, no grad) says where
    along ``dim`` each value was found.
    """

    values: Tensor
    indices: Tensor


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """Elementwise ``a if cond else b``; the gradient follows the chosen input."""
    c = _data(cond)
    c = np.asarray(c)
    if c.dtype != np.bool_:
        raise TypeError(f"where: cond must be boolean, got dtype {c.dtype}")
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    a = _operand(a, like, "where")
    b = _operand(b, like, "where")
    try:
        out = np.where(c, _data(a), _data(b))
    except ValueError:
        raise ValueError(
            f"where: cannot broadcast cond {c.shape}, a {np.shape(_data(a))} "
            f"and b {np.shape(_data(b))} together"
        ) from None
    t = _make(out, R.WHERE, (a, b), c)
    if STATE.tracing is not None:  # chainrule.compile: a condition computed from its arguments
        STATE.tracing.where(t, c, a, b)
    return t


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise larger of ``a`` and ``b`` (ties split the gradient in half)."""
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    return _apply_binary(
        R.MAXIMUM, np.maximum, _operand(a, like, "maximum"), _operand(b, like, "maximum")
    )


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise smaller of ``a`` and ``b`` (ties split the gradient in half)."""
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    return _apply_binary(
        R.MINIMUM, np.minimum, _operand(a, like, "minimum"), _operand(b, like, "minimum")
    )


def _method(name: str) -> Callable[..., Any]:
    def fn(x: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(x, Node) and not isinstance(x, Tensor):  # a Value: its own method
            if not hasattr(x, name):
                raise TypeError(f"{name}: a Value has no {name}; use a Tensor")
            return getattr(x, name)(*args, **kwargs)
        t = x if isinstance(x, Tensor) else Tensor(x)
        return getattr(t, name)(*args, **kwargs)

    fn.__name__ = name
    fn.__doc__ = (
        f"Function form of :meth:`Tensor.{name}`; given a Value, the Value's own method "
        "(a TypeError where a Value has none)."
    )
    return fn


exp = _method("exp")
log = _method("log")
tanh = _method("tanh")
sigmoid = _method("sigmoid")
relu = _method("relu")
sqrt = _method("sqrt")
clip = _method("clip")
softmax = _method("softmax")
log_softmax = _method("log_softmax")
logsumexp = _method("logsumexp")
sin = _method("sin")
cos = _method("cos")
exp2 = _method("exp2")
log2 = _method("log2")
log1p = _method("log1p")
expm1 = _method("expm1")
square = _method("square")
rsqrt = _method("rsqrt")
absolute = _method("abs")  # (exported as chainrule.abs; here the name abs stays the builtin)
clamp = _method("clamp")
clone = _method("clone")
cumsum = _method("cumsum")
prod = _method("prod")
var = _method("var")
std = _method("std")
norm = _method("norm")
argmax = _method("argmax")
argmin = _method("argmin")
reshape = _method("reshape")
flatten = _method("flatten")
squeeze = _method("squeeze")
unsqueeze = _method("unsqueeze")
permute = _method("permute")
t = _method("t")
numel = _method("numel")


def power(x: Any, exponent: Any) -> Any:
    """``x ** exponent`` (exported as ``chainrule.pow``); ``x`` may be a Value, a Tensor or data.

    >>> import chainrule as cr
    >>> cr.pow(cr.Tensor([2.0, 3.0]), 2)
    Tensor([4., 9.])
    """
    if isinstance(x, Node) or isinstance(exponent, Node):
        return x**exponent
    return Tensor(x) ** exponent


def matmul(a: Any, b: Any) -> Tensor:
    """The matrix product ``a @ b`` (function form of :meth:`Tensor.matmul`)."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = Tensor(a)
    return a @ b


# ---------------------------------------------------------------------------
# Internals.
# ---------------------------------------------------------------------------


def _leaf(data: np.ndarray, name: str | None) -> Tensor:
    """A new leaf Tensor holding ``data`` itself (no copy)."""
    t = init_node(_new(Tensor), data)
    t.name = name
    return t


def _make(data: Any, op: Op, parents: tuple[Any, ...], ctx: Any = None) -> Tensor:
    """A new Tensor holding ``data``, the result of ``op``; records it if an input requires grad."""
    t = init_node(
        _new(Tensor), data if type(data) is np.ndarray else np.asarray(data), op, parents, ctx
    )
    if t.data.base is not None:  # perhaps a view of an operand (a slice, reshape, transpose)
        _share_memory(t, parents)
    return t


_new = object.__new__


def _share_memory(t: Tensor, parents: tuple[Any, ...]) -> None:
    """Give ``t`` the version of the operand whose memory its data views, if any."""
    for p in parents:
        if isinstance(p, Tensor) and np.may_share_memory(p.data, t.data):
            _view_of(p, t)
            return


def _view_of(base: Tensor, view: Tensor) -> None:
    """Record that ``view`` shares ``base``'s memory: one version for both."""
    version = getattr(base, "_vc", None)
    if version is None:
        version = base._vc = Version()
    if not version.holders:  # the first view: the base starts being tracked too
        version.share(base)
    version.share(view)
    view._vc = version


def _carries_tangent(*xs: Any) -> bool:
    """Whether forward mode is on and one of ``xs`` has a tangent at some level."""
    if not STATE.mode.forward:
        return False
    return any(isinstance(x, Node) and any(x in level for level in STATE.levels) for x in xs)


def _tracked(x: Any) -> bool:
    """Whether ``x`` is a node that requires grad."""
    return isinstance(x, Node) and x.requires_grad


def _scaled(x: Any, alpha: float, like: Tensor, op: str) -> Any:
    """``alpha * x`` for ``add_``/``sub_`` (recorded when ``x`` requires grad)."""
    x = _operand(x, like, op)
    return x if alpha == 1.0 else x * alpha


def _repeats(shape: tuple[int, ...], index: Any) -> bool:
    """Whether ``index`` selects some element of an array of ``shape`` more than once."""
    parts = index if isinstance(index, tuple) else (index,)
    if not any(isinstance(p, np.ndarray) and p.dtype.kind in "iu" for p in parts):
        return False  # slices, integers and masks never repeat an element
    hits = np.zeros(shape, dtype=np.intp)
    np.add.at(hits, index, 1)
    return bool((hits > 1).any())


def _apply_binary(op: Op, fn: Callable[[Any, Any], Any], a: Any, b: Any) -> Tensor:
    ad = a.data if isinstance(a, Tensor) else a
    bd = b.data if isinstance(b, Tensor) else b
    try:
        out = run_quietly(fn, ad, bd)
    except (RuntimeError, ValueError, TypeError, OverflowError):
        out = _apply_binary_again(op, fn, a, b)
    return _make(out, op, (a, b))


def _apply_binary_again(op: Op, fn: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    """``_apply_binary``'s work when the quick way failed (a busy quiet context, bad operands).

    Runs ``fn`` again, quietly; if numpy refuses the operands,
    raises an error that says why in the op's own terms.
    """
    ad = a.data if isinstance(a, Tensor) else a
    bd = b.data if isinstance(b, Tensor) else b
    try:
        return quietly(fn, ad, bd)
    except (ValueError, TypeError, OverflowError) as e:
        raise _binary_error(op, ad, bd, e, _names(a, b)) from None


def _binary_error(op: Op, ad: Any, bd: Any, e: Exception, names: str) -> Exception:
    """The error to raise when numpy refused ``ad <op> bd`` with ``e``."""
    where = f"{op.name} ({op.symbol})"
    sa, sb = np.shape(ad), np.shape(bd)
    try:
        np.broadcast_shapes(sa, sb)
    except ValueError:
        return ValueError(f"{where}: cannot broadcast shapes {sa} and {sb} together{names}")
    kinds = np.result_type(ad).kind, np.result_type(bd).kind
    if op is R.POW and kinds[0] in "biu" and kinds[1] in "iu" and (np.asarray(bd) < 0).any():
        # numpy refuses the whole power when any integer exponent is negative,
        # since the exact result (1/2, 1/4, ...) is not an integer.
        return ValueError(
            f"{where}: an integer base cannot be raised to a negative integer power "
            f"(base dtype {np.result_type(ad)}, exponent dtype {np.result_type(bd)}); "
            f"use a float dtype (the tensor's .astype(float), or a float exponent such as "
            f"-1.0){names}"
        )
    kind = (
        OverflowError
        if isinstance(e, OverflowError)  # a Python int out of the array's range
        else TypeError
        if isinstance(e, TypeError)  # an op numpy does not define for the dtypes
        else ValueError
    )
    return kind(f"{where}: cannot combine {_operand_text(ad)} and {_operand_text(bd)}{names}: {e}")


def _operand_text(x: Any) -> str:
    """A short description of an operand for error messages: its dtype and shape, or its value."""
    if isinstance(x, np.ndarray):
        return f"an array of dtype {x.dtype} and shape {x.shape}"
    return f"{type(x).__name__} {x!r:.30}"


def _matmul(a: Any, b: Any) -> Tensor:
    ad = a.data if isinstance(a, Tensor) else a
    bd = b.data if isinstance(b, Tensor) else b
    try:
        out = run_quietly(np.matmul, ad, bd)
    except (RuntimeError, ValueError):
        out = _matmul_again(a, b)
    return _make(out, R.MATMUL, (a, b))


def _matmul_again(a: Any, b: Any) -> Any:
    """``_matmul``'s computation when the quick way failed (see :func:`_apply_binary_again`)."""
    ad = a.data if isinstance(a, Tensor) else a
    bd = b.data if isinstance(b, Tensor) else b
    try:
        return quietly(np.matmul, ad, bd)
    except ValueError:
        sa, sb = np.shape(ad), np.shape(bd)
        if not sa or not sb:
            raise ValueError(
                f"matmul (a @ b): both operands need at least one dimension, got shapes {sa} "
                f"and {sb}{_names(a, b)}; use * to scale by a number"
            ) from None
        k_a = sa[-1]
        k_b = sb[-2] if len(sb) > 1 else sb[0]
        if k_a != k_b:
            why = f"a has {k_a} columns but b has {k_b} rows"
        else:
            why = f"batch shapes {sa[:-2]} and {sb[:-2]} do not broadcast"
        raise ValueError(
            f"matmul (a @ b): shapes {sa} and {sb} do not align: {why}{_names(a, b)}"
        ) from None


def _compare(fn: Callable[[Any, Any], Any], a: Tensor, b: Any, sym: str) -> Tensor:
    b = _operand(b, a, sym)
    bd = b.data if isinstance(b, Tensor) else b
    try:
        out = _leaf(np.asarray(fn(a.data, bd)), None)
        if STATE.tracing is not None:  # chainrule.compile records where a mask came from
            STATE.tracing.compare(out, sym, a, b)
        return out
    except ValueError:
        raise ValueError(
            f"compare ({sym}): cannot broadcast shapes {a.shape} and {np.shape(bd)} together"
        ) from None


def _operand(x: Any, like: Tensor | None, op: str) -> Any:
    """Accept a Tensor, a number, a list or an array as the other operand of ``op``."""
    if isinstance(x, Tensor) or x.__class__ is float:
        return x
    if isinstance(x, (int, float, np.ndarray, np.generic)) and not isinstance(x, np.str_):
        if isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind not in "biuf":
            raise TypeError(f"{op}: unsupported operand of dtype {x.dtype}")
        if (
            like is not None
            and like.data.dtype.kind == "f"
            and isinstance(x, (np.ndarray, np.generic))
            and (x.dtype.kind in "iu" or (x.dtype.kind == "f" and x.ndim == 0))
        ):
            # Integers never widen a float tensor (float32 * int64 stays float32),
            # and neither does a float scalar (float32 * np.float64(2) stays
            # float32), as in PyTorch, where a scalar only sets the kind.
            dt = like.data.dtype
            if isinstance(x, np.generic) or x.ndim == 0:
                return quietly(dt.type, x)  # a scalar beyond float32's range becomes inf
            return x.astype(dt)
        return x
    if isinstance(x, (list, tuple)):
        try:
            arr = np.asarray(x)
        except ValueError as e:
            raise TypeError(f"{op}: cannot use {_brief(x)} as an array: {e}") from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{op}: unsupported operand {_brief(x)} (dtype {arr.dtype})")
        if like is not None and arr.dtype.kind in "iuf" and like.data.dtype.kind == "f":
            arr = arr.astype(like.data.dtype)  # Python numbers adopt the tensor's precision
        return arr
    if isinstance(x, Node):
        raise TypeError(
            f"{op}: cannot mix a Tensor with a {type(x).__name__}; "
            "use Tensors throughout, or Values throughout"
        )
    raise TypeError(
        f"{op}: unsupported operand type {type(x).__name__} for a Tensor "
        "(expected a Tensor, a number, a list or a numpy array)"
    )


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Node) else x


def _sequence(tensors: Sequence[Any], op: str) -> list[Any]:
    if isinstance(tensors, (Tensor, np.ndarray)) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: expected a list or tuple of tensors, got {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor")
    like = next((t for t in tensors if isinstance(t, Tensor)), None)
    return [_operand(t, like, op) for t in tensors]


def _axes(t: Tensor, axis: Axis, dim: Axis, op: str) -> tuple[int, ...] | None:
    """Normalise ``axis`` (or its alias ``dim``) to a tuple of non-negative ints."""
    if axis is None and dim is None:
        return None
    axis = _either(axis, dim, op, None)
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    n = t.data.ndim
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
        if not -n <= a < n:
            raise ValueError(
                f"{op}: axis {a} is out of range for {_label(t)} with {n} dimensions "
                f"(shape {t.shape})"
            )
        out.append(int(a) % n)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: axis {axis!r} repeats an axis")
    return tuple(out)


def _either(axis: Any, dim: Any, op: str, default: Any) -> Any:
    """``dim`` or ``axis`` (PyTorch's and numpy's names for one argument); not both."""
    if dim is None:
        return default if axis is None else axis
    if axis is not None:
        raise TypeError(
            f"{op}: got axis={axis!r} and dim={dim!r}; these are numpy's and PyTorch's "
            "names for the same argument, give one of them"
        )
    return dim


def _reduction_args(
    t: Tensor,
    op: str,
    axis: Axis,
    dim: Axis,
    keepdims: bool | None,
    keepdim: bool | None,
    unsupported: dict[str, Any],
) -> tuple[tuple[int, ...] | None, bool]:
    """A reduction's axes and keepdims, from numpy's or PyTorch's keywords (see :func:`_axes`)."""
    if unsupported:
        raise _refused(op, unsupported)
    keep = bool(keepdims) if keepdim is None else _keepdim(keepdims, keepdim, op)
    return _axes(t, axis, dim, op), keep


def _keepdim(keepdims: bool | None, keepdim: bool | None, op: str) -> bool:
    """``keepdim`` or ``keepdims`` (PyTorch's and numpy's names), False when neither is given."""
    if keepdim is None:
        return bool(keepdims)
    if keepdims is not None:
        raise TypeError(
            f"{op}: got keepdims={keepdims!r} and keepdim={keepdim!r}; these are numpy's and "
            "PyTorch's names for the same argument, give one of them"
        )
    return bool(keepdim)


_REDUCE = "axis= (or dim=) and keepdims= (or keepdim=)"
_ONE_AXIS = "axis= (or dim=)"
_HINTS = {
    "dtype": "; convert the input first with .astype(dtype)",
    "out": "; chainrule returns a new tensor, assign the result instead",
}


def _refused(op: str, unsupported: dict[str, Any], supported: str = _REDUCE) -> TypeError:
    """The error for a keyword (PyTorch's, perhaps) that ``op`` does not take."""
    word = next(iter(unsupported))
    return keyword_error(op, word, f"{op} takes {supported}{_HINTS.get(word, '')}")


def keyword_error(op: str, word: str, advice: str) -> TypeError:
    """The one wording for a keyword ``op`` does not take: the keyword, then what to do."""
    return TypeError(f"{op}: chainrule does not support the keyword {word}=; {advice}")


def _indices(
    t: Tensor, arg: Callable[..., Any], ax: tuple[int, ...] | None, keep: bool, dim: Any, op: str
) -> Tensor:
    """Where along ``dim`` the max or min lies: an int64 Tensor that never requires grad."""
    if ax is None or len(ax) != 1:
        raise TypeError(
            f"{op}: dim= takes one axis (an int), got {dim!r}; to reduce over several "
            f"axes at once use axis={dim!r}, which returns the values only"
        )
    out = _leaf(arg(t.data, axis=ax[0], keepdims=keep).astype(np.int64, copy=False), None)
    if STATE.tracing is not None:  # chainrule.compile: recomputed at every call
        STATE.tracing.arg_index(out, t, arg.__name__, ax[0], keep)
    return out


def _one_axis(t: Tensor, axis: int | None, dim: int | None, op: str) -> int:
    if dim is not None and axis == -1:
        axis = None  # the default axis gives way to dim (nn.functional passes its default on)
    ax = _axes(t, axis, dim, op)
    if ax is None or len(ax) != 1:
        raise TypeError(f"{op}: needs exactly one axis, got {axis!r}")
    return ax[0]


def _bound(x: Any, which: str, op: str) -> float:
    """A number given as the bound ``which`` of ``op``, as a float (for its gradient's mask)."""
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(
            f"{op}: {which} must be a number, got {type(x).__name__} {x!r:.30}; for bounds "
            "that are tensors use cr.maximum and cr.minimum"
        )
    return float(x)


def _dim_of_scalar(t: Tensor, dim: Any, op: str) -> None:
    """Check ``dim`` names the one axis a 0-d tensor is taken to have (0 or -1), as PyTorch."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim not in (0, -1):
        raise ValueError(
            f"{op}: dim {dim!r} is out of range for {_label(t)}, which is 0-d; "
            "only 0 or -1 are allowed"
        )


def _sizes(sizes: tuple[Any, ...], op: str) -> tuple[int, ...]:
    """Sizes given as varargs or as one tuple or list, checked to be ints."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in sizes):
        raise TypeError(f"{op}: sizes must be integers, got {sizes!r:.60}")
    return tuple(int(s) for s in sizes)


def _new_shape(t: Tensor, shape: tuple[Any, ...], op: str) -> tuple[int, ...]:
    """``shape`` (varargs or one tuple) with its -1 worked out, checked against ``t``'s size."""
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int, np.integer)):
        raise TypeError(
            f"{op}: expected sizes, got {type(shape[0]).__name__} {shape[0]!r:.30} "
            "(to change the dtype use .to(dtype) or .astype(dtype))"
        )
    sizes = list(_sizes(shape, op))
    asked = list(sizes)
    n = t.data.size
    free = [i for i, s in enumerate(sizes) if s == -1]
    known = math.prod(s for s in sizes if s != -1)
    bad = len(free) > 1 or any(s < -1 for s in sizes)
    if not bad and free:
        bad = known == 0 or n % known != 0
        if not bad:
            sizes[free[0]] = n // known
    elif not bad:
        bad = known != n
    if bad:
        raise ValueError(
            f"{op}: shape {asked} is invalid for a Tensor of {n} elements (shape {t.shape})"
        )
    return tuple(sizes)


_DEVICES = ("cpu", "cuda", "mps", "xpu", "meta")

#: PyTorch's dtype names that numpy spells otherwise (``torch.float`` is float32).
_TORCH_DTYPES = {"float": "float32", "double": "float64", "half": "float16", "long": "int64"}


def _as_dtype(x: Any, op: str) -> np.dtype[Any]:
    """A numpy dtype from a numpy dtype, a type, a name, or a PyTorch dtype."""
    name = str(x)
    if name.startswith("torch."):
        name = name[len("torch.") :]
        x = _TORCH_DTYPES.get(name, name)
    try:
        return np.dtype(x)
    except TypeError:
        raise TypeError(f"{op}: {x!r:.40} is not a dtype, a Tensor or a device") from None


def _deviations(
    t: Tensor,
    op: str,
    dim: Any,
    unbiased: bool | None,
    keepdim: bool | None,
    correction: float | None,
    axis: Axis,
    keepdims: bool | None,
    ddof: float | None,
    unsupported: dict[str, Any],
) -> tuple[Tensor, tuple[int, ...] | None, bool, float]:
    """For var and std: x - mean over the axes, the axes, keepdims, and N - correction (>= 0)."""
    if isinstance(dim, bool):  # var(True): PyTorch's positional unbiased
        if unbiased is not None:
            raise TypeError(f"{op}: got unbiased twice ({dim!r} and {unbiased!r})")
        dim, unbiased = None, dim
    ax, keep = _reduction_args(t, op, axis, dim, keepdims, keepdim, unsupported)
    given = [
        (k, v)
        for k, v in (("unbiased", unbiased), ("correction", correction), ("ddof", ddof))
        if v is not None
    ]
    if len(given) > 1:
        raise TypeError(
            f"{op}: got {given[0][0]}= and {given[1][0]}=, which say the same thing "
            "(unbiased=True is correction=1, and ddof is numpy's name for correction); give one"
        )
    c: Any = 1.0
    if given:
        word, c = given[0]
        if word == "unbiased":
            c = 1.0 if c else 0.0
        elif isinstance(c, bool) or not isinstance(c, (int, float, np.integer, np.floating)):
            raise TypeError(f"{op}: {word} must be a number, got {c!r:.30}")
    n = t.data.size if ax is None else math.prod(t.shape[a] for a in ax)
    d = t - t.mean(ax, keepdims=True)
    return d, ax, keep, max(0.0, n - float(c))


def _norm2(t: Tensor, ax: tuple[int, ...] | None, keep: bool) -> Tensor:
    """The Euclidean norm over ``ax``: sqrt(sum(x * x)), the table's ``norm`` op."""
    x = t.data
    data = quietly(lambda: np.sqrt(_SUM(x * x, ax, None, None, keep)))
    return _make(data, R.NORM, (t,), (ax, keep))


def _arg_index(
    t: Tensor,
    fn: Callable[..., Any],
    op: str,
    axis: Any,
    dim: Any,
    keepdims: bool | None,
    keepdim: bool | None,
    unsupported: dict[str, Any],
) -> Tensor:
    """argmax or argmin: along one axis, or of the flattened tensor; an int64 leaf."""
    ax, keep = _reduction_args(t, op, axis, dim, keepdims, keepdim, unsupported)
    if ax is not None and len(ax) != 1:
        raise TypeError(f"{op}: takes one axis (an int), got {dim if axis is None else axis!r}")
    if _reduces_empty(t.data.shape, ax):
        raise _empty_reduction(op, t, ax)
    if ax is None:
        data = np.asarray(fn(t.data), dtype=np.int64)
        if keep:
            data = data.reshape((1,) * t.data.ndim)
    else:
        data = fn(t.data, axis=ax[0], keepdims=keep).astype(np.int64, copy=False)
    out = _leaf(np.asarray(data), None)
    if STATE.tracing is not None:  # chainrule.compile: recomputed at every call
        STATE.tracing.arg_index(out, t, fn.__name__, None if ax is None else ax[0], keep)
    return out


def _reduces_empty(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> bool:
    if axes is None:
        return 0 in shape
    return any(shape[a] == 0 for a in axes)


def _logsumexp(x: np.ndarray, axes: tuple[int, ...] | None, keepdims: bool) -> np.ndarray:
    """``log(sum(exp(x)))`` over ``axes``: the max is taken out first so exp cannot overflow."""
    m = R.safe_max(x, axes)
    out = np.log(_SUM(np.exp(x - m), axis=axes, keepdims=True)) + m
    if not keepdims:
        out = np.squeeze(out, axis=axes) if axes is not None else out.reshape(())
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """``1/(1+e^-x)`` as ``exp(-log(1+e^-x))``: logaddexp never overflows."""
    return np.exp(-np.logaddexp(0.0, -x))


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along ``axis``, the max taken out first so exp cannot overflow."""
    e = np.exp(x - R.safe_max(x, (axis,)))
    return e / _SUM(e, axis=axis, keepdims=True)


def _empty_reduction(op: str, t: Tensor, axes: tuple[int, ...] | None) -> ValueError:
    """The error for a max or min over an axis with no elements (PyTorch refuses it too)."""
    if axes is None:
        what = f"{_label(t)} (shape {t.shape}) is empty"
    else:
        empty = [a for a in axes if t.shape[a] == 0]
        what = f"axis {empty[0]} of {_label(t)} (shape {t.shape}) is empty"
    return ValueError(
        f"{op}: {what}, and the {op} of no numbers is undefined; reduce over axes "
        "that have elements (sum, mean and logsumexp accept empty ones)"
    )


def _numpy_index(index: Any) -> Any:
    """Replace Tensors and lists inside an index by numpy arrays.

    An empty list selects nothing, as in numpy and PyTorch: it becomes an
    empty integer array (``np.asarray([])`` alone would be float, which
    numpy refuses as an index).
    """
    if isinstance(index, tuple):
        return tuple(_numpy_index(i) for i in index)
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        arr = np.asarray(index)
        if arr.size == 0 and arr.dtype.kind == "f":
            return arr.astype(np.intp)
        return arr
    return index


def _not_an_index(index: Any) -> str | None:
    """Describe the first part of an (already converted) index that is a float, if any."""
    for part in index if isinstance(index, tuple) else (index,):
        if isinstance(part, (float, np.floating)):
            return f"{part!r} is a float"
        if isinstance(part, np.ndarray) and part.dtype.kind not in "biu":
            return f"an index array has dtype {part.dtype}"
    return None


def _label(t: Node) -> str:
    """The tensor ``t`` in an error message about a call made on it.

    ``tensor 'w'`` when it has a name (:func:`~chainrule.naming.name_of`),
    else "the tensor": the one the failing call was made on.
    """
    return f"tensor {name_of(t)!r}" if t.name else "the tensor"


def _names(a: Any, b: Any) -> str:
    names = [getattr(x, "name", None) for x in (a, b)]
    if not any(names):
        return ""
    return " (operands " + ", ".join(repr(n) if n else "unnamed" for n in names) + ")"


def _brief(x: Any) -> str:
    text = repr(x)
    return f"{type(x).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"
