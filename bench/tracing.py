"""``python -m bench.tracing``: what ``chainrule.compile`` costs before its program runs.

A compiled function's first call with a new signature traces it (runs it
once on tracing leaves, gradients included), writes the recorded graph out as
Python source, compiles that source and runs it.  This times that first call
(*trace + codegen*) and a later call (the program alone) on:

* the 2-2-2 network of the worked example (one gradient-descent step on Python
  floats, and on 2x2 arrays);
* one training step of the digits MLP (64-128-10, tanh, batch 64, float64);
* graphs of growing size: a chain ``x = tanh(x * 1.0001) + 0.001`` and a wide
  sum ``sum(w_i * x_i)``, each with its gradient, at about 1k, 10k and 100k
  nodes (forward and backward nodes of the graph, counted by the engine's
  traversal), with the time per node, which stays flat when growth is linear.

Times are medians over ``--repeat`` fresh compiles, in milliseconds.

    python -m bench.tracing
    python -m bench.tracing --sizes 1000 10000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _time_first_and_later(
    make: Callable[[], Callable[..., Any]], args: tuple[Any, ...], repeat: int
) -> tuple[float, float, Any]:
    """Median seconds of a fresh compile's first call and of a second call; the program."""
    firsts, laters = [], []
    compiled: Any = None
    for _ in range(repeat):
        compiled = make()
        start = time.perf_counter()
        compiled(*args)
        middle = time.perf_counter()
        compiled(*args)
        end = time.perf_counter()
        firsts.append(middle - start)
        laters.append(end - middle)
    return statistics.median(firsts), statistics.median(laters), compiled


def _mazur_floats() -> tuple[Callable[[], Any], tuple[Any, ...]]:
    import chainrule as cr

    from .cases import mazur

    def step(w: tuple[Any, ...]) -> Any:
        err = mazur._scalar_network(list(w), lambda v: v.sigmoid())
        grads = cr.grad(err, list(w))
        return err, grads, tuple(p - mazur.LR * g for p, g in zip(w, grads))

    return lambda: cr.compile(step), (mazur.W0,)


def _mazur_arrays() -> tuple[Callable[[], Any], tuple[Any, ...]]:
    import chainrule as cr

    from .cases import mazur

    def step(w_h: Any, w_o: Any, x: Any, t: Any) -> Any:
        h = (w_h @ x + mazur.B1).sigmoid()
        o = (w_o @ h + mazur.B2).sigmoid()
        err = 0.5 * ((t - o) ** 2).sum()
        g_h, g_o = cr.grad(err, [w_h, w_o])
        return err, g_h, g_o, w_h - mazur.LR * g_h, w_o - mazur.LR * g_o

    return lambda: cr.compile(step), mazur._arrays()


def _digits_step() -> tuple[Callable[[], Any], tuple[Any, ...]]:
    import chainrule as cr

    from .cases import mlp

    rng = np.random.default_rng(0)
    weights = mlp._init([64, 128, 10], np.float64, rng, 1.0)
    x = rng.uniform(0.0, 1.0, (64, 64))
    onehot = mlp._one_hot(rng.integers(0, 10, 64), 10, np.float64)
    step = mlp.compiled_step(2, "tanh", 0.1)
    return lambda: cr.compile(step), (weights, x, onehot)


def _chain(n: int) -> Callable[[Any], Any]:
    import chainrule as cr

    def fn(x: Any) -> Any:
        y = x
        for _ in range(n):
            y = (y * 1.0001).tanh() + 0.001
        return y, cr.grad(y, x)

    return fn


def _wide(n: int) -> Callable[[Any], Any]:
    import chainrule as cr

    weights = [1.0 + k / n for k in range(n)]

    def fn(xs: list[Any]) -> Any:
        total = xs[0] * weights[0]
        for w, x in zip(weights[1:], xs[1:]):
            total = total + w * x
        return total, cr.grad(total, xs)

    return fn


def _graph(shape: str, size: int) -> tuple[Callable[[Any], Any], Any, int]:
    """A function whose traced graph has about ``size`` nodes, its argument, and the count."""
    import chainrule as cr
    from chainrule.engine import toposort

    # forward ops per unit: 3 for the chain (mul, tanh, add), 2 for the sum (mul, add);
    # the gradient adds about as many again
    units = max(1, size // (6 if shape == "chain" else 4))
    fn = _chain(units) if shape == "chain" else _wide(units)
    arg: Any = 0.3 if shape == "chain" else [0.5] * units
    with cr.enable_grad():
        leaves = cr.Value(arg) if shape == "chain" else [cr.Value(a) for a in arg]
        out, grads = _traced_graph(fn, leaves)
        count = len(toposort([out, *grads], everything=True))
    return fn, arg, count


def _traced_graph(fn: Callable[[Any], Any], leaves: Any) -> tuple[Any, list[Any]]:
    """``fn``'s output and its gradients, with the gradients' graphs kept (as a trace does)."""
    import chainrule as cr

    out, _ = fn(leaves)
    xs = leaves if isinstance(leaves, list) else [leaves]
    return out, list(cr.grad(out, xs, create_graph=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--shapes", nargs="+", choices=("chain", "wide"), default=["chain", "wide"])
    args = parser.parse_args(argv)
    import chainrule as cr

    print("| program | first call: trace + codegen (ms) | later call (ms) | source lines |")
    print("|---|---:|---:|---:|")
    for label, build in (
        ("2-2-2 network, floats", _mazur_floats),
        ("2-2-2 network, 2x2 arrays", _mazur_arrays),
        ("digits MLP, one step (batch 64)", _digits_step),
    ):
        make, call_args = build()
        first, later, compiled = _time_first_and_later(make, call_args, args.repeat)
        lines = compiled.source.count("\n")
        print(f"| {label} | {first * 1e3:.2f} | {later * 1e3:.3f} | {lines} |")
    print()
    print("| graph | nodes | first call: trace + codegen (ms) | per node (us) | later call (ms) |")
    print("|---|---:|---:|---:|---:|")
    for shape in args.shapes:
        for size in args.sizes:
            fn, arg, count = _graph(shape, size)
            repeat = max(1, args.repeat if size <= 10_000 else args.repeat // 2)
            first, later, _ = _time_first_and_later(lambda fn=fn: cr.compile(fn), (arg,), repeat)
            print(
                f"| {shape} | {count:,} | {first * 1e3:.1f} | {first / count * 1e6:.2f} "
                f"| {later * 1e3:.2f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
