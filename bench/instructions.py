"""Instructions per iteration, counted by valgrind: a measure that machine noise cannot move.

Wall time on a shared machine drifts by 20-30% from run to run, which hides
the few percent a single change to the engine gains or loses.  The number of
machine instructions a workload executes barely moves, so it is the sharper
tool for comparing two versions of the code (it is not a stand-in for time:
interpreted Python runs fewer instructions per cycle than numpy's loops, so a
ratio of instructions understates the ratio of times).

Each workload runs twice under ``valgrind --tool=callgrind``, for ``n`` and
``3n`` iterations; the difference divided by ``2n`` is the cost of one
iteration, free of start-up and import costs.  ``PYTHONHASHSEED`` is fixed and
BLAS limited to one thread so the counts repeat.

    python -m bench.instructions overhead:chainrule overhead:numpy
    python -m bench.instructions --list
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable

from .cases import mazur, mlp, overhead
from .core import Run

#: workload name -> (what one iteration is, default n, build the run for n iterations)
WORKLOADS: dict[str, tuple[str, int, Callable[[int], Run]]] = {
    "overhead:chainrule": ("iteration", 2000, overhead.chainrule_tensor),
    "overhead:numpy": ("iteration", 2000, overhead.hand_numpy),
    "overhead:chainrule-compiled": ("iteration", 2000, overhead.chainrule_compiled),
    "mazur-value:chainrule": ("step", 1000, mazur.chainrule_value),
    "mazur-value:micrograd": ("step", 1000, mazur.micrograd_run),
    "mazur-value:floats": ("step", 1000, mazur.hand_floats),
    "mazur-value:chainrule-compiled": ("step", 1000, mazur.chainrule_compiled_floats),
    "mazur-tensor:chainrule": ("step", 1000, mazur.chainrule_tensor),
    "mazur-tensor:numpy": ("step", 1000, mazur.hand_numpy),
    "mazur-tensor:chainrule-compiled": ("step", 1000, mazur.chainrule_compiled_arrays),
    "digits:chainrule": ("epoch", 1, lambda n: mlp.chainrule_tensor(mlp.digits_problem(None, n))),
    "digits:numpy": ("epoch", 1, lambda n: mlp.hand_numpy(mlp.digits_problem(None, n))),
    "digits:chainrule-compiled": (
        "epoch",
        1,
        lambda n: mlp.chainrule_compiled(mlp.digits_problem(None, n)),
    ),
}


def count(name: str, n: int) -> int:
    """Instructions that ``n`` iterations of workload ``name`` execute, with start-up."""
    env = dict(os.environ, PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    cmd += [sys.executable, "-m", "bench.instructions", "--child", name, str(n)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(
            f"bench.instructions: {name} failed under valgrind:\n{done.stderr[-2000:]}"
        )
    return int(found.group(1))


def per_iteration(name: str, n: int) -> float:
    """Instructions of one iteration: the difference between runs of ``n`` and ``3n``."""
    return (count(name, 3 * n) - count(name, n)) / (2 * n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("workloads", nargs="*", help="names from --list")
    parser.add_argument(
        "--n", type=int, help="iterations of the shorter run (default per workload)"
    )
    parser.add_argument("--list", action="store_true", help="list the workloads")
    parser.add_argument("--child", nargs=2, metavar=("NAME", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        name, n = args.child
        WORKLOADS[name][2](int(n))()
        return 0
    if args.list or not args.workloads:
        for name, (unit, n, _) in WORKLOADS.items():
            print(f"{name:24s} per {unit} (default n = {n})")
        return 0
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; see --list")
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    for name in args.workloads:
        unit, n, _ = WORKLOADS[name]
        print(f"{name:24s} {per_iteration(name, args.n or n):>14,.0f} instructions per {unit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
