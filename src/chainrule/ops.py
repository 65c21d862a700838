"""What an operation is: its name, how it reads, and its derivative rules.

An :class:`Op` is one entry of the rule table (the table itself is
:mod:`chainrule.rules`): the engine records the Op on each node it makes and
asks it for the vector-Jacobian products during backward; explanations and
pictures read its name, symbol and formulas.  Every Op registers itself in
:data:`OPS` as it is made.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Protocol

Vjp = Callable[..., Any]

#: Every op by name, in the order defined: the one place derivative rules live.
OPS: dict[str, Op] = {}


class Op:
    """A differentiable operation.

    Attributes:
        name: short name shown in pictures (``mul``, ``sigmoid``, ``matmul``).
        symbol: how the forward reads (``a * b``).
        vjps: ``vjps[i]`` is the VJP for input ``i``.  An op taking any number
            of inputs (``variadic``) is defined with one function
            ``nvjp(i, g, out, ctx, *inputs)`` instead, and ``vjps[i]`` binds
            ``i`` to it, so the engine treats both kinds alike.
        formulas: the local derivative of the output with respect to each
            input, as text (for variadic ops, one formula for all inputs).
        operands: the names ``symbol`` gives the inputs, when they are not the
            usual ``a``, ``b`` (or ``x`` for one input).
        elementwise: True when output element ``k`` depends only on element
            ``k`` of each (broadcast) input, so a local derivative is a number
            per element.
    """

    __slots__ = ("doc", "elementwise", "formulas", "name", "operands", "symbol", "variadic", "vjps")

    vjps: VjpTable

    def __init__(
        self,
        name: str,
        symbol: str,
        vjps: Sequence[Vjp] | None,
        formulas: Sequence[str],
        doc: str,
        *,
        elementwise: bool = False,
        nvjp: Vjp | None = None,
        operands: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.symbol = symbol
        self.variadic = nvjp is not None
        if nvjp is not None:
            self.vjps = _BindInput(nvjp)
        elif vjps is not None:
            self.vjps = tuple(vjps)
        else:
            raise ValueError(f"op {name!r} needs vjps or nvjp")
        self.formulas = tuple(formulas)
        self.elementwise = elementwise
        self.doc = doc
        self.operands = tuple(operands)
        if name in OPS:
            raise ValueError(f"op {name!r} is defined twice")
        OPS[name] = self

    def formula(self, i: int) -> str:
        """The local derivative with respect to input ``i``, as text."""
        return self.formulas[min(i, len(self.formulas) - 1)]

    def __repr__(self) -> str:
        return f"Op({self.name!r}: {self.symbol})"


class VjpTable(Protocol):
    """What the engine needs of ``Op.vjps``: the VJP for input ``i``."""

    def __getitem__(self, i: int, /) -> Vjp: ...


class _BindInput:
    """The VJPs of a variadic op: item ``i`` is its one VJP with ``i`` bound."""

    __slots__ = ("nvjp",)

    def __init__(self, nvjp: Vjp) -> None:
        self.nvjp = nvjp

    def __getitem__(self, i: int) -> Vjp:
        return functools.partial(self.nvjp, i)
