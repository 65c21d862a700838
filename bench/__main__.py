"""``python -m bench``: run the benchmark suite and print (and optionally save) the tables.

Examples::

    python -m bench                          # every case, full size
    python -m bench --quick                  # smaller sizes, fewer runs: a quick look
    python -m bench --cases mazur overhead --repeat 7 --out results.md
    python -m bench --cases digits --profile # where chainrule's time goes

The exit status is 1 when any engine computed a wrong answer, or when
chainrule or a baseline failed to run; a missed speed target is reported in
the table but is not an error.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys

from . import all_cases, run_suite, select
from .core import Case
from .peers import limit_threads
from .report import markdown


def _profile(case: Case, top: int) -> str:
    """cProfile of each chainrule engine of ``case`` (one run), top functions by own time."""
    out = io.StringIO()
    for engine in case.engines:
        if not engine.name.startswith("chainrule"):
            continue
        fn = engine.prepare()
        prof = cProfile.Profile()
        with limit_threads(case.threads):
            prof.runcall(fn)
        out.write(f"\n#### profile: {case.name}, {engine.name}\n\n```\n")
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("tottime").print_stats(top)
        out.write("```\n")
    return out.getvalue()


BEGIN, END = "<!-- bench results: begin -->", "<!-- bench results: end -->"


def write_report(path: str, report: str) -> None:
    """Write ``report`` to ``path``; in a file with the two marker lines, only between them.

    That way ``--out docs/performance.md`` refreshes the tables and keeps the prose.
    """
    try:
        with open(path, encoding="utf-8") as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    start, end = old.find(BEGIN), old.find(END)
    if 0 <= start < end:
        text = old[: start + len(BEGIN)] + "\n\n" + report + "\n\n" + old[end:]
    else:
        text = report + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Time chainrule against hand-written baselines and peer libraries.",
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        metavar="CASE",
        help="cases or groups to run (mazur, digits, deepchain, overhead, bigmlp, import); "
        "commas also separate; default: all",
    )
    parser.add_argument("--repeat", type=int, metavar="N", help="runs per engine (overrides)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer runs")
    parser.add_argument(
        "--size", choices=("full", "quick", "tiny"), help="problem size (--quick is quick)"
    )
    parser.add_argument(
        "--out",
        metavar="FILE.md",
        help="also write the report as Markdown (between the bench-results marker lines, "
        "if the file has them)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="after timing, profile chainrule on each case"
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run's time")
    args = parser.parse_args(argv)

    size = args.size or ("quick" if args.quick else "full")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    cases = all_cases(size)
    if args.list:
        for c in cases:
            print(f"{c.name:16} {c.title}")
        return 0
    names = [n for item in args.cases or [] for n in item.split(",") if n]
    try:
        chosen = select(cases, names)
    except ValueError as e:
        parser.error(str(e))

    def log(msg: str) -> None:
        if args.verbose or "failed" in msg:
            print(msg, file=sys.stderr, flush=True)

    results = []
    for case in chosen:
        print(f"running {case.name} ...", file=sys.stderr, flush=True)
        results += run_suite([case], args.repeat, log)
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    report = markdown(results, command.strip())
    print(report)
    if args.out:
        write_report(args.out, report)
        print(f"wrote {args.out}", file=sys.stderr)
    if args.profile:
        for case in chosen:
            print(_profile(case, 15))
    bad = [
        (res.case.name, row.engine)
        for res in results
        for row in res.rows
        if row.status == "wrong"
        or (
            row.status == "error"
            and (row.engine.startswith("chainrule") or row.engine == res.case.baseline)
        )
    ]
    if bad:
        print("failed: " + ", ".join(f"{c} / {e}" for c, e in bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
