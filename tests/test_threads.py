"""Threads: grad mode, anomaly mode and scopes belong to the thread that sets them.

A backward pass turns recording off while it runs; if that switch were shared,
a forward pass in another thread would record half a graph and return a wrong
gradient with no error.  These tests run threads that interleave as tightly as
the interpreter allows and compare with the same work done alone.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.modes import STATE, scope


@contextmanager
def _tight_switching() -> Iterator[None]:
    """Make the interpreter switch threads as often as it can."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _run_together(*jobs: Callable[[], Any]) -> list[Any]:
    """Run the jobs in threads that start at the same moment; return their results."""
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def run(k: int) -> None:
        try:
            start.wait()
            results[k] = jobs[k]()
        except BaseException as e:  # reported in the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(jobs))]
    with _tight_switching():
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return results


def _train_tensor_mlp(seed: int, steps: int = 60) -> list[np.ndarray]:
    """A small tanh MLP trained by hand-written SGD; returns every step's gradients."""
    rng = np.random.default_rng(seed)
    w1 = cr.Tensor(rng.standard_normal((4, 6)), requires_grad=True)
    w2 = cr.Tensor(rng.standard_normal((6, 1)), requires_grad=True)
    x = cr.Tensor(rng.standard_normal((8, 4)))
    y = cr.Tensor(rng.standard_normal((8, 1)))
    seen = []
    for _ in range(steps):
        loss = (((x @ w1).tanh() @ w2 - y) ** 2).mean()
        loss.backward()
        seen += [w1.grad.copy(), w2.grad.copy(), loss.data.copy()]
        with cr.no_grad():
            w1 -= 0.05 * w1.grad
            w2 -= 0.05 * w2.grad
        w1.zero_grad()
        w2.zero_grad()
    return seen


def _train_value_neuron(seed: int, steps: int = 150) -> list[float]:
    """One sigmoid neuron of Values trained by SGD; returns every step's gradients."""
    rng = np.random.default_rng(seed)
    w = [cr.Value(float(v)) for v in rng.standard_normal(3)]
    data = [(rng.standard_normal(3).tolist(), float(rng.integers(0, 2))) for _ in range(4)]
    seen = []
    for _ in range(steps):
        loss = cr.Value(0.0)
        for xs, target in data:
            out = (w[0] * xs[0] + w[1] * xs[1] + w[2] * xs[2]).sigmoid()
            loss = loss + (out - target) ** 2
        loss.backward()
        seen += [p.grad for p in w] + [loss.data]
        for p in w:
            p.data -= 0.1 * p.grad
            p.grad = None
    return seen


def _same(a: list[Any], b: list[Any]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    "train", [_train_tensor_mlp, _train_value_neuron], ids=["tensor-mlp", "value-neuron"]
)
def test_two_threads_training_concurrently_get_the_gradients_they_get_alone(train):
    alone = [train(1), train(2)]
    together = _run_together(lambda: train(1), lambda: train(2))
    _same(together[0], alone[0])
    _same(together[1], alone[1])
    assert cr.is_grad_enabled()


def test_overlapping_backward_passes_leave_recording_on_in_every_thread():
    def job() -> bool:
        w = cr.Tensor(np.linspace(-1, 1, 50), requires_grad=True)
        for _ in range(200):
            (w * w).tanh().sum().backward()
        return cr.is_grad_enabled()

    assert _run_together(job, job, job) == [True, True, True]
    assert cr.is_grad_enabled()
    after = cr.Tensor([1.0], requires_grad=True) * 2
    assert after.requires_grad


def test_no_grad_in_one_thread_does_not_stop_recording_in_another():
    inside = threading.Event()
    checked = threading.Event()
    seen: dict[str, bool] = {}

    def worker() -> None:
        with cr.no_grad():
            seen["worker before"] = cr.is_grad_enabled()
            inside.set()
            checked.wait(5)
            seen["worker after"] = cr.is_grad_enabled()

    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(5)
    w = cr.Tensor([1.0, 2.0], requires_grad=True)
    y = (w * 3).sum()
    seen["main"] = cr.is_grad_enabled()
    checked.set()
    t.join()
    assert seen == {"worker before": False, "worker after": False, "main": True}
    y.backward()
    np.testing.assert_array_equal(w.grad, [3.0, 3.0])


def test_a_new_thread_starts_with_the_defaults_whatever_the_parent_set():
    seen: dict[str, Any] = {}

    def worker() -> None:
        seen["grad"] = cr.is_grad_enabled()
        seen["anomaly"] = STATE.anomaly
        seen["scope"] = STATE.scope

    with cr.no_grad(), cr.detect_anomaly(), scope("outer"):
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert (cr.is_grad_enabled(), STATE.anomaly, STATE.scope) == (False, True, "outer")
    assert seen == {"grad": True, "anomaly": False, "scope": None}
    assert (cr.is_grad_enabled(), STATE.anomaly, STATE.scope) == (True, False, None)


def test_scopes_of_two_threads_do_not_mix():
    """Each thread's module scope labels only the nodes that thread records."""

    def job(name: str) -> set[str | None]:
        w = cr.Tensor([1.0, 2.0], requires_grad=True)
        scopes = set()
        for _ in range(2000):
            with scope(name):
                y = w * 2 + 1
            scopes |= {cr.engine.scope_of(n) for n in cr.engine.iter_graph([y]) if not n.is_leaf}
        return scopes

    assert _run_together(lambda: job("a"), lambda: job("b")) == [{"a"}, {"b"}]


def test_anomaly_mode_in_one_thread_does_not_raise_in_another():
    inside = threading.Event()
    done = threading.Event()

    def worker() -> None:
        with cr.detect_anomaly():
            inside.set()
            done.wait(5)

    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(5)
    try:
        y = cr.Tensor([0.0], requires_grad=True).log()  # -inf: an anomaly only where it is on
    finally:
        done.set()
        t.join()
    assert np.isneginf(y.data).all()
