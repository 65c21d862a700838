"""Every figure of the worked example, computed three ways and compared.

:func:`compute` is the tutorial's whole computation, with no printing:

* the three network builds and how far apart they are;
* each published figure (and the gradients the reference leaves out) as
  :func:`chainrule.derive` writes it out, by the delta rule written by hand
  for this network (:mod:`.hand`, an independent check), by autodiff on the
  Value build, and by central finite differences (the machinery of
  :func:`chainrule.gradcheck`);
* each weight's gradient as a formula, proved equal to ``sympy.diff`` of
  E_total by :func:`chainrule.symbolic` (when SymPy, the ``symbolic`` extra,
  is installed);
* the chain rule made visible for w5 and w1 with :func:`chainrule.explain`;
* training for 10,000 updates, by autodiff and by hand;
* for every group of published figures the stated procedure does not
  reproduce, the procedure variant that does (:func:`.variants.find_cause`).

:mod:`.report` turns the result into tables or JSON.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..derive import Derivation, derive
from ..engine import grad
from ..explain import Explanation, explain
from ..gradcheck import gradcheck, numerical_jacobian
from ..value import Value
from . import hand, network, runs, variants
from .reference import (
    EDITIONS,
    LEARNING_RATE,
    PUBLISHED,
    TRAINING_STEPS,
    WEIGHT_NAMES,
    WEIGHTS,
    agrees,
    edition,
    section,
)

#: Step of the central differences.  With eps = 1e-5 the truncation error
#: (order eps^2) and the rounding error (order 1e-16 / eps) are both near 1e-11.
FD_EPS = 1e-5
#: How closely finite differences must match autodiff.
FD_TOL = 1e-8
#: How closely the hand derivation must match autodiff (two float64 computations).
SAME_TOL = 1e-12
#: How closely the three network builds must agree.
BUILD_TOL = 1e-12

#: Row order of the backward-pass table: the reference's figures with the six
#: gradients it does not print placed next to their neighbours.
OUTPUT_ROWS = (
    "dE_total/dout_o1",
    "dout_o1/dnet_o1",
    "dnet_o1/dw5",
    "dE_total/dw5",
    "dE_total/dw6",
    "dE_total/dw7",
    "dE_total/dw8",
    "w5+",
    "w6+",
    "w7+",
    "w8+",
)
HIDDEN_ROWS = (
    "dE_o1/dout_h1",
    "dE_o2/dout_h1",
    "dE_total/dout_h1",
    "dout_h1/dnet_h1",
    "dnet_h1/dw1",
    "dE_total/dw1",
    "dE_total/dw2",
    "dE_total/dw3",
    "dE_total/dw4",
    "w1+",
    "w2+",
    "w3+",
    "w4+",
)

#: Where ``derive(E_total, wrt=[w1..w8])`` holds each figure of steps 2 and 3:
#: ``(kind, quantity, user)`` of one of its lines, or ``("term", quantity, through)``
#: for one term of a delta (the part of it that flows through ``through``).  A
#: new weight ``wK+`` is ``wK - learning rate * δ[wK]``, from derive's gradient.
DERIVE_SOURCES: dict[str, tuple[str, str, str | None]] = {
    **{f.key: ("forward", f.key, None) for f in section("forward")},
    "dE_total/dout_o1": ("delta", "out_o1", None),
    "dout_o1/dnet_o1": ("local", "net_o1", "out_o1"),
    "dnet_o1/dw5": ("local", "w5", "net_o1"),
    "dE_o1/dout_h1": ("term", "out_h1", "net_o1"),
    "dE_o2/dout_h1": ("term", "out_h1", "net_o2"),
    "dE_total/dout_h1": ("delta", "out_h1", None),
    "dout_h1/dnet_h1": ("local", "net_h1", "out_h1"),
    "dnet_h1/dw1": ("local", "w1", "net_h1"),
    **{f"dE_total/d{w}": ("delta", w, None) for w in WEIGHT_NAMES},
}

Progress = Callable[[Iterable[int]], Iterable[int]]


@dataclass
class Row:
    """One figure: its published text and each way of computing it.

    ``derived`` is the number :func:`chainrule.derive` writes for it, ``hand``
    the delta rule's (:mod:`.hand`), ``autodiff`` and ``finite_differences``
    the engine's and the central differences'.  ``status`` is ``"yes"`` when
    every computation agrees with the published
    digits (and with each other), ``"explained"`` when the stated procedure
    misses the published figure but a procedure variant reproduces it
    (``cause`` says which, ``reproduced`` is the variant's value), else ``"NO"``.
    ``edition`` is ``"both"`` for a figure the two editions print alike (all
    but the after-training ones), else ``"translation"`` or ``"original"``.
    """

    key: str
    section: str
    label: str
    published: str | None
    hand: float | None
    autodiff: float | None
    finite_differences: float | None = None
    status: str = "yes"
    cause: str | None = None
    reproduced: float | None = None
    edition: str = "both"
    short_cause: str | None = None
    derived: float | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("yes", "explained")


@dataclass
class Results:
    """Everything the tutorial computes (see :func:`compute`)."""

    steps: int
    builds: dict[str, dict[str, float]]
    max_build_difference: float
    gradcheck_passed: bool
    rows: list[Row]
    explanations: dict[str, Explanation]
    findings: list[variants.Finding] = field(default_factory=list)
    one_update: tuple[float, float] = (math.nan, math.nan)
    #: After-training figures of each option's setup (:func:`.runs.overview`).
    overview: dict[str, dict[str, float]] = field(default_factory=dict)
    evaluator: variants.Evaluator | None = field(default=None, repr=False)
    #: ``derive(E_total, wrt=[w1..w8])`` on the Value build (steps 2 and 3).
    derivation: Derivation | None = field(default=None, repr=False)
    #: The gradients as formulas, proved (None without SymPy; see :class:`SymbolicColumn`).
    symbolic: SymbolicColumn | None = field(default=None, repr=False)
    #: Why there is no symbolic column, when there is none.
    symbolic_missing: str = ""

    def section(self, name: str, edition: str = "translation") -> list[Row]:
        """The rows of one section, as ``edition`` publishes them."""
        return [r for r in self.rows if r.section == name and r.edition in ("both", edition)]

    def row(self, key: str, edition: str = "translation") -> Row:
        """The row of one figure, as ``edition`` publishes it."""
        for r in self.rows:
            if r.key == key and r.edition in ("both", edition):
                return r
        raise KeyError(f"no figure named {key!r} in the {edition} edition")

    def edition_rows(self, edition: str) -> list[Row]:
        """Every row of one edition: the shared figures and its own after-training ones."""
        return [r for r in self.rows if r.edition in ("both", edition)]

    @property
    def builds_agree(self) -> bool:
        return self.max_build_difference <= BUILD_TOL

    @property
    def ok(self) -> bool:
        """True when every figure agrees or is an explained discrepancy."""
        return (
            self.builds_agree
            and self.gradcheck_passed
            and all(r.ok for r in self.rows)
            and all(e.matches for e in self.explanations.values())
            and (self.derivation is None or self.derivation.ok)
            and (self.symbolic is None or self.symbolic.ok)
        )


def derivative(key: str) -> tuple[str, str]:
    """``"dE_total/dout_o1"`` -> ``("E_total", "out_o1")``."""
    top, bottom = key.split("/")
    if not (top.startswith("d") and bottom.startswith("d")):
        raise ValueError(f"derivative: {key!r} is not of the form dA/dB")
    return top[1:], bottom[1:]


def finite_difference(key: str) -> float:
    """``dA/dB`` by central differences on the Value build, B pinned to a variable.

    The network is rebuilt with the named quantity B replaced by a fresh
    Value, so A becomes a function of it alone (everything upstream of B
    held fixed), and :func:`chainrule.gradcheck.numerical_jacobian` moves it.
    """
    a, b = derivative(key)
    start = network.build_values()[b].data
    x = Value(start, name=b)
    jac = numerical_jacobian(lambda v: network.build_values(pin={b: v})[a], [x], eps=FD_EPS)
    return float(jac[0][0][0, 0])


def _judge(row: Row) -> None:
    """Set ``row.status`` from its numbers (discrepancies are settled later)."""
    ad, hd, fd, dv = row.autodiff, row.hand, row.finite_differences, row.derived
    same = ad is not None and hd is not None and abs(ad - hd) <= SAME_TOL * max(1.0, abs(ad))
    if dv is not None:  # derive's number, where it writes one, is held to the same standard
        same = same and ad is not None and abs(ad - dv) <= SAME_TOL * max(1.0, abs(ad))
    fd_ok = fd is None or (ad is not None and abs(fd - ad) <= FD_TOL)
    if row.published is None:
        good = same and fd_ok
    else:
        good = (
            same
            and fd_ok
            and ad is not None
            and hd is not None
            and agrees(ad, row.published)
            and agrees(hd, row.published)
            and (dv is None or agrees(dv, row.published))
        )
    row.status = "yes" if good else "NO"


def derivation() -> Derivation:
    """``derive(E_total, wrt=[w1..w8])`` on a fresh Value build of the network."""
    net = network.build_values()
    return derive(net["E_total"], wrt=[net[w] for w in WEIGHT_NAMES])


def derived_value(d: Derivation, key: str) -> float:
    """The number ``d`` writes for the figure ``key`` (see :data:`DERIVE_SOURCES`)."""
    if key.endswith("+"):
        return WEIGHTS[key[:-1]] - LEARNING_RATE * float(d.gradients[key[:-1]])
    kind, quantity, user = DERIVE_SOURCES[key]
    if kind == "term":
        assert user is not None
        return d.term(quantity, through=user)
    return float(d.line(kind, quantity, user=user).value)


def _single_step_rows(d: Derivation) -> list[Row]:
    by_hand = hand.worked_example()
    net = network.build_values()
    net["E_total"].backward()
    rows: list[Row] = []
    for fig in section("forward"):
        rows.append(
            Row(
                fig.key,
                "forward",
                fig.label,
                fig.text,
                by_hand[fig.key],
                net[fig.key].data,
                derived=derived_value(d, fig.key),
            )
        )
    fd_grads: dict[str, float] = {}
    for name, keys in (("output", OUTPUT_ROWS), ("hidden", HIDDEN_ROWS)):
        for key in keys:
            pub = PUBLISHED.get(key)
            label = pub.label if pub else ""
            text = pub.text if pub else None
            if key.endswith("+"):
                w = key[:-1]
                ad = WEIGHTS[w] - LEARNING_RATE * float(net[w].grad)
                fd = WEIGHTS[w] - LEARNING_RATE * fd_grads[w]
                rows.append(
                    Row(
                        key,
                        name,
                        label or f"{w} after one update",
                        text,
                        by_hand[key],
                        ad,
                        fd,
                        derived=derived_value(d, key),
                    )
                )
                continue
            a, b = derivative(key)
            if b in WEIGHTS and a == "E_total":
                ad = float(net[b].grad)  # what backward() left on the leaf
                label = label or f"gradient of {b}"
            else:
                (g,) = grad(net[a], net[b])  # one factor of the chain, from the same graph
                ad = float(g.data)
            fd = finite_difference(key)
            if b in WEIGHTS and a == "E_total":
                fd_grads[b] = fd
            rows.append(
                Row(key, name, label, text, by_hand[key], ad, fd, derived=derived_value(d, key))
            )
    return rows


def _training_rows(steps: int, progress: Progress | None) -> list[Row]:
    """The after-training figures, once per edition, from one training run each way."""
    by_autodiff = network.train_values(steps, progress=progress)
    by_hand = variants.train(variants.STATED, steps)
    rows = []
    for name in EDITIONS:
        published = edition(name)
        for key in variants.training_keys(steps):
            pub = published.get(key)
            rows.append(
                Row(
                    key,
                    "training",
                    pub.label if pub else key.replace("_", " "),
                    pub.text if pub else None,
                    by_hand[key],
                    by_autodiff[key],
                    edition=name,
                )
            )
    return rows


def _settle(
    rows: list[Row],
    sections: tuple[str, ...],
    evaluate: Callable[[variants.Procedure], dict[str, float]],
    steps: int = TRAINING_STEPS,
) -> list[variants.Finding]:
    """Find a cause for the published figures of ``sections`` that did not reproduce.

    ``rows`` are the figures of one edition.  ``evaluate`` must compute every
    published figure among them; a found variant is judged on all of them
    (what it fixes and what it would break).  Figures that cannot come from
    one forward pass (:func:`.variants.group_by_forward_pass`) are searched
    for apart.
    """
    missed = [r for r in rows if r.section in sections and r.status == "NO" and r.published]
    if not missed:
        return []
    published = {r.key: r.published for r in rows if r.published is not None}
    groups, note = variants.group_by_forward_pass([r.key for r in missed], published, steps)
    findings = []
    for group in groups:
        finding = variants.find_cause(group, published, evaluate)
        finding.note = note
        findings.append(finding)
        if finding.explained:
            for r in missed:
                if r.key in group:
                    r.status = "explained"
                    r.cause = finding.statement()
                    r.short_cause = finding.short_statement()
                    r.reproduced = finding.values[r.key]
    return findings


def compute_worked_example(steps: int = TRAINING_STEPS) -> Results:
    """Steps 1 to 4: the three builds, the forward and backward figures, the paths.

    ``steps`` is only recorded, for :func:`add_training`.
    """
    comparison = network.compare_builds()

    def e_total_of(*ws: Value) -> Value:
        return network.build_values(pin=dict(zip(WEIGHT_NAMES, ws)))["E_total"]

    checked = gradcheck(e_total_of, [Value(WEIGHTS[k], name=k) for k in WEIGHT_NAMES])

    d = derivation()
    rows = _single_step_rows(d)
    for r in rows:
        _judge(r)
    evaluator = variants.Evaluator(steps)
    findings = _settle(rows, ("forward", "output", "hidden"), evaluator)

    net = network.build_values()
    explanations = {k: explain(net["E_total"], net[k]) for k in ("w5", "w1")}
    first = network.train_values(1)["E_total_after_1"]
    try:
        column: SymbolicColumn | None = symbolic_column()
        missing = ""
    except ImportError as e:  # SymPy is an optional extra; the tutorial goes on without it
        column, missing = None, str(e)
    return Results(
        derivation=d,
        symbolic=column,
        symbolic_missing=missing,
        one_update=(net["E_total"].data, first),
        steps=steps,
        builds=comparison["builds"],
        max_build_difference=comparison["max_difference"],
        gradcheck_passed=checked,
        rows=rows,
        explanations=explanations,
        findings=findings,
        evaluator=evaluator,
    )


def add_training(res: Results, progress: Progress | None = None) -> Results:
    """Step 5: train ``res.steps`` updates and settle the after-training figures."""
    rows = _training_rows(res.steps, progress)
    for r in rows:
        _judge(r)
    res.rows.extend(rows)
    evaluator = res.evaluator or variants.Evaluator(res.steps)
    for name in EDITIONS:
        found = _settle(res.edition_rows(name), ("training",), evaluator.with_training, res.steps)
        for f in found:
            f.edition = name
        res.findings.extend(found)
    res.overview = runs.overview(res.steps)
    return res


def compute(steps: int = TRAINING_STEPS, progress: Progress | None = None) -> Results:
    """The whole worked example, steps 1 to 5 (see the module docstring).

    Args:
        steps: number of training updates (the reference uses 10,000; other
            counts have no published figures to compare with).
        progress: wraps the training loop's range, e.g. ``tqdm``.
    """
    return add_training(compute_worked_example(steps), progress)


@dataclass
class SymbolicColumn:
    """Each weight's gradient of E_total as a formula, from :func:`chainrule.symbolic`.

    Attributes:
        verdicts: weight → ``"proved"`` (the rule table's formula minus
            ``sympy.diff`` of E_total simplifies to 0), ``"numeric"`` or ``"differ"``.
        formulas: weight → the formula as text, written with the forward
            quantities ``out_h1 .. out_o2`` (defined in :attr:`quantities`).
        quantities: ``out_h1 .. out_o2`` → its formula in the leaves.
        values: weight → the formula's number at the network's values.
    """

    verdicts: dict[str, str]
    formulas: dict[str, str]
    quantities: dict[str, str]
    values: dict[str, float]

    @property
    def ok(self) -> bool:
        return all(v != "differ" for v in self.verdicts.values())


#: The quantities the formulas are written with, outermost first.
ABBREVIATIONS = ("out_o1", "out_o2", "out_h1", "out_h2")


def symbolic_column() -> SymbolicColumn:
    """The gradients of E_total as SymPy formulas, proved (raises ImportError without SymPy).

    The gradient of each weight comes from the rule table run on SymPy
    expressions and is checked against ``sympy.diff`` of E_total in the full
    expression of the leaves; only for printing is it then written with the
    neurons' outputs as abbreviations, as a textbook writes it.
    """
    from ..symbolic import _sympy, symbolic

    sp = _sympy()
    net = network.build_values()
    s = symbolic(net["E_total"], wrt=[net[w] for w in WEIGHT_NAMES])
    check = s.check()
    at = {s.symbols[k]: v for k, v in s.values.items()}
    full = {q: symbolic(net[q]).expression for q in ABBREVIATIONS}

    def shorten(e: Any, keep: str | None = None) -> str:
        for q in ABBREVIATIONS:
            if q != keep:
                e = e.subs(full[q], sp.Symbol(q, real=True))
        return str(e)

    quantities = {q: shorten(e, keep=q) for q, e in full.items()}
    formulas = {w: shorten(g) for w, g in s.gradients.items()}
    values = {w: float(g.subs(at)) for w, g in s.gradients.items()}
    return SymbolicColumn(dict(check.verdicts), formulas, quantities, values)
