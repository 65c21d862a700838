"""The tutorial's output: tables for people, JSON for programs.

Both are made from one :class:`~.computation.Results` (and, for a changed
setup, one :class:`~.runs.RunResults`); nothing is computed here.  The text
comes in two lengths: the default, about 80 lines within 100 columns, and
``verbose``, with every table in full, every computed column and every edge
of every chain-rule path.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..derive import Derivation, Line, _num
from ..explain import Explanation
from .computation import BUILD_TOL, DERIVE_SOURCES, FD_TOL, SAME_TOL, Results, Row
from .reference import CREDIT, EDITIONS, LEARNING_RATE, PUBLISHED, WEIGHTS, agrees, decimals
from .runs import RunResults

#: The widest line of the default report.
WIDTH = 100

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


def _agrees_cell(row: Row, notes: dict[str, int], verbose: bool = True) -> str:
    cause = row.cause if verbose or row.short_cause is None else row.short_cause
    if row.status == "explained" and cause is not None:
        n = notes.setdefault(cause, len(notes) + 1)
        return f"explained ({n})"
    return STATUS_TEXT[row.status]


def heading(n: int | None, title: str) -> str:
    text = f"{n}. {title}" if n is not None else title
    return f"\n== {text} =="


def wrapped(text: str, indent: str = "  ", hang: str = "      ") -> str:
    """``text`` wrapped to :data:`WIDTH` columns."""
    return textwrap.fill(
        text, WIDTH, initial_indent=indent, subsequent_indent=hang, break_on_hyphens=False
    )


def builds_text(res: Results, verbose: bool = True) -> str:
    out = [heading(1, "The network, built three ways")]
    if not verbose:
        verdict = "agree" if res.builds_agree else "DISAGREE"
        out.append(
            f"  Value, Tensor and nn builds {verdict} to {res.max_build_difference:.1e} "
            f"(limit {BUILD_TOL:.0e}); gradcheck of E_total(w1..w8) "
            + ("passed." if res.gradcheck_passed else "FAILED.")
        )
        return "\n".join(out)
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
    rows: Sequence[Row],
    notes: dict[str, int],
    with_fd: bool = True,
    training: bool = False,
    verbose: bool = True,
) -> str:
    """A table of figures; without ``verbose``, only the published ones, hand and autodiff.

    The short table still has both computed columns; the full one adds the
    figures the reference leaves out and the finite differences.
    """
    if not verbose:
        rows = [r for r in rows if r.published is not None or r.status != "yes"]
        with_fd = False
    if training:
        header = ["figure", "published", "computed", "by hand", "agrees", "by the variant found"]
        body = [
            [
                r.key,
                r.published or "-",
                number(r.autodiff, r.published),
                number(r.hand, r.published),
                _agrees_cell(r, notes, verbose),
                number(r.reproduced, r.published) if r.reproduced is not None else "",
            ]
            for r in rows
        ]
        if not verbose:  # the by-hand column equals the computed one to 1e-10 (tested)
            body = [b[:3] + b[4:] for b in body]
            header = header[:3] + header[4:]
        return table(header, body)
    header = ["figure", "published", "derive", "delta rule", "autodiff"]
    if with_fd:
        header.append("finite differences")
    header.append("agrees")
    body = []
    for r in rows:
        cells = [
            r.key,
            r.published or "-",
            number(r.derived, r.published),
            number(r.hand, r.published),
            number(r.autodiff, r.published),
        ]
        if with_fd:
            cells.append(number(r.finite_differences, r.published))
        cells.append(_agrees_cell(r, notes, verbose))
        body.append(cells)
        if r.reproduced is not None:
            blank = [""] * (len(cells) - 1)
            blank[0] = "  by the variant found"
            blank[2] = number(r.reproduced, r.published)
            body.append(blank + [""])
    return table(header, body)


def notes_text(notes: dict[str, int]) -> str:
    return "\n".join(wrapped(f"({n}) {cause}.", hang="      ") for cause, n in notes.items())


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


def chain_rule_text(res: Results, verbose: bool = True) -> str:
    """Step 4: the explanation of each gradient, tied to the hand derivation."""
    if not verbose:
        out = [
            heading(4, "The chain rule made visible"),
            "  Products of the local derivatives along each path, added (--verbose: every edge):",
        ]
        for name, e in res.explanations.items():
            terms = " + ".join(f"{p.product:.12f}" for p in e.paths).replace("+ -", "- ")
            verdict = "matches" if e.matches else "DOES NOT MATCH"
            out.append(
                f"  explain(E_total, {name}): {e.count} path{'s' if e.count != 1 else ''}, "
                f"{terms} {verdict} autodiff {e.autodiff:.12f}"
            )
        return "\n".join(out)
    out = [
        heading(4, "The chain rule made visible"),
        "  Every path from E_total back to a weight multiplies the local derivatives on its",
        "  edges; adding the paths' products gives the gradient that autodiff computes.",
    ]
    hand = {r.key: r.hand for r in res.rows}
    for name, e in res.explanations.items():
        out += ["", f"  explain(E_total, {name})", explanation_text(e), ""]
        out.append("  The same paths in the factors of the delta rule written by hand:")
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


def title_text(verbose: bool = True) -> str:
    """The first lines: what the report is, and whose figures it shows."""
    lines = [
        "The 2-2-2 worked example derived by chainrule.derive, against the published figures",
        f"Published figures from {CREDIT}.",
    ]
    if verbose:
        lines.append(
            "(a computed figure agrees with a published one when it rounds to the published digits)"
        )
    return "\n".join(lines)


#: The rows of steps 2 and 3 in the default report, in the order of the derivation:
#: each published figure by its key, and (``None``, source) for a delta the post uses
#: without printing it, a source as in :data:`~.computation.DERIVE_SOURCES`.
DEFAULT_ROWS: dict[str, list[tuple[str | None, tuple[str, str, str | None] | None]]] = {
    "forward": [(k, None) for k, f in PUBLISHED.items() if f.section == "forward"],
    "output": [
        ("dE_total/dout_o1", None),
        ("dout_o1/dnet_o1", None),
        (None, ("delta", "net_o1", None)),
        ("dnet_o1/dw5", None),
        ("dE_total/dw5", None),
        *((f"w{k}+", None) for k in range(5, 9)),
    ],
    "hidden": [
        (None, ("delta", "net_o2", None)),
        ("dE_o1/dout_h1", None),
        ("dE_o2/dout_h1", None),
        ("dE_total/dout_h1", None),
        ("dout_h1/dnet_h1", None),
        (None, ("delta", "net_h1", None)),
        ("dnet_h1/dw1", None),
        ("dE_total/dw1", None),
        *((f"w{k}+", None) for k in range(1, 5)),
    ],
}

#: The widest derive line of the default report (the rest of a row is the figure's
#: name, the published digits and the verdict).
LINE_WIDTH = 58


def update_line(d: Derivation, key: str) -> Line:
    """``w5+ = w5 - η·δ[w5] = ...``: a new weight from derive's gradient, as a line."""
    w = key[:-1]
    g = float(d.gradients[w])
    new = WEIGHTS[w] - LEARNING_RATE * g
    numbers = f"{_num(WEIGHTS[w])} - {_num(LEARNING_RATE)}·{_num(g) if g >= 0 else f'({_num(g)})'}"
    return Line(
        "update",
        key,
        [(key, ""), (f"{w} - {_num(LEARNING_RATE)}·δ[{w}]", ""), (numbers, ""), (_num(new), "")],
        value=new,
    )


def derive_line(d: Derivation, key: str | None, source: tuple[str, str, str | None] | None) -> Line:
    """derive's line for the figure ``key`` (or for ``source``, a line the post does not print)."""
    if key is not None and key.endswith("+"):
        return update_line(d, key)
    if key is not None:
        kind, quantity, user = DERIVE_SOURCES[key]
    else:
        assert source is not None, "a row names a figure or a line of the derivation"
        kind, quantity, user = source
    if kind == "term":
        assert user is not None
        return d.term_line(quantity, through=user)
    return d.line(kind, quantity, user=user)


def short_text(line: Line, width: int = LINE_WIDTH) -> str:
    """A line without its numbers step (``lhs = formula = value``), shorter still if need be."""
    texts = [p[0] for p in line.parts]
    if len(texts) <= 2:
        return line.text()
    for pick in ([0, 1, -1], [0, -2, -1], [0, -1]):
        shown = " = ".join(dict.fromkeys(texts[i] for i in pick))
        if len(shown) <= width:
            return shown
    return shown


def _derive_rows(res: Results, d: Derivation, section: str, notes: dict[str, int]) -> list[Any]:
    """The default rows of one section: derive's line, the post's figure, its digits, a verdict.

    A row is a list of cells, or a plain string printed as it is (under an explained figure,
    the number its cause reproduces).
    """
    rows: list[Any] = []
    for key, source in DEFAULT_ROWS[section]:
        line = derive_line(d, key, source)
        if key is None:
            rows.append([short_text(line), "-", "-", "yes" if line.agree else "NO"])
            continue
        r = res.row(key)
        cause = r.short_cause or r.cause
        if r.status == "explained" and cause is not None:
            n = notes.setdefault(cause, len(notes) + 1)
            rows.append([short_text(line), key, r.published or "-", f"note {n}"])
            if r.reproduced is not None:
                rows.append(f"    note {n}'s variant gives {number(r.reproduced)}")
            continue
        rows.append([short_text(line), key, r.published or "-", STATUS_TEXT[r.status]])
    return rows


def _derive_tables(res: Results, d: Derivation, notes: dict[str, int]) -> dict[str, list[str]]:
    """Every section's default rows as text, the columns lined up across the sections."""
    rows = {name: _derive_rows(res, d, name, notes) for name in DEFAULT_ROWS}
    head = ["derive writes (--verbose: every step)", "in the post", "published", "agrees"]
    cells = [head, *(r for rs in rows.values() for r in rs if not isinstance(r, str))]
    widths = [max(len(x[c]) for x in cells) for c in range(4)]

    def fmt(row: Any) -> str:
        if isinstance(row, str):
            return row
        return ("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths))).rstrip()

    out = {name: [fmt(r) for r in rs] for name, rs in rows.items()}
    out["forward"].insert(0, fmt(head))
    return out


def symbolic_text(res: Results, verbose: bool = False) -> str:
    """The symbolic column: each gradient proved (and, verbose, its formula)."""
    col = res.symbolic
    if col is None:
        return "  symbolic: skipped, SymPy is not installed (pip install 'chainrule[symbolic]')"
    if not verbose:
        groups: dict[str, list[str]] = {}
        for w, v in col.verdicts.items():
            groups.setdefault(v, []).append(w)
        said = "; ".join(f"{v} {' '.join(ws)}" for v, ws in groups.items())
        return f"  symbolic(E_total).check(), the rule table on SymPy = sympy.diff: {said}"
    out = [
        "  symbolic(E_total): the rule table run on SymPy expressions, checked against sympy.diff",
        "  of E_total in the leaves (proved: the difference simplifies to 0); each formula is",
        "  printed with the neurons' outputs as shorthand, and its number at the network's values:",
    ]
    out += [f"    {q} = {e}" for q, e in col.quantities.items()]
    for w, f in col.formulas.items():
        out.append(
            wrapped(
                f"∂E_total/∂{w} = {f} = {col.values[w]:.12f}: {col.verdicts[w]}",
                indent="    ",
                hang="        ",
            )
        )
    return "\n".join(out)


def hand_derivation_text(res: Results, notes: dict[str, int], verbose: bool = False) -> str:
    """Steps 2 to 4: derive's derivation with the published figures beside it, the paths.

    The derivation is :func:`chainrule.derive` on the Value build
    (``res.derivation``); the default shows its lines for the published figures
    (and the deltas between them) with the post's digits and a verdict,
    ``verbose`` the whole derivation and every computation of every figure:
    derive's, the delta rule written by hand (:mod:`.hand`, the independent
    check), autodiff and finite differences.
    """
    d = res.derivation
    assert d is not None, "the worked example's results carry its derivation"
    out = [heading(2, "Forward pass, as chainrule.derive writes it")]
    if verbose:
        text = d.text(WIDTH - 2).splitlines()
        cut = next(k for k, t in enumerate(text) if t.startswith("Backward pass"))
        out += [
            "  derive(E_total, wrt=[w1, ..., w8]) on the Value build; each line: formula, numbers, "
            "result",
            *("  " + t for t in text[1:cut]),
            figures_text(res.section("forward"), notes, with_fd=False, verbose=verbose),
            heading(3, "Backward pass, as chainrule.derive writes it"),
            *("  " + t for t in text[cut:]),
            "  Every figure by derive, by the delta rule written by hand, by autodiff and by "
            "finite differences:",
            figures_text(res.section("output"), notes, verbose=verbose),
            figures_text(res.section("hidden"), notes, verbose=verbose),
            "  agrees: derive, the delta rule and autodiff round to the published digits and match",
            f"  each other to {SAME_TOL:.0e}; finite differences (central, as gradcheck computes "
            "them)",
            f"  match autodiff to {FD_TOL:.0e}.  A figure without a published value is checked the",
            "  same way, without the rounding.",
            symbolic_text(res, verbose),
        ]
    else:
        tables = _derive_tables(res, d, notes)
        out += tables["forward"]
        out += [
            heading(3, "Backward pass, as chainrule.derive writes it (δ[q] = ∂E_total/∂q)"),
            "  Output layer: w5 along E_total <- out_o1 <- net_o1 <- w5, then the new w5+ .. w8+",
            *tables["output"],
            "  Hidden layer: out_h1 reaches E_total through net_o1 and net_o2: δ[out_h1] adds both",
            *tables["hidden"],
            "  agrees: derive, the delta rule and autodiff round to the published digits and match "
            f"to {SAME_TOL:.0e};",
            f"  finite differences match autodiff to {FD_TOL:.0e}; '-': derive's own check of them "
            "(--verbose: all).",
            symbolic_text(res, verbose),
        ]
    if notes:
        out.append(notes_text(notes))
    out.append(chain_rule_text(res, verbose))
    return "\n".join(out)


def worked_text(res: Results, notes: dict[str, int], verbose: bool = True) -> str:
    """Steps 1 to 4 as text; ``notes`` collects the numbered discrepancy causes."""
    return "\n".join(
        [title_text(verbose), builds_text(res, verbose), hand_derivation_text(res, notes, verbose)]
    )


def training_intro(res: Results, verbose: bool = True) -> str:
    """The start of step 5, printed before the training runs."""
    before, after = res.one_update
    if not verbose:
        return "\n".join(
            [
                heading(5, "Training"),
                f"  {res.steps:,} updates from the start by autodiff on the Value build (by hand "
                "agrees to 1e-10):",
            ]
        )
    return "\n".join(
        [
            heading(5, "Training"),
            f"  One update (all eight weights from one forward pass, biases frozen):\n"
            f"    E_total {before:.9f} -> {after:.9f}",
            f"  Then {res.steps:,} updates from the start, by autodiff on the Value build"
            " (and by hand, to compare):",
        ]
    )


def training_text(res: Results, notes: dict[str, int], verbose: bool = True) -> str:
    """The after-training tables, one per edition, their notes, and the variants."""
    before = len(notes)
    out = []
    if verbose:
        for name, words in EDITIONS.items():
            out.append(f"  As {words} of the post prints them:")
            out.append(figures_text(res.section("training", name), notes, True, True, verbose))
    else:
        out.append(_editions_table(res, notes))
    new = {c: n for c, n in notes.items() if n > before}
    if new:
        out.append(notes_text(new))
    for note, name in dict.fromkeys((f.note, f.edition) for f in res.findings if f.note):
        out.append(wrapped(f"Why apart: in {EDITIONS.get(name, name)}, {note}."))
    if res.overview:
        out.append(variants_overview_text(res))
    return "\n".join(out)


def _editions_table(res: Results, notes: dict[str, int]) -> str:
    """One table: the translation's figures, the original's beneath where it prints otherwise."""
    (first, *others) = EDITIONS
    body = []
    for r in res.section("training", first):
        for other in [r] + [
            o
            for name in others
            for o in res.section("training", name)
            if o.key == r.key and o.published != r.published
        ]:
            body.append(
                [
                    r.key if other is r else f"  {EDITIONS[other.edition]}",
                    other.published or "-",
                    number(other.autodiff, other.published),
                    _agrees_cell(other, notes, verbose=False),
                    number(other.reproduced, other.published) if other.reproduced else "",
                ]
            )
    header = ["figure", "published", "computed", "agrees", "by the variant found"]
    return "\n".join(
        [
            f"  As {EDITIONS[first]} prints them; beneath, "
            f"{' and '.join(EDITIONS[n] for n in others)}'s figure where it differs:",
            table(header, body),
        ]
    )


def variants_overview_text(res: Results) -> str:
    """The after-training figures of each option's setup, one line each."""
    e_key, o1_key, o2_key = (f"{k}_after_{res.steps}" for k in ("E_total", "out_o1", "out_o2"))
    rows = [
        [
            option,
            f"{fig['E_total_after_1']:.9f}",
            f"{fig[e_key]:.10f}",
            f"{fig[o1_key]:.9f}",
            f"{fig[o2_key]:.9f}",
        ]
        for option, fig in res.overview.items()
    ]
    return "\n".join(
        [
            f"  Variants (delta rule; each option prints its own figures in full, {res.steps:,} "
            "updates):",
            table(["option", "E after 1", f"E after {res.steps:,}", "out_o1", "out_o2"], rows),
        ]
    )


def picture_text(picture: dict[str, Any], verbose: bool = True) -> str:
    """Step 6: where the picture went."""
    if verbose or not picture["files"]:
        lines = picture["messages"]
    else:
        first, *more = picture["files"]
        lines = [
            "E_total's graph, the paths to w5 and w1 in bold (--full-picture: on one row):",
            "  " + ", ".join([first, *(Path(f).name for f in more)]),
            *(m for m in picture["messages"] if m.startswith("no ")),
        ]
    return "\n".join([heading(6, "The graph of E_total")] + [f"  {line}" for line in lines])


def verdict_text(res: Results) -> str:
    counts = {s: sum(1 for r in res.rows if r.status == s) for s in ("yes", "explained", "NO")}
    return "\n".join(
        [
            heading(None, "Verdict"),
            f"  {len(res.rows)} figures of both editions: {counts['yes']} agree; "
            f"{counts['explained']} differ from the published digits for a cause",
            f"  found by computation (notes above); {counts['NO']} unexplained.  "
            "Written up in docs/derivation.md.",
            "  All good." if res.ok else "  SOMETHING DOES NOT AGREE (see the rows marked NO).",
        ]
    )


def text_report(res: Results, picture: dict[str, Any] | None = None, verbose: bool = False) -> str:
    """The whole tutorial as readable text (steps 1 to 6); ``verbose`` for every table."""
    notes: dict[str, int] = {}
    parts = [
        worked_text(res, notes, verbose),
        training_intro(res, verbose),
        training_text(res, notes, verbose),
    ]
    if picture is not None:
        parts.append(picture_text(picture, verbose))
    parts.append(verdict_text(res))
    return "\n".join(parts)


def run_text(run: RunResults, verbose: bool = False) -> str:
    """A changed setup's own figures: the first update three ways, then training."""
    s = run.setup
    names = [r.name for r in run.rows]
    rows = run.rows
    shown = rows
    if not verbose and len(rows) > 20:
        shown = rows[:8] + rows[-10:]
    out = [
        f"The worked example of {CREDIT},",
        f"changed: {s.describe()}.",
        f"  {s.hidden} hidden neuron{'s' if s.hidden != 1 else ''}, weights {names[0]}.."
        f"{names[-3]}; biases b1, b2 " + ("updated." if s.update_biases else "left alone."),
        f"  update order: {s.order}"
        + (
            " (output weights updated in place before the hidden layer's backward pass)"
            if s.order == "published"
            else " (every gradient from the same forward pass, as the post describes)"
        ),
        heading(1, "The first update, three ways"),
        f"  E_total at the start: {run.e_total_start:.12f}",
        table(
            ["", "start", "dE/d autodiff", "delta rule", "finite diff.", "new", "agrees"],
            [
                [
                    r.name,
                    f"{r.start:.6f}",
                    f"{r.autodiff:.12f}",
                    f"{r.by_hand:.12f}",
                    "-" if r.finite_differences is None else f"{r.finite_differences:.12f}",
                    f"{r.new:.9f}",
                    "yes" if r.ok else "NO",
                ]
                for r in shown
            ],
        ),
    ]
    if len(shown) < len(rows):
        out.append(f"  ({len(rows) - len(shown)} more rows; --verbose lists them all)")
    if s.order == "published":
        out.append(
            wrapped(
                "The hidden layer's numbers (and b1's) come from a backward pass that reads the "
                "new output weights, so they are no gradient of E_total at any point: they are "
                "checked against the delta rule, not finite differences (-)."
            )
        )
    t_ad, t_hand = run.training["autodiff"], run.training["by_hand"]
    # The post's figures are for 2 hidden neurons and frozen biases; only a setup with
    # those (whatever its order) can be compared with them.
    comparable = s.hidden == 2 and not s.update_biases
    rows_t = []
    for k in t_ad:
        pub = PUBLISHED.get(k)
        cells = [k, f"{t_ad[k]:.12f}", f"{t_hand[k]:.12f}", pub.text if pub else "-"]
        if comparable and pub is not None:
            cells.append("yes" if agrees(t_ad[k], pub.text) else "no")
        else:
            cells.append("-")
        rows_t.append(cells)
    out += [
        heading(2, f"Training, {run.steps:,} updates"),
        table(["figure", "autodiff", "delta rule", "the post (translation)", "matches"], rows_t),
        "  matches: autodiff rounds to the post's digits"
        + (
            "; the post's setup is this one, up to the update order."
            if comparable
            else "; '-': the post publishes no figure for this setup."
        ),
        heading(None, "Verdict"),
        f"  autodiff, the delta rule and finite differences agree on {len(rows)} numbers "
        f"and on training: {'yes' if run.ok else 'NO'}.",
        "  All good." if run.ok else "  SOMETHING DOES NOT AGREE (see the rows marked NO).",
    ]
    return "\n".join(out)


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


def _row_data(r: Row) -> dict[str, Any]:
    entry: dict[str, Any] = {"section": r.section}
    if r.published is not None:
        entry["published"] = float(r.published)
        entry["published_text"] = r.published
    if r.derived is not None:
        entry["derived"] = _finite_or_none(r.derived)
    entry["hand"] = _finite_or_none(r.hand)
    entry["autodiff"] = _finite_or_none(r.autodiff)
    if r.finite_differences is not None:
        entry["finite_differences"] = r.finite_differences
    entry["agrees"] = r.status == "yes"
    if r.status == "explained":
        entry["explained"] = r.cause
        entry["reproduced"] = r.reproduced
    return entry


def json_data(res: Results, picture: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything of steps 1 to 6 as JSON-ready data (figures keyed as in the reference)."""
    figures = {r.key: _row_data(r) for r in res.edition_rows("translation")}
    data: dict[str, Any] = {
        "credit": CREDIT,
        "builds": {
            **res.builds,
            "max_difference": res.max_build_difference,
            "agree": res.builds_agree,
        },
        "gradcheck": res.gradcheck_passed,
        "figures": figures,
        "editions": {
            name: {
                "source": words,
                "figures": {r.key: _row_data(r) for r in res.rows if r.edition == name},
            }
            for name, words in EDITIONS.items()
        },
        "chain_rule": {k: explanation_data(e) for k, e in res.explanations.items()},
        "derivation": None if res.derivation is None else res.derivation.steps,
        "symbolic": None
        if res.symbolic is None
        else {
            w: {
                "verdict": res.symbolic.verdicts[w],
                "formula": res.symbolic.formulas[w],
                "value": res.symbolic.values[w],
            }
            for w in res.symbolic.verdicts
        },
        "findings": [
            {
                "figures": f.figures,
                "explained": f.statement(),
                "procedure": None
                if f.procedure is None
                else {"changes": f.procedure.changes(), "settings": asdict(f.procedure)},
                "disturbs": f.disturbs,
                "variants_tried": f.tried,
                "edition": f.edition,
                "note": f.note,
            }
            for f in res.findings
        ],
        "variants": res.overview,
        "steps": res.steps,
        "ok": res.ok,
    }
    if picture is not None:
        data["picture"] = {k: v for k, v in picture.items() if k != "messages"}
    return data


def json_report(res: Results, picture: dict[str, Any] | None = None) -> str:
    return json.dumps(json_data(res, picture), indent=2)


def run_json(run: RunResults) -> str:
    """A changed setup's figures as JSON (``"variant"``), credited like the example's."""
    return json.dumps({"credit": CREDIT, "variant": run.data(), "ok": run.ok}, indent=2)
