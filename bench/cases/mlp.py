"""digits and bigmlp: training a multilayer perceptron with softmax cross-entropy and SGD.

``digits``: 64-128-10 with tanh, scikit-learn's 8x8 digits (1,797 images,
pixels scaled to [0, 1]), batch 64, 10 epochs, float64, learning rate 0.1.
The batches of every epoch come from one seeded shuffle shared by all engines.

``bigmlp``: 784-1024-1024-10 with ReLU, batch 512, 20 steps, float32, learning
rate 0.01, on one fixed batch of random inputs and labels: large enough that
matrix products dominate, so it measures what an engine adds on top of BLAS.

Every engine writes the same model directly with its own arrays (no layer
library): ``logits = act(act(x W1 + b1) W2 + b2) W3 + b3`` (one hidden layer
for digits), loss = mean over the batch of ``-log softmax(logits)[label]``.
It reports the loss of the last step, that step's gradient of W1, and the
final W1 and last-layer weights.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core import Case, Engine, Outcome, Run


@dataclass
class Problem:
    """The data, the initial weights and the training schedule of one MLP case."""

    batches: list[tuple[np.ndarray, np.ndarray]]  # (inputs, one-hot labels)
    weights: list[np.ndarray]  # W1, b1, W2, b2, ... (copied by each engine)
    activation: str  # "tanh" or "relu"
    lr: float
    dtype: type


def _init(sizes: list[int], dtype: type, rng: np.random.Generator, gain: float) -> list[np.ndarray]:
    params: list[np.ndarray] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        w = rng.normal(0.0, gain / np.sqrt(fan_in), (fan_in, fan_out))
        params += [w.astype(dtype), np.zeros(fan_out, dtype=dtype)]
    return params


def _one_hot(labels: np.ndarray, classes: int, dtype: type) -> np.ndarray:
    out = np.zeros((labels.size, classes), dtype=dtype)
    out[np.arange(labels.size), labels] = 1
    return out


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: inputs scaled to [0, 1] and integer labels."""
    from sklearn.datasets import load_digits as sk_load

    data = sk_load()
    return data.data / 16.0, data.target.astype(np.int64)


def digits_problem(samples: int | None, epochs: int, batch: int = 64) -> Problem:
    x, y = load_digits()
    if samples is not None:
        x, y = x[:samples], y[:samples]
    rng = np.random.default_rng(2024)
    weights = _init([64, 128, 10], np.float64, rng, 1.0)
    onehot = _one_hot(y, 10, np.float64)
    batches = []
    for _ in range(epochs):
        perm = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = perm[start : start + batch]
            batches.append((np.ascontiguousarray(x[idx]), onehot[idx]))
    return Problem(batches, weights, "tanh", 0.1, np.float64)


def bigmlp_problem(batch: int, width: int, steps: int) -> Problem:
    rng = np.random.default_rng(7)
    dtype = np.float32
    weights = _init([784, width, width, 10], dtype, rng, np.sqrt(2.0))
    x = rng.normal(0.0, 1.0, (batch, 784)).astype(dtype)
    onehot = _one_hot(rng.integers(0, 10, batch), 10, dtype)
    return Problem([(x, onehot)] * steps, weights, "relu", 0.01, dtype)


def _outcome(loss: float, first: Any, last: Any, weights: list[Any], dtype: type) -> Outcome:
    arrays = {
        "first dW1": np.asarray(first),
        "final W1": np.asarray(weights[0]),
        "final W_last": np.asarray(weights[-2]),
    }
    # In float32 a ReLU whose input is within rounding of zero can switch between
    # engines that sum in different orders; after a few steps that moves whole
    # columns of a gradient, so only the first step's gradient is compared there.
    if dtype == np.float64:
        arrays["last dW1"] = np.asarray(last)
    return Outcome(float(loss), arrays)


def hand_numpy(p: Problem) -> Run:
    """Forward and backward of the MLP written out by hand with numpy."""
    relu = p.activation == "relu"

    def run() -> Outcome:
        params = [w.copy() for w in p.weights]
        nlayers = len(params) // 2
        loss = 0.0
        grads: list[np.ndarray] = []
        first = None
        for x, y in p.batches:
            acts = [x]
            pre = []
            h = x
            for k in range(nlayers):
                z = h @ params[2 * k] + params[2 * k + 1]
                if k < nlayers - 1:
                    pre.append(z)
                    h = np.maximum(z, 0) if relu else np.tanh(z)
                    acts.append(h)
                else:
                    h = z
            m = h.max(axis=1, keepdims=True)
            e = np.exp(h - m)
            s = e.sum(axis=1, keepdims=True)
            n = x.shape[0]
            loss = -float(np.sum((h - m - np.log(s)) * y)) / n
            # d loss / d logits = (softmax - onehot) / batch
            dz = (e / s - y) / n
            grads = [np.empty(0)] * len(params)
            for k in range(nlayers - 1, -1, -1):
                grads[2 * k] = acts[k].T @ dz
                grads[2 * k + 1] = dz.sum(axis=0)
                if k > 0:
                    dh = dz @ params[2 * k].T
                    a = acts[k]
                    dz = dh * (pre[k - 1] > 0) if relu else dh * (1 - a * a)
            if first is None:
                first = grads[0].copy()
            for w, g in zip(params, grads):
                w -= p.lr * g
        return _outcome(loss, first, grads[0], params, p.dtype)

    return run


def chainrule_tensor(p: Problem) -> Run:
    import chainrule as cr
    import chainrule.nn.functional as F

    data = [(cr.Tensor(x), y.argmax(axis=1)) for x, y in p.batches]

    def run() -> Outcome:
        params = [cr.Tensor(w, requires_grad=True) for w in p.weights]
        nlayers = len(params) // 2
        loss = None
        first = None
        for x, labels in data:
            h = x
            for k in range(nlayers):
                h = h @ params[2 * k] + params[2 * k + 1]
                if k < nlayers - 1:
                    h = h.relu() if p.activation == "relu" else h.tanh()
            loss = F.cross_entropy(h, labels)
            for w in params:
                w.grad = None
            loss.backward()
            if first is None:
                first = params[0].grad.copy()
            for w in params:
                w.data -= p.lr * w.grad
        assert loss is not None
        return _outcome(loss.item(), first, params[0].grad, [w.data for w in params], p.dtype)

    return run


def compiled_step(nlayers: int, activation: str, lr: float) -> Any:
    """One SGD step of the MLP as a function for ``chainrule.compile``.

    It takes the weights (a list of arrays), a batch and its one-hot targets, and
    returns the loss, the gradient of W1 and the updated weights: the loss is
    ``sum(log_softmax(logits) * onehot) * (-1 / batch)``, the maths of the
    other engines' ``-mean log softmax(logits)[label]``.
    """
    import chainrule as cr

    def step(params: list[Any], x: Any, onehot: Any) -> Any:
        h = x
        for k in range(nlayers):
            h = h @ params[2 * k] + params[2 * k + 1]
            if k < nlayers - 1:
                h = h.relu() if activation == "relu" else h.tanh()
        loss = (h.log_softmax(axis=1) * onehot).sum() * (-1.0 / x.shape[0])
        grads = cr.grad(loss, params)
        return loss, grads[0], [w - lr * g for w, g in zip(params, grads)]

    return step


def chainrule_compiled(p: Problem) -> Run:
    """One training step as a compiled program; the loss on one-hot targets (floats)."""
    import chainrule as cr

    step = compiled_step(len(p.weights) // 2, p.activation, p.lr)

    def run() -> Outcome:
        compiled = cr.compile(step)  # traced inside the timing (once per batch size)
        params = [np.array(w) for w in p.weights]
        loss, first, g = 0.0, None, None
        for x, onehot in p.batches:
            loss, g, params = compiled(params, x, onehot)
            if first is None:
                first = g
        return _outcome(loss, first, g, params, p.dtype)

    return run


def torch_run(p: Problem) -> Run:
    import torch
    import torch.nn.functional as F

    data = [(torch.from_numpy(x), torch.from_numpy(y.argmax(axis=1))) for x, y in p.batches]

    def run() -> Outcome:
        params = [torch.tensor(w, requires_grad=True) for w in p.weights]
        nlayers = len(params) // 2
        act = torch.relu if p.activation == "relu" else torch.tanh
        loss = None
        first = None
        for x, labels in data:
            h = x
            for k in range(nlayers):
                h = h @ params[2 * k] + params[2 * k + 1]
                if k < nlayers - 1:
                    h = act(h)
            loss = F.cross_entropy(h, labels)
            for w in params:
                w.grad = None
            loss.backward()
            if first is None:
                first = params[0].grad.numpy().copy()
            with torch.no_grad():
                for w in params:
                    w -= p.lr * w.grad
        assert loss is not None and params[0].grad is not None
        weights = [w.detach().numpy() for w in params]
        return _outcome(loss.item(), first, params[0].grad.numpy(), weights, p.dtype)

    return run


def autograd_run(p: Problem) -> Run:
    import autograd.numpy as anp
    from autograd import value_and_grad

    relu = p.activation == "relu"

    def loss_fn(params: list[Any], x: np.ndarray, y: np.ndarray) -> Any:
        h = x
        nlayers = len(params) // 2
        for k in range(nlayers):
            h = anp.dot(h, params[2 * k]) + params[2 * k + 1]
            if k < nlayers - 1:
                h = anp.maximum(h, 0.0) if relu else anp.tanh(h)
        m = anp.max(h, axis=1, keepdims=True)
        z = h - m
        logp = z - anp.log(anp.sum(anp.exp(z), axis=1, keepdims=True))
        return -anp.sum(logp * y) / x.shape[0]

    step = value_and_grad(loss_fn)

    def run() -> Outcome:
        params = [w.copy() for w in p.weights]
        loss = 0.0
        grads: list[Any] = []
        first = None
        for x, y in p.batches:
            loss, grads = step(params, x, y)
            if first is None:
                first = grads[0]
            params = [w - p.lr * g for w, g in zip(params, grads)]
        return _outcome(loss, first, grads[0], params, p.dtype)

    return run


def _engines(make: Any) -> list[Engine]:
    return [
        Engine("numpy by hand", lambda: hand_numpy(make())),
        Engine("chainrule Tensor", lambda: chainrule_tensor(make())),
        Engine("chainrule-compiled", lambda: chainrule_compiled(make())),
        Engine("torch", lambda: torch_run(make()), needs=("torch",)),
        Engine("autograd", lambda: autograd_run(make()), needs=("autograd",)),
    ]


DIGITS = {"full": (None, 10), "quick": (None, 2), "tiny": (130, 1)}
BIGMLP = {"full": (512, 1024, 20), "quick": (512, 1024, 3), "tiny": (16, 32, 2)}


def cases(size: str) -> list[Case]:
    samples, epochs = DIGITS[size]
    cache: dict[str, Problem] = {}

    def digits() -> Problem:
        if "digits" not in cache:
            cache["digits"] = digits_problem(samples, epochs)
        return cache["digits"]

    batch, width, steps = BIGMLP[size]

    def big() -> Problem:
        if "big" not in cache:
            cache["big"] = bigmlp_problem(batch, width, steps)
        return cache["big"]

    return [
        Case(
            name="digits",
            group="digits",
            title=(
                f"digits: MLP 64-128-10, tanh, batch 64, {epochs} epoch(s) of SGD on "
                f"{'all 1,797' if samples is None else samples} images, float64"
            ),
            baseline="numpy by hand",
            engines=[
                Engine(e.name, e.prepare, needs=e.needs + ("sklearn",)) for e in _engines(digits)
            ],
            repeat=5 if size == "full" else 3,
            unit="s",
            per_label="for all epochs",
        ),
        Case(
            name="bigmlp",
            group="bigmlp",
            title=(
                f"bigmlp: MLP 784-{width}-{width}-10, ReLU, batch {batch}, "
                f"{steps} SGD steps, float32"
            ),
            baseline="numpy by hand",
            engines=_engines(big),
            repeat=3,
            unit="s",
            per=steps,
            per_label="per step",
            rtol=1e-3,
            threads=None,
        ),
    ]
