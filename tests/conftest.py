"""Shared fixtures: seeded float64 inputs kept in each op's safe domain; no cycle collector."""

from __future__ import annotations

import gc
import zlib

import numpy as np
import pytest

import chainrule as cr


class Inputs:
    """Makes float64 leaf tensors (requiring grad) from one seeded generator.

    Finite differences move an input by ``eps`` (1e-6), so inputs of ops with
    a kink (relu, abs, max, clip, maximum) are kept ``gap`` away from it.
    """

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def array(self, shape, low=-2.0, high=2.0):
        return self.rng.uniform(low, high, size=shape)

    def uniform(self, shape, low=-2.0, high=2.0, name=None):
        return cr.Tensor(self.array(shape, low, high), requires_grad=True, name=name)

    def positive(self, shape, low=0.5, high=2.0):
        return self.uniform(shape, low, high)

    def away(self, shape, kink=0.0, gap=0.2, spread=2.0):
        """Values at least ``gap`` from ``kink`` on both sides."""
        size = self.rng.uniform(gap, spread, size=shape)
        sign = self.rng.choice([-1.0, 1.0], size=shape)
        return cr.Tensor(kink + sign * size, requires_grad=True)

    def distinct(self, shape, gap=0.1):
        """Values with no two closer than ``gap`` (so max/min have no ties)."""
        n = int(np.prod(shape, dtype=int))
        values = self.rng.permutation(n) * gap * 2 + self.rng.uniform(0, gap / 2, size=n)
        return cr.Tensor((values - n * gap).reshape(shape), requires_grad=True)


@pytest.fixture
def make(request: pytest.FixtureRequest) -> Inputs:
    """An :class:`Inputs` seeded from the test's id, so every run draws the same numbers."""
    return Inputs(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture
def refcount_only():
    """Turn the cycle collector off for one test, and back on after.

    Whatever the test sees freed is then freed by reference counting alone; and
    a test that builds a huge graph (which has no cycles) does not spend its
    time in the collector scanning the live nodes again and again.
    """
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
