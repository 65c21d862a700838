"""Indexing with every index form numpy and PyTorch accept, gradchecked; bad indices are named.

An empty list selects nothing (shape ``(0,) + rest``), boolean masks select
where true, negative indices count from the end, and lists inside a tuple
index several axes together.  Float indices raise an error saying so.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import chainrule as cr
from chainrule import Tensor, gradcheck, gradgradcheck

X = np.arange(12.0).reshape(3, 4)

# (chainrule index, the same index in numpy's own terms)
INDICES = [
    pytest.param([], np.array([], dtype=np.intp), id="empty-list"),
    pytest.param(([],), (np.array([], dtype=np.intp),), id="empty-list-in-tuple"),
    pytest.param((slice(None), []), (slice(None), np.array([], dtype=np.intp)), id="empty-cols"),
    pytest.param([[], []], np.zeros((2, 0), dtype=np.intp), id="empty-nested-list"),
    pytest.param(([], []), (np.array([], int), np.array([], int)), id="two-empty-lists"),
    pytest.param(X > 5, X > 5, id="bool-array"),
    pytest.param(Tensor(X > 5), X > 5, id="bool-tensor"),
    pytest.param(np.zeros(3, dtype=bool), np.zeros(3, dtype=bool), id="all-false-mask"),
    pytest.param([True, False, True], np.array([True, False, True]), id="bool-list"),
    pytest.param((Tensor([True, False, True]), 1), (np.array([True, False, True]), 1), id="mask-1"),
    pytest.param(-1, -1, id="negative"),
    pytest.param([-1, 0, -1], np.array([-1, 0, -1]), id="negative-list"),
    pytest.param(([0, -1], [1, -1]), (np.array([0, -1]), np.array([1, -1])), id="tuple-of-lists"),
    pytest.param(
        (Tensor([2, 0]), [3, 3]), (np.array([2, 0]), np.array([3, 3])), id="tensor-and-list"
    ),
    pytest.param((Ellipsis, [0, 0]), (Ellipsis, np.array([0, 0])), id="ellipsis-list"),
    pytest.param((None, [1], Ellipsis), (None, np.array([1]), Ellipsis), id="none-list-ellipsis"),
]


@pytest.mark.parametrize(("index", "numpy_index"), INDICES)
def test_index_forms_match_numpy_and_gradcheck(make, index, numpy_index):
    x = make.uniform((3, 4))
    out = x[index]
    np.testing.assert_array_equal(out.data, x.data[numpy_index])
    # The gradient: each selected position receives its weight (repeats add up).
    weights = make.array(out.shape)
    out.backward(weights)
    expected = np.zeros((3, 4))
    np.add.at(expected, numpy_index, weights)
    np.testing.assert_array_equal(x.grad, expected)
    if out.data.size:
        assert gradcheck(lambda t: t[index] * t[index], [x])
        assert gradgradcheck(lambda t: t[index] * t[index], [x])


def test_an_empty_list_selects_nothing_with_the_rest_of_the_shape():
    x = Tensor(np.ones((3, 2, 5)), requires_grad=True)
    out = x[[]]
    assert out.shape == (0, 2, 5)
    assert out.dtype == x.dtype
    (g,) = cr.grad(out.sum(), [x], create_graph=True)
    np.testing.assert_array_equal(g.data, np.zeros((3, 2, 5)))


def test_an_empty_list_index_assigns_nothing():
    x = Tensor([1.0, 2.0, 3.0])
    x[[]] = 5.0
    np.testing.assert_array_equal(x.data, [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    ("index", "what"),
    [
        pytest.param(1.0, "1.0 is a float", id="float"),
        pytest.param((0, 1.5), "1.5 is a float", id="float-in-tuple"),
        pytest.param(np.float64(2.0), "2.0", id="numpy-float"),
        pytest.param(np.array([0.0, 1.0]), "float64", id="float-array"),
        pytest.param(Tensor([0.0, 1.0]), "float64", id="float-tensor"),
        pytest.param(Tensor([]), "float64", id="empty-float-tensor"),
        pytest.param([0.5], "float64", id="float-list"),
    ],
)
def test_float_indices_are_named(index, what):
    x = Tensor(X)
    with pytest.raises(IndexError, match=f"getitem: .*{re.escape(what)}.*integers"):
        x[index]


def test_an_index_out_of_range_names_the_shape():
    with pytest.raises(IndexError, match=r"getitem: .*5.*\(3, 4\)"):
        Tensor(X)[5]
