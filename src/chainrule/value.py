"""Value: a scalar node, the micrograd-sized face of the engine.

Each operation computes its result with plain Python float arithmetic and
records the op from :mod:`chainrule.rules` that knows its derivative; the
comment beside each forward gives that local derivative.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from . import rules as R
from .engine import Node, init_node
from .modes import PLAIN, STATE, tick
from .numerics import float_div, float_exp, float_log, float_pow, float_sigmoid, float_sqrt
from .ops import Op

Number = int | float


def _relu(x: float) -> float:
    return x if x > 0 else 0.0


# Each Value operation is made by one of these two factories, so that an op
# costs a single Python call: compute the number, make the node, and record
# the op and operands only when some operand requires grad.  Numbers taking
# part in an op are kept in ``_parents`` as they are: constants, not nodes.


def _unary_method(op: Op, fn: Callable[[float], float]) -> Callable[[Value], Value]:
    def method(self: Value) -> Value:
        return init_node(_new(Value), fn(self.data), op, (self,), None, self.requires_grad)

    method.__name__ = op.name
    method.__doc__ = op.doc
    return method


def _binary_method(
    op: Op, fn: Callable[[float, float], float], reflected: bool = False
) -> Callable[[Value, Any], Value]:
    def method(self: Value, other: Any) -> Value:
        if isinstance(other, Value):
            rg = self.requires_grad or other.requires_grad
            o = other.data
        else:
            rg = self.requires_grad
            o = other if other.__class__ is float else _operand_number(other, op.name)
            other = o
        out = _new(Value)
        if reflected:
            out.data = fn(o, self.data)
            parents = (other, self)
        else:
            out.data = fn(self.data, o)
            parents = (self, other)
        # init_node's work, written out: arithmetic is the commonest Value op,
        # and a call would cost about 2.5% of a Value training step (a test checks
        # that both make the same node, so a new field cannot be missed here).
        out.grad = None
        out.name = None
        out._seq = tick()
        out._ctx = None
        mode = STATE.mode
        if rg and mode.grad:
            out.requires_grad = True
            out._op = op
            out._parents = parents
            if mode is not PLAIN:
                return init_node(out, out.data, op, parents, None, rg)  # scope, anomaly
            return out
        if mode is not PLAIN:
            return init_node(out, out.data, op, parents, None, rg)
        out.requires_grad = False
        out._op = None
        out._parents = ()
        return out

    method.__name__ = f"__r{op.name}__" if reflected else f"__{op.name}__"
    method.__doc__ = op.doc
    return method


_new = object.__new__


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
            number = float(data)
        except (TypeError, ValueError):
            raise TypeError(
                f"Value: data must be a real number, got {type(data).__name__} {data!r:.40}"
            ) from None
        init_node(self, number)
        self.name = name
        self.requires_grad = bool(requires_grad)

    # -- arithmetic: forward function, then the local derivatives ------------
    # (The rules themselves live in chainrule.rules; the comments repeat them.)
    __add__ = _binary_method(R.ADD, operator.add)  # d/da = 1, d/db = 1
    __radd__ = _binary_method(R.ADD, operator.add, reflected=True)
    __sub__ = _binary_method(R.SUB, operator.sub)  # d/da = 1, d/db = -1
    __rsub__ = _binary_method(R.SUB, operator.sub, reflected=True)
    __mul__ = _binary_method(R.MUL, operator.mul)  # d/da = b, d/db = a
    __rmul__ = _binary_method(R.MUL, operator.mul, reflected=True)
    __truediv__ = _binary_method(R.DIV, float_div)  # d/da = 1/b, d/db = -a/b^2
    __rtruediv__ = _binary_method(R.DIV, float_div, reflected=True)
    __pow__ = _binary_method(R.POW, float_pow)  # d/da = b a^(b-1), d/db = ln(a) a^b
    __rpow__ = _binary_method(R.POW, float_pow, reflected=True)
    __neg__ = _unary_method(R.NEG, operator.neg)  # d/da = -1

    def __pos__(self) -> Value:
        return self

    # -- functions -------------------------------------------------------
    exp = _unary_method(R.EXP, float_exp)  # d/dx = exp(x)
    log = _unary_method(R.LOG, float_log)  # d/dx = 1/x
    tanh = _unary_method(R.TANH, math.tanh)  # d/dx = 1 - tanh(x)^2
    sigmoid = _unary_method(R.SIGMOID, float_sigmoid)  # d/dx = s(1-s)
    relu = _unary_method(R.RELU, _relu)  # d/dx = 1 if x > 0 else 0
    abs = _unary_method(R.ABS, abs)  # d/dx = sign(x)
    sqrt = _unary_method(R.SQRT, float_sqrt)  # d/dx = 1 / (2 sqrt(x))

    # -- comparisons give plain bools; they are not differentiable --------
    def __lt__(self, other: Value | Number) -> bool:
        if STATE.tracing is not None:
            STATE.tracing.refuse("<", self, other)
        return self.data < _operand_number(other, "<")

    def __le__(self, other: Value | Number) -> bool:
        if STATE.tracing is not None:
            STATE.tracing.refuse("<=", self, other)
        return self.data <= _operand_number(other, "<=")

    def __gt__(self, other: Value | Number) -> bool:
        if STATE.tracing is not None:
            STATE.tracing.refuse(">", self, other)
        return self.data > _operand_number(other, ">")

    def __ge__(self, other: Value | Number) -> bool:
        if STATE.tracing is not None:
            STATE.tracing.refuse(">=", self, other)
        return self.data >= _operand_number(other, ">=")

    def __eq__(self, other: object) -> bool:
        """Equal numbers, as ``<=`` and ``>=`` compare them (``Value(2.0) == 2`` is True).

        Hashing stays by identity, so a set or dict of Values (the engine's
        gradients, for one) keeps two Values with equal numbers apart.
        """
        o = _number_or_none(other)
        if STATE.tracing is not None and o is not None:
            STATE.tracing.refuse("==", self, other)
        return NotImplemented if o is None else self.data == o

    def __ne__(self, other: object) -> bool:
        o = _number_or_none(other)
        if STATE.tracing is not None and o is not None:
            STATE.tracing.refuse("!=", self, other)
        return NotImplemented if o is None else self.data != o

    __hash__ = Node.__hash__

    def __float__(self) -> float:
        if STATE.tracing is not None:
            STATE.tracing.refuse("float()", self)
        return self.data

    def __bool__(self) -> bool:
        """Whether the number is not zero (as ``bool`` of a float)."""
        if STATE.tracing is not None:
            STATE.tracing.refuse("bool()", self)
        return self.data != 0

    @property
    def shape(self) -> tuple[int, ...]:
        """Always ``()``: a Value is a scalar."""
        return ()

    def item(self) -> float:
        """The number inside."""
        if STATE.tracing is not None:
            STATE.tracing.refuse(".item()", self)
        return self.data

    def detach(self) -> Value:
        """A new Value with the same number and no graph."""
        v = Value(self.data, self.name or "", requires_grad=False)
        if STATE.tracing is not None:  # chainrule.compile: recomputed at every call
            STATE.tracing.detach(v, self)
        return v

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


def _number_or_none(x: object) -> float | None:
    """The number behind ``x`` for ``==``, or None when ``x`` is not a real number."""
    if isinstance(x, Value):
        return x.data
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, (np.generic, np.ndarray)) and x.ndim == 0 and x.dtype.kind in "biuf":
        return float(x)
    return None


def _operand_number(x: Any, op: str) -> float:
    """The number behind an operand of a Value operation: a Python int or float.

    Subclasses of float and int, numpy's scalars among them, become plain
    Python numbers, so ``.data`` and ``.grad`` stay floats and arithmetic
    follows Python (and :func:`chainrule.engine._rerun_ieee`), not numpy's warnings.
    """
    if isinstance(x, Value):
        return x.data
    if x.__class__ is int or x.__class__ is float:
        return x
    if isinstance(x, (float, bool)):
        return float(x)
    if isinstance(x, int):
        return int(x)
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
