"""The harness every case shares: engines, interleaved timing, medians and result checks.

A *case* is one workload (say, 10,000 steps of gradient descent on the 2-2-2
network).  It lists *engines*: the same workload written for chainrule, for a
hand-written baseline and for each peer library.  Every engine returns an
:class:`Outcome` (a final loss and a few arrays, such as the last gradient),
which is compared with the baseline's, so a fast wrong answer shows as wrong.

Timing interleaves the engines: repeat ``r`` runs every engine once, in an
order rotated by ``r``, so slow drift of the machine (another process, CPU
frequency) spreads over all engines instead of landing on one.  The cycle
collector runs as it normally would inside each measurement (an engine whose
graphs are full of reference cycles pays for them), and ``gc.collect()`` runs
between measurements so no engine inherits another's garbage.
"""

from __future__ import annotations

import gc
import importlib.util
import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .peers import limit_threads


@dataclass
class Outcome:
    """What one run computed: a scalar (usually the final loss) and named arrays."""

    loss: float
    arrays: dict[str, Any] = field(default_factory=dict)


Run = Callable[[], Outcome]


@dataclass
class Engine:
    """One implementation of a case.

    ``prepare`` does the untimed work (building inputs in the engine's own
    types) and returns the callable that is timed.  ``needs`` names the
    optional modules the engine imports; when one is missing the engine is
    reported as absent rather than run.
    """

    name: str
    prepare: Callable[[], Run]
    needs: tuple[str, ...] = ()
    note: str = ""


@dataclass
class Case:
    """A workload and the engines that run it.

    ``per`` and ``unit`` say how a run's wall time is shown: divided by
    ``per`` (iterations, steps) and printed in ``unit`` (``s``, ``ms``, ``us``).
    ``rtol`` bounds the relative difference from the baseline's outcome.
    """

    name: str
    group: str
    title: str
    baseline: str
    engines: list[Engine]
    repeat: int
    unit: str = "s"
    per: float = 1.0
    per_label: str = "per run"
    rtol: float = 1e-9
    memory: Callable[[str, bool], dict[str, float | None]] | None = None
    memory_engines: tuple[str, ...] = ()
    subtract_baseline: bool = False
    checked: bool = True  # False when the runs compute nothing to compare
    threads: int | None = 1  # BLAS and PyTorch threads while timing (None: defaults)
    notes: list[str] = field(default_factory=list)


@dataclass
class Row:
    """The measurements of one engine on one case."""

    engine: str
    status: str = "ok"  # ok | absent | error | wrong
    times: list[float] = field(default_factory=list)
    error: str = ""
    max_rel_err: float = 0.0
    outcome: Outcome | None = None
    memory: dict[str, float | None] = field(default_factory=dict)

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


@dataclass
class CaseResult:
    case: Case
    rows: list[Row]

    def row(self, engine: str) -> Row | None:
        return next((r for r in self.rows if r.engine == engine), None)

    def ratio(self, engine: str, versus: str) -> float | None:
        a, b = self.row(engine), self.row(versus)
        if a is None or b is None or a.status != "ok" or b.status != "ok":
            return None
        ma, mb = a.median, b.median
        if ma is None or mb is None or mb == 0:
            return None
        return ma / mb


_SCALE = {"s": 1.0, "ms": 1e3, "us": 1e6}


def available(modules: Sequence[str]) -> bool:
    """True when every module can be imported (looked up without importing it)."""
    return all(importlib.util.find_spec(m) is not None for m in modules)


def rel_err(got: Any, want: Any) -> float:
    """Largest absolute difference, relative to the largest magnitude in ``want``."""
    a = np.asarray(got, dtype=np.float64)
    b = np.asarray(want, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape {a.shape} differs from the baseline's {b.shape}")
    if not np.all(np.isfinite(a)):
        return float("inf")
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    diff = float(np.max(np.abs(a - b))) if b.size else 0.0
    return diff / scale if scale > 0 else diff


def compare(got: Outcome, want: Outcome) -> float:
    """The worst relative error of ``got`` against ``want`` over the loss and every array."""
    worst = rel_err(got.loss, want.loss)
    for key, ref in want.arrays.items():
        if key not in got.arrays:
            raise ValueError(f"the outcome has no {key!r}")
        worst = max(worst, rel_err(got.arrays[key], ref))
    return worst


def _describe_error(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:80]}" if text else type(exc).__name__


def run_case(
    case: Case,
    repeat: int | None = None,
    log: Callable[[str], None] | None = None,
    isolate_memory: bool = True,
) -> CaseResult:
    """Time every engine of ``case`` (interleaved), check each against the baseline."""
    say = log or (lambda _msg: None)
    rows = {e.name: Row(e.name) for e in case.engines}
    active = []
    for e in case.engines:
        if available(e.needs):
            active.append(e)
        else:
            rows[e.name].status = "absent"
            rows[e.name].error = "not installed (" + ", ".join(e.needs) + ")"
    n = repeat if repeat is not None else case.repeat
    reference: Outcome | None = None
    for r in range(n):
        # The baseline runs first in the first round so every later run can be checked.
        order = active[r % len(active) :] + active[: r % len(active)] if active else []
        if r == 0:
            order.sort(key=lambda e: e.name != case.baseline)
        for e in order:
            row = rows[e.name]
            if row.status != "ok":
                continue
            try:
                fn = e.prepare()
                with limit_threads(case.threads):
                    gc.collect()
                    t0 = time.perf_counter()
                    out = fn()
                    elapsed = time.perf_counter() - t0
            except Exception as exc:  # a failing engine is reported, not fatal
                row.status = "error"
                row.error = _describe_error(exc)
                say(f"  {case.name}: {e.name} failed: {row.error}")
                if e.name == case.baseline:
                    say(traceback.format_exc())
                continue
            row.times.append(elapsed)
            if e.name == case.baseline and reference is None:
                reference = out
            if reference is not None:
                try:
                    err = compare(out, reference)
                except ValueError as exc:
                    row.status, row.error = "wrong", str(exc)
                    continue
                row.max_rel_err = max(row.max_rel_err, err)
                if not err <= case.rtol:
                    row.status = "wrong"
                    row.error = f"differs from the baseline by {err:.2e} (rtol {case.rtol:g})"
            row.outcome = out
            say(f"  {case.name} [{r + 1}/{n}] {e.name}: {elapsed:.4f} s")
    if reference is None:
        for row in rows.values():
            if row.status == "ok":
                row.status = "error"
                row.error = "no baseline result to check against"
    if case.memory is not None:
        for name in case.memory_engines:
            row = rows.get(name)
            if row is None or row.status == "absent":
                continue
            try:
                row.memory = case.memory(name, isolate_memory)
            except Exception as exc:
                row.memory = {"error": None}
                say(f"  {case.name}: memory of {name} failed: {_describe_error(exc)}")
            say(f"  {case.name} memory {name}: {row.memory}")
    return CaseResult(case, [rows[e.name] for e in case.engines])


def fmt_time(seconds: float | None, case: Case) -> str:
    """A run time shown in the case's unit, per iteration when the case says so."""
    if seconds is None:
        return "-"
    v = seconds / case.per * _SCALE[case.unit]
    digits = 3 if v < 10 else 2 if v < 100 else 1 if v < 1000 else 0
    return f"{v:.{digits}f} {case.unit}"
