"""The 2-2-2 network built three ways on the autodiff engine, and trained.

* :func:`build_values`: one :class:`~chainrule.Value` per number, each named
  as the reference names it (``w1``, ``net_h1``, ``out_o1``, ``E_total``), so
  explanations and pictures read like the derivation.
* :func:`build_tensors`: the same network with weight matrices,
  ``out_h = sigmoid(W_hidden @ x + b1)`` and ``out_o = sigmoid(W_output @ out_h + b2)``.
* :func:`build_modules`: ``nn.Linear`` and ``nn.Sigmoid`` layers in an
  ``nn.Sequential``, with the squared-error loss carrying the factor one half.

Each build returns a dict of its named nodes; :func:`summary` reduces any of
them to the same plain numbers (outputs, total error, eight weight gradients)
so the three can be compared.

>>> from chainrule.tutorial.network import build_values
>>> net = build_values()
>>> net["E_total"].backward()
>>> round(net["w5"].grad, 9)
0.082167041
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ..tensor import Tensor
from ..value import Value
from .reference import (
    BIASES,
    INPUTS,
    LEARNING_RATE,
    TARGETS,
    TRAINING_STEPS,
    WEIGHT_NAMES,
    WEIGHTS,
)

#: Named quantities of the forward pass, in the order they are computed.
FORWARD_NAMES = (
    "net_h1",
    "net_h2",
    "out_h1",
    "out_h2",
    "net_o1",
    "net_o2",
    "out_o1",
    "out_o2",
    "E_o1",
    "E_o2",
    "E_total",
)

#: The same weights as positions in the Tensor build's matrices (row = neuron).
MATRIX_POSITION: dict[str, tuple[str, int, int]] = {
    "w1": ("W_hidden", 0, 0),
    "w2": ("W_hidden", 0, 1),
    "w3": ("W_hidden", 1, 0),
    "w4": ("W_hidden", 1, 1),
    "w5": ("W_output", 0, 0),
    "w6": ("W_output", 0, 1),
    "w7": ("W_output", 1, 0),
    "w8": ("W_output", 1, 1),
}


def build_values(
    weights: Mapping[str, float] | None = None,
    biases: Mapping[str, float] | None = None,
    pin: Mapping[str, Value] | None = None,
) -> dict[str, Value]:
    """The network from scalar Values, every node named as in the reference.

    Args:
        weights: ``w1..w8`` (default: the starting weights).
        biases: ``b1, b2`` (default: the reference's).  They are leaves that
            require grad, so they appear in explanations and pictures, but
            the tutorial's training leaves them where they are.
        pin: named quantities to replace by the given Values instead of
            computing them, e.g. ``{"out_h1": x}`` makes everything downstream
            of ``out_h1`` a function of ``x``.  Finite differences use it to
            take the derivative of one named quantity with respect to another.

    Returns:
        ``{"i1", "i2", "w1".."w8", "b1", "b2", "net_h1", ..., "E_total"}``.
    """
    w = WEIGHTS if weights is None else weights
    b = BIASES if biases is None else biases
    pins = pin or {}
    v: dict[str, Value] = {}

    def named(key: str, node: Value) -> Value:
        out = pins.get(key, node)
        out.name = key
        v[key] = out
        return out

    i1 = named("i1", Value(INPUTS["i1"], requires_grad=False))
    i2 = named("i2", Value(INPUTS["i2"], requires_grad=False))
    w1, w2, w3, w4, w5, w6, w7, w8 = (named(k, Value(w[k])) for k in WEIGHT_NAMES)
    b1 = named("b1", Value(b["b1"]))
    b2 = named("b2", Value(b["b2"]))

    net_h1 = named("net_h1", w1 * i1 + w2 * i2 + b1)
    net_h2 = named("net_h2", w3 * i1 + w4 * i2 + b1)
    out_h1 = named("out_h1", net_h1.sigmoid())
    out_h2 = named("out_h2", net_h2.sigmoid())
    net_o1 = named("net_o1", w5 * out_h1 + w6 * out_h2 + b2)
    net_o2 = named("net_o2", w7 * out_h1 + w8 * out_h2 + b2)
    out_o1 = named("out_o1", net_o1.sigmoid())
    out_o2 = named("out_o2", net_o2.sigmoid())
    e_o1 = named("E_o1", 0.5 * (TARGETS["o1"] - out_o1) ** 2)
    e_o2 = named("E_o2", 0.5 * (TARGETS["o2"] - out_o2) ** 2)
    named("E_total", e_o1 + e_o2)
    return v


def build_tensors(
    weights: Mapping[str, float] | None = None,
    biases: Mapping[str, float] | None = None,
) -> dict[str, Tensor]:
    """The network from Tensors: two weight matrices, one shared bias per layer.

    Row k of a weight matrix holds the weights into neuron k, so
    ``W_hidden = [[w1, w2], [w3, w4]]`` and ``W_output = [[w5, w6], [w7, w8]]``.
    Each bias is a scalar Tensor added to both neurons of its layer, so its
    gradient is the sum over the two (broadcasting does that).
    """
    w = WEIGHTS if weights is None else weights
    b = BIASES if biases is None else biases
    x = Tensor([INPUTS["i1"], INPUTS["i2"]], name="x")
    w_hidden = Tensor([[w["w1"], w["w2"]], [w["w3"], w["w4"]]], requires_grad=True, name="W_hidden")
    w_output = Tensor([[w["w5"], w["w6"]], [w["w7"], w["w8"]]], requires_grad=True, name="W_output")
    b1 = Tensor(b["b1"], requires_grad=True, name="b1")
    b2 = Tensor(b["b2"], requires_grad=True, name="b2")
    target = Tensor([TARGETS["o1"], TARGETS["o2"]], name="target")

    t: dict[str, Tensor] = {
        "x": x,
        "W_hidden": w_hidden,
        "W_output": w_output,
        "b1": b1,
        "b2": b2,
        "target": target,
    }
    t["net_h"] = w_hidden @ x + b1
    t["out_h"] = t["net_h"].sigmoid()
    t["net_o"] = w_output @ t["out_h"] + b2
    t["out_o"] = t["net_o"].sigmoid()
    t["E"] = 0.5 * (target - t["out_o"]) ** 2
    t["E_total"] = t["E"].sum()
    for k, node in t.items():
        node.name = k
    return t


def build_modules(
    weights: Mapping[str, float] | None = None,
    biases: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The network from ``nn`` layers: Linear, Sigmoid, Linear, Sigmoid.

    ``nn.Linear(2, 2)`` keeps its weight as (out_features, in_features), the
    same layout as :func:`build_tensors`.  A Linear layer has one bias per
    neuron; setting both to the shared bias gives the same forward pass (the
    tutorial never updates biases, so their separate gradients do not matter).
    The loss is ``1/2 * sum (out - target)^2``, the reference's E_total.

    Returns:
        ``{"model", "x", "target", "out_o", "E_total", "W_hidden", "W_output"}``.
    """
    from .. import nn, no_grad
    from ..nn import functional as F

    w = WEIGHTS if weights is None else weights
    b = BIASES if biases is None else biases
    model = nn.Sequential(nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 2), nn.Sigmoid())
    hidden, output = model[0], model[2]
    with no_grad():
        hidden.weight.data[...] = [[w["w1"], w["w2"]], [w["w3"], w["w4"]]]
        hidden.bias.data[...] = b["b1"]
        output.weight.data[...] = [[w["w5"], w["w6"]], [w["w7"], w["w8"]]]
        output.bias.data[...] = b["b2"]
    x = Tensor([INPUTS["i1"], INPUTS["i2"]], name="x")
    target = Tensor([TARGETS["o1"], TARGETS["o2"]], name="target")
    out_o = model(x)
    e_total = 0.5 * F.mse_loss(out_o, target, reduction="sum")
    e_total.name = "E_total"
    return {
        "model": model,
        "x": x,
        "target": target,
        "out_o": out_o,
        "E_total": e_total,
        "W_hidden": hidden.weight,
        "W_output": output.weight,
    }


def summary(net: Mapping[str, Any]) -> dict[str, float]:
    """Backpropagate ``E_total`` of any build and read the comparable numbers.

    Returns ``out_o1``, ``out_o2``, ``E_total`` and ``dE_total/dw1..8`` as floats.
    Works on the dict of :func:`build_values`, :func:`build_tensors` or
    :func:`build_modules`, which must not have been backpropagated yet.
    """
    e_total = net["E_total"]
    e_total.backward()
    out: dict[str, float] = {"E_total": float(e_total.item())}
    if "W_hidden" in net:  # a matrix build
        out_o = np.asarray(net["out_o"].data)
        out["out_o1"], out["out_o2"] = float(out_o[0]), float(out_o[1])
        for k, (matrix, r, c) in MATRIX_POSITION.items():
            out[f"dE_total/d{k}"] = float(net[matrix].grad[r, c])
    else:
        out["out_o1"], out["out_o2"] = net["out_o1"].data, net["out_o2"].data
        for k in WEIGHT_NAMES:
            out[f"dE_total/d{k}"] = float(net[k].grad)
    return out


def compare_builds() -> dict[str, Any]:
    """Build the network three ways and measure how far apart their numbers are.

    Returns a dict with each build's :func:`summary` and ``max_difference``,
    the largest absolute difference between any two builds over all numbers.
    """
    builds: dict[str, Callable[[], Mapping[str, Any]]] = {
        "Value": build_values,
        "Tensor": build_tensors,
        "nn": build_modules,
    }
    numbers = {name: summary(make()) for name, make in builds.items()}
    names = list(numbers)
    worst = 0.0
    for a in range(len(names)):
        for c in range(a + 1, len(names)):
            x, y = numbers[names[a]], numbers[names[c]]
            worst = max(worst, max(abs(x[k] - y[k]) for k in x))
    return {"builds": numbers, "max_difference": worst}


def train_values(
    steps: int = TRAINING_STEPS,
    lr: float = LEARNING_RATE,
    progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
) -> dict[str, float]:
    """Gradient descent on the Value build, biases frozen, as the reference states.

    Each update builds the graph afresh at the current weights, backpropagates
    ``E_total`` once, and moves all eight weights together by ``-lr * grad``.

    Returns:
        ``E_total_after_1``, ``E_total_after_<steps>``, ``out_o1_after_<steps>``
        and ``out_o2_after_<steps>``.
    """
    if steps < 1:
        raise ValueError(f"train_values: steps must be at least 1, got {steps}")
    weights = dict(WEIGHTS)
    first = 0.0
    counter: Iterable[int] = range(steps)
    for n in progress(counter) if progress is not None else counter:
        net = build_values(weights)
        net["E_total"].backward()
        weights = {k: weights[k] - lr * net[k].grad for k in WEIGHT_NAMES}
        if n == 0:
            first = build_values(weights)["E_total"].data
    final = build_values(weights)
    return {
        "E_total_after_1": first,
        f"E_total_after_{steps}": final["E_total"].data,
        f"out_o1_after_{steps}": final["out_o1"].data,
        f"out_o2_after_{steps}": final["out_o2"].data,
    }
