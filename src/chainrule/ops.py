"""What an operation is: its name, how it reads, and its derivative rules.

An :class:`Op` is one entry of the rule table (the table itself is
:mod:`chainrule.rules`): the engine records the Op on each node it makes and
asks it for the vector-Jacobian products during backward, and for the
Jacobian-vector products in forward mode; explanations and pictures read its
name, symbol and formulas.  Every Op registers itself in
:data:`OPS` as it is made.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Protocol

Vjp = Callable[..., Any]
Jvp = Callable[..., Any]

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
        jvps: ``jvps[i](t, out, ctx, *inputs)`` is the Jacobian-vector product
            for input ``i``: the part of the output's tangent that input ``i``'s
            tangent ``t`` (shaped like that input) contributes, ``J_i @ t``.  It
            gets ``out``, ``ctx`` and ``inputs`` exactly as a VJP does.  Its
            result broadcasts to the output's shape without always having it
            (``t * b`` for a broadcast product); the caller adds up the
            contributions of the inputs and broadcasts the sum.  A variadic op
            has one ``njvp(i, t, out, ctx, *inputs)``, bound per input like
            ``nvjp``.  Each JVP is the transpose of the VJP for the same input.
        formulas: the local derivative of the output with respect to each
            input, as text (for variadic ops, one formula for all inputs).
        operands: the names ``symbol`` gives the inputs, when they are not the
            usual ``a``, ``b`` (or ``x`` for one input).
        elementwise: True when output element ``k`` depends only on element
            ``k`` of each (broadcast) input, so a local derivative is a number
            per element.
        matrix: optional, for ops that are not elementwise: each input's VJP
            in matrix notation, written with ``g`` for the output's gradient
            (a matrix product's ``g b^T`` and ``a^T g``), as :func:`chainrule.derive`
            prints it.
    """

    __slots__ = (
        "doc",
        "elementwise",
        "formulas",
        "jvps",
        "matrix",
        "name",
        "operands",
        "symbol",
        "variadic",
        "vjps",
    )

    vjps: VjpTable
    jvps: VjpTable

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
        jvps: Sequence[Jvp] | None = None,
        njvp: Jvp | None = None,
        operands: Sequence[str] = (),
        matrix: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.symbol = symbol
        self.variadic = nvjp is not None
        if nvjp is not None:
            self.vjps = _BindInput(nvjp)
            if njvp is None:
                raise ValueError(f"op {name!r} takes any number of inputs, so it needs njvp")
            self.jvps = _BindInput(njvp)
        elif njvp is not None:
            raise ValueError(f"op {name!r} has njvp, for any number of inputs, but no nvjp")
        elif vjps is not None:
            self.vjps = tuple(vjps)
            if jvps is None or len(jvps) != len(self.vjps):
                raise ValueError(
                    f"op {name!r} needs jvps with one JVP per input, like its "
                    f"{len(self.vjps)} vjps; got {'none' if jvps is None else len(jvps)}"
                )
            self.jvps = tuple(jvps)
        else:
            raise ValueError(f"op {name!r} needs vjps or nvjp")
        self.formulas = tuple(formulas)
        self.elementwise = elementwise
        self.doc = doc
        self.operands = tuple(operands)
        self.matrix = tuple(matrix)
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
    """The VJPs (or JVPs) of a variadic op: item ``i`` is its one rule with ``i`` bound."""

    __slots__ = ("nvjp",)

    def __init__(self, nvjp: Vjp) -> None:
        self.nvjp = nvjp

    def __getitem__(self, i: int) -> Vjp:
        return functools.partial(self.nvjp, i)
