"""The tutorial's output: tables for people, JSON for programs.

Both are made from one :class:`~.computation.Results`; nothing is computed here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from ..explain import Explanation
from .computation import BUILD_TOL, FD_TOL, SAME_TOL, Results, Row
from .reference import decimals

STATUS_TEXT = {"yes": "yes", "NO": "NO", "explained": "explained"}


def number(x: float | None, published: str | None = None) -> str:
    """A computed number with a few more decimals than its published figure."""
    if x is None:
        return "-"
    places = max(12, (decimals(published) + 3) if published else 12)
    return f"{x:.{places}f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Columns padded to line up, separated by ``|`` (also valid Markdown)."""
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return indent + "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    rule = indent + "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def _agrees_cell(row: Row, notes: dict[str, int]) -> str:
    if row.status == "explained" and row.cause is not None:
        n = notes.setdefault(row.cause, len(notes) + 1)
        return f"explained ({n})"
    return STATUS_TEXT[row.status]


def heading(n: int | None, title: str) -> str:
    text = f"{n}. {title}" if n is not None else title
    return f"\n{text}\n{'=' * len(text)}"


def builds_text(res: Results) -> str:
    out = [heading(1, "The network, built three ways")]
    described = {
        "Value": "scalar Values w1..w8, b1, b2, i1, i2, every node named",
        "Tensor": "Tensors: W_hidden @ x + b1, W_output @ out_h + b2",
        "nn": "nn.Sequential(Linear, Sigmoid, Linear, Sigmoid), loss 1/2 sum (out - target)^2",
    }
    rows = []
    for name, nums in res.builds.items():
        rows.append(
            [
                name,
                described.get(name, ""),
                f"{nums['E_total']:.15f}",
                f"{nums['dE_total/dw1']:.15f}",
                f"{nums['dE_total/dw5']:.15f}",
            ]
        )
    out.append(table(["build", "how", "E_total", "dE_total/dw1", "dE_total/dw5"], rows))
    verdict = "agree" if res.builds_agree else "DISAGREE"
    out.append(
        f"  Largest difference between any two builds (outputs, E_total, all eight gradients): "
        f"{res.max_build_difference:.1e} (limit {BUILD_TOL:.0e}): they {verdict}."
    )
    out.append(
        "  gradcheck of E_total(w1..w8), autodiff against central differences: "
        + ("passed." if res.gradcheck_passed else "FAILED.")
    )
    return "\n".join(out)


def figures_text(
    rows: Sequence[Row], notes: dict[str, int], with_fd: bool = True, training: bool = False
) -> str:
    if training:
        header = ["figure", "published", "computed", "by hand", "agrees", "by the variant found"]
        body = [
            [
                r.key,
                r.published or "-",
                number(r.autodiff, r.published),
                number(r.hand, r.published),
                _agrees_cell(r, notes),
                number(r.reproduced, r.published) if r.reproduced is not None else "",
            ]
            for r in rows
        ]
        return table(header, body)
    header = ["figure", "published", "hand derivation", "autodiff"]
    if with_fd:
        header.append("finite differences")
    header.append("agrees")
    body = []
    for r in rows:
        cells = [
            r.key,
            r.published or "-",
            number(r.hand, r.published),
            number(r.autodiff, r.published),
        ]
        if with_fd:
            cells.append(number(r.finite_differences, r.published))
        cells.append(_agrees_cell(r, notes))
        body.append(cells)
        if r.reproduced is not None:
            blank = [""] * (len(cells) - 1)
            blank[0] = "  by the variant found"
            blank[2] = number(r.reproduced, r.published)
            body.append(blank + [""])
    return table(header, body)


def notes_text(notes: dict[str, int]) -> str:
    return "\n".join(f"  ({n}) {cause}." for cause, n in notes.items())


def explanation_text(e: Explanation) -> str:
    return "\n".join("  " + line if line else "" for line in str(e).splitlines())


#: How the hand derivation splits each gradient into paths: (through, factors).
HAND_PATHS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "w5": [("o1", ("dE_total/dout_o1", "dout_o1/dnet_o1", "dnet_o1/dw5"))],
    "w1": [
        ("o1", ("dE_o1/dout_h1", "dout_h1/dnet_h1", "dnet_h1/dw1")),
        ("o2", ("dE_o2/dout_h1", "dout_h1/dnet_h1", "dnet_h1/dw1")),
    ],
}


def _path_through(e: Explanation, output: str) -> int | None:
    """Which listed path of ``e`` passes through ``out_<output>`` (1-based)."""
    for n, p in enumerate(e.paths, 1):
        if any(e.label(s.child) == f"out_{output}" for s in p.steps):
            return n
    return None


def chain_rule_text(res: Results) -> str:
    """Step 4: the explanation of each gradient, tied to the hand derivation."""
    out = [
        heading(4, "The chain rule made visible"),
        "  Every path from E_total back to a weight multiplies the local derivatives on its",
        "  edges; adding the paths' products gives the gradient that autodiff computes.",
    ]
    hand = {r.key: r.hand for r in res.rows}
    for name, e in res.explanations.items():
        out += ["", f"  explain(E_total, {name})", explanation_text(e), ""]
        out.append("  The same paths in the hand derivation's factors:")
        for through, factors in HAND_PATHS.get(name, []):
            values = [hand[f] for f in factors]
            product = math.prod(v for v in values if v is not None)
            n = _path_through(e, through)
            listed = e.paths[n - 1].product if n is not None else math.nan
            out.append(
                f"    through {through}: {' * '.join(factors)}"
                f"\n      = {' * '.join(f'{v:.9f}' for v in values if v is not None)}"
                f" = {product:.12f}  (path {n}: {listed:.12f})"
            )
        out.append(
            f"  sum over paths - autodiff gradient = {e.total - e.autodiff:.1e}"
            + ("  (they match)" if e.matches else "  (MISMATCH)")
        )
    return "\n".join(out)


def worked_text(res: Results, notes: dict[str, int]) -> str:
    """Steps 1 to 4 as text; ``notes`` collects the numbered discrepancy causes."""
    out = [
        "The 2-2-2 worked example: hand derivation against autodiff, figure by figure",
        "(a computed figure agrees with a published one when it rounds to the published digits)",
        builds_text(res),
        heading(2, "Forward pass"),
        figures_text(res.section("forward"), notes, with_fd=False),
        heading(3, "Backward pass"),
        "  Output layer: w5 along E_total <- out_o1 <- net_o1 <- w5, then the new w5+ .. w8+",
        figures_text(res.section("output"), notes),
        "",
        "  Hidden layer: w1 through out_h1, which reaches E_total by o1 and by o2; then w1+ .. w4+",
        figures_text(res.section("hidden"), notes),
        "  agrees: hand derivation and autodiff both round to the published digits and match",
        f"  each other to {SAME_TOL:.0e}; finite differences (central, as gradcheck computes them)",
        f"  match autodiff to {FD_TOL:.0e}.  A figure without a published value is checked the",
        "  same way, without the rounding.",
    ]
    if notes:
        out.append(notes_text(notes))
    out.append(chain_rule_text(res))
    return "\n".join(out)


def training_intro(res: Results) -> str:
    """The start of step 5, printed before the training runs."""
    before, after = res.one_update
    return "\n".join(
        [
            heading(5, "Training"),
            f"  One update (all eight weights from one forward pass, biases frozen): "
            f"E_total {before:.9f} -> {after:.9f}",
            f"  Then {res.steps:,} updates from the start, by autodiff on the Value build"
            " (and by hand, to compare):",
        ]
    )


def training_text(res: Results, notes: dict[str, int]) -> str:
    """The after-training table and its notes (the rest of step 5)."""
    before = len(notes)
    out = [figures_text(res.section("training"), notes, training=True)]
    new = {c: n for c, n in notes.items() if n > before}
    if new:
        out.append(notes_text(new))
    return "\n".join(out)


def picture_text(picture: dict[str, Any]) -> str:
    """Step 6: where the picture went."""
    return "\n".join(
        [heading(6, "The graph of E_total")] + [f"  {line}" for line in picture["messages"]]
    )


def verdict_text(res: Results) -> str:
    counts = {s: sum(1 for r in res.rows if r.status == s) for s in ("yes", "explained", "NO")}
    return "\n".join(
        [
            heading(None, "Verdict"),
            f"  {len(res.rows)} figures: {counts['yes']} agree; {counts['explained']} differ "
            "from the published digits for a cause found by computation (notes above);",
            f"  {counts['NO']} unexplained.  The findings are written up in docs/derivation.md.",
            "  All good." if res.ok else "  SOMETHING DOES NOT AGREE (see the rows marked NO).",
        ]
    )


def text_report(res: Results, picture: dict[str, Any] | None = None) -> str:
    """The whole tutorial as readable text (steps 1 to 6)."""
    notes: dict[str, int] = {}
    parts = [worked_text(res, notes), training_intro(res), training_text(res, notes)]
    if picture is not None:
        parts.append(picture_text(picture))
    parts.append(verdict_text(res))
    return "\n".join(parts)


def _finite_or_none(x: float | None) -> float | None:
    """``x`` if it is a finite number, else None (JSON has no inf or nan)."""
    return None if x is None or not math.isfinite(x) else x


def explanation_data(e: Explanation) -> dict[str, Any]:
    """An explanation as plain data: paths, factors, products, sum, autodiff."""
    return {
        "paths": [
            {
                "steps": [
                    {
                        "edge": f"{e.label(s.child, s.child_index)} <- "
                        f"{e.label(s.parent, s.parent_index)}",
                        "op": s.op,
                        "formula": s.formula,
                        "local": s.local,
                    }
                    for s in p.steps
                ],
                "product": p.product,
            }
            for p in e.paths
        ],
        "sum_over_paths": e.total,
        "autodiff": e.autodiff,
        "matches": e.matches,
    }


def json_data(res: Results, picture: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything of steps 1 to 6 as JSON-ready data (figures keyed as in the reference)."""
    figures: dict[str, Any] = {}
    for r in res.rows:
        entry: dict[str, Any] = {"section": r.section}
        if r.published is not None:
            entry["published"] = float(r.published)
            entry["published_text"] = r.published
        entry["hand"] = _finite_or_none(r.hand)
        entry["autodiff"] = _finite_or_none(r.autodiff)
        if r.finite_differences is not None:
            entry["finite_differences"] = r.finite_differences
        entry["agrees"] = r.status == "yes"
        if r.status == "explained":
            entry["explained"] = r.cause
            entry["reproduced"] = r.reproduced
        figures[r.key] = entry
    data: dict[str, Any] = {
        "builds": {
            **res.builds,
            "max_difference": res.max_build_difference,
            "agree": res.builds_agree,
        },
        "gradcheck": res.gradcheck_passed,
        "figures": figures,
        "chain_rule": {k: explanation_data(e) for k, e in res.explanations.items()},
        "findings": [
            {
                "figures": f.figures,
                "explained": f.statement(),
                "procedure": None
                if f.procedure is None
                else {"changes": f.procedure.changes(), "settings": asdict(f.procedure)},
                "disturbs": f.disturbs,
                "variants_tried": f.tried,
            }
            for f in res.findings
        ],
        "steps": res.steps,
        "ok": res.ok,
    }
    if picture is not None:
        data["picture"] = {k: v for k, v in picture.items() if k != "messages"}
    return data


def json_report(res: Results, picture: dict[str, Any] | None = None) -> str:
    return json.dumps(json_data(res, picture), indent=2)
