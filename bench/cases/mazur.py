"""mazur: the 2-2-2 logistic network of the classic worked backpropagation example.

Inputs (0.05, 0.10), targets (0.01, 0.99), weights w1..w8 = 0.15 .. 0.55, the
two biases fixed at 0.35 and 0.60 (as in the worked example, only the weights
learn), squared error ``E = sum(0.5 * (target - out)^2)``, plain gradient
descent with learning rate 0.5.  Each engine runs ``steps`` steps and reports
the error of the last step, the gradient of that step and the final weights.

Two sub-cases: built from scalars (baseline: plain Python floats by hand;
chainrule.Value, micrograd) and built from 2x2 arrays (baseline: numpy by hand;
chainrule.Tensor, PyTorch, HIPS autograd).  All arithmetic is float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core import Case, Engine, Outcome, Run

X = (0.05, 0.10)
T = (0.01, 0.99)
W0 = (0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55)  # w1..w8
B1, B2 = 0.35, 0.60
LR = 0.5

STEPS = {"full": 10_000, "quick": 1_000, "tiny": 20}


def _outcome(loss: float, grads: Any, weights: Any) -> Outcome:
    return Outcome(
        float(loss),
        {
            "last gradient": np.asarray(grads, dtype=np.float64).reshape(8),
            "final weights": np.asarray(weights, dtype=np.float64).reshape(8),
        },
    )


# -- scalars -------------------------------------------------------------------


def hand_floats(steps: int) -> Run:
    """Forward and backward written out by hand with Python floats."""

    def run() -> Outcome:
        exp = math.exp
        i1, i2 = X
        t1, t2 = T
        w1, w2, w3, w4, w5, w6, w7, w8 = W0
        err = 0.0
        g = (0.0,) * 8
        for _ in range(steps):
            h1 = 1.0 / (1.0 + exp(-(w1 * i1 + w2 * i2 + B1)))
            h2 = 1.0 / (1.0 + exp(-(w3 * i1 + w4 * i2 + B1)))
            o1 = 1.0 / (1.0 + exp(-(w5 * h1 + w6 * h2 + B2)))
            o2 = 1.0 / (1.0 + exp(-(w7 * h1 + w8 * h2 + B2)))
            err = 0.5 * (t1 - o1) ** 2 + 0.5 * (t2 - o2) ** 2
            # dE/d(net input) of each output unit: (out - target) * s'(net)
            d1 = (o1 - t1) * o1 * (1.0 - o1)
            d2 = (o2 - t2) * o2 * (1.0 - o2)
            e1 = (d1 * w5 + d2 * w7) * h1 * (1.0 - h1)
            e2 = (d1 * w6 + d2 * w8) * h2 * (1.0 - h2)
            g = (e1 * i1, e1 * i2, e2 * i1, e2 * i2, d1 * h1, d1 * h2, d2 * h1, d2 * h2)
            w1 -= LR * g[0]
            w2 -= LR * g[1]
            w3 -= LR * g[2]
            w4 -= LR * g[3]
            w5 -= LR * g[4]
            w6 -= LR * g[5]
            w7 -= LR * g[6]
            w8 -= LR * g[7]
        return _outcome(err, g, (w1, w2, w3, w4, w5, w6, w7, w8))

    return run


def _scalar_network(w: list[Any], sigmoid: Any) -> Any:
    """E_total of the network built from scalar nodes ``w`` (any engine's Value type)."""
    i1, i2 = X
    t1, t2 = T
    h1 = sigmoid(w[0] * i1 + w[1] * i2 + B1)
    h2 = sigmoid(w[2] * i1 + w[3] * i2 + B1)
    o1 = sigmoid(w[4] * h1 + w[5] * h2 + B2)
    o2 = sigmoid(w[6] * h1 + w[7] * h2 + B2)
    return 0.5 * (t1 - o1) ** 2 + 0.5 * (t2 - o2) ** 2


def chainrule_value(steps: int) -> Run:
    import chainrule as cr

    def run() -> Outcome:
        w = [cr.Value(x) for x in W0]
        err = None
        for _ in range(steps):
            err = _scalar_network(w, lambda v: v.sigmoid())
            for p in w:
                p.grad = None
            err.backward()
            for p in w:
                p.data -= LR * p.grad
        assert err is not None
        return _outcome(err.data, [p.grad for p in w], [p.data for p in w])

    return run


def chainrule_compiled_floats(steps: int) -> Run:
    """One gradient-descent step as a compiled program (traced once per run, inside the timing)."""
    import chainrule as cr

    def step(w: tuple[Any, ...]) -> Any:
        err = _scalar_network(list(w), lambda v: v.sigmoid())
        grads = cr.grad(err, list(w))
        return err, grads, tuple(p - LR * g for p, g in zip(w, grads))

    def run() -> Outcome:
        compiled = cr.compile(step)
        w: Any = W0
        err, g = 0.0, W0
        for _ in range(steps):
            err, g, w = compiled(w)
        return _outcome(err, g, w)

    return run


def micrograd_run(steps: int) -> Run:
    from micrograd.engine import Value

    def sigmoid(v: Any) -> Any:
        # micrograd 0.1.0 has no sigmoid; this adds one the way its own ops are
        # built (a result node plus a closure that pushes the gradient back).
        s = 1.0 / (1.0 + math.exp(-v.data))
        out = Value(s, (v,), "sigmoid")

        def _backward() -> None:
            v.grad += s * (1.0 - s) * out.grad

        out._backward = _backward
        return out

    def run() -> Outcome:
        w = [Value(x) for x in W0]
        err = None
        for _ in range(steps):
            err = _scalar_network(w, sigmoid)
            for p in w:
                p.grad = 0.0
            err.backward()
            for p in w:
                p.data -= LR * p.grad
        assert err is not None
        return _outcome(err.data, [p.grad for p in w], [p.data for p in w])

    return run


# -- arrays --------------------------------------------------------------------


def _arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    w_hidden = np.array([[W0[0], W0[1]], [W0[2], W0[3]]])
    w_output = np.array([[W0[4], W0[5]], [W0[6], W0[7]]])
    return w_hidden, w_output, np.array(X), np.array(T)


def hand_numpy(steps: int) -> Run:
    """Forward and backward written out by hand with numpy arrays."""

    def run() -> Outcome:
        w_h, w_o, x, t = _arrays()
        err = 0.0
        g_h = g_o = w_h
        for _ in range(steps):
            h = 1.0 / (1.0 + np.exp(-(w_h @ x + B1)))
            o = 1.0 / (1.0 + np.exp(-(w_o @ h + B2)))
            err = 0.5 * np.sum((t - o) ** 2)
            d_o = (o - t) * o * (1.0 - o)
            g_o = np.outer(d_o, h)
            d_h = (w_o.T @ d_o) * h * (1.0 - h)
            g_h = np.outer(d_h, x)
            w_h -= LR * g_h
            w_o -= LR * g_o
        return _outcome(err, [g_h, g_o], [w_h, w_o])

    return run


def chainrule_tensor(steps: int) -> Run:
    import chainrule as cr

    def run() -> Outcome:
        w_h0, w_o0, x0, t0 = _arrays()
        w_h = cr.Tensor(w_h0, requires_grad=True)
        w_o = cr.Tensor(w_o0, requires_grad=True)
        x, t = cr.Tensor(x0), cr.Tensor(t0)
        err = None
        for _ in range(steps):
            h = (w_h @ x + B1).sigmoid()
            o = (w_o @ h + B2).sigmoid()
            err = 0.5 * ((t - o) ** 2).sum()
            w_h.grad = w_o.grad = None
            err.backward()
            w_h.data -= LR * w_h.grad
            w_o.data -= LR * w_o.grad
        assert err is not None
        return _outcome(err.item(), [w_h.grad, w_o.grad], [w_h.data, w_o.data])

    return run


def chainrule_compiled_arrays(steps: int) -> Run:
    """The Tensor network's step as a compiled program (traced once per run, inside the timing)."""
    import chainrule as cr

    def step(w_h: Any, w_o: Any, x: Any, t: Any) -> Any:
        h = (w_h @ x + B1).sigmoid()
        o = (w_o @ h + B2).sigmoid()
        err = 0.5 * ((t - o) ** 2).sum()
        g_h, g_o = cr.grad(err, [w_h, w_o])
        return err, g_h, g_o, w_h - LR * g_h, w_o - LR * g_o

    def run() -> Outcome:
        compiled = cr.compile(step)
        w_h, w_o, x, t = _arrays()
        err, g_h, g_o = 0.0, w_h, w_o
        for _ in range(steps):
            err, g_h, g_o, w_h, w_o = compiled(w_h, w_o, x, t)
        return _outcome(err, [g_h, g_o], [w_h, w_o])

    return run


def torch_run(steps: int) -> Run:
    import torch

    def run() -> Outcome:
        w_h0, w_o0, x0, t0 = _arrays()
        w_h = torch.tensor(w_h0, requires_grad=True)
        w_o = torch.tensor(w_o0, requires_grad=True)
        x, t = torch.tensor(x0), torch.tensor(t0)
        err = None
        for _ in range(steps):
            h = torch.sigmoid(w_h @ x + B1)
            o = torch.sigmoid(w_o @ h + B2)
            err = 0.5 * ((t - o) ** 2).sum()
            w_h.grad = w_o.grad = None
            err.backward()
            with torch.no_grad():
                w_h -= LR * w_h.grad
                w_o -= LR * w_o.grad
        assert err is not None and w_h.grad is not None and w_o.grad is not None
        return _outcome(
            err.item(),
            [w_h.grad.numpy(), w_o.grad.numpy()],
            [w_h.detach().numpy(), w_o.detach().numpy()],
        )

    return run


def autograd_run(steps: int) -> Run:
    import autograd.numpy as anp
    from autograd import value_and_grad

    def loss(params: tuple[Any, Any], x: np.ndarray, t: np.ndarray) -> Any:
        w_h, w_o = params
        h = 1.0 / (1.0 + anp.exp(-(anp.dot(w_h, x) + B1)))
        o = 1.0 / (1.0 + anp.exp(-(anp.dot(w_o, h) + B2)))
        return 0.5 * anp.sum((t - o) ** 2)

    step = value_and_grad(loss)

    def run() -> Outcome:
        w_h, w_o, x, t = _arrays()
        err = 0.0
        g_h = g_o = w_h
        for _ in range(steps):
            err, (g_h, g_o) = step((w_h, w_o), x, t)
            w_h = w_h - LR * g_h
            w_o = w_o - LR * g_o
        return _outcome(err, [g_h, g_o], [w_h, w_o])

    return run


def cases(size: str) -> list[Case]:
    steps = STEPS[size]
    repeat = 5 if size == "full" else 3
    per_label = "for all steps"
    scalar = Case(
        name="mazur-value",
        group="mazur",
        title=f"mazur, scalars: {steps:,} gradient-descent steps on the 2-2-2 network",
        baseline="floats by hand",
        engines=[
            Engine("floats by hand", lambda: hand_floats(steps)),
            Engine("chainrule Value", lambda: chainrule_value(steps)),
            Engine("chainrule-compiled", lambda: chainrule_compiled_floats(steps)),
            Engine(
                "micrograd",
                lambda: micrograd_run(steps),
                needs=("micrograd",),
                note="sigmoid added in micrograd's own style",
            ),
        ],
        repeat=repeat,
        unit="s",
        per_label=per_label,
    )
    array = Case(
        name="mazur-tensor",
        group="mazur",
        title=f"mazur, arrays: {steps:,} gradient-descent steps on the 2-2-2 network",
        baseline="numpy by hand",
        engines=[
            Engine("numpy by hand", lambda: hand_numpy(steps)),
            Engine("chainrule Tensor", lambda: chainrule_tensor(steps)),
            Engine("chainrule-compiled", lambda: chainrule_compiled_arrays(steps)),
            Engine("torch", lambda: torch_run(steps), needs=("torch",)),
            Engine("autograd", lambda: autograd_run(steps), needs=("autograd",)),
        ],
        repeat=repeat,
        unit="s",
        per_label=per_label,
    )
    return [scalar, array]
