"""chainrule's benchmark suite: each case run by chainrule, hand-written baselines and peers.

Run it from the repository root with ``python -m bench`` (``--help`` lists the
options).  :func:`all_cases` builds the cases at a given size and
:func:`run_suite` measures them; the smoke test uses both with ``size="tiny"``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .cases import deepchain, imports, mazur, mlp, overhead
from .core import Case, CaseResult, run_case

SIZES = ("full", "quick", "tiny")


def all_cases(size: str = "full") -> list[Case]:
    """Every case, in the order of the report, at ``size`` (full, quick or tiny)."""
    if size not in SIZES:
        raise ValueError(f"bench: size must be one of {SIZES}, got {size!r}")
    found: list[Case] = []
    for module in (mazur, mlp, deepchain, overhead, imports):
        found += module.cases(size)
    order = ["mazur-value", "mazur-tensor", "digits", "deepchain-100k", "deepchain-1m"]
    order += ["overhead", "bigmlp", "import"]
    return sorted(found, key=lambda c: order.index(c.name))


def select(cases: list[Case], names: Sequence[str] | None) -> list[Case]:
    """The cases named (by case name or group, e.g. ``mazur`` or ``mazur-value``)."""
    if not names:
        return cases
    known = {c.name for c in cases} | {c.group for c in cases}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"bench: unknown case(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}"
        )
    return [c for c in cases if c.name in names or c.group in names]


def run_suite(
    cases: list[Case],
    repeat: int | None = None,
    log: Callable[[str], None] | None = None,
    isolate_memory: bool = True,
) -> list[CaseResult]:
    """Measure ``cases`` one after another (engines interleaved within each case)."""
    return [run_case(c, repeat, log, isolate_memory) for c in cases]


__all__ = ["Case", "CaseResult", "all_cases", "run_case", "run_suite", "select"]
