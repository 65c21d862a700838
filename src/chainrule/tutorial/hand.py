"""The 2-2-2 example derived by hand: the chain rule written out, no autodiff.

The tutorial prints the derivation that :func:`chainrule.derive` writes
from the graph; this module is the check on it that owes nothing to the
graph (the "delta rule" column of ``--verbose``).  It knows nothing about
graphs: every derivative below is a formula for this one network, written
in the order a student derives it (``docs/derivation.md`` sets the maths
beside derive's lines).

Notation: ``out = logistic(net)`` for each neuron, and

    E_total = 1/2 (target_o1 - out_o1)^2 + 1/2 (target_o2 - out_o2)^2.

The three local derivatives used again and again:

* d(1/2 (t - out)^2)/d out = out - t,
* d logistic(net)/d net = out (1 - out),
* d(w a + ...)/d w = a  (the input the weight multiplies).

The functions work on Python floats and, unchanged, on numpy scalars such as
``numpy.float32`` (the procedure variants use that to try lower precision).

>>> from chainrule.tutorial import hand
>>> f = hand.forward(hand.start_weights())
>>> round(f["E_total"], 9)
0.298371109
>>> g = hand.backward(f, hand.start_weights())
>>> round(g["dE_total/dw5"], 9), round(g["dE_total/dw1"], 9)
(0.082167041, 0.000438568)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .reference import BIASES, INPUTS, LEARNING_RATE, TARGETS, WEIGHTS

Number = Any  # a Python float or a numpy floating scalar


def start_weights() -> dict[str, float]:
    """The eight starting weights, ``{"w1": 0.15, ..., "w8": 0.55}`` (a fresh dict)."""
    return dict(WEIGHTS)


def logistic(net: Number) -> Number:
    """``1 / (1 + e^-net)``; numpy scalars keep their own precision."""
    if isinstance(net, float):
        return 1.0 / (1.0 + math.exp(-net))
    return 1 / (1 + np.exp(-net))


def forward(
    w: dict[str, Number],
    b: dict[str, Number] | None = None,
    i: dict[str, Number] | None = None,
    t: dict[str, Number] | None = None,
    record: dict[str, Number] | None = None,
) -> dict[str, Number]:
    """The forward pass: every named quantity from the inputs to ``E_total``.

    Args:
        w: the weights ``w1..w8``.
        b: the biases ``b1, b2`` (default: the reference's).
        i: the inputs ``i1, i2`` (default: the reference's).
        t: the targets ``o1, o2`` (default: the reference's).
        record: the dict to write the figures into (default: a new one).  Each
            figure is read back from it, so a dict that rounds what is written
            models a calculation done on paper.
    """
    b = BIASES if b is None else b
    i = INPUTS if i is None else i
    t = TARGETS if t is None else t
    f: dict[str, Number] = {} if record is None else record
    # Hidden layer: both neurons share the bias b1.
    f["net_h1"] = w["w1"] * i["i1"] + w["w2"] * i["i2"] + b["b1"]
    f["net_h2"] = w["w3"] * i["i1"] + w["w4"] * i["i2"] + b["b1"]
    f["out_h1"] = logistic(f["net_h1"])
    f["out_h2"] = logistic(f["net_h2"])
    # Output layer: both neurons share the bias b2.
    f["net_o1"] = w["w5"] * f["out_h1"] + w["w6"] * f["out_h2"] + b["b2"]
    f["net_o2"] = w["w7"] * f["out_h1"] + w["w8"] * f["out_h2"] + b["b2"]
    f["out_o1"] = logistic(f["net_o1"])
    f["out_o2"] = logistic(f["net_o2"])
    # Squared error with the factor one half, so its derivative has no 2 in it.
    f["E_o1"] = 0.5 * (t["o1"] - f["out_o1"]) ** 2
    f["E_o2"] = 0.5 * (t["o2"] - f["out_o2"]) ** 2
    f["E_total"] = f["E_o1"] + f["E_o2"]
    return f


def backward(
    f: dict[str, Number],
    w: dict[str, Number],
    i: dict[str, Number] | None = None,
    t: dict[str, Number] | None = None,
    record: dict[str, Number] | None = None,
) -> dict[str, Number]:
    """The backward pass by the chain rule: every factor and all eight gradients.

    Args:
        f: the forward pass (from :func:`forward`).
        w: the weights the hidden-layer formulas multiply by (``w5..w8``); the
            stated procedure passes the same weights the forward pass used.
        i: the inputs (default: the reference's).
        t: the targets (default: the reference's).
        record: the dict to write the figures into, as in :func:`forward`.

    Returns:
        A dict keyed as the reference names its figures (``"dE_total/dout_o1"``,
        ``"dE_total/dw5"``, ...) plus ``"delta_o1"`` and friends, the
        "error signals" ``dE_total/dnet`` of each neuron.
    """
    i = INPUTS if i is None else i
    t = TARGETS if t is None else t
    d: dict[str, Number] = {} if record is None else record

    # Output layer, w5: E_total -> out_o1 -> net_o1 -> w5, a single path.
    d["dE_total/dout_o1"] = f["out_o1"] - t["o1"]
    d["dout_o1/dnet_o1"] = f["out_o1"] * (1 - f["out_o1"])
    d["dnet_o1/dw5"] = f["out_h1"]
    d["dE_total/dw5"] = d["dE_total/dout_o1"] * d["dout_o1/dnet_o1"] * d["dnet_o1/dw5"]

    # The first two factors are the same for every weight into o1, so name
    # their product: delta_o1 = dE_total/dnet_o1.  Likewise for o2.
    d["delta_o1"] = d["dE_total/dout_o1"] * d["dout_o1/dnet_o1"]
    d["delta_o2"] = (f["out_o2"] - t["o2"]) * f["out_o2"] * (1 - f["out_o2"])
    d["dE_total/dw6"] = d["delta_o1"] * f["out_h2"]
    d["dE_total/dw7"] = d["delta_o2"] * f["out_h1"]
    d["dE_total/dw8"] = d["delta_o2"] * f["out_h2"]

    # Hidden layer, w1: out_h1 feeds both o1 (through w5) and o2 (through w7),
    # so E_total depends on it along two paths, and the chain rule adds them.
    d["dE_o1/dout_h1"] = d["delta_o1"] * w["w5"]
    d["dE_o2/dout_h1"] = d["delta_o2"] * w["w7"]
    d["dE_total/dout_h1"] = d["dE_o1/dout_h1"] + d["dE_o2/dout_h1"]
    d["dout_h1/dnet_h1"] = f["out_h1"] * (1 - f["out_h1"])
    d["dnet_h1/dw1"] = i["i1"]
    d["dE_total/dw1"] = d["dE_total/dout_h1"] * d["dout_h1/dnet_h1"] * d["dnet_h1/dw1"]

    d["delta_h1"] = d["dE_total/dout_h1"] * d["dout_h1/dnet_h1"]
    d["delta_h2"] = (d["delta_o1"] * w["w6"] + d["delta_o2"] * w["w8"]) * (
        f["out_h2"] * (1 - f["out_h2"])
    )
    d["dE_total/dw2"] = d["delta_h1"] * i["i2"]
    d["dE_total/dw3"] = d["delta_h2"] * i["i1"]
    d["dE_total/dw4"] = d["delta_h2"] * i["i2"]
    return d


def gradients(d: dict[str, Number]) -> dict[str, Number]:
    """The eight weight gradients of a :func:`backward` result, keyed ``w1..w8``."""
    return {f"w{k}": d[f"dE_total/dw{k}"] for k in range(1, 9)}


def update(
    w: dict[str, Number], grads: dict[str, Number], lr: Number = LEARNING_RATE
) -> dict[str, Number]:
    """One gradient-descent step, ``w+ = w - lr * dE_total/dw``, for every weight in ``grads``.

    Weights missing from ``grads`` are copied unchanged.
    """
    return {k: (v - lr * grads[k]) if k in grads else v for k, v in w.items()}


def worked_example() -> dict[str, float]:
    """Every figure of the reference's forward and backward pass, by hand.

    One forward pass at the starting weights, all gradients from it, then
    all eight weights updated at once (biases left alone).  Keys as in the
    reference: ``net_h1 ... E_total``, the chain-rule factors, the eight
    gradients ``dE_total/dw1..8`` and the new weights ``w1+ .. w8+``.
    """
    w = start_weights()
    f = forward(w)
    d = backward(f, w)
    new = update(w, gradients(d))
    figures: dict[str, float] = {k: float(v) for k, v in f.items()}
    figures.update({k: float(v) for k, v in d.items()})
    figures.update({f"{k}+": float(v) for k, v in new.items()})
    return figures
