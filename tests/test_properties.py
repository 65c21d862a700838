"""Property-based gradient checks over randomly composed expressions.

Hypothesis draws a few input shapes that broadcast together, a sequence of
operations whose operands are picked from the inputs and the earlier results
(so inputs and sub-expressions are reused), and input values.  The composed
function is then gradchecked.  On failure the expression is printed as a
small program (``note``), one line per step.

Ops with a kink (relu, abs, clip, maximum, max, ...) are only applied where
every element is well away from the kink; otherwise the step falls back to a
smooth op, and the program shows the op actually used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule import Tensor, Value, gradcheck, gradgradcheck

MARGIN = 0.05  # how far a kink must be from every operand element
LIMIT = 50.0  # largest magnitude allowed in intermediate results

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)

# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------


@st.composite
def broadcastable_shapes(draw: Any, max_inputs: int = 3, max_side: int = 3) -> list[tuple]:
    """1 to ``max_inputs`` shapes that broadcast together.

    Each is a suffix of one common shape, with some axes shrunk to 1, so
    broadcasting happens in every direction, and 0-d shapes occur.
    """
    # Weighted choices: mostly full-rank shapes of sides 2 to 3, some size-1 axes, a few 0-d.
    rank = draw(st.sampled_from([2, 3, 1, 0]))
    target = [draw(st.integers(2, max_side)) for _ in range(rank)]
    shapes = []
    for _ in range(draw(st.integers(1, max_inputs))):
        start = draw(st.sampled_from([0, 0, 0, *range(1, rank + 1)]))
        shrink = st.sampled_from([False, False, True])
        shapes.append(tuple(1 if draw(shrink) else n for n in target[start:]))
    return shapes


def values(shape: tuple) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, shape, elements=st.floats(-1.5, 1.5, width=64))


# ---------------------------------------------------------------------------
# The operations a random program may use
# ---------------------------------------------------------------------------


@dataclass
class Step:
    """One line of a program: ``v{k} = name(args...)``."""

    name: str
    args: tuple[int, ...]
    param: Any
    fn: Callable[..., Tensor]
    text: str

    def __call__(self, pool: list[Tensor]) -> Tensor:
        return self.fn(*(pool[i] for i in self.args))


def _reduce_axes(draw: Any, nd: int) -> tuple[tuple[int, ...] | None, bool]:
    if nd == 0 or draw(st.booleans()):
        axes = None
    else:
        axes = tuple(sorted(draw(st.sets(st.integers(0, nd - 1), min_size=1))))
    # Dropping leading axes (or all) keeps the result broadcastable with the rest.
    drop_ok = axes is None or axes == tuple(range(len(axes)))
    keepdims = draw(st.booleans()) if drop_ok else True
    return axes, keepdims


def _top_two_gap(x: np.ndarray, axes: tuple[int, ...] | None) -> float:
    """Smallest gap between the largest and second largest element of each reduced group."""
    axes = tuple(range(x.ndim)) if axes is None else axes
    rest = [a for a in range(x.ndim) if a not in axes]
    groups = np.transpose(x, rest + list(axes)).reshape(
        [x.shape[a] for a in rest] + [-1] if rest else [-1]
    )
    if groups.shape[-1] < 2:
        return np.inf
    top = np.sort(groups, axis=-1)
    return float(np.min(top[..., -1] - top[..., -2]))


def _far(x: Any, *kinks: float) -> bool:
    return all(np.min(np.abs(np.asarray(x) - k), initial=np.inf) > MARGIN for k in kinks)


def make_step(draw: Any, pool: list[Tensor], names: list[str]) -> Step:
    """Draw one op and its operands from ``pool``; fall back if it would sit on a kink."""
    pick = lambda: draw(st.integers(0, len(pool) - 1))
    kind = draw(
        st.sampled_from(
            [
                "add", "sub", "mul", "div", "pow", "maximum", "minimum", "where",
                "const", "neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs",
                "clip", "reduce", "softmax", "flip", "gather", "matmul", "outer",
                "stack", "concatenate", "transpose", "reshape",
            ]
        )
    )  # fmt: skip
    i = pick()
    a = pool[i]
    n = names[i]
    nd = a.ndim

    if kind in ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "where"):
        j = pick()
        b, m = pool[j], names[j]
        if kind in ("maximum", "minimum") and not _far(
            np.broadcast_to(a.data, np.broadcast_shapes(a.shape, b.shape)) - b.data, 0.0
        ):
            kind = "add"
        binary = {
            "add": (lambda x, y: x + y, f"{n} + {m}"),
            "sub": (lambda x, y: x - y, f"{n} - {m}"),
            "mul": (lambda x, y: x * y, f"{n} * {m}"),
            "div": (lambda x, y: x / (y * y + 0.5), f"{n} / ({m}*{m} + 0.5)"),
            "pow": (lambda x, y: (x * x + 0.5) ** y, f"({n}*{n} + 0.5) ** {m}"),
            "maximum": (cr.maximum, f"maximum({n}, {m})"),
            "minimum": (cr.minimum, f"minimum({n}, {m})"),
        }
        if kind == "where":
            cond = a.data > 0  # fixed once: a mask carries no gradient
            fn = lambda x, y: cr.where(cond, x, y)
            return Step(kind, (i, j), cond, fn, f"where({n}.data > 0, {n}, {m})")
        fn, text = binary[kind]
        return Step(kind, (i, j), None, fn, text)

    if kind == "const":
        c: Any = draw(st.floats(-2, 2, width=64))
        if nd and draw(st.booleans()):
            c = draw(st.lists(st.floats(-2, 2), min_size=a.shape[-1], max_size=a.shape[-1]))
        form = draw(st.sampled_from(["c + x", "c - x", "x * c", "c / (x*x + 1)", "2 ** x"]))
        fns = {
            "c + x": lambda x: c + x,
            "c - x": lambda x: c - x,
            "x * c": lambda x: x * c,
            "c / (x*x + 1)": lambda x: c / (x * x + 1.0),
            "2 ** x": lambda x: 2.0**x,
        }
        return Step(kind, (i,), c, fns[form], form.replace("x", n).replace("c", repr(c)))

    if kind in ("relu", "abs") and not _far(a.data, 0.0):
        kind = "tanh"
    if kind == "clip" and not _far(a.data, -0.5, 0.5):
        kind = "sigmoid"
    unary = {
        "neg": (lambda x: -x, f"-{n}"),
        "exp": (lambda x: x.exp(), f"exp({n})"),
        "log": (lambda x: (x * x + 1.0).log(), f"log({n}*{n} + 1)"),
        "sqrt": (lambda x: (x * x + 0.5).sqrt(), f"sqrt({n}*{n} + 0.5)"),
        "tanh": (lambda x: x.tanh(), f"tanh({n})"),
        "sigmoid": (lambda x: x.sigmoid(), f"sigmoid({n})"),
        "relu": (lambda x: x.relu(), f"relu({n})"),
        "abs": (lambda x: x.abs(), f"abs({n})"),
        "clip": (lambda x: x.clip(-0.5, 0.5), f"clip({n}, -0.5, 0.5)"),
    }
    if kind in unary:
        fn, text = unary[kind]
        return Step(kind, (i,), None, fn, text)

    if kind == "reduce":
        op = draw(st.sampled_from(["sum", "mean", "logsumexp", "max", "min"]))
        axes, keepdims = _reduce_axes(draw, nd)
        sign = -1 if op == "min" else 1
        if op in ("max", "min") and _top_two_gap(sign * a.data, axes) <= MARGIN:
            op = "mean"
        # (max and min called with dim= return (values, indices), PyTorch's pair)
        use_dim = draw(st.booleans()) and op not in ("max", "min")
        kw = {"dim" if use_dim and axes is not None else "axis": axes, "keepdims": keepdims}
        fn = lambda x: getattr(x, op)(**kw)
        args = ", ".join(f"{k}={v}" for k, v in kw.items())
        return Step(op, (i,), kw, fn, f"{n}.{op}({args})")

    if nd == 0:  # the rest need an axis
        return Step("tanh", (i,), None, lambda x: x.tanh(), f"tanh({n})")
    last = a.shape[-1]

    if kind == "softmax":
        op = draw(st.sampled_from(["softmax", "log_softmax"]))
        ax = draw(st.integers(-nd, nd - 1))
        return Step(op, (i,), ax, lambda x: getattr(x, op)(axis=ax), f"{n}.{op}(axis={ax})")
    if kind == "flip":
        return Step(kind, (i,), None, lambda x: x[..., ::-1], f"{n}[..., ::-1]")
    if kind == "gather":
        # Same length as the axis, with repeats: gradients of repeated picks add up.
        idx = draw(st.lists(st.integers(0, last - 1), min_size=last, max_size=last))
        return Step(kind, (i,), idx, lambda x: x[..., idx], f"{n}[..., {idx}]")
    if kind == "matmul":
        w = draw(values((last, last)))
        return Step(kind, (i,), w, lambda x: x @ w, f"{n} @ {w.tolist()}")
    if kind == "transpose":
        if a.shape == a.shape[::-1] and nd > 1:
            return Step(kind, (i,), None, lambda x: x.T * 1.5, f"{n}.T * 1.5")
        return Step(kind, (i,), None, lambda x: x.transpose(*range(nd)), f"{n}.transpose(...)")
    if kind == "reshape":
        flat = np.arange(1.0, a.data.size + 1)
        shape = a.shape
        return Step(
            kind,
            (i,),
            shape,
            lambda x: (x.reshape(-1) * flat).reshape(shape),
            f"({n}.reshape(-1) * {flat.tolist()}).reshape({shape})",
        )

    j = pick()
    b, m = pool[j], names[j]
    if b.ndim == 0:
        return Step("mul", (i, j), None, lambda x, y: x * y, f"{n} * {m}")
    if kind == "outer":
        # Batched matmul whose batch axes broadcast: (..., k, 1) @ (..., 1, l), then summed.
        text = f"({n}[..., :, None] @ {m}[..., None, :]).sum(-1)"
        return Step(
            kind, (i, j), None, lambda x, y: (x[..., :, None] @ y[..., None, :]).sum(-1), text
        )

    common = np.broadcast_shapes(a.shape, b.shape)
    w = draw(st.floats(-2, 2, width=64))
    if kind == "stack":
        text = f"(stack([{n}, {m}] broadcast to {common}) * [1, {w}]).sum(0)"
        weights = np.array([1.0, w]).reshape((2,) + (1,) * len(common))

        def stacked(x: Tensor, y: Tensor) -> Tensor:
            both = cr.stack([x.broadcast_to(common), y.broadcast_to(common)], axis=0)
            return (both * weights).sum(axis=0)

        return Step(kind, (i, j), w, stacked, text)

    # concatenate along the last axis, then fold the two halves back together
    text = f"fold(concatenate([{n}, {m}] broadcast to {common}, axis=-1)) with weights 1, {w}"
    weights = np.array([1.0, w]).reshape(2, 1)

    def folded(x: Tensor, y: Tensor) -> Tensor:
        joined = cr.concatenate([x.broadcast_to(common), y.broadcast_to(common)], axis=-1)
        halves = joined.reshape(common[:-1] + (2, common[-1]))
        return (halves * weights).sum(axis=-2)

    return Step("concatenate", (i, j), w, folded, text)


class Program:
    """Input values and the steps over them; its repr is the readable program.

    (A plain class, not a dataclass, so failure reports print this repr.)
    """

    def __init__(self, arrays: list[Any], steps: list[Any], text: str) -> None:
        self.arrays, self.steps, self.text = arrays, steps, text

    def __repr__(self) -> str:
        return "Program(\n" + self.text + "\n)"


def run(steps: list[Step], inputs: list[Tensor]) -> Tensor:
    pool = list(inputs)
    for step in steps:
        pool.append(step(pool))
    return pool[-1]


@st.composite
def programs(draw: Any, max_steps: int = 7, max_side: int = 3) -> Program:
    """Input arrays and a program over them, with its text noted for failure reports."""
    shapes = draw(broadcastable_shapes(max_side=max_side))
    arrays = [draw(values(s)) for s in shapes]
    pool = [Tensor(x, requires_grad=True) for x in arrays]
    names = [f"x{k}" for k in range(len(pool))]
    steps: list[Step] = []
    for k in range(draw(st.integers(1, max_steps))):
        step = make_step(draw, pool, names)
        out = step(pool)
        # Keep values moderate, so finite differences stay accurate.
        assume(np.all(np.isfinite(out.data)) and np.max(np.abs(out.data), initial=0) < LIMIT)
        pool.append(out)
        names.append(f"v{k}")
        steps.append(step)
    # A last step that joins the result with an earlier one, so sub-expressions are shared.
    j = draw(st.integers(0, len(pool) - 2))
    steps.append(
        Step(
            "join",
            (len(pool) - 1, j),
            None,
            lambda x, y: x + y.tanh(),
            f"{names[-1]} + tanh({names[j]})",
        )
    )
    names.append("out")
    lines = [f"{n}: shape {x.shape} = {x.tolist()}" for n, x in zip(names, arrays)]
    offset = len(arrays)
    lines += [f"{names[offset + k]} = {s.text}" for k, s in enumerate(steps)]
    return Program(arrays, steps, "\n".join(lines))


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------


@SETTINGS
@given(programs())
def test_random_tensor_programs_match_finite_differences(program):
    arrays, steps = program.arrays, program.steps
    note(program.text)
    inputs = [Tensor(x, requires_grad=True) for x in arrays]
    assert gradcheck(lambda *xs: run(steps, list(xs)), inputs)


@SETTINGS
@given(programs())
def test_backward_accumulates_the_same_gradients_as_grad(program):
    # .backward() stores what grad() returns; a second backward doubles it.
    arrays, steps = program.arrays, program.steps
    note(program.text)
    inputs = [Tensor(x, requires_grad=True) for x in arrays]
    out = run(steps, inputs)
    seed = np.linspace(-1.0, 1.0, out.data.size).reshape(out.shape)
    expected = cr.grad(out, inputs, grad_outputs=seed, allow_unused=True)
    out.backward(seed)
    for x, g in zip(inputs, expected):
        if g is None:
            assert x.grad is None
        else:
            assert x.grad.shape == x.shape
            np.testing.assert_allclose(x.grad, g.data, rtol=1e-12, atol=1e-12)
    out.backward(seed)
    for x, g in zip(inputs, expected):
        if g is not None:
            np.testing.assert_allclose(x.grad, 2 * g.data, rtol=1e-12, atol=1e-12)


@settings(SETTINGS, max_examples=40)
@given(programs(max_steps=4, max_side=2))
def test_random_tensor_programs_second_derivatives(program):
    arrays, steps = program.arrays, program.steps
    note(program.text)
    inputs = [Tensor(x, requires_grad=True) for x in arrays]
    assert gradgradcheck(lambda *xs: run(steps, list(xs)), inputs, atol=1e-4)
    # gradgradcheck differentiates the recorded gradient; it must also equal the plain one.
    out = run(steps, inputs)
    seed = np.linspace(-1.0, 1.0, out.data.size).reshape(out.shape)
    plain = cr.grad(out, inputs, grad_outputs=seed, allow_unused=True)
    recorded = cr.grad(out, inputs, grad_outputs=seed, create_graph=True, allow_unused=True)
    for p, r in zip(plain, recorded):
        assert (p is None) == (r is None)
        if p is not None:
            np.testing.assert_allclose(r.data, p.data, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------

VALUE_OPS: dict[str, tuple[int, Callable[..., Any], str]] = {
    "add": (2, lambda a, b: a + b, "{0} + {1}"),
    "sub": (2, lambda a, b: a - b, "{0} - {1}"),
    "mul": (2, lambda a, b: a * b, "{0} * {1}"),
    "div": (2, lambda a, b: a / (b * b + 0.5), "{0} / ({1}*{1} + 0.5)"),
    "pow": (2, lambda a, b: (a * a + 0.5) ** b, "({0}*{0} + 0.5) ** {1}"),
    "radd": (1, lambda a: 1.5 + a, "1.5 + {0}"),
    "rsub": (1, lambda a: 0.5 - a, "0.5 - {0}"),
    "rmul": (1, lambda a: -2 * a, "-2 * {0}"),
    "rdiv": (1, lambda a: 3.0 / (a * a + 1), "3.0 / ({0}*{0} + 1)"),
    "rpow": (1, lambda a: 2.0**a, "2.0 ** {0}"),
    "ipow": (1, lambda a: a**3, "{0} ** 3"),
    "neg": (1, lambda a: -a, "-{0}"),
    "exp": (1, lambda a: a.exp(), "exp({0})"),
    "log": (1, lambda a: (a * a + 1).log(), "log({0}*{0} + 1)"),
    "tanh": (1, lambda a: a.tanh(), "tanh({0})"),
    "sigmoid": (1, lambda a: a.sigmoid(), "sigmoid({0})"),
    "relu": (1, lambda a: a.relu(), "relu({0})"),
}


@st.composite
def value_programs(draw: Any) -> Program:
    xs = draw(st.lists(st.floats(-1.5, 1.5), min_size=1, max_size=3))
    pool = [Value(x) for x in xs]
    names = [f"x{k}" for k in range(len(xs))]
    steps = []
    for k in range(draw(st.integers(1, 10))):
        name = draw(st.sampled_from(sorted(VALUE_OPS)))
        arity, fn, _ = VALUE_OPS[name]
        args = tuple(draw(st.integers(0, len(pool) - 1)) for _ in range(arity))
        if name == "relu" and abs(pool[args[0]].data) <= MARGIN:
            name = "tanh"
            fn = VALUE_OPS[name][1]
        out = fn(*(pool[i] for i in args))
        assume(abs(out.data) < LIMIT)
        pool.append(out)
        names.append(f"v{k}")
        steps.append((name, args))
    lines = [f"{n} = {x!r}" for n, x in zip(names, xs)]
    lines += [
        f"{names[len(xs) + k]} = " + VALUE_OPS[name][2].format(*(names[i] for i in args))
        for k, (name, args) in enumerate(steps)
    ]
    return Program(xs, steps, "\n".join(lines))


def run_values(steps: list[tuple[str, tuple[int, ...]]], inputs: list[Value]) -> Value:
    pool = list(inputs)
    for name, args in steps:
        pool.append(VALUE_OPS[name][1](*(pool[i] for i in args)))
    return pool[-1]


@SETTINGS
@given(value_programs())
def test_random_value_programs_match_finite_differences(program):
    xs, steps = program.arrays, program.steps
    note(program.text)
    inputs = [Value(x) for x in xs]
    assert gradcheck(lambda *vs: run_values(steps, list(vs)), inputs)


@settings(SETTINGS, max_examples=60)
@given(value_programs())
def test_value_and_tensor_programs_agree(program):
    # The same program on 0-d Tensors gives the same value and gradients as on Values.
    xs, steps = program.arrays, program.steps
    note(program.text)
    values_in = [Value(x) for x in xs]
    tensors_in = [Tensor(x, requires_grad=True) for x in xs]
    v_out = run_values(steps, values_in)
    t_out = run_values(steps, tensors_in)
    assert t_out.shape == ()
    np.testing.assert_allclose(t_out.data, v_out.data, rtol=1e-12, atol=1e-12)
    if not v_out.requires_grad:
        return
    v_grads = cr.grad(v_out, values_in, allow_unused=True)
    t_grads = cr.grad(t_out, tensors_in, allow_unused=True)
    for gv, gt in zip(v_grads, t_grads):
        assert (gv is None) == (gt is None)
        if gv is not None:
            np.testing.assert_allclose(gt.data, gv.data, rtol=1e-10, atol=1e-12)
