"""Every op in the rule table is checked against finite differences, to first and second order.

``REGISTRY`` maps each name in ``chainrule.OPS`` to the cases that exercise it:
small float64 inputs over several shapes (with broadcasting for the
elementwise binary ops), each run through ``cr.gradcheck`` and
``cr.gradgradcheck``.  An op added to the table without an entry here makes
``test_every_op_in_the_table_has_checks`` fail with its name.

Piecewise-linear ops (relu, abs, clip, maximum, minimum, max, where, indexing,
scatter, assignment) are not twice differentiable at their kinks; their cases
stay away from the kinks, where the second derivative exists and is 0, and
that 0 is checked too.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.engine import iter_graph
from chainrule.nn import functional as F


@dataclass(frozen=True)
class Case:
    """One call of an op: ``fn(*inputs)`` must record it somewhere in its graph.

    ``curved``: ``fn`` composes a piecewise-linear op with something nonlinear,
    so its second derivative is not 0 (the gradgradcheck then differentiates
    the op's gradient through its incoming gradient).
    """

    label: str
    fn: Callable[..., Any]
    inputs: tuple[cr.Node, ...]
    eps: float = 1e-6
    curved: bool = False


def squared(case: Case) -> Case:
    """``case`` with its output squared, so its second derivative (2 f'(x)^2 where f'' = 0)
    is carried by the op's own gradient."""
    fn = case.fn
    return Case(f"{case.label}, squared", lambda *xs: fn(*xs) ** 2.0, case.inputs, case.eps, True)


@dataclass(frozen=True)
class Rule:
    """How to exercise one op.

    ``smooth``: twice differentiable wherever the cases evaluate it.  False for
    the piecewise-linear ops: their cases avoid the kinks, and there the second
    derivative is 0.
    """

    cases: Callable[[np.random.Generator], list[Case]]
    smooth: bool


REGISTRY: dict[str, Rule] = {}


def rule(name: str, *, smooth: bool) -> Callable[[Callable[..., list[Case]]], Any]:
    def register(cases: Callable[[np.random.Generator], list[Case]]) -> Any:
        assert name not in REGISTRY, f"{name} registered twice"
        REGISTRY[name] = Rule(cases, smooth)
        return cases

    return register


# -- inputs -------------------------------------------------------------------


def t(data: Any) -> cr.Tensor:
    return cr.Tensor(np.asarray(data, dtype=np.float64), requires_grad=True)


def normal(rng: np.random.Generator, shape: tuple[int, ...]) -> cr.Tensor:
    return t(rng.standard_normal(shape))


def positive(rng: np.random.Generator, shape: tuple[int, ...]) -> cr.Tensor:
    return t(rng.uniform(0.5, 2.0, shape))


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> cr.Tensor:
    """Values at least 0.2 from 0 (the kink of relu and abs)."""
    return t(rng.uniform(0.2, 1.5, shape) * rng.choice([-1.0, 1.0], shape))


def on_grid(rng: np.random.Generator, shape: tuple[int, ...], odd: bool) -> cr.Tensor:
    """Multiples of 0.25 in [-1.75, 1.75]: odd ones or even ones.

    An odd and an even multiple are never equal (maximum and minimum stay
    away from ties), and an odd multiple is at least 0.25 from +-0.5 (clip's
    bounds below).
    """
    k = rng.integers(-3, 4, shape) * 2 + (1 if odd else 0)
    return t(k * 0.25)


def distinct(rng: np.random.Generator, shape: tuple[int, ...]) -> cr.Tensor:
    """Values at least 0.3 apart, so a max has no ties."""
    n = int(np.prod(shape))
    return t((rng.permutation(n) * 0.3 + rng.uniform(0.0, 0.1, n)).reshape(shape))


#: Shape pairs for elementwise binary ops: equal, and broadcast in each way numpy allows.
PAIRS = [((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 2)), ((2, 2), ())]
SHAPES = [(), (4,), (2, 3)]


def binary(
    fn: Callable[[Any, Any], Any],
    rng: np.random.Generator,
    make_a: Callable[..., cr.Tensor] = normal,
    make_b: Callable[..., cr.Tensor] = normal,
) -> list[Case]:
    cases = [Case(f"{sa} with {sb}", fn, (make_a(rng, sa), make_b(rng, sb))) for sa, sb in PAIRS]
    # With a constant on either side: the tensor's gradient alone.
    cases.append(Case("tensor with number", lambda a: fn(a, 0.7), (make_a(rng, (2, 3)),)))
    cases.append(Case("number with tensor", lambda b: fn(1.3, b), (make_b(rng, (2, 3)),)))
    return cases


def unary(
    fn: Callable[[Any], Any],
    rng: np.random.Generator,
    make: Callable[..., cr.Tensor] = normal,
) -> list[Case]:
    return [Case(str(shape), fn, (make(rng, shape),)) for shape in SHAPES]


# -- the registry: elementwise ------------------------------------------------


@rule("add", smooth=True)
def _add(rng):
    return binary(lambda a, b: a + b, rng)


@rule("sub", smooth=True)
def _sub(rng):
    return binary(lambda a, b: a - b, rng)


@rule("mul", smooth=True)
def _mul(rng):
    return binary(lambda a, b: a * b, rng)


@rule("div", smooth=True)
def _div(rng):
    return binary(lambda a, b: a / b, rng, make_b=away_from_zero)


@rule("neg", smooth=True)
def _neg(rng):
    return unary(lambda a: -a, rng)


@rule("pow", smooth=True)
def _pow(rng):
    cases = binary(lambda a, b: a**b, rng, make_a=positive)
    cases += [
        Case("negative base, integer power", lambda a: a**3.0, (normal(rng, (2, 3)),)),
        Case("square root as a power", lambda a: a**0.5, (positive(rng, (4,)),)),
        Case("negative power", lambda a: a**-2.0, (away_from_zero(rng, (3,)),)),
    ]
    return cases


@rule("exp", smooth=True)
def _exp(rng):
    return unary(lambda a: a.exp(), rng)


@rule("log", smooth=True)
def _log(rng):
    return unary(lambda a: a.log(), rng, positive)


@rule("tanh", smooth=True)
def _tanh(rng):
    return unary(lambda a: a.tanh(), rng)


@rule("sigmoid", smooth=True)
def _sigmoid(rng):
    return unary(lambda a: a.sigmoid(), rng) + [
        Case("far from 0", lambda a: (a * 8.0).sigmoid(), (normal(rng, (5,)),))
    ]


@rule("softplus", smooth=True)
def _softplus(rng):
    return unary(F.softplus, rng) + [
        Case("far from 0", lambda a: F.softplus(a * 8.0), (normal(rng, (5,)),))
    ]


@rule("sqrt", smooth=True)
def _sqrt(rng):
    return unary(lambda a: a.sqrt(), rng, positive)


@rule("relu", smooth=False)
def _relu(rng):
    cases = unary(lambda a: a.relu(), rng, away_from_zero)
    return [*cases, squared(cases[-1])]


@rule("abs", smooth=False)
def _abs(rng):
    cases = unary(lambda a: a.abs(), rng, away_from_zero)
    return [*cases, squared(cases[-1])]


@rule("clip", smooth=False)
def _clip(rng):
    def odd(rng, shape):
        return on_grid(rng, shape, odd=True)

    cases = unary(lambda a: a.clip(-0.5, 0.5), rng, odd) + [
        Case("lower bound only", lambda a: a.clip(min=-0.5), (odd(rng, (6,)),)),
        Case("upper bound only", lambda a: cr.clip(a, max=0.5), (odd(rng, (6,)),)),
    ]
    return [*cases, squared(cases[2])]


def _odd(rng, shape):
    return on_grid(rng, shape, odd=True)


def _even(rng, shape):
    return on_grid(rng, shape, odd=False)


@rule("maximum", smooth=False)
def _maximum(rng):
    cases = binary(cr.maximum, rng, _odd, _even)[: len(PAIRS)] + [
        Case("tensor with number", lambda a: cr.maximum(a, 0.0), (_odd(rng, (2, 3)),)),
        Case("number with tensor", lambda b: cr.maximum(0.25, b), (_even(rng, (2, 3)),)),
    ]
    return [*cases, squared(cases[1]), squared(cases[2])]


@rule("minimum", smooth=False)
def _minimum(rng):
    cases = binary(cr.minimum, rng, _odd, _even)[: len(PAIRS)] + [
        Case("tensor with number", lambda a: cr.minimum(a, 0.0), (_odd(rng, (2, 3)),)),
        Case("number with tensor", lambda b: cr.minimum(0.25, b), (_even(rng, (2, 3)),)),
    ]
    return [*cases, squared(cases[1]), squared(cases[2])]


@rule("where", smooth=False)
def _where(rng):
    cond = np.array([[True, False, True], [False, False, True]])
    row = np.array([True, False, False])
    cases = [
        Case(
            "same shapes",
            lambda a, b: cr.where(cond, a, b),
            (normal(rng, (2, 3)), normal(rng, (2, 3))),
        ),
        Case(
            "broadcast", lambda a, b: cr.where(cond, a, b), (normal(rng, (3,)), normal(rng, (2, 1)))
        ),
        Case(
            "broadcast cond",
            lambda a, b: cr.where(row, a, b),
            (normal(rng, (2, 3)), normal(rng, ())),
        ),
        Case("number for b", lambda a: cr.where(cond, a, 0.0), (normal(rng, (2, 3)),)),
        Case("number for a", lambda b: cr.where(row, -1.0, b), (normal(rng, (2, 3)),)),
    ]
    return [*cases, squared(cases[1]), squared(cases[3])]


@rule("astype", smooth=True)
def _astype(rng):
    # float64 -> float32 -> float64 loses digits past float32's; astype is the
    # identity on values, so a wide step gives exact central differences.
    return [
        Case(
            str(shape),
            lambda a: a.astype(np.float32).astype(np.float64) * a,
            (normal(rng, shape),),
            eps=1e-2,
        )
        for shape in SHAPES
    ]


# -- the registry: linear algebra, reductions, shapes ---------------------------


@rule("matmul", smooth=True)
def _matmul(rng):
    shapes = [
        ((2, 3), (3, 4)),
        ((3,), (3, 2)),
        ((2, 3), (3,)),
        ((3,), (3,)),
        ((2, 2, 3), (3, 2)),
        ((2, 3), (2, 3, 2)),
        ((3,), (2, 3, 2)),
        ((2, 2, 3), (3,)),
        ((2, 1, 2, 3), (3, 3, 2)),
    ]
    return [
        Case(f"{sa} @ {sb}", lambda a, b: a @ b, (normal(rng, sa), normal(rng, sb)))
        for sa, sb in shapes
    ]


@rule("sum", smooth=True)
def _sum(rng):
    return [
        Case("all", lambda a: a.sum(), (normal(rng, (2, 3, 2)),)),
        Case("axis 1", lambda a: a.sum(axis=1), (normal(rng, (2, 3, 2)),)),
        Case(
            "axes (0, 2), kept",
            lambda a: a.sum(axis=(0, 2), keepdims=True),
            (normal(rng, (2, 3, 2)),),
        ),
        Case("dim -1", lambda a: a.sum(dim=-1), (normal(rng, (2, 3)),)),
        Case("0-d", lambda a: a.sum(), (normal(rng, ()),)),
    ]


@rule("mean", smooth=True)
def _mean(rng):
    return [
        Case("all", lambda a: a.mean(), (normal(rng, (2, 3, 2)),)),
        Case("axis 0", lambda a: a.mean(axis=0), (normal(rng, (2, 3, 2)),)),
        Case(
            "axes (1, 2), kept",
            lambda a: a.mean(axis=(1, 2), keepdims=True),
            (normal(rng, (2, 3, 2)),),
        ),
        Case("all, kept", lambda a: a.mean(keepdims=True), (normal(rng, (3,)),)),
    ]


@rule("max", smooth=False)
def _max(rng):
    cases = [
        Case("all", lambda a: a.max(), (distinct(rng, (2, 3, 2)),)),
        Case("axis 1", lambda a: a.max(axis=1), (distinct(rng, (2, 3, 2)),)),
        Case(
            "axes (0, 2), kept",
            lambda a: a.max(axis=(0, 2), keepdims=True),
            (distinct(rng, (2, 3, 2)),),
        ),
        Case("min as -max(-x)", lambda a: a.min(axis=0), (distinct(rng, (3, 2)),)),
    ]
    return [*cases, squared(cases[1]), squared(cases[2])]


@rule("reshape", smooth=True)
def _reshape(rng):
    return [
        Case(
            "(2, 3) to (3, 2)", lambda a: a.reshape(3, 2) * a.reshape(3, 2), (normal(rng, (2, 3)),)
        ),
        Case("to -1", lambda a: a.reshape(-1) ** 2.0, (normal(rng, (2, 2, 2)),)),
        Case("0-d to (1, 1)", lambda a: a.reshape((1, 1)), (normal(rng, ()),)),
    ]


@rule("transpose", smooth=True)
def _transpose(rng):
    return [
        Case(".T", lambda a: a.T * a.T, (normal(rng, (2, 3)),)),
        Case("axes (2, 0, 1)", lambda a: a.transpose(2, 0, 1) ** 2.0, (normal(rng, (2, 3, 2)),)),
        Case("swapaxes", lambda a: a.swapaxes(0, 2), (normal(rng, (2, 1, 3)),)),
    ]


@rule("broadcast_to", smooth=True)
def _broadcast_to(rng):
    return [
        Case("(3,) to (2, 3)", lambda a: a.broadcast_to((2, 3)) ** 2.0, (normal(rng, (3,)),)),
        Case("(2, 1) to (2, 4)", lambda a: a.broadcast_to((2, 4)), (normal(rng, (2, 1)),)),
        Case("() to (3,)", lambda a: a.broadcast_to((3,)) * a, (normal(rng, ()),)),
        Case("(1, 3) to (2, 2, 3)", lambda a: a.broadcast_to((2, 2, 3)), (normal(rng, (1, 3)),)),
    ]


@rule("concatenate", smooth=True)
def _concatenate(rng):
    return [
        Case(
            "axis 0",
            lambda a, b: cr.concatenate([a, b]) ** 2.0,
            (normal(rng, (2, 3)), normal(rng, (1, 3))),
        ),
        Case(
            "axis 1, three parts",
            lambda a, b, c: cr.concatenate([a, b, c], axis=1) * 2.0,
            (normal(rng, (2, 1)), normal(rng, (2, 3)), normal(rng, (2, 2))),
        ),
        Case(
            "axis -1 with a constant",
            lambda a: cr.cat([a, cr.Tensor(np.ones(2)), a], axis=-1) ** 2.0,
            (normal(rng, (3,)),),
        ),
    ]


@rule("stack", smooth=True)
def _stack(rng):
    return [
        Case(
            f"axis {axis}",
            lambda a, b, c, axis=axis: cr.stack([a, b, c], axis=axis) ** 2.0,
            (normal(rng, (2, 3)), normal(rng, (2, 3)), normal(rng, (2, 3))),
        )
        for axis in (0, 1, -1)
    ] + [Case("0-d parts", lambda a, b: cr.stack([a, b]) * a, (normal(rng, ()), normal(rng, ())))]


@rule("logsumexp", smooth=True)
def _logsumexp(rng):
    return [
        Case("all", lambda a: a.logsumexp(), (normal(rng, (2, 3)),)),
        Case("axis 1", lambda a: a.logsumexp(axis=1), (normal(rng, (2, 3)),)),
        Case("axis 0, kept", lambda a: a.logsumexp(axis=0, keepdims=True), (normal(rng, (3, 2)),)),
        Case("large values", lambda a: (a * 300.0).logsumexp(axis=-1), (normal(rng, (2, 3)),)),
    ]


@rule("softmax", smooth=True)
def _softmax(rng):
    return [
        Case("(4,)", lambda a: a.softmax(), (normal(rng, (4,)),)),
        Case("(2, 3) axis 0", lambda a: a.softmax(axis=0), (normal(rng, (2, 3)),)),
        Case("(2, 3, 2) axis 1", lambda a: cr.softmax(a, axis=1), (normal(rng, (2, 3, 2)),)),
    ]


@rule("log_softmax", smooth=True)
def _log_softmax(rng):
    return [
        Case("(4,)", lambda a: a.log_softmax(), (normal(rng, (4,)),)),
        Case("(2, 3) axis 0", lambda a: a.log_softmax(axis=0), (normal(rng, (2, 3)),)),
        Case("(2, 3, 2) axis 1", lambda a: cr.log_softmax(a, axis=1), (normal(rng, (2, 3, 2)),)),
    ]


@rule("cross_entropy", smooth=True)
def _cross_entropy(rng):
    y = np.array([2, 0, 1, 2])
    return [
        Case("mean", lambda x: F.cross_entropy(x, y), (normal(rng, (4, 3)),)),
        Case("sum", lambda x: F.cross_entropy(x, y, reduction="sum"), (normal(rng, (4, 3)),)),
        Case("none", lambda x: F.cross_entropy(x, y, reduction="none"), (normal(rng, (4, 3)),)),
        Case(
            "class weights",
            lambda x: F.cross_entropy(x, y, weight=np.array([0.5, 2.0, 1.0])),
            (normal(rng, (4, 3)),),
        ),
        Case(
            "an ignored target",
            lambda x: F.cross_entropy(x, np.array([2, -100, 1, 0])),
            (normal(rng, (4, 3)),),
        ),
        Case("one sample (3,)", lambda x: F.cross_entropy(x, 1), (normal(rng, (3,)),)),
        Case(
            "(N, C, d)",
            lambda x: F.cross_entropy(x, np.array([[0, 2], [1, 1]]), reduction="none"),
            (normal(rng, (2, 3, 2)),),
        ),
    ]


# -- the registry: functions and reductions named as PyTorch names them ---------


def _above_minus_one(rng, shape):
    """Values in (-0.6, 2): log1p's domain, with some near 0 where it differs from log(1+x)."""
    return t(rng.uniform(-0.6, 2.0, shape))


@rule("sin", smooth=True)
def _sin(rng):
    return unary(lambda a: a.sin(), rng) + [
        Case("function form, scaled", lambda a: cr.sin(a * 3.0), (normal(rng, (2, 2)),))
    ]


@rule("cos", smooth=True)
def _cos(rng):
    return unary(lambda a: a.cos(), rng) + [
        Case("function form, scaled", lambda a: cr.cos(a * 3.0), (normal(rng, (2, 2)),))
    ]


@rule("exp2", smooth=True)
def _exp2(rng):
    return unary(lambda a: a.exp2(), rng)


@rule("log2", smooth=True)
def _log2(rng):
    return unary(lambda a: a.log2(), rng, positive)


@rule("log1p", smooth=True)
def _log1p(rng):
    return unary(lambda a: a.log1p(), rng, _above_minus_one) + [
        Case("tiny x", lambda a: (a * 1e-3).log1p(), (normal(rng, (3,)),))
    ]


@rule("expm1", smooth=True)
def _expm1(rng):
    return unary(lambda a: a.expm1(), rng) + [
        Case("tiny x", lambda a: (a * 1e-3).expm1(), (normal(rng, (3,)),))
    ]


@rule("clone", smooth=True)
def _clone(rng):
    return [
        Case("(2, 3), times x", lambda a: a.clone() * a, (normal(rng, (2, 3)),)),
        Case("0-d", lambda a: a.clone(), (normal(rng, ()),)),
        Case("non-contiguous, made contiguous", lambda a: a.T.contiguous(), (normal(rng, (2, 3)),)),
    ]


@rule("cumsum", smooth=True)
def _cumsum(rng):
    return [
        Case("(4,)", lambda a: a.cumsum(0) ** 2.0, (normal(rng, (4,)),)),
        Case("(2, 3) dim 1", lambda a: a.cumsum(dim=1), (normal(rng, (2, 3)),)),
        Case("(2, 3, 2) axis 0", lambda a: a.cumsum(axis=0) * a, (normal(rng, (2, 3, 2)),)),
        Case("(2, 3) dim -1", lambda a: cr.cumsum(a, -1) ** 2.0, (normal(rng, (2, 3)),)),
    ]


@rule("prod", smooth=True)
def _prod(rng):
    # A product is a polynomial: smooth everywhere, zeros included, which its
    # rule must get right without dividing by them.
    return [
        Case("all", lambda a: a.prod(), (normal(rng, (2, 3)),)),
        Case("dim 1", lambda a: a.prod(dim=1), (normal(rng, (2, 3, 2)),)),
        Case(
            "axes (0, 2), kept",
            lambda a: a.prod(axis=(0, 2), keepdims=True),
            (normal(rng, (2, 3, 2)),),
        ),
        Case("one zero", lambda a: a.prod(), (t([1.5, 0.0, -2.0, 0.7]),)),
        Case("two zeros", lambda a: a.prod(), (t([1.5, 0.0, -2.0, 0.0]),)),
        Case(
            "zeros in some rows", lambda a: a.prod(dim=-1), (t([[0.0, 2.0, 3.0], [0.0, 0.0, 1.5]]),)
        ),
        Case("0-d", lambda a: a.prod() * a, (normal(rng, ()),)),
    ]


@rule("norm", smooth=True)
def _norm(rng):
    return [
        Case("all", lambda a: a.norm(), (normal(rng, (2, 3)),)),
        Case("dim 1", lambda a: a.norm(dim=1), (normal(rng, (2, 3, 2)),)),
        Case("axes (0, 2), kept", lambda a: a.norm(2, (0, 2), True), (normal(rng, (2, 3, 2)),)),
        Case("std", lambda a: a.std(dim=0), (normal(rng, (4, 3)),)),
    ]


# -- the registry: indexing, scatter, assignment -------------------------------

REPEATS = np.array([0, 2, 0, 3])
MASK = np.array([[True, False, True], [False, True, True]])


@rule("getitem", smooth=False)
def _getitem(rng):
    cases = [
        Case("an integer", lambda x: x[1], (normal(rng, (3, 2)),)),
        Case("slices", lambda x: x[:, 1:3], (normal(rng, (2, 4)),)),
        Case("repeated positions", lambda x: x[REPEATS], (normal(rng, (4,)),)),
        Case("a mask", lambda x: x[MASK], (normal(rng, (2, 3)),)),
        Case("two index arrays", lambda x: x[[0, 1, 1], [2, 0, 2]], (normal(rng, (2, 3)),)),
        Case("None and Ellipsis", lambda x: x[None, ..., 1], (normal(rng, (2, 3)),)),
        Case("0-d result", lambda x: x[1, 2] * x[0, 0], (normal(rng, (2, 3)),), curved=True),
    ]
    return [*cases, squared(cases[2]), squared(cases[3])]


@rule("scatter", smooth=False)
def _scatter_cases(rng):
    def of_indexing(x, w):
        # The gradient of x[REPEATS] . w with respect to x is w scattered into
        # zeros of x's shape; with create_graph it is recorded as a scatter node.
        # (gradcheck evaluates fn under no_grad; the graph of x[REPEATS] is needed.)
        with cr.enable_grad():
            (g,) = cr.grad((x[REPEATS] * w).sum(), x, create_graph=True)
        return g

    def of_two_indices(x, w):
        with cr.enable_grad():
            (g,) = cr.grad((x[:, [2, 0, 2]] * w).sum(), x, create_graph=True)
        return g * x

    return [
        Case("repeated positions", lambda g: g._scatter((5,), REPEATS), (normal(rng, (4,)),)),
        Case(
            "rows of a matrix",
            lambda g: g._scatter((3, 2), np.array([2, 0])),
            (normal(rng, (2, 2)),),
        ),
        Case("a mask", lambda g: g._scatter((2, 3), MASK), (normal(rng, (4,)),)),
        Case("from cr.grad of indexing", of_indexing, (normal(rng, (4,)), normal(rng, (4,)))),
        Case(
            "from cr.grad, times x",
            of_two_indices,
            (normal(rng, (2, 3)), normal(rng, (2, 3))),
            curved=True,
        ),
    ]


@rule("erf", smooth=True)
def _erf(rng):
    # The tails too, where erf is nearly +-1 and its slope nearly 0.
    return unary(lambda a: a.erf(), rng) + [
        Case("tails", lambda a: (a * 3.0).erf(), (away_from_zero(rng, (5,)),))
    ]


@rule("setitem", smooth=False)
def _setitem(rng):
    def assign(index, base_requires_grad=True):
        def fn(*xs):
            if base_requires_grad:
                base, v = xs
                out = base * 1.0  # an intermediate: it may be written in place
            else:
                (v,) = xs
                out = cr.Tensor(np.zeros((3, 4)))
            out[index] = v
            return out

        return fn

    def copy_(base, v):
        out = base * 1.0
        out.copy_(v)  # every element, v broadcast
        return out

    cases = [
        Case("a row", assign(1), (normal(rng, (3, 4)), normal(rng, (4,)))),
        Case(
            "a block, broadcast",
            assign((slice(0, 2), slice(1, 3))),
            (normal(rng, (3, 4)), normal(rng, (2, 1))),
        ),
        Case("index array", assign(np.array([2, 0])), (normal(rng, (3, 4)), normal(rng, (2, 4)))),
        Case(
            "a mask", assign(np.array([True, False, True])), (normal(rng, (3, 4)), normal(rng, ()))
        ),
        Case(
            "into a constant",
            assign((0, slice(None)), base_requires_grad=False),
            (normal(rng, (4,)),),
        ),
        Case("copy_", copy_, (normal(rng, (2, 3)), normal(rng, (3,)))),
    ]
    return [*cases, squared(cases[1]), squared(cases[4])]


# -- the tests ------------------------------------------------------------------


def test_every_op_in_the_table_has_checks() -> None:
    missing = sorted(set(cr.OPS) - set(REGISTRY))
    unknown = sorted(set(REGISTRY) - set(cr.OPS))
    assert not missing, f"ops in chainrule.OPS with no gradcheck in {__name__}: {missing}"
    assert not unknown, f"{__name__} checks ops that chainrule.OPS does not have: {unknown}"


def _cases(name: str) -> list[Case]:
    # Seeded by the op's name, so adding an op to the table leaves every other op's
    # inputs as they were.
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return REGISTRY[name].cases(rng)


def _outputs(result: Any) -> list[cr.Node]:
    return list(result) if isinstance(result, (tuple, list)) else [result]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_gradcheck(name: str) -> None:
    op = cr.OPS[name]
    for case in _cases(name):
        # The case must exercise the op it is filed under.
        ops = {n._op for n in iter_graph(_outputs(case.fn(*case.inputs)))}
        assert op in ops, f"{name} [{case.label}]: the graph has no {name} node"
        try:
            cr.gradcheck(case.fn, case.inputs, eps=case.eps)
        except cr.GradcheckError as e:
            raise AssertionError(f"{name} [{case.label}]: {e}") from None


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_gradgradcheck(name: str) -> None:
    for case in _cases(name):
        try:
            cr.gradgradcheck(case.fn, case.inputs, eps=case.eps)
        except cr.GradcheckError as e:
            raise AssertionError(f"{name} [{case.label}]: {e}") from None


def _hessian_vector_products(case: Case) -> list[np.ndarray]:
    """d/dx of (v . dfn/dx) . w for random v, w: a second derivative in one direction."""
    rng = np.random.default_rng(0)
    outs = _outputs(case.fn(*case.inputs))
    vs = [rng.standard_normal(o.shape) for o in outs]
    firsts = cr.grad(outs, list(case.inputs), grad_outputs=vs, create_graph=True, allow_unused=True)
    total: Any = 0.0
    for g in firsts:
        if g is not None and g.requires_grad:
            total = total + (g * cr.Tensor(rng.standard_normal(g.shape))).sum()
    if not isinstance(total, cr.Node):
        return []  # no first derivative depends on an input: the second is 0
    seconds = cr.grad(total, list(case.inputs), allow_unused=True)
    return [np.asarray(s.data) for s in seconds if s is not None]


@pytest.mark.parametrize("name", sorted(n for n, r in REGISTRY.items() if not r.smooth))
def test_piecewise_linear_ops_have_no_curvature_between_kinks(name: str) -> None:
    for case in _cases(name):
        if case.curved:
            continue
        for h in _hessian_vector_products(case):
            assert np.all(h == 0.0), f"{name} [{case.label}]: second derivative {h}"


# -- Value: the scalar ops through the same table ---------------------------------

VALUE_CASES: dict[str, list[tuple[Callable[..., Any], tuple[float, ...]]]] = {
    "add": [
        (lambda a, b: a + b, (0.3, -1.2)),
        (lambda a: a + 2.0, (0.3,)),
        (lambda a: 2.0 + a, (0.3,)),
    ],
    "sub": [
        (lambda a, b: a - b, (0.3, -1.2)),
        (lambda a: a - 2.0, (0.3,)),
        (lambda a: 2.0 - a, (0.3,)),
    ],
    "mul": [
        (lambda a, b: a * b, (0.3, -1.2)),
        (lambda a: a * a * 3.0, (0.7,)),
        (lambda a: 2.0 * a, (0.3,)),
    ],
    "div": [
        (lambda a, b: a / b, (0.3, -1.2)),
        (lambda a: a / 4.0, (0.3,)),
        (lambda a: 2.0 / a, (0.6,)),
    ],
    "pow": [
        (lambda a, b: a**b, (1.3, -0.7)),
        (lambda a: a**3, (-0.8,)),
        (lambda a: 2.0**a, (0.4,)),
        (lambda a: a**0.5, (2.5,)),
    ],
    "neg": [(lambda a: -a * a, (0.4,))],
    "exp": [(lambda a: a.exp(), (-0.4,)), (lambda a: (a * a).exp(), (0.9,))],
    "log": [(lambda a: a.log(), (0.4,)), (lambda a: (a * a).log(), (-1.5,))],
    "tanh": [(lambda a: a.tanh(), (0.4,)), (lambda a: (a * 3.0).tanh(), (-0.9,))],
    "sigmoid": [(lambda a: a.sigmoid(), (0.4,)), (lambda a: (a * 5.0).sigmoid(), (-1.1,))],
    "relu": [(lambda a: a.relu() * a, (0.4,)), (lambda a: a.relu() * a, (-0.7,))],
    "abs": [(lambda a: a.abs() * a, (0.4,)), (lambda a: (a * 3.0).abs(), (-0.7,))],
    "sqrt": [(lambda a: a.sqrt(), (0.4,)), (lambda a: (a * a).sqrt() * a, (-1.3,))],
}


def _value_ops() -> set[str]:
    """The ops a Value records: its methods carry their op's description."""
    docs = {op.doc: name for name, op in cr.OPS.items()}
    return {docs[f.__doc__] for f in vars(cr.Value).values() if getattr(f, "__doc__", None) in docs}


def test_every_value_op_has_checks() -> None:
    ops = _value_ops()
    assert {"add", "mul", "tanh", "relu"} <= ops  # the way of finding them works
    assert ops == set(VALUE_CASES), f"Value ops without checks: {sorted(ops - set(VALUE_CASES))}"


@pytest.mark.parametrize("name", sorted(VALUE_CASES))
def test_value_gradcheck_and_gradgradcheck(name: str) -> None:
    op = cr.OPS[name]
    for fn, at in VALUE_CASES[name]:
        xs = [cr.Value(x) for x in at]
        assert op in {n._op for n in iter_graph([fn(*xs)])}, (name, at)
        try:
            cr.gradcheck(fn, xs)
            cr.gradgradcheck(fn, xs)
        except cr.GradcheckError as e:
            raise AssertionError(f"Value {name} at {at}: {e}") from None
