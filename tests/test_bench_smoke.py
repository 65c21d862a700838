"""The benchmark suite stays runnable: every case once, at tiny sizes, on every installed engine.

These are not timed tests: they check that each benchmark still runs and that
every engine's answer still matches the hand-written baseline.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import bench  # noqa: E402
from bench.__main__ import main  # noqa: E402
from bench.cases import deepchain  # noqa: E402
from bench.core import Case, Engine, Outcome, compare, run_case  # noqa: E402
from bench.report import markdown  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _quick_collections() -> Iterator[None]:
    # The harness runs gc.collect() before every measurement; with torch loaded
    # each full collection walks a large heap.  Freezing what exists now keeps
    # those collections short here, where only correctness is checked.
    for peer in ("torch", "sklearn.datasets", "autograd"):
        if bench.core.available([peer.split(".")[0]]):
            __import__(peer)
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.mark.parametrize("case", bench.all_cases("tiny"), ids=lambda c: c.name)
def test_every_engine_runs_and_agrees_with_the_baseline(case: Case) -> None:
    if case.name == "import":
        # A fresh interpreter importing torch takes seconds, and the code path
        # is the same for every module, so the smoke test leaves torch out here.
        case.engines = [e for e in case.engines if e.name != "torch"]
    res = run_case(case, repeat=1, isolate_memory=False)
    ran = [row for row in res.rows if row.status != "absent"]
    assert any(row.engine.startswith("chainrule") for row in ran)
    for row in ran:
        assert row.status == "ok", f"{case.name} / {row.engine}: {row.error}"
        assert len(row.times) == 1
        assert row.max_rel_err <= case.rtol
    for name in case.memory_engines:
        row = res.row(name)
        assert row is not None
        if row.status == "ok" and name != "torch":
            assert row.memory["graph"] is not None and row.memory["graph"] > 0


def test_memory_is_measured_in_a_fresh_process() -> None:
    mem = deepchain.measure("chainrule Value", 2000, isolate=True)
    here = deepchain.measure("chainrule Value", 2000, isolate=False)
    assert mem["graph"] is not None and here["graph"] is not None
    # Both count the same objects, so they agree closely.
    assert abs(mem["graph"] - here["graph"]) < 0.1 * here["graph"]


def _const(loss: float, grad: list[float]) -> Engine:
    return Engine(f"gives {grad}", lambda: lambda: Outcome(loss, {"g": np.array(grad)}))


def test_a_wrong_answer_a_crash_and_a_missing_peer_are_told_apart() -> None:
    def crash() -> Outcome:
        raise RuntimeError("boom")

    case = Case(
        name="fake",
        group="fake",
        title="fake",
        baseline="gives [1.0, 2.0]",
        engines=[
            _const(3.0, [1.0, 2.0]),
            _const(3.0, [1.0, 2.0 + 1e-12]),
            _const(3.0, [1.0, 2.1]),
            Engine("crashes", lambda: crash),
            Engine("absent", lambda: crash, needs=("no_such_module_for_chainrule_bench",)),
        ],
        repeat=2,
    )
    res = run_case(case)
    status = {row.engine: row.status for row in res.rows}
    assert status == {
        "gives [1.0, 2.0]": "ok",
        "gives [1.0, 2.000000000001]": "ok",
        "gives [1.0, 2.1]": "wrong",
        "crashes": "error",
        "absent": "absent",
    }
    assert res.ratio("gives [1.0, 2.000000000001]", "gives [1.0, 2.0]") is not None
    text = markdown([res], "python -m bench --cases fake")
    assert "**WRONG**" in text and "RuntimeError: boom" in text and "not installed" in text


def test_compare_is_relative_to_the_largest_reference_value() -> None:
    want = Outcome(100.0, {"g": np.array([1000.0, 1e-9])})
    got = Outcome(100.0 + 1e-8, {"g": np.array([1000.0, 2e-9])})
    assert compare(got, want) == pytest.approx(1e-9 / 1000.0 + 0, abs=2e-10)


def test_command_line_writes_the_markdown_report(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    status = main(["--size", "tiny", "--cases", "overhead,mazur-value", "--repeat", "2"]
                  + ["--out", str(out)])  # fmt: skip
    assert status == 0
    text = out.read_text()
    assert "### overhead" in text and "### mazur-value" in text
    assert "| chainrule Tensor (n=2) |" in text
    assert "### Targets" in text and "overhead: at most 3x" in text


def test_unknown_case_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown case"):
        bench.select(bench.all_cases("tiny"), ["mazurr"])


def test_every_instruction_count_workload_runs_once_without_valgrind() -> None:
    from bench import instructions

    for name, (_, _, build) in instructions.WORKLOADS.items():
        if name.endswith(":micrograd") and not bench.core.available(["micrograd"]):
            continue
        outcome = build(1)()
        assert np.isfinite(outcome.loss), name
    assert instructions.main(["--list"]) == 0
    with pytest.raises(SystemExit):
        instructions.main(["no-such-workload"])


def test_jacobian_benchmark_counts_one_pass_per_input_or_output(capsys) -> None:
    from bench import jacobians

    assert jacobians.main(["--sizes", "3", "5", "--repeat", "1"]) == 0
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines()[2:]]
    got = {(r[0].strip(), int(r[1])): (int(r[2]), int(r[3])) for r in rows}
    assert got == {
        ("n inputs, 1 output", 3): (3, 1),
        ("1 input, n outputs", 3): (1, 3),
        ("n inputs, 1 output", 5): (5, 1),
        ("1 input, n outputs", 5): (1, 5),
    }


def test_tracing_benchmark_reports_every_program_and_graph_size(capsys) -> None:
    from bench import tracing

    assert tracing.main(["--sizes", "60", "300", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    tables = [t.splitlines()[2:] for t in out.strip().split("\n\n")]
    programs = [r.split("|")[1].strip() for r in tables[0]]
    assert programs == [
        "2-2-2 network, floats",
        "2-2-2 network, 2x2 arrays",
        "digits MLP, one step (batch 64)",
    ]
    graphs = [(r.split("|")[1].strip(), int(r.split("|")[2].replace(",", ""))) for r in tables[1]]
    assert [g for g, _ in graphs] == ["chain", "chain", "wide", "wide"]
    for (_, small), (_, large) in (graphs[:2], graphs[2:]):
        assert 50 <= small < large and 250 <= large <= 400, graphs  # about the sizes asked for
