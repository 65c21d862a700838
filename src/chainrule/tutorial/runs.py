"""The worked example under changed settings, each computed with its own figures.

A :class:`Setup` changes what people most often ask about the published example
(Matt Mazur's "A Step by Step Backpropagation Example"):

* ``hidden``: the number of hidden neurons (2 in the example);
* ``update_biases``: move b1 and b2 down their gradients too (the example
  leaves them alone);
* ``order``: ``"stated"``, every gradient from the original weights, as the
  example describes its procedure; or ``"published"``, the output layer
  updated in place before the backward pass reaches the hidden layer, the
  order that reproduces the example's after-training figures (see
  :mod:`.variants`).

:func:`run` computes one setup three ways:

* by autodiff on a Tensor build of the network; the published order is the
  same build with the output weights changed in place between the backward
  pass of the output layer and that of the hidden layer, as a program that
  updates as it goes would do;
* by the delta rule written out in matrix form on numpy arrays (the hand
  derivation of :mod:`.hand`, for any number of hidden neurons);
* by central finite differences, for every number that is a gradient of
  E_total (all of them in the stated order; in the published order the
  hidden-layer numbers are not gradients of E_total at any point, and are
  checked against the delta rule only).

Initial weights for ``hidden = N``: the hidden weights, read in the example's
order (neuron by neuron, i1 then i2), are evenly spaced from 0.15 to 0.30; the
output weights (o1's from h1..hN, then o2's) evenly from 0.40 to 0.55; the
biases stay 0.35 and 0.60.  For N = 2 these are exactly the example's weights.
With N = 1 the two weights of each layer are its end points.

>>> from chainrule.tutorial.runs import Setup, initial_weights
>>> w_hidden, w_output = initial_weights(3)
>>> w_hidden.round(2).tolist()
[[0.15, 0.18], [0.21, 0.24], [0.27, 0.3]]
>>> Setup(hidden=2).is_published_example
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..gradcheck import numerical_jacobian
from ..tensor import Tensor
from .reference import BIASES, INPUTS, LEARNING_RATE, TARGETS, TRAINING_STEPS

#: The update orders a setup can use.
ORDERS = ("stated", "published")
#: The most hidden neurons a setup may have: the finite-difference check costs one
#: forward pass per weight, and the tables list every weight.
MAX_HIDDEN = 64
#: How closely autodiff and the delta rule must agree (two float64 computations).
SAME_TOL = 1e-12
#: How closely central differences must match autodiff.
FD_TOL = 1e-8
FD_EPS = 1e-5

Progress = Callable[[Iterable[int]], Iterable[int]]


@dataclass(frozen=True)
class Setup:
    """The settings of one run; the defaults are the published example."""

    hidden: int = 2
    update_biases: bool = False
    order: str = "stated"

    def __post_init__(self) -> None:
        if isinstance(self.hidden, bool) or not isinstance(self.hidden, int):
            raise TypeError(f"tutorial: hidden must be an int, got {type(self.hidden).__name__}")
        if not 1 <= self.hidden <= MAX_HIDDEN:
            raise ValueError(
                f"tutorial: hidden must be between 1 and {MAX_HIDDEN} neurons, got {self.hidden}"
            )
        if self.order not in ORDERS:
            raise ValueError(f"tutorial: order must be one of {ORDERS}, got {self.order!r}")

    @property
    def is_published_example(self) -> bool:
        return self == Setup()

    def describe(self) -> str:
        """The changes from the published example, in words."""
        parts = []
        if self.hidden != 2:
            parts.append(f"{self.hidden} hidden neuron{'s' if self.hidden != 1 else ''}")
        if self.update_biases:
            parts.append("biases b1 and b2 updated too")
        if self.order == "published":
            parts.append("output layer updated before the hidden layer's gradients")
        return ", ".join(parts) or "the published example"


def initial_weights(hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """The starting ``(W_hidden, W_output)``, shapes (hidden, 2) and (2, hidden).

    Row k of each matrix holds the weights into neuron k (see the module
    docstring for the spacing).
    """
    Setup(hidden=hidden)  # validates
    w_hidden = np.linspace(0.15, 0.30, 2 * hidden).reshape(hidden, 2)
    w_output = np.linspace(0.40, 0.55, 2 * hidden).reshape(2, hidden)
    return w_hidden, w_output


def weight_names(hidden: int) -> list[str]:
    """``w1, w2, ...`` in the example's order: hidden weights, then output weights."""
    return [f"w{k}" for k in range(1, 4 * hidden + 1)]


@dataclass
class Params:
    """The trainable numbers of one setup, as float64 arrays."""

    w_hidden: np.ndarray
    w_output: np.ndarray
    b1: float = BIASES["b1"]
    b2: float = BIASES["b2"]

    @classmethod
    def start(cls, hidden: int) -> Params:
        wh, wo = initial_weights(hidden)
        return cls(wh, wo)

    def flat(self) -> dict[str, float]:
        """Every weight by its name, then ``b1`` and ``b2``."""
        values = np.concatenate([self.w_hidden.ravel(), self.w_output.ravel()])
        out = {k: float(v) for k, v in zip(weight_names(self.w_hidden.shape[0]), values)}
        out.update(b1=float(self.b1), b2=float(self.b2))
        return out

    def copy(self) -> Params:
        return Params(self.w_hidden.copy(), self.w_output.copy(), self.b1, self.b2)


_X = np.array([INPUTS["i1"], INPUTS["i2"]])
_T = np.array([TARGETS["o1"], TARGETS["o2"]])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


# -- by the delta rule (numpy, no graph) -----------------------------------------


def forward_by_hand(p: Params) -> dict[str, Any]:
    """``out_h``, ``out_o`` and ``E_total`` on plain arrays."""
    out_h = _sigmoid(p.w_hidden @ _X + p.b1)
    out_o = _sigmoid(p.w_output @ out_h + p.b2)
    return {"out_h": out_h, "out_o": out_o, "E_total": float(0.5 * np.sum((_T - out_o) ** 2))}


def step_by_hand(
    setup: Setup, p: Params, lr: float = LEARNING_RATE
) -> tuple[Params, dict[str, Any]]:
    """One update by the delta rule; returns the new numbers and the gradients used.

    ``delta_o = (out_o - t) out_o (1 - out_o)``, ``dE/dW_output = delta_o out_hᵀ``;
    ``delta_h = (W_outputᵀ delta_o) out_h (1 - out_h)``, ``dE/dW_hidden = delta_h xᵀ``,
    where the published order puts the already updated ``W_output`` in ``delta_h``.
    A shared bias's gradient is the sum of its layer's deltas.
    """
    f = forward_by_hand(p)
    out_h, out_o = f["out_h"], f["out_o"]
    delta_o = (out_o - _T) * out_o * (1 - out_o)
    g_output = np.outer(delta_o, out_h)
    new_output = p.w_output - lr * g_output
    back_through = new_output if setup.order == "published" else p.w_output
    delta_h = (back_through.T @ delta_o) * out_h * (1 - out_h)
    g_hidden = np.outer(delta_h, _X)
    grads: dict[str, Any] = {"w_hidden": g_hidden, "w_output": g_output}
    grads["b1"], grads["b2"] = float(delta_h.sum()), float(delta_o.sum())
    new = Params(p.w_hidden - lr * g_hidden, new_output, p.b1, p.b2)
    if setup.update_biases:
        new.b1, new.b2 = p.b1 - lr * grads["b1"], p.b2 - lr * grads["b2"]
    return new, grads


# -- by autodiff (Tensor build) ---------------------------------------------------


def build(p: Params) -> dict[str, Tensor]:
    """The network of ``p`` as Tensors; ``E_total`` is the loss."""
    t: dict[str, Tensor] = {
        "W_hidden": Tensor(p.w_hidden.copy(), requires_grad=True, name="W_hidden"),
        "W_output": Tensor(p.w_output.copy(), requires_grad=True, name="W_output"),
        "b1": Tensor(float(p.b1), requires_grad=True, name="b1"),
        "b2": Tensor(float(p.b2), requires_grad=True, name="b2"),
    }
    x, target = Tensor(_X, name="x"), Tensor(_T, name="target")
    t["out_h"] = (t["W_hidden"] @ x + t["b1"]).sigmoid()
    t["out_o"] = (t["W_output"] @ t["out_h"] + t["b2"]).sigmoid()
    t["E_total"] = (0.5 * (target - t["out_o"]) ** 2).sum()
    return t


def step_by_autodiff(
    setup: Setup, p: Params, lr: float = LEARNING_RATE
) -> tuple[Params, dict[str, Any]]:
    """One update by autodiff; returns the new numbers and the gradients used.

    The stated order is one ``grad`` call for everything.  The published order
    asks for the output layer's gradients first, writes the new output weights
    into the graph's ``W_output`` in place, then asks for the hidden layer's:
    the backward pass through ``W_output @ out_h`` then reads the new weights.
    """
    from ..engine import grad

    t = build(p)
    if setup.order == "stated":
        g_wh, g_wo, g_b1, g_b2 = grad(
            t["E_total"], [t["W_hidden"], t["W_output"], t["b1"], t["b2"]]
        )
        new_output = p.w_output - lr * g_wo.data
    else:
        g_wo, g_b2 = grad(t["E_total"], [t["W_output"], t["b2"]])
        new_output = p.w_output - lr * g_wo.data
        t["W_output"].data[...] = new_output  # updated in place, as the graph is walked
        g_wh, g_b1 = grad(t["E_total"], [t["W_hidden"], t["b1"]])
    grads: dict[str, Any] = {
        "w_hidden": np.array(g_wh.data),
        "w_output": np.array(g_wo.data),
        "b1": float(g_b1.data),
        "b2": float(g_b2.data),
    }
    new = Params(p.w_hidden - lr * grads["w_hidden"], new_output, p.b1, p.b2)
    if setup.update_biases:
        new.b1, new.b2 = p.b1 - lr * grads["b1"], p.b2 - lr * grads["b2"]
    return new, grads


def finite_difference_gradients(p: Params) -> dict[str, Any]:
    """``dE_total`` with respect to every weight and bias, by central differences."""

    def loss(wh: Tensor, wo: Tensor, b1: Tensor, b2: Tensor) -> Tensor:
        q = Params(np.array(wh.data), np.array(wo.data), float(b1.data), float(b2.data))
        return build(q)["E_total"]

    leaves = [
        Tensor(p.w_hidden.copy(), requires_grad=True),
        Tensor(p.w_output.copy(), requires_grad=True),
        Tensor(float(p.b1), requires_grad=True),
        Tensor(float(p.b2), requires_grad=True),
    ]
    (row,) = numerical_jacobian(loss, leaves, eps=FD_EPS)  # one output, E_total
    g_wh, g_wo, g_b1, g_b2 = (j.reshape(np.shape(x.data)) for j, x in zip(row, leaves))
    return {"w_hidden": g_wh, "w_output": g_wo, "b1": float(g_b1), "b2": float(g_b2)}


def _flat_grads(g: dict[str, Any], hidden: int) -> dict[str, float]:
    values = np.concatenate([np.ravel(g["w_hidden"]), np.ravel(g["w_output"])])
    out = {k: float(v) for k, v in zip(weight_names(hidden), values)}
    out.update(b1=float(g["b1"]), b2=float(g["b2"]))
    return out


# -- one setup, computed --------------------------------------------------------


@dataclass
class StepRow:
    """One trainable number over the first update."""

    name: str
    start: float
    autodiff: float
    by_hand: float
    finite_differences: float | None
    new: float
    new_by_hand: float

    @property
    def ok(self) -> bool:
        same = abs(self.autodiff - self.by_hand) <= SAME_TOL * max(1.0, abs(self.autodiff))
        same = same and abs(self.new - self.new_by_hand) <= SAME_TOL * max(1.0, abs(self.new))
        fd = self.finite_differences
        return same and (fd is None or abs(fd - self.autodiff) <= FD_TOL)


@dataclass
class RunResults:
    """What :func:`run` computed for one setup."""

    setup: Setup
    steps: int
    e_total_start: float
    rows: list[StepRow]
    training: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def training_agrees(self) -> bool:
        a, h = self.training["autodiff"], self.training["by_hand"]
        return all(abs(a[k] - h[k]) <= 1e-10 * max(1.0, abs(a[k])) for k in a)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows) and self.training_agrees

    def data(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "setup": {
                "hidden": self.setup.hidden,
                "update_biases": self.setup.update_biases,
                "order": self.setup.order,
                "description": self.setup.describe(),
            },
            "E_total_start": self.e_total_start,
            "first_update": {
                r.name: {
                    "start": r.start,
                    "autodiff": r.autodiff,
                    "by_hand": r.by_hand,
                    "finite_differences": r.finite_differences,
                    "new": r.new,
                    "agrees": r.ok,
                }
                for r in self.rows
            },
            "training": self.training,
            "steps": self.steps,
            "ok": self.ok,
        }


def train(
    setup: Setup,
    steps: int = TRAINING_STEPS,
    by: str = "autodiff",
    progress: Progress | None = None,
) -> dict[str, float]:
    """The after-training figures of ``setup``, keyed as the example's.

    ``by`` is ``"autodiff"`` or ``"hand"`` (the delta rule on arrays).
    """
    if steps < 1:
        raise ValueError(f"train: steps must be at least 1, got {steps}")
    step = step_by_autodiff if by == "autodiff" else step_by_hand
    p = Params.start(setup.hidden)
    first = 0.0
    counter: Iterable[int] = range(steps)
    for n in progress(counter) if progress is not None else counter:
        p, _ = step(setup, p)
        if n == 0:
            first = forward_by_hand(p)["E_total"]
    final = forward_by_hand(p)
    return {
        "E_total_after_1": first,
        f"E_total_after_{steps}": final["E_total"],
        f"out_o1_after_{steps}": float(final["out_o"][0]),
        f"out_o2_after_{steps}": float(final["out_o"][1]),
    }


def first_update(setup: Setup) -> list[StepRow]:
    """Every weight (and bias) over the first update, three ways."""
    p = Params.start(setup.hidden)
    new_ad, g_ad = step_by_autodiff(setup, p)
    new_hand, g_hand = step_by_hand(setup, p)
    g_fd = _flat_grads(finite_difference_gradients(p), setup.hidden)
    ad, hd = _flat_grads(g_ad, setup.hidden), _flat_grads(g_hand, setup.hidden)
    start, new, new_hand_flat = p.flat(), new_ad.flat(), new_hand.flat()
    hidden_names = set(weight_names(setup.hidden)[: 2 * setup.hidden]) | {"b1"}
    rows = []
    for k in start:
        # In the published order the hidden layer's numbers are not gradients of E_total.
        not_a_gradient = setup.order == "published" and k in hidden_names
        rows.append(
            StepRow(
                k,
                start[k],
                ad[k],
                hd[k],
                None if not_a_gradient else g_fd[k],
                new[k],
                new_hand_flat[k],
            )
        )
    return rows


def run(setup: Setup, steps: int = TRAINING_STEPS, progress: Progress | None = None) -> RunResults:
    """``setup`` computed: the first update three ways, training two ways."""
    rows = first_update(setup)
    return RunResults(
        setup=setup,
        steps=steps,
        e_total_start=forward_by_hand(Params.start(setup.hidden))["E_total"],
        rows=rows,
        training={
            "autodiff": train(setup, steps, "autodiff", progress),
            "by_hand": train(setup, steps, "hand"),
        },
    )


#: The setups the default report sums up, one per option, with the option that runs each.
OVERVIEW: tuple[tuple[str, Setup], ...] = (
    ("(default)", Setup()),
    ("--order published", Setup(order="published")),
    ("--update-biases", Setup(update_biases=True)),
    ("--hidden 3", Setup(hidden=3)),
)


def overview(steps: int = TRAINING_STEPS) -> dict[str, dict[str, float]]:
    """The after-training figures of each setup of :data:`OVERVIEW`, by the delta rule.

    Keyed by the option that runs the setup in full (autodiff, delta rule and
    finite differences side by side).
    """
    return {option: train(setup, steps, "hand") for option, setup in OVERVIEW}
