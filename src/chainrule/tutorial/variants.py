"""Procedure variants, and finding which one produced a published figure.

The reference states its procedure exactly: one forward pass, all eight
gradients from it, then every weight updated at once with learning rate 0.5,
biases left alone, in float64.  A published figure that this procedure does
not reproduce to its printed digits was made some other way.  Rather than
guess, :func:`find_cause` computes the figures under each plausible
deviation from the stated procedure (a :class:`Procedure` with one field
changed, then two if no single change will do), keeps those that reproduce
every disagreeing figure to its published digits, and prefers the one that
disturbs the fewest figures which already agreed.

The variants run the hand derivation of :mod:`.hand` (plain numbers, no
graph), so trying a dozen of them over 10,000 updates takes seconds.

>>> from chainrule.tutorial.variants import STATED, Procedure, train
>>> a = train(STATED, steps=100)
>>> b = train(Procedure(update_biases=True), steps=100)
>>> a["E_total_after_100"] > b["E_total_after_100"]
True
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np

from . import hand
from .reference import (
    BIASES,
    HIDDEN_WEIGHTS,
    INPUTS,
    LEARNING_RATE,
    OUTPUT_WEIGHTS,
    TARGETS,
    TRAINING_STEPS,
    WEIGHTS,
    agrees,
    tolerance,
)

Number = Any


@dataclass(frozen=True)
class Procedure:
    """How one training update is done; the defaults are the stated procedure.

    Attributes:
        learning_rate: the step size eta.
        update_biases: also move b1 and b2 down their gradients.
        hidden_sees_new_output_weights: update w5..w8 first and use the new
            values in the hidden-layer formulas (``dE_o1/dout_h1 = delta_o1 * w5+``).
        one_weight_at_a_time: update the weights one by one, output layer
            first, each with a gradient from a fresh forward pass.
        float32: do the arithmetic in single precision.
        round_to: round every figure to this many decimals as soon as it is
            computed and carry the rounded value on, as a hand calculation does.
        extra_updates: run this many more (or, negative, fewer) updates.
        error_before_last_update: report the figures of the forward pass
            that computed the last update, that is, before that update.
    """

    learning_rate: float = LEARNING_RATE
    update_biases: bool = False
    hidden_sees_new_output_weights: bool = False
    one_weight_at_a_time: bool = False
    float32: bool = False
    round_to: int | None = None
    extra_updates: int = 0
    error_before_last_update: bool = False

    def changes(self) -> list[str]:
        """How this procedure differs from the stated one, one phrase per change."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value != getattr(STATED, f.name):
                out.append(_PHRASES[f.name](value))
        return out

    def describe(self) -> str:
        """The changes as one phrase (``"the stated procedure"`` if none)."""
        return " and ".join(self.changes()) or "the stated procedure"


STATED = Procedure()

_PHRASES: dict[str, Callable[[Any], str]] = {
    "learning_rate": lambda v: f"a learning rate of {v} instead of {LEARNING_RATE}",
    "update_biases": lambda v: "the biases b1 and b2 updated as well",
    "hidden_sees_new_output_weights": lambda v: (
        "the hidden-layer gradients computed with the already updated output weights "
        "w5+..w8+ instead of the original w5..w8"
    ),
    "one_weight_at_a_time": lambda v: (
        "the weights updated one at a time, each from a fresh forward pass"
    ),
    "float32": lambda v: "single-precision (float32) arithmetic",
    "round_to": lambda v: f"every intermediate figure rounded to {v} decimals and used rounded",
    "extra_updates": lambda v: (
        f"{abs(v)} update{'s' if abs(v) != 1 else ''} {'more' if v > 0 else 'fewer'} than stated"
    ),
    "error_before_last_update": lambda v: (
        "the figures read from the forward pass before the last update"
    ),
}

#: The single changes :func:`find_cause` tries first.
CANDIDATES: tuple[Procedure, ...] = (
    Procedure(update_biases=True),
    Procedure(hidden_sees_new_output_weights=True),
    Procedure(one_weight_at_a_time=True),
    Procedure(learning_rate=0.25),
    Procedure(learning_rate=1.0),
    Procedure(float32=True),
    Procedure(round_to=9),
    Procedure(extra_updates=-1),
    Procedure(extra_updates=1),
    Procedure(error_before_last_update=True),
)


# -- running a procedure ------------------------------------------------------


def _round_half_up(x: Number, places: int) -> float:
    """``x`` rounded to ``places`` decimals, halves away from zero, as on paper."""
    x = float(x)
    scaled = x * 10.0**places
    if abs(abs(scaled - math.floor(scaled)) - 0.5) > 1e-6:
        return round(x, places)  # not a tie: the built-in rounding is exact and fast
    # A tie as written in decimal: go through the shortest decimal form, so a
    # value displayed as ...5 rounds up whatever its binary expansion.
    q = Decimal(1).scaleb(-places)
    return float(Decimal(repr(x)).quantize(q, rounding=ROUND_HALF_UP))


class _Written(dict[str, Any]):
    """A dict that rounds every number written into it (a hand calculation's paper)."""

    places = 9

    def __setitem__(self, key: str, value: Number) -> None:
        super().__setitem__(key, _round_half_up(value, self.places))


class _Run:
    """The numbers of one procedure: weights, biases, inputs, targets, eta."""

    def __init__(self, proc: Procedure) -> None:
        self.proc = proc
        cast: Callable[[float], Number] = np.float32 if proc.float32 else float
        self.cast = cast
        self.lr = cast(proc.learning_rate)
        self.i = {k: cast(v) for k, v in INPUTS.items()}
        self.t = {k: cast(v) for k, v in TARGETS.items()}
        self.w: dict[str, Number] = self.paper({k: cast(v) for k, v in WEIGHTS.items()})
        self.b: dict[str, Number] = {k: cast(v) for k, v in BIASES.items()}

    def paper(self, values: Mapping[str, Number] | None = None) -> dict[str, Number]:
        """Where figures are written: a plain dict, or one that rounds."""
        if self.proc.round_to is None:
            return dict(values or {})
        page = _Written()
        page.places = self.proc.round_to
        for k, v in (values or {}).items():
            page[k] = v
        return page

    def forward(self) -> dict[str, Number]:
        return hand.forward(self.w, self.b, self.i, self.t, record=self.paper())

    def backward(self, f: dict[str, Number], w: dict[str, Number]) -> dict[str, Number]:
        return hand.backward(f, w, self.i, self.t, record=self.paper())

    def update(self, grads: Mapping[str, Number]) -> None:
        self.w = self.paper(hand.update(self.w, dict(grads), self.lr))

    def step(self) -> tuple[dict[str, Number], dict[str, Number]]:
        """One update; returns the forward pass and the chain-rule figures it used."""
        p = self.proc
        if p.one_weight_at_a_time:
            f0 = self.forward()
            d0 = self.backward(f0, self.w)
            for name in OUTPUT_WEIGHTS + HIDDEN_WEIGHTS:
                f = self.forward()
                d = self.backward(f, self.w)
                self.update({name: d[f"dE_total/d{name}"]})
            f, d = f0, d0
        else:
            f = self.forward()
            d = self.backward(f, self.w)
            grads = hand.gradients(d)
            if p.hidden_sees_new_output_weights:
                moved = hand.update(self.w, {k: grads[k] for k in OUTPUT_WEIGHTS}, self.lr)
                d = self.backward(f, self.paper(moved))
                grads.update({k: d[f"dE_total/d{k}"] for k in HIDDEN_WEIGHTS})
                for k in OUTPUT_WEIGHTS:  # the output layer's own figures are unchanged
                    d[f"dE_total/d{k}"] = grads[k]
            self.update(grads)
        if p.update_biases:
            # Each bias is shared by two neurons, so its gradient is the sum of their deltas.
            self.b = {
                "b1": self.b["b1"] - self.lr * (d["delta_h1"] + d["delta_h2"]),
                "b2": self.b["b2"] - self.lr * (d["delta_o1"] + d["delta_o2"]),
            }
        return f, d


def worked_step(proc: Procedure = STATED) -> dict[str, float]:
    """The forward and backward figures of the worked example under ``proc``.

    Same keys as :func:`.hand.worked_example`: forward figures, chain-rule
    factors, ``dE_total/dw1..8`` and ``w1+ .. w8+``.
    """
    run = _Run(proc)
    f, d = run.step()
    figures = {k: float(v) for k, v in f.items()}
    figures.update({k: float(v) for k, v in d.items()})
    figures.update({f"{k}+": float(v) for k, v in run.w.items()})
    return figures


def training_keys(steps: int = TRAINING_STEPS) -> list[str]:
    """The names of the after-training figures for ``steps`` updates."""
    return [
        "E_total_after_1",
        f"E_total_after_{steps}",
        f"out_o1_after_{steps}",
        f"out_o2_after_{steps}",
    ]


def train(
    proc: Procedure = STATED,
    steps: int = TRAINING_STEPS,
    progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
) -> dict[str, float]:
    """The after-training figures under ``proc``, keyed as :func:`training_keys`.

    ``E_total_after_1`` is the total error once the first update is applied;
    the other three are read after ``steps`` updates.
    """
    if steps < 1:
        raise ValueError(f"train: steps must be at least 1, got {steps}")
    run = _Run(proc)
    total = max(1, steps + proc.extra_updates)
    before_last: dict[str, Number] = {}
    first = 0.0
    counter: Iterable[int] = range(total)
    for n in progress(counter) if progress is not None else counter:
        before_last, _ = run.step()
        if n == 0:
            after = run.forward()
            first = float((before_last if proc.error_before_last_update else after)["E_total"])
    final = before_last if proc.error_before_last_update else run.forward()
    k1, ke, ko1, ko2 = training_keys(steps)
    return {
        k1: first,
        ke: float(final["E_total"]),
        ko1: float(final["out_o1"]),
        ko2: float(final["out_o2"]),
    }


# -- finding the cause of a published figure ------------------------------------


class Evaluator:
    """The figures each procedure gives, each procedure computed once.

    Calling it gives the worked step's figures (cheap); :meth:`with_training`
    adds the after-training figures (10,000 updates per procedure).

    Args:
        steps: the number of updates behind the after-training figures.
    """

    def __init__(self, steps: int = TRAINING_STEPS) -> None:
        self.steps = steps
        self._worked: dict[Procedure, dict[str, float]] = {}
        self._trained: dict[Procedure, dict[str, float]] = {}

    def __call__(self, proc: Procedure) -> dict[str, float]:
        if proc not in self._worked:
            self._worked[proc] = worked_step(proc)
        return self._worked[proc]

    def with_training(self, proc: Procedure) -> dict[str, float]:
        if proc not in self._trained:
            self._trained[proc] = train(proc, self.steps)
        return {**self(proc), **self._trained[proc]}


@dataclass
class Finding:
    """What reproduces a group of published figures that the stated procedure misses.

    Attributes:
        figures: the published figures the stated procedure does not reproduce.
        procedure: the variant that reproduces every one of them to its printed
            digits (None if no variant tried does).
        values: each of ``figures`` under ``procedure``.
        disturbs: published figures that the stated procedure reproduces but
            ``procedure`` would not: evidence that the reference used the
            stated procedure for those.
        alternatives: other variants that also reproduce ``figures`` (each
            disturbing at least as many other figures).
        tried: how many variants were computed.
        note: a computed fact that decided how the figures were grouped (see
            :func:`group_by_forward_pass`), or None.
        edition: which edition's figures these are (``"both"`` if shared).
    """

    figures: list[str]
    procedure: Procedure | None
    values: dict[str, float] = field(default_factory=dict)
    disturbs: list[str] = field(default_factory=list)
    alternatives: list[Procedure] = field(default_factory=list)
    tried: int = 0
    note: str | None = None
    edition: str = "both"

    @property
    def explained(self) -> bool:
        """Whether a variant reproduces every figure of the group."""
        return self.procedure is not None

    def statement(self) -> str:
        """The cause in one line, from what was computed."""
        figs = ", ".join(self.figures)
        if self.procedure is None:
            return (
                f"{figs}: not reproduced by the stated procedure, nor by any of the "
                f"{self.tried} variants tried"
            )
        which = "only" if not self.alternatives else "best"
        line = (
            f"{figs}: reproduced to every published digit, of {self.tried} procedure variants "
            f"tried, {which} with {self.procedure.describe()}"
        )
        if self.alternatives:
            others = "; ".join(p.describe() for p in self.alternatives)
            line += f" (also reproduced by: {others})"
        if self.disturbs:
            line += (
                f"; that change would also move {', '.join(self.disturbs)}, which the "
                "reference gives as the stated procedure does"
            )
        return line

    def short_statement(self) -> str:
        """The cause in a few words, without the lists :meth:`statement` gives."""
        if self.procedure is None:
            return f"none of the {self.tried} procedure variants tried reproduces it"
        which = "only" if not self.alternatives else "first"
        line = f"the {which} one of {self.tried} variants tried that reproduces it: "
        line += self.procedure.describe()
        if self.alternatives:
            line += " (also: " + "; ".join(p.describe() for p in self.alternatives) + ")"
        return line


def error_of(out_o1: float, out_o2: float) -> float:
    """``E_total`` of two outputs against the reference's targets."""
    return 0.5 * (TARGETS["o1"] - out_o1) ** 2 + 0.5 * (TARGETS["o2"] - out_o2) ** 2


def group_by_forward_pass(
    affected: Sequence[str], published: Mapping[str, str], steps: int = TRAINING_STEPS
) -> tuple[list[list[str]], str | None]:
    """Split the after-training figures that cannot come from one forward pass.

    ``E_total`` is a function of the two outputs, so a published ``E_total``
    and published outputs read from the same forward pass must satisfy
    ``E_total = 1/2 (t1 - out_o1)^2 + 1/2 (t2 - out_o2)^2`` within their
    rounding.  Every procedure variant reads all three from one pass, so when
    the published figures break that identity no variant can reproduce them
    together: the error is then searched for apart from the outputs.

    Returns the groups and, when it split them, the computed reason.
    """
    e_key, o1_key, o2_key = (
        f"E_total_after_{steps}",
        f"out_o1_after_{steps}",
        f"out_o2_after_{steps}",
    )
    if not {e_key, o1_key, o2_key} <= set(published) or e_key not in affected:
        return [list(affected)], None
    o1, o2 = float(published[o1_key]), float(published[o2_key])
    implied = error_of(o1, o2)
    # How far the rounding of the two outputs can move the implied error.
    spread = abs(o1 - TARGETS["o1"]) * tolerance(published[o1_key]) + abs(
        TARGETS["o2"] - o2
    ) * tolerance(published[o2_key])
    if abs(implied - float(published[e_key])) <= tolerance(published[e_key]) + spread:
        return [list(affected)], None
    rest = [k for k in affected if k != e_key]
    note = (
        f"{e_key} = {published[e_key]} is not the error of the published outputs, "
        f"{implied:.10f} (+-{spread:.0e}): it comes from another forward pass"
    )
    return [g for g in (rest, [e_key]) if g], note


def _combinations(candidates: Sequence[Procedure], size: int) -> list[Procedure]:
    """Procedures that make ``size`` of the candidates' changes at once."""
    if size == 1:
        return list(candidates)
    out = []
    for group in itertools.combinations(candidates, size):
        changed = [_changed_fields(p) for p in group]
        if any(a & b for a, b in itertools.combinations(changed, 2)):
            continue  # two values for the same setting
        merged = STATED
        for p in group:
            merged = replace(merged, **{k: getattr(p, k) for k in _changed_fields(p)})
        out.append(merged)
    return out


def _changed_fields(p: Procedure) -> set[str]:
    return {f.name for f in fields(p) if getattr(p, f.name) != getattr(STATED, f.name)}


def find_cause(
    affected: Sequence[str],
    published: Mapping[str, str],
    evaluate: Callable[[Procedure], Mapping[str, float]],
    candidates: Sequence[Procedure] = CANDIDATES,
    max_changes: int = 2,
) -> Finding:
    """Search the procedure variants for one that reproduces ``affected``.

    Args:
        affected: keys of published figures the stated procedure misses.
        published: every published figure ``evaluate`` can compute, as text.
        evaluate: the figures a procedure gives (e.g. an :class:`Evaluator`).
        candidates: the single changes to try; pairs of them are tried only if
            no single change reproduces every affected figure.
        max_changes: the most changes combined.

    A variant is accepted only if it reproduces *every* affected figure to its
    published digits.  Among accepted ones, the variant that moves the fewest
    other published figures off their digits is chosen.
    """
    stated = evaluate(STATED)
    fine = [k for k in published if k not in affected and agrees(stated[k], published[k])]
    tried = 0
    for size in range(1, max_changes + 1):
        accepted: list[tuple[int, int, Procedure, list[str]]] = []
        for n, proc in enumerate(_combinations(candidates, size)):
            figures = evaluate(proc)
            tried += 1
            if all(agrees(figures[k], published[k]) for k in affected):
                moved = [k for k in fine if not agrees(figures[k], published[k])]
                accepted.append((len(moved), n, proc, moved))
        if accepted:
            accepted.sort(key=lambda a: (a[0], a[1]))
            _, _, best, moved = accepted[0]
            return Finding(
                figures=list(affected),
                procedure=best,
                values={k: evaluate(best)[k] for k in affected},
                disturbs=moved,
                alternatives=[a[2] for a in accepted[1:]],
                tried=tried,
            )
    return Finding(figures=list(affected), procedure=None, tried=tried)
