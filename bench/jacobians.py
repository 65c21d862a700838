"""``python -m bench.jacobians``: a Jacobian by forward mode against reverse mode.

Forward mode (``chainrule.func.jacfwd``) makes one pass per *input* element;
reverse mode (``chainrule.func.jacrev``) one pass per *output* element.  This
times both on two families of functions of the same size ``n``:

* many inputs, one output: ``f(x) = sum(tanh(W x))`` with ``x`` of size n;
* one input, many outputs: ``g(s) = tanh(s * w)`` with ``w`` of size n;

and prints a Markdown table of the medians and of the ratio jacfwd / jacrev,
taken in the same run (the machine's speed cancels out of the ratio).  Both
transforms are checked to give the same Jacobian first.

    python -m bench.jacobians --sizes 4 16 64 --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _problems(n: int) -> dict[str, tuple[Callable[[Any], Any], Any]]:
    import chainrule as cr

    rng = np.random.default_rng(n)
    w_matrix = rng.standard_normal((n, n)) / np.sqrt(n)
    w_vector = rng.standard_normal(n)
    return {
        "n inputs, 1 output": (
            lambda x: (cr.Tensor(w_matrix) @ x).tanh().sum(),
            rng.standard_normal(n),
        ),
        "1 input, n outputs": (
            lambda s: (s * cr.Tensor(w_vector)).tanh(),
            np.array(0.3),
        ),
    }


def _median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    from chainrule import func

    print("| function | n | jacfwd passes | jacrev passes | jacfwd (ms) | jacrev (ms) | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        for label, (f, x) in _problems(n).items():
            fwd, rev = func.jacfwd(f), func.jacrev(f)
            np.testing.assert_allclose(fwd(x), rev(x), atol=1e-12)  # the same Jacobian
            n_in, n_out = int(np.size(x)), int(np.size(np.asarray(rev(x))) // max(np.size(x), 1))
            t_fwd = _median_seconds(lambda fwd=fwd, x=x: fwd(x), args.repeat)
            t_rev = _median_seconds(lambda rev=rev, x=x: rev(x), args.repeat)
            print(
                f"| {label} | {n} | {n_in} | {n_out} | {t_fwd * 1e3:.2f} | {t_rev * 1e3:.2f} "
                f"| {t_fwd / t_rev:.2f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
