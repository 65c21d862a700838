"""The published figures of the 2-2-2 worked example, as data.

The example is Matt Mazur's blog post "A Step by Step Backpropagation Example"
(2015); :data:`CREDIT` names it wherever the tutorial shows its figures.

The network (inputs, targets, starting weights, biases, learning rate) and every
figure the example publishes live here, number for number, so the tutorial
needs nothing outside the package.  A figure is kept as the *text* it was
published with: the number of decimals printed is part of the fact, because it
says how far a reproduction may be from it (see :func:`agrees`).

>>> from chainrule.tutorial.reference import PUBLISHED, agrees
>>> PUBLISHED["w5+"].text, PUBLISHED["w5+"].decimals
('0.35891648', 8)
>>> agrees(0.358916480, "0.35891648"), agrees(0.3589166, "0.35891648")
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass

#: The worked example's source, named wherever its figures are shown.
CREDIT = 'Matt Mazur, "A Step by Step Backpropagation Example" (2015)'

#: Inputs of the single training example.
INPUTS: dict[str, float] = {"i1": 0.05, "i2": 0.10}
#: Targets of the two output neurons.
TARGETS: dict[str, float] = {"o1": 0.01, "o2": 0.99}
#: Starting weights: w1..w4 feed the hidden layer, w5..w8 the output layer.
WEIGHTS: dict[str, float] = {
    "w1": 0.15,
    "w2": 0.20,
    "w3": 0.25,
    "w4": 0.30,
    "w5": 0.40,
    "w6": 0.45,
    "w7": 0.50,
    "w8": 0.55,
}
#: One bias shared by both hidden neurons (b1) and one shared by both outputs (b2).
BIASES: dict[str, float] = {"b1": 0.35, "b2": 0.60}
#: Learning rate of the gradient-descent update.
LEARNING_RATE = 0.5
#: Number of updates behind the published after-training figures.
TRAINING_STEPS = 10_000

#: Weight names in order, and which layer each belongs to.
WEIGHT_NAMES: tuple[str, ...] = tuple(WEIGHTS)
HIDDEN_WEIGHTS: tuple[str, ...] = ("w1", "w2", "w3", "w4")
OUTPUT_WEIGHTS: tuple[str, ...] = ("w5", "w6", "w7", "w8")


@dataclass(frozen=True)
class Figure:
    """One published figure.

    Attributes:
        key: its name, as the reference writes it (``"dE_total/dw5"``, ``"w5+"``).
        text: the number exactly as published.
        section: ``"forward"``, ``"output"``, ``"hidden"`` or ``"training"``.
        label: a short description for tables.
    """

    key: str
    text: str
    section: str
    label: str = ""

    @property
    def value(self) -> float:
        """The published number."""
        return float(self.text)

    @property
    def decimals(self) -> int:
        """How many decimal places were published."""
        return decimals(self.text)


def decimals(text: str) -> int:
    """Decimal places in a published number: ``"0.3775"`` has 4.

    >>> decimals("0.000035085"), decimals("0.05"), decimals("2")
    (9, 2, 0)
    """
    mantissa = text.strip().lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


#: Allowance on top of half a unit in the last place, for float64 rounding error.
HAIR = 1e-12


def tolerance(text: str) -> float:
    """How far a computed number may be from ``text`` and still round to it."""
    return 0.5 * 10.0 ** -decimals(text) + HAIR


def agrees(value: float, text: str) -> bool:
    """Whether ``value``, rounded as ``text`` was, gives ``text``.

    A figure published with d decimals stands for every number within half a
    unit of its last digit, so the test is ``|value - published| <= 0.5 * 10^-d``
    (plus :data:`HAIR` for float error).  The comparison is never loosened.
    """
    return abs(value - float(text)) <= tolerance(text)


def _figures(section: str, rows: list[tuple[str, str, str]]) -> list[Figure]:
    return [Figure(key, text, section, label) for key, text, label in rows]


_ALL: list[Figure] = (
    _figures(
        "forward",
        [
            ("net_h1", "0.3775", "net input of hidden neuron h1"),
            ("out_h1", "0.593269992", "output of h1"),
            ("out_h2", "0.596884378", "output of h2"),
            ("net_o1", "1.105905967", "net input of output neuron o1"),
            ("out_o1", "0.75136507", "output of o1"),
            ("out_o2", "0.772928465", "output of o2"),
            ("E_o1", "0.274811083", "error of o1"),
            ("E_o2", "0.023560026", "error of o2"),
            ("E_total", "0.298371109", "total error"),
        ],
    )
    + _figures(
        "output",
        [
            ("dE_total/dout_o1", "0.74136507", "how E_total changes with out_o1"),
            ("dout_o1/dnet_o1", "0.186815602", "slope of the logistic at o1"),
            ("dnet_o1/dw5", "0.593269992", "how net_o1 changes with w5"),
            ("dE_total/dw5", "0.082167041", "gradient of w5"),
            ("w5+", "0.35891648", "w5 after one update"),
            ("w6+", "0.408666186", "w6 after one update"),
            ("w7+", "0.511301270", "w7 after one update"),
            ("w8+", "0.561370121", "w8 after one update"),
        ],
    )
    + _figures(
        "hidden",
        [
            ("dE_o1/dout_h1", "0.055399425", "path through o1"),
            ("dE_o2/dout_h1", "-0.019049119", "path through o2"),
            ("dE_total/dout_h1", "0.036350306", "both paths summed"),
            ("dout_h1/dnet_h1", "0.241300709", "slope of the logistic at h1"),
            ("dnet_h1/dw1", "0.05", "how net_h1 changes with w1"),
            ("dE_total/dw1", "0.000438568", "gradient of w1"),
            ("w1+", "0.149780716", "w1 after one update"),
            ("w2+", "0.19956143", "w2 after one update"),
            ("w3+", "0.24975114", "w3 after one update"),
            ("w4+", "0.29950229", "w4 after one update"),
        ],
    )
    + _figures(
        "training",
        [
            ("E_total_after_1", "0.291027924", "E_total after the first update"),
            ("E_total_after_10000", "0.000035085", "E_total after 10,000 updates"),
            ("out_o1_after_10000", "0.015912196", "out_o1 after 10,000 updates"),
            ("out_o2_after_10000", "0.98406573", "out_o2 after 10,000 updates"),
        ],
    )
)

#: Every published figure by key, in the order the reference gives them.  These are
#: the figures of the translation the project started from (:data:`EDITIONS`).
PUBLISHED: dict[str, Figure] = {f.key: f for f in _ALL}

#: The two editions of the after-training figures: the translation (the figures of
#: :data:`PUBLISHED`) and the English original.  Both share every other figure.
EDITIONS: dict[str, str] = {
    "translation": "the Chinese translation",
    "original": "the English original",
}

#: The after-training figures as the English original prints them.  Two differ from
#: the translation's: ``E_total_after_10000`` has one more digit, and a different one,
#: and ``out_o2_after_10000`` one more decimal.
ORIGINAL: dict[str, Figure] = {
    f.key: f
    for f in _figures(
        "training",
        [
            ("E_total_after_1", "0.291027924", "E_total after the first update"),
            ("E_total_after_10000", "0.0000351085", "E_total after 10,000 updates"),
            ("out_o1_after_10000", "0.015912196", "out_o1 after 10,000 updates"),
            ("out_o2_after_10000", "0.984065734", "out_o2 after 10,000 updates"),
        ],
    )
}


def edition(name: str) -> dict[str, Figure]:
    """Every published figure of one edition (``"translation"`` or ``"original"``)."""
    if name not in EDITIONS:
        raise ValueError(f"edition: expected one of {sorted(EDITIONS)}, got {name!r}")
    if name == "translation":
        return dict(PUBLISHED)
    return {**{k: f for k, f in PUBLISHED.items() if f.section != "training"}, **ORIGINAL}


def section(name: str) -> list[Figure]:
    """The published figures of one section, in order."""
    return [f for f in PUBLISHED.values() if f.section == name]
