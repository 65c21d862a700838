"""deepchain: ``steps`` repetitions of ``x = x * 1.0001 + 0.0001`` on a scalar, then backward.

Each repetition records two operations (a multiply and an add), so the graph
is a chain of ``2 * steps`` op nodes: a *node* here means one op result.  The
run returns the final ``x`` and ``dx/dx0`` (which is ``1.0001 ** steps``,
computed by every engine as a product of local derivatives).

Besides time, the case measures memory, each engine in a fresh process
(``python -m bench.memory``) so no engine sees another's freed memory:

* graph bytes per node: what the graph holds once the forward pass is done
  (``tracemalloc``, which sees every Python and numpy allocation; PyTorch
  allocates its graph outside Python's allocator, so for it only RSS counts);
* peak bytes per node: the most ``tracemalloc`` saw at once during forward
  and backward together;
* RSS bytes per node: growth of the process's resident memory over the
  forward pass (measured in a separate pass without tracemalloc).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from ..core import Case, Engine, Outcome, Run

A, B = 1.0001, 0.0001
X0 = 0.5

STEPS = {"full": 100_000, "quick": 20_000, "tiny": 200}
STEPS_BIG = {"full": 1_000_000, "quick": 100_000, "tiny": 300}

Forward = Callable[[int], Any]
Backward = Callable[[Any], Outcome]


def _outcome(x: float, dx0: float) -> Outcome:
    return Outcome(float(x), {"dx/dx0": float(dx0)})


# Each engine is a forward (returns whatever keeps the graph alive) and a backward.


def floats_forward(steps: int) -> Any:
    x = X0
    for _ in range(steps):
        x = x * A + B
    return x


def floats_backward(x: Any, steps: int) -> Outcome:
    # The chain rule by hand: the add passes the gradient on, the multiply scales it by A.
    g = 1.0
    for _ in range(steps):
        g = g * A
    return _outcome(x, g)


def chainrule_value_forward(steps: int) -> Any:
    import chainrule as cr

    x0 = cr.Value(X0)
    x = x0
    for _ in range(steps):
        x = x * A + B
    return x0, x


def chainrule_backward(state: Any) -> Outcome:
    x0, x = state
    x.backward()
    return _outcome(float(x.data), float(x0.grad))


def chainrule_tensor_forward(steps: int) -> Any:
    import chainrule as cr

    x0 = cr.Tensor(X0, requires_grad=True)
    x = x0
    for _ in range(steps):
        x = x * A + B
    return x0, x


def micrograd_forward(steps: int) -> Any:
    from micrograd.engine import Value

    x0 = Value(X0)
    x = x0
    for _ in range(steps):
        x = x * A + B
    return x0, x


def torch_forward(steps: int) -> Any:
    import torch

    x0 = torch.tensor(X0, dtype=torch.float64, requires_grad=True)
    x = x0
    for _ in range(steps):
        x = x * A + B
    return x0, x


def torch_backward(state: Any) -> Outcome:
    x0, x = state
    x.backward()
    return _outcome(x.item(), x0.grad.item())


def autograd_forward(steps: int) -> Any:
    from autograd.core import make_vjp

    def chain(x: Any) -> Any:
        for _ in range(steps):
            x = x * A + B
        return x

    vjp, x = make_vjp(chain, X0)
    return vjp, x


def autograd_backward(state: Any) -> Outcome:
    vjp, x = state
    return _outcome(float(x), float(vjp(1.0)))


def _engine_fns(name: str, steps: int) -> tuple[Callable[[], Any], Callable[[Any], Outcome]]:
    table: dict[str, tuple[Forward, Backward]] = {
        "floats by hand": (floats_forward, lambda x: floats_backward(x, steps)),
        "chainrule Value": (chainrule_value_forward, chainrule_backward),
        "chainrule Tensor": (chainrule_tensor_forward, chainrule_backward),
        "micrograd": (micrograd_forward, chainrule_backward),  # same .backward()/.grad API
        "torch": (torch_forward, torch_backward),
        "autograd": (autograd_forward, autograd_backward),
    }
    fwd, bwd = table[name]
    return (lambda: fwd(steps)), bwd


def timed(name: str, steps: int) -> Run:
    fwd, bwd = _engine_fns(name, steps)

    def run() -> Outcome:
        return bwd(fwd())

    return run


def _rss() -> int | None:
    """Resident memory of this process in bytes (Linux), or None."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


def measure_here(name: str, steps: int) -> dict[str, float | None]:
    """Memory of one engine's chain, measured in this process (see the module doc)."""
    import gc
    import tracemalloc

    fwd, bwd = _engine_fns(name, steps)
    nodes = 2 * steps
    # Warm up: imports and first-call caches must not count as graph memory.
    bwd(_engine_fns(name, 3)[0]())
    gc.collect()
    before = _rss()
    state = fwd()
    after = _rss()
    rss = (after - before) / nodes if before is not None and after is not None else None
    del state
    gc.collect()
    tracemalloc.start()
    peak: float | None
    try:
        state = fwd()
        graph, _ = tracemalloc.get_traced_memory()
        try:
            bwd(state)
        except RecursionError:  # micrograd's recursive sort: the graph is still measured
            peak = None
        else:
            peak = tracemalloc.get_traced_memory()[1] / nodes
    finally:
        tracemalloc.stop()
    if name == "torch":
        return {"graph": None, "peak": None, "rss": rss}
    return {"graph": graph / nodes, "peak": peak, "rss": rss}


def measure(name: str, steps: int, isolate: bool) -> dict[str, float | None]:
    """Memory per node of ``name``'s chain, in a fresh process unless ``isolate`` is false."""
    if not isolate:
        return measure_here(name, steps)
    proc = subprocess.run(
        [sys.executable, "-m", "bench.memory", name, str(steps)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["exit status " + str(proc.returncode)])[-1]
        raise RuntimeError(last)
    result: dict[str, float | None] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


ENGINES = [
    ("floats by hand", ()),
    ("chainrule Value", ()),
    ("chainrule Tensor", ()),
    ("torch", ("torch",)),
    ("autograd", ("autograd",)),
    ("micrograd", ("micrograd",)),
]


def _case(name: str, steps: int, repeat: int, skip: tuple[str, ...], notes: list[str]) -> Case:
    engines = [
        Engine(e, (lambda e=e: timed(e, steps)), needs=needs)
        for e, needs in ENGINES
        if e not in skip
    ]
    return Case(
        name=name,
        group="deepchain",
        title=(
            f"deepchain: {steps:,} x (x = x * 1.0001 + 0.0001), i.e. {2 * steps:,} op nodes, "
            "then backward, float64"
        ),
        baseline="floats by hand",
        engines=engines,
        repeat=repeat,
        unit="s",
        per_label="forward + backward",
        memory=lambda engine, isolate: measure(engine, steps, isolate),
        memory_engines=tuple(e.name for e in engines if e.name != "floats by hand"),
        notes=notes,
    )


def cases(size: str) -> list[Case]:
    steps, big = STEPS[size], STEPS_BIG[size]
    # At a million steps HIPS autograd would take minutes per run; micrograd has
    # already failed at the smaller size.
    skip = ("autograd", "micrograd") if size != "tiny" else ()
    return [
        _case("deepchain-100k", steps, 5 if size == "full" else 3, (), []),
        _case(
            "deepchain-1m",
            big,
            3 if size == "full" else 2,
            skip,
            ["HIPS autograd and micrograd are left out of the long chain (see the short one)."]
            if skip
            else [],
        ),
    ]


def main(argv: list[str]) -> None:
    """``python -m bench.memory ENGINE STEPS``: print one engine's memory as JSON."""
    name, steps = argv[0], int(argv[1])
    print(json.dumps(measure_here(name, steps)))
