"""The basic promises: reuse accumulates, second backward adds one copy, deep chains work."""

import numpy as np

import chainrule as cr


def test_reuse_accumulates_over_both_edges():
    a = cr.Value(3.0)
    b = a + a
    c = b + b
    c.backward()
    assert a.grad == 4.0
    assert b.grad == 2.0


def test_second_backward_adds_exactly_one_copy():
    a = cr.Value(1.5)
    b = a * a
    c = b.tanh()
    c.backward()
    first = (a.grad, b.grad, c.grad)
    c.backward()
    assert (a.grad, b.grad, c.grad) == tuple(2 * g for g in first)


def test_million_op_chain_backpropagates():
    x0 = cr.Value(1.0)
    x = x0
    for _ in range(1_000_000):
        x = x * 1.0000001
    x.backward()
    assert np.isclose(x0.grad, 1.0000001**1_000_000)
