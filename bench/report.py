"""Turning measurements into Markdown: the machine, the targets and one table per case."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from .core import CaseResult, Row, fmt_time

Checker = Callable[[CaseResult], tuple[str, bool | None]]


@dataclass
class Target:
    """One promise of the performance issue, checked against a run's results."""

    label: str
    case: str
    check: Checker  # gives (what was measured, whether the target is met or None: no data)


def _ratio(engine: str, versus: str, limit: float) -> Checker:
    def check(res: CaseResult) -> tuple[str, bool | None]:
        r = res.ratio(engine, versus)
        if r is None:
            return (f"no data ({versus} or {engine} did not run)", None)
        return (f"{r:.3g}x {versus}", r <= limit)

    return check


def _memory(engine: str, limit: float) -> Checker:
    def check(res: CaseResult) -> tuple[str, bool | None]:
        row = res.row(engine)
        value = row.memory.get("graph") if row is not None else None
        if value is None:
            return ("no data", None)
        return (f"{value:.0f} bytes per node", value <= limit)

    return check


def _works(engine: str) -> Checker:
    def check(res: CaseResult) -> tuple[str, bool | None]:
        row = res.row(engine)
        if row is None:
            return ("no data", None)
        ok = row.status == "ok"
        return ("runs and checks" if ok else row.error or row.status, ok)

    return check


def _net(engine: str, limit: float) -> Checker:
    def check(res: CaseResult) -> tuple[str, bool | None]:
        row, base = res.row(engine), res.row(res.case.baseline)
        if row is None or base is None or row.median is None or base.median is None:
            return ("no data", None)
        net = row.median - base.median
        return (f"{net:.3f} s", net < limit)

    return check


TARGETS = [
    Target("mazur, Value: at most 0.4x micrograd", "mazur-value",
           _ratio("chainrule Value", "micrograd", 0.4)),
    Target("mazur, Tensor: at most 0.5x PyTorch", "mazur-tensor",
           _ratio("chainrule Tensor", "torch", 0.5)),
    Target("mazur, Tensor: at most 3x numpy by hand", "mazur-tensor",
           _ratio("chainrule Tensor", "numpy by hand", 3.0)),
    Target("digits: at most 1.5x numpy by hand", "digits",
           _ratio("chainrule Tensor", "numpy by hand", 1.5)),
    Target("deepchain 100k, Value: at most 0.5x PyTorch", "deepchain-100k",
           _ratio("chainrule Value", "torch", 0.5)),
    Target("deepchain 100k, Value: graph memory at most 300 bytes per node", "deepchain-100k",
           _memory("chainrule Value", 300)),
    Target("deepchain, Value: 1,000,000 steps work", "deepchain-1m", _works("chainrule Value")),
    Target("overhead: at most 3x numpy by hand per iteration", "overhead",
           _ratio("chainrule Tensor", "numpy by hand", 3.0)),
    Target("bigmlp: at most 1.1x numpy by hand", "bigmlp",
           _ratio("chainrule Tensor", "numpy by hand", 1.1)),
    Target("import: `import chainrule` under 0.3 s", "import", _net("chainrule", 0.3)),
]  # fmt: skip


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        out = ""
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _blas() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS unknown (install threadpoolctl to see it)"
    import numpy  # noqa: F401  (loads the BLAS that threadpoolctl reports)

    parts = []
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        path = str(info.get("filepath", ""))
        # The folder tells whose copy it is (numpy.libs, scipy.libs, ...).
        lib = os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))
        parts.append(
            f"{lib}: {info.get('internal_api')} {info.get('version')}, "
            f"{info.get('architecture', '?')} kernels, {info.get('num_threads')} threads"
        )
    return "; ".join(parts) or "no BLAS found by threadpoolctl"


def machine() -> list[str]:
    """Lines describing the machine and the software versions."""
    lines = [
        f"- CPU: {_cpu_model()}, {os.cpu_count()} logical cores; "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- numpy {_version('numpy')}, BLAS: {_blas()}",
    ]
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"):
        if var in os.environ:
            lines.append(f"- environment: {var}={os.environ[var]}")
    peers = []
    for dist in ("chainrule", "torch", "autograd", "micrograd"):
        v = _version(dist)
        peers.append(f"{dist} {v}" if v else f"{dist} not installed")
    if "torch" in sys.modules:
        peers.append(f"torch threads: {sys.modules['torch'].get_num_threads()}")
    lines.append("- " + ", ".join(peers))
    return lines


def _check_cell(row: Row, baseline: str, checked: bool) -> str:
    if row.status == "ok":
        if not checked:
            return "-"
        if row.engine == baseline:
            return "baseline"
        return f"ok ({row.max_rel_err:.0e})"
    if row.status == "wrong":
        return f"**WRONG**: {row.error}"
    if row.status == "absent":
        return row.error
    return f"failed: {row.error}"


def case_table(res: CaseResult) -> list[str]:
    case = res.case
    base = res.row(case.baseline)
    third = "less baseline" if case.subtract_baseline else "x baseline"
    if not case.checked:
        threads = ""
    elif case.threads is None:
        threads = "; BLAS and PyTorch on their default threads"
    else:
        threads = f"; BLAS and PyTorch limited to {case.threads} thread"
        threads += "s" if case.threads > 1 else ""
    lines = [
        f"### {case.name}",
        "",
        f"{case.title}{threads}.",
        "",
        f"| engine | median ({case.per_label}) | fastest - slowest | {third} | check |",
        "|---|---:|---:|---:|---|",
    ]
    for row in res.rows:
        med = row.median
        if row.times:
            spread = f"{fmt_time(min(row.times), case)} - {fmt_time(max(row.times), case)}"
        else:
            spread = "-"
        rel = "-"
        if row.status == "ok" and base is not None and base.median and med is not None:
            if case.subtract_baseline:
                rel = f"{med - base.median:.3f} s" if row is not base else "-"
            else:
                rel = f"{med / base.median:.2f}"
        n = f" (n={len(row.times)})" if row.times else ""
        lines.append(
            f"| {row.engine}{n} | {fmt_time(med, case)} | {spread} | {rel} | "
            f"{_check_cell(row, case.baseline, case.checked)} |"
        )
    mem_rows = [r for r in res.rows if r.memory]
    if mem_rows:
        lines += [
            "",
            "Memory (bytes per op node; graph: held after the forward pass; peak: during "
            "forward and backward; RSS: resident-memory growth over the forward pass):",
            "",
            "| engine | graph (tracemalloc) | peak (tracemalloc) | RSS |",
            "|---|---:|---:|---:|",
        ]
        for r in mem_rows:
            cells = []
            for key in ("graph", "peak", "rss"):
                v = r.memory.get(key)
                cells.append("-" if v is None else f"{v:,.0f}")
            if "error" in r.memory:
                cells = ["failed"] * 3
            lines.append(f"| {r.engine} | " + " | ".join(cells) + " |")
    for note in case.notes:
        lines += ["", note]
    engine_notes = [f"{e.name}: {e.note}" for e in case.engines if e.note]
    if engine_notes:
        lines += ["", "Notes: " + "; ".join(engine_notes) + "."]
    lines.append("")
    return lines


def targets_table(results: list[CaseResult]) -> list[str]:
    by_name = {r.case.name: r for r in results}
    lines = ["| target | measured | met |", "|---|---|---|"]
    for t in TARGETS:
        res = by_name.get(t.case)
        if res is None:
            continue
        measured, met = t.check(res)
        verdict = "n/a" if met is None else "yes" if met else "**no**"
        lines.append(f"| {t.label} | {measured} | {verdict} |")
    return lines if len(lines) > 2 else []


def markdown(results: list[CaseResult], command: str) -> str:
    """The whole report: how it was run, on what, the targets, and every case's table."""
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Results",
        "",
        f"Measured {now} with `{command}` on:",
        "",
        *machine(),
        "",
        "Times are medians over interleaved runs (n = runs per engine); a ratio is one "
        "median over the baseline's median from the same run. *check* is the largest "
        "relative difference from the baseline's final loss and arrays.",
        "",
    ]
    targets = targets_table(results)
    if targets:
        lines += ["### Targets", "", *targets, ""]
    for res in results:
        lines += case_table(res)
    return "\n".join(lines)
