"""overhead: forward and backward of ``sigmoid(W @ x + b).sum()`` on 2x2 arrays, many times.

The arrays are so small that the arithmetic costs nothing: what is measured
is each engine's cost of recording four ops and running one backward pass.
W and b require grad (their gradients are cleared before each backward), x
is a constant; float64.  The run reports the last loss and gradients.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import Case, Engine, Outcome, Run

ITERS = {"full": 10_000, "quick": 2_000, "tiny": 20}


def _inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = np.array([[0.5, -1.0], [1.5, 0.25]])
    x = np.array([[1.0, 2.0], [-0.5, 0.75]])
    b = np.array([[0.1, -0.2], [0.3, 0.0]])
    return w, x, b


def _outcome(loss: float, gw: Any, gb: Any) -> Outcome:
    return Outcome(float(loss), {"dW": np.asarray(gw), "db": np.asarray(gb)})


def hand_numpy(iters: int) -> Run:
    def run() -> Outcome:
        w, x, b = _inputs()
        loss = 0.0
        gw = gb = w
        for _ in range(iters):
            s = 1.0 / (1.0 + np.exp(-(w @ x + b)))
            loss = s.sum()
            gb = s * (1.0 - s)  # d sum(sigmoid(z)) / dz
            gw = gb @ x.T
        return _outcome(loss, gw, gb)

    return run


def chainrule_tensor(iters: int) -> Run:
    import chainrule as cr

    w0, x0, b0 = _inputs()
    w, x, b = cr.Tensor(w0, requires_grad=True), cr.Tensor(x0), cr.Tensor(b0, requires_grad=True)

    def run() -> Outcome:
        loss = None
        for _ in range(iters):
            loss = (w @ x + b).sigmoid().sum()
            w.grad = b.grad = None
            loss.backward()
        assert loss is not None
        return _outcome(loss.item(), w.grad, b.grad)

    return run


def chainrule_compiled(iters: int) -> Run:
    import chainrule as cr

    def step(w: Any, x: Any, b: Any) -> Any:
        loss = (w @ x + b).sigmoid().sum()
        return (loss, *cr.grad(loss, [w, b]))

    def run() -> Outcome:
        compiled = cr.compile(step)  # traced inside the timing, once per run
        w, x, b = _inputs()
        loss, gw, gb = 0.0, w, b
        for _ in range(iters):
            loss, gw, gb = compiled(w, x, b)
        return _outcome(loss, gw, gb)

    return run


def torch_run(iters: int) -> Run:
    import torch

    w0, x0, b0 = _inputs()
    w = torch.tensor(w0, requires_grad=True)
    x = torch.tensor(x0)
    b = torch.tensor(b0, requires_grad=True)

    def run() -> Outcome:
        loss = None
        for _ in range(iters):
            loss = torch.sigmoid(w @ x + b).sum()
            w.grad = b.grad = None
            loss.backward()
        assert loss is not None and w.grad is not None and b.grad is not None
        return _outcome(loss.item(), w.grad.numpy(), b.grad.numpy())

    return run


def autograd_run(iters: int) -> Run:
    import autograd.numpy as anp
    from autograd import value_and_grad

    def f(w: Any, b: Any, x: np.ndarray) -> Any:
        return anp.sum(1.0 / (1.0 + anp.exp(-(anp.dot(w, x) + b))))

    step = value_and_grad(f, argnum=(0, 1))
    w, x, b = _inputs()

    def run() -> Outcome:
        loss = 0.0
        gw = gb = w
        for _ in range(iters):
            loss, (gw, gb) = step(w, b, x)
        return _outcome(loss, gw, gb)

    return run


def cases(size: str) -> list[Case]:
    iters = ITERS[size]
    return [
        Case(
            name="overhead",
            group="overhead",
            title=f"overhead: {iters:,} x forward + backward of sigmoid(W @ x + b).sum(), 2x2",
            baseline="numpy by hand",
            engines=[
                Engine("numpy by hand", lambda: hand_numpy(iters)),
                Engine("chainrule Tensor", lambda: chainrule_tensor(iters)),
                Engine("chainrule-compiled", lambda: chainrule_compiled(iters)),
                Engine("torch", lambda: torch_run(iters), needs=("torch",)),
                Engine("autograd", lambda: autograd_run(iters), needs=("autograd",)),
            ],
            repeat=5 if size == "full" else 3,
            unit="us",
            per=iters,
            per_label="per iteration",
        )
    ]
