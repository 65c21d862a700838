"""Value: a scalar node, the micrograd-sized face of the engine.

Each operation computes its result with plain Python float arithmetic and
records the op from :mod:`chainrule.rules` that knows its derivative; the
comment beside each forward gives that local derivative.
"""

from __future__ import annotations

import math
from typing import Any

from . import rules as R
from .engine import ANOMALY, GRAD_MODE, SCOPES, Node, check_forward, tick

Number = int | float


class Value(Node):
    """A scalar that records the operations applied to it.

    Args:
        data: a real number (stored as a Python float).
        name: a label for pictures and explanations.
        requires_grad: whether gradients flow to it (True by default, so every
            Value gets a ``.grad``, as in micrograd).

    >>> from chainrule import Value
    >>> a, b = Value(2.0, name="a"), Value(-3.0, name="b")
    >>> c = a * b + a
    >>> c.backward()
    >>> a.grad, b.grad
    (-2.0, 2.0)
    """

    __slots__ = ()
    __array_ufunc__ = None  # make numpy defer to our reflected operators

    def __init__(self, data: Any, name: str = "", requires_grad: bool = True) -> None:
        if isinstance(data, Node):
            raise TypeError(
                f"Value: data must be a real number, got a {type(data).__name__} "
                "(use .data to take its number)"
            )
        if isinstance(data, (str, bytes)) or getattr(data, "ndim", 0) != 0:
            raise TypeError(
                f"Value: data must be a real number, got {type(data).__name__} {data!r:.40}"
            )
        try:
            self.data = float(data)
        except (TypeError, ValueError):
            raise TypeError(
                f"Value: data must be a real number, got {type(data).__name__} {data!r:.40}"
            ) from None
        self.grad = None
        self.name = name
        self._seq = tick()
        self.requires_grad = bool(requires_grad)
        self._op = None
        self._parents = ()
        self._ctx = None

    # -- arithmetic ------------------------------------------------------
    def __add__(self, other: Value | Number) -> Value:
        return _binary(self.data + _num(other, "add"), R.ADD, self, other)  # d/da = d/db = 1

    def __radd__(self, other: Number) -> Value:
        return _binary(_num(other, "add") + self.data, R.ADD, other, self)

    def __sub__(self, other: Value | Number) -> Value:
        return _binary(self.data - _num(other, "sub"), R.SUB, self, other)  # d/da = 1, d/db = -1

    def __rsub__(self, other: Number) -> Value:
        return _binary(_num(other, "sub") - self.data, R.SUB, other, self)

    def __mul__(self, other: Value | Number) -> Value:
        return _binary(self.data * _num(other, "mul"), R.MUL, self, other)  # d/da = b, d/db = a

    def __rmul__(self, other: Number) -> Value:
        return _binary(_num(other, "mul") * self.data, R.MUL, other, self)

    def __truediv__(self, other: Value | Number) -> Value:
        # d/da = 1/b, d/db = -a/b^2
        return _binary(_div(self.data, _num(other, "div")), R.DIV, self, other)

    def __rtruediv__(self, other: Number) -> Value:
        return _binary(_div(_num(other, "div"), self.data), R.DIV, other, self)

    def __pow__(self, other: Value | Number) -> Value:
        # d/da = b a^(b-1), d/db = ln(a) a^b
        return _binary(_pow(self.data, _num(other, "pow")), R.POW, self, other)

    def __rpow__(self, other: Number) -> Value:
        return _binary(_pow(_num(other, "pow"), self.data), R.POW, other, self)

    def __neg__(self) -> Value:
        return _unary(-self.data, R.NEG, self)  # d/da = -1

    def __pos__(self) -> Value:
        return self

    # -- functions -------------------------------------------------------
    def exp(self) -> Value:
        return _unary(R._float_exp(self.data), R.EXP, self)  # d/dx = exp(x)

    def log(self) -> Value:
        return _unary(R._float_log(self.data), R.LOG, self)  # d/dx = 1/x

    def tanh(self) -> Value:
        return _unary(math.tanh(self.data), R.TANH, self)  # d/dx = 1 - tanh^2

    def sigmoid(self) -> Value:
        x = self.data
        # Two forms, so exp never overflows: d/dx = s(1-s)
        if x >= 0:
            s = 1.0 / (1.0 + math.exp(-x))
        else:
            e = math.exp(x)
            s = e / (1.0 + e)
        return _unary(s, R.SIGMOID, self)

    def relu(self) -> Value:
        x = self.data
        return _unary(x if x > 0 else 0.0, R.RELU, self)  # d/dx = 1 if x > 0 else 0

    # -- comparisons give plain bools; they are not differentiable --------
    def __lt__(self, other: Value | Number) -> bool:
        return self.data < _num(other, "<")

    def __le__(self, other: Value | Number) -> bool:
        return self.data <= _num(other, "<=")

    def __gt__(self, other: Value | Number) -> bool:
        return self.data > _num(other, ">")

    def __ge__(self, other: Value | Number) -> bool:
        return self.data >= _num(other, ">=")

    def __float__(self) -> float:
        return self.data

    @property
    def shape(self) -> tuple[int, ...]:
        """Always ``()``: a Value is a scalar."""
        return ()

    def item(self) -> float:
        """The number inside."""
        return self.data

    def detach(self) -> Value:
        """A new Value with the same number and no graph."""
        return Value(self.data, self.name or "", requires_grad=False)

    @classmethod
    def _wrap_grad(cls, g: Any) -> Value:
        return g if isinstance(g, Value) else Value(g, requires_grad=False)

    def __repr__(self) -> str:
        name = f", name={self.name!r}" if self.name else ""
        return f"Value(data={self.data:.6g}, grad={_fmt(self.grad)}{name})"


def _fmt(g: Any) -> str:
    if g is None:
        return "None"
    if isinstance(g, Value):
        return f"Value({g.data:.6g})"
    return f"{g:.6g}"


def _num(x: Any, op: str) -> float:
    """The number behind an operand of a Value operation."""
    if isinstance(x, Value):
        return x.data
    if isinstance(x, (int, float)):
        return x
    if isinstance(x, Node):
        raise TypeError(
            f"{op}: cannot mix a Value with a {type(x).__name__}; "
            "use Values throughout, or Tensors throughout"
        )
    if (
        getattr(x, "ndim", None) == 0
        and getattr(x, "dtype", None) is not None
        and x.dtype.kind in "biuf"
    ):
        return float(x)
    raise TypeError(
        f"{op}: unsupported operand type {type(x).__name__} for a Value "
        "(expected a Value, an int or a float)"
    )


def _div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:  # follow IEEE 754 / numpy: x/0 = +-inf, 0/0 = nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b) if a != 0 else math.nan


def _pow(a: float, b: float) -> float:
    try:
        r = a**b
    except ZeroDivisionError:  # 0 ** negative
        return math.inf
    except OverflowError:
        return math.inf
    if isinstance(r, complex):  # negative base, fractional exponent: no real result
        return math.nan
    return float(r)


def _unary(data: float, op: R.Op, a: Value) -> Value:
    out = Value.__new__(Value)
    out.data = data
    out.grad = None
    out.name = ""
    out._seq = tick()
    if a.requires_grad and GRAD_MODE.enabled:
        out.requires_grad = True
        out._op = op
        out._parents = (a,)
        if SCOPES:
            out._scope = SCOPES[-1]
    else:
        out.requires_grad = False
        out._op = None
        out._parents = ()
    out._ctx = None
    if ANOMALY.enabled:
        check_forward(out, op, (a,))
    return out


def _binary(data: float, op: R.Op, a: Value | Number, b: Value | Number) -> Value:
    out = Value.__new__(Value)
    out.data = data
    out.grad = None
    out.name = ""
    out._seq = tick()
    if GRAD_MODE.enabled and (
        (isinstance(a, Value) and a.requires_grad) or (isinstance(b, Value) and b.requires_grad)
    ):
        out.requires_grad = True
        out._op = op
        # Numbers are stored as they are: constants in the graph, not nodes.
        if not isinstance(a, (Value, int, float)):
            a = float(a)  # a numpy scalar
        if not isinstance(b, (Value, int, float)):
            b = float(b)
        out._parents = (a, b)
        if SCOPES:
            out._scope = SCOPES[-1]
    else:
        out.requires_grad = False
        out._op = None
        out._parents = ()
    out._ctx = None
    if ANOMALY.enabled:
        check_forward(out, op, (a, b))
    return out
