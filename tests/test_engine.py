"""Semantics of the engine: how a graph is recorded and what ``backward`` stores.

Every test computes the gradients through the engine and compares them with
the same derivatives worked out by hand in plain Python or numpy.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.engine import iter_graph, toposort

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def grads_of(nodes: list[Any]) -> list[Any]:
    """A snapshot of ``.grad`` for each node (copies, so later passes cannot alter it)."""
    return [np.array(n.grad, copy=True) if isinstance(n, cr.Tensor) else n.grad for n in nodes]


def grad_nodes(out: Any) -> list[Any]:
    """Every node on the graph of ``out`` that requires grad, parents first."""
    return [n for n in iter_graph([out]) if n.requires_grad]


def fanout_value() -> tuple[list[cr.Value], cr.Value]:
    """A Value graph where nodes feed several consumers and reach the output by many paths.

    A second backward in an engine that seeds each node from its already
    accumulated ``.grad`` (as micrograd's does) would count these paths again
    and store more than twice the first gradients.
    """
    x = cr.Value(0.7, name="x")
    y = cr.Value(-1.3, name="y")
    h = x * y
    u = h * h + h  # h used three times
    v = (u * x).tanh()  # x reused deeper in the graph
    out = v + u * h + x
    return [x, y], out


def fanout_tensor() -> tuple[list[cr.Tensor], cr.Tensor]:
    """The Tensor analogue of :func:`fanout_value`, with broadcasting thrown in."""
    x = cr.Tensor([0.7, -0.2, 1.1], requires_grad=True, name="x")
    w = cr.Tensor([[0.5], [-1.5]], requires_grad=True, name="w")  # broadcasts against x
    h = w * x
    u = h * h + h
    v = (u * x).tanh()
    out = (v + u * h).sum() + x.sum()
    return [x, w], out


FANOUT = [pytest.param(fanout_value, id="Value"), pytest.param(fanout_tensor, id="Tensor")]


# ---------------------------------------------------------------------------
# backward(gradient=None, create_graph=False)
# ---------------------------------------------------------------------------


def test_scalar_value_output_needs_no_gradient():
    x = cr.Value(1.5)
    y = x * x + 3 * x
    y.backward()
    assert x.grad == 2 * 1.5 + 3
    assert y.grad == 1.0


@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
def test_single_element_tensor_needs_no_gradient(shape):
    data = np.full(shape, 1.5)
    x = cr.Tensor(data, requires_grad=True)
    y = x * x
    y.backward()
    np.testing.assert_array_equal(x.grad, 2 * data)
    assert x.grad.shape == shape
    np.testing.assert_array_equal(y.grad, np.ones(shape))


def test_non_scalar_output_without_gradient_raises():
    x = cr.Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"backward: .*shape \(2, 3\).*non-scalar"):
        y.backward()
    assert x.grad is None  # nothing was stored by the failed call


def test_non_scalar_output_with_gradient_is_a_vector_jacobian_product():
    xd = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]])
    v = np.array([[0.1, 0.2, 0.3], [-0.4, 0.5, -0.6]])
    x = cr.Tensor(xd, requires_grad=True)
    y = x * x
    y.backward(v)
    np.testing.assert_allclose(x.grad, 2 * xd * v, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(y.grad, v)


def test_gradient_given_as_a_tensor_or_a_list_equals_the_array():
    xd = np.array([1.0, -2.0, 0.5])
    v = np.array([0.3, 0.2, -0.1])
    results = []
    for g in (v, cr.Tensor(v), v.tolist()):
        x = cr.Tensor(xd, requires_grad=True)
        (x.exp()).backward(g)
        results.append(x.grad)
    for r in results:
        np.testing.assert_array_equal(r, np.exp(xd) * v)


@pytest.mark.parametrize("bad_shape", [(3, 2), (6,), (2, 3, 1), ()])
def test_gradient_of_the_wrong_shape_raises(bad_shape):
    x = cr.Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2
    with pytest.raises(ValueError, match=r"gradient has shape .* has shape \(2, 3\)"):
        y.backward(np.ones(bad_shape))
    assert x.grad is None


def test_value_gradient_must_be_a_scalar():
    x = cr.Value(2.0)
    y = x * x
    with pytest.raises(ValueError, match=r"shape \(2,\).*scalar"):
        y.backward(np.ones(2))
    y.backward(0.5)
    assert x.grad == 0.5 * 2 * 2.0


def test_backward_through_a_graph_that_needs_no_grad_raises():
    x = cr.Tensor([1.0, 2.0])  # requires_grad is False by default
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


# ---------------------------------------------------------------------------
# What backward stores
# ---------------------------------------------------------------------------


def test_every_value_on_the_graph_keeps_its_grad():
    a, b = cr.Value(0.8), cr.Value(-0.6)
    c = a * b
    d = c + a
    e = d.tanh()
    e.backward()

    t = math.tanh(0.8 * -0.6 + 0.8)
    de = 1.0
    dd = de * (1 - t * t)
    dc = dd
    da = dc * -0.6 + dd
    db = dc * 0.8
    assert e.grad == de
    assert d.grad == pytest.approx(dd, abs=1e-15)
    assert c.grad == pytest.approx(dc, abs=1e-15)
    assert a.grad == pytest.approx(da, abs=1e-15)
    assert b.grad == pytest.approx(db, abs=1e-15)
    assert all(isinstance(n.grad, float) for n in (a, b, c, d, e))


def test_every_tensor_on_the_graph_keeps_its_grad():
    rng = np.random.default_rng(0)
    wd, xd, bd = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=3)
    w = cr.Tensor(wd, requires_grad=True)
    x = cr.Tensor(xd, requires_grad=True)
    b = cr.Tensor(bd, requires_grad=True)
    z = w @ x
    s = z + b
    r = s.relu()
    loss = (r * r).sum()
    loss.backward()

    s_d = wd @ xd + bd
    dr = 2 * np.maximum(s_d, 0)
    ds = dr * (s_d > 0)
    for node, expected in [
        (loss, np.array(1.0)),
        (r, dr),
        (s, ds),
        (z, ds),
        (b, ds),
        (w, np.outer(ds, xd)),
        (x, wd.T @ ds),
    ]:
        np.testing.assert_allclose(node.grad, expected, rtol=1e-13, atol=1e-15)
        assert node.grad.shape == node.data.shape


def test_graph_stays_in_place_after_backward():
    _, out = fanout_tensor()
    before = [(n, n._op, n._parents, n._ctx) for n in iter_graph([out])]
    out.backward()
    after = [(n, n._op, n._parents, n._ctx) for n in iter_graph([out])]
    assert len(before) == len(after)
    for (n0, op0, p0, c0), (n1, op1, p1, c1) in zip(before, after):
        assert n0 is n1 and op0 is op1 and p0 is p1 and c0 is c1


@pytest.mark.parametrize("build", FANOUT)
def test_second_backward_adds_exactly_one_more_copy(build):
    leaves, out = build()
    nodes = grad_nodes(out)
    assert len(nodes) > len(leaves) + 4
    out.backward()
    first = grads_of(nodes)
    out.backward()
    second = grads_of(nodes)
    out.backward()
    third = grads_of(nodes)
    for g1, g2, g3 in zip(first, second, third):
        # Doubling and tripling a float are exact, so these must be equal, not close.
        np.testing.assert_array_equal(g2, 2 * g1)
        np.testing.assert_array_equal(g3, 3 * g1)


@pytest.mark.parametrize("build", FANOUT)
def test_fanout_graphs_match_finite_differences(build):
    """The fan-out graphs above have the right gradients in the first place."""
    leaves, _ = build()
    assert cr.gradcheck(lambda *xs: build_on(build, xs), leaves)


def build_on(build: Callable[[], Any], xs: Any) -> Any:
    """Evaluate the fan-out graph of ``build`` on the inputs ``xs``."""
    if build is fanout_value:
        x, y = xs
        h = x * y
        u = h * h + h
        v = (u * x).tanh()
        return v + u * h + x
    x, w = xs
    h = w * x
    u = h * h + h
    v = (u * x).tanh()
    return (v + u * h).sum() + x.sum()


@pytest.mark.parametrize("build", FANOUT)
def test_zero_grad_and_setting_none_reset_the_sum(build):
    _, out = build()
    nodes = grad_nodes(out)
    out.backward()
    first = grads_of(nodes)
    for i, n in enumerate(nodes):
        if i % 2:
            n.zero_grad()
        else:
            n.grad = None
    assert all(n.grad is None for n in nodes)
    out.backward()
    for g1, g in zip(first, grads_of(nodes)):
        np.testing.assert_array_equal(g, g1)


def test_leaf_grads_are_private_and_intermediate_grads_read_only():
    a = cr.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = cr.Tensor([4.0, 5.0, 6.0], requires_grad=True)
    c = a + b  # add hands the same gradient array to both inputs
    d = c.reshape(3, 1)  # reshape hands back a view of its gradient
    seed = np.array([[1.0], [2.0], [3.0]])
    d.backward(seed)

    # Leaves own their gradients: no memory shared with anything else.
    for leaf in (a, b):
        for other in (a, b, c, d):
            if other is not leaf:
                assert not np.shares_memory(leaf.grad, other.grad)
        assert leaf.grad.flags.writeable
    assert not np.shares_memory(d.grad, seed)

    expected = seed.reshape(3).copy()
    a.grad[0] = 100.0  # changing a leaf's gradient in place touches nothing else
    seed[:] = -7.0
    np.testing.assert_array_equal(b.grad, expected)
    np.testing.assert_array_equal(c.grad, expected)
    np.testing.assert_array_equal(d.grad, expected.reshape(3, 1))

    # Intermediates may share one array with the gradient they handed on, so
    # they are read-only: an in-place change raises instead of corrupting both.
    for node in (c, d):
        with pytest.raises(ValueError, match="read-only"):
            node.grad[0] = 1.0
    d.backward(np.ones((3, 1)))  # a second pass still adds, into new arrays
    np.testing.assert_array_equal(c.grad, expected + 1.0)


@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
def test_the_implicit_seed_is_one_and_never_handed_to_a_leaf(shape):
    x = cr.Tensor(np.full(shape, 3.0), requires_grad=True)
    y = x * 2.0
    y.backward()
    y.backward()  # a second pass adds one more copy of every gradient
    np.testing.assert_array_equal(y.grad, np.full(shape, 2.0))
    np.testing.assert_array_equal(x.grad, np.full(shape, 4.0))
    z = x * 5.0 + x  # add hands its gradient on to a leaf, which must get a copy
    x.grad = None
    z.backward()
    np.testing.assert_array_equal(x.grad, np.full(shape, 6.0))
    assert x.grad.flags.writeable

    leaf = cr.Tensor(np.full(shape, 1.0), requires_grad=True)
    leaf.backward()  # the output is the leaf itself: its gradient must be its own
    leaf.grad += 1.0
    leaf.backward()
    np.testing.assert_array_equal(leaf.grad, np.full(shape, 3.0))
    fresh = cr.Tensor(np.full(shape, 1.0), requires_grad=True) * 1.0
    fresh.backward()
    np.testing.assert_array_equal(fresh.grad, np.ones(shape))  # the shared seed was not changed


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_has_the_dtype_and_shape_of_data(dtype):
    w = cr.Tensor(np.ones((2, 3), dtype=dtype), requires_grad=True)
    b = cr.Tensor(np.ones(3, dtype=dtype), requires_grad=True)  # broadcast over rows
    s = cr.Tensor(np.array(2.0, dtype=dtype), requires_grad=True)  # 0-d, broadcast everywhere
    y = ((w + b) * s).sigmoid().sum()
    y.backward()
    for t in (w, b, s, y):
        assert t.grad.dtype == dtype
        assert t.grad.shape == t.data.shape
    sig = 1 / (1 + np.exp(-4.0))
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(b.grad, np.full(3, 2 * 2 * sig * (1 - sig)), rtol=rtol)


def test_mixed_precision_gradients_come_back_in_each_inputs_dtype():
    a = cr.Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    b = cr.Tensor(np.array([3.0, 4.0], dtype=np.float64), requires_grad=True)
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_array_equal(a.grad, np.array([3.0, 4.0], dtype=np.float32))
    np.testing.assert_array_equal(b.grad, np.array([1.0, 2.0]))


def test_nodes_that_need_no_grad_get_none():
    w = cr.Tensor([1.0, 2.0], requires_grad=True)
    x = cr.Tensor([3.0, 4.0])
    xx = x * x  # needs no grad: not on the gradient's path
    y = (w * xx).sum()
    y.backward()
    assert x.grad is None and xx.grad is None
    np.testing.assert_array_equal(w.grad, [9.0, 16.0])
    c = cr.Value(5.0, requires_grad=False)
    v = cr.Value(2.0)
    (v * c).backward()
    assert c.grad is None and v.grad == 5.0


# ---------------------------------------------------------------------------
# requires_grad propagation
# ---------------------------------------------------------------------------

TENSOR_BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
    "matmul": lambda a, b: a @ b,
    "maximum": cr.maximum,
    "minimum": cr.minimum,
    "where": lambda a, b: cr.where(np.array([True, False]), a, b),
    "concatenate": lambda a, b: cr.concatenate([a, b]),
    "stack": lambda a, b: cr.stack([a, b]),
}


@pytest.mark.parametrize("name", sorted(TENSOR_BINARY))
@pytest.mark.parametrize("ra", [False, True])
@pytest.mark.parametrize("rb", [False, True])
def test_tensor_output_requires_grad_iff_an_input_does(name, ra, rb):
    a = cr.Tensor([1.5, 2.0], requires_grad=ra)
    b = cr.Tensor([0.5, 3.0], requires_grad=rb)
    out = TENSOR_BINARY[name](a, b)
    assert out.requires_grad == (ra or rb)
    if out.requires_grad:
        assert out.op == name
        assert len(out.parents) == 2 and out.parents[0] is a and out.parents[1] is b
    else:
        assert out.is_leaf and out.parents == ()


UNARY = ["exp", "log", "tanh", "sigmoid", "relu", "abs", "sqrt", "sum", "mean", "max", "T"]


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("r", [False, True])
def test_tensor_unary_output_requires_grad_iff_input_does(name, r):
    x = cr.Tensor([[1.5, 2.0], [0.5, 3.0]], requires_grad=r)
    attr = getattr(x, name)
    out = attr if name == "T" else attr()
    assert out.requires_grad == r
    assert out.is_leaf == (not r)


@pytest.mark.parametrize("ra", [False, True])
@pytest.mark.parametrize("rb", [False, True])
def test_value_output_requires_grad_iff_an_input_does(ra, rb):
    a = cr.Value(1.5, requires_grad=ra)
    b = cr.Value(-0.5, requires_grad=rb)
    either = ra or rb
    cases = [
        (a + b, either),
        (a - b, either),
        (a * b, either),
        (a / b, either),
        (a**b, either),
        ((a * b).tanh(), either),
        (a + 1.0, ra),
        (3.0 * b, rb),
        (b**2, rb),
        (2**b, rb),
        (-a, ra),
        (a.exp(), ra),
    ]
    for out, expected in cases:
        assert out.requires_grad == expected
        assert out.is_leaf == (not expected)


def test_leaf_defaults():
    assert cr.Value(1.0).requires_grad  # every Value gets a grad, as in micrograd
    assert not cr.Tensor([1.0]).requires_grad  # Tensors opt in, as in PyTorch
    assert cr.Tensor([1.0]).requires_grad_().requires_grad
    assert not cr.Value(1.0).detach().requires_grad


# ---------------------------------------------------------------------------
# no_grad / enable_grad
# ---------------------------------------------------------------------------


def test_no_grad_context_records_nothing():
    w = cr.Tensor([1.0, 2.0], requires_grad=True)
    v = cr.Value(3.0)
    assert cr.is_grad_enabled()
    with cr.no_grad():
        assert not cr.is_grad_enabled()
        y = (w * 2).sum()
        z = (v * v).tanh()
    assert cr.is_grad_enabled()
    for out in (y, z):
        assert not out.requires_grad and out.is_leaf and out.parents == ()
    np.testing.assert_array_equal(y.data, 6.0)
    assert z.data == math.tanh(9.0)


def test_no_grad_as_a_decorator():
    @cr.no_grad()
    def square(t):
        """Square it."""
        assert not cr.is_grad_enabled()
        return t * t

    w = cr.Tensor([1.0, 2.0], requires_grad=True)
    y = square(w)
    assert not y.requires_grad and y.is_leaf
    assert cr.is_grad_enabled()
    assert square.__name__ == "square" and square.__doc__ == "Square it."
    assert (w * w).requires_grad  # recording is back on outside the function


def test_no_grad_nests_and_restores():
    with cr.no_grad():
        with cr.no_grad():
            assert not cr.is_grad_enabled()
        assert not cr.is_grad_enabled()  # the inner exit restores "off", not "on"
        with cr.enable_grad():
            assert cr.is_grad_enabled()
        assert not cr.is_grad_enabled()
    assert cr.is_grad_enabled()


def test_one_no_grad_instance_can_be_reentered():
    off = cr.no_grad()
    with off:
        with off:
            assert not cr.is_grad_enabled()
        assert not cr.is_grad_enabled()
    assert cr.is_grad_enabled()


def test_enable_grad_inside_no_grad_records():
    w = cr.Value(2.0)
    with cr.no_grad():
        with cr.enable_grad():
            y = w * w
        z = w * w
    assert y.requires_grad and y.op == "mul"
    assert not z.requires_grad
    y.backward()
    assert w.grad == 4.0


def test_enable_grad_as_a_decorator_inside_no_grad():
    @cr.enable_grad()
    def cube(t):
        return t * t * t

    w = cr.Tensor([2.0], requires_grad=True)
    with cr.no_grad():
        y = cube(w)
        assert not cr.is_grad_enabled()
    assert y.requires_grad
    y.backward()
    np.testing.assert_array_equal(w.grad, [12.0])


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(ZeroDivisionError), cr.no_grad():
        1 / 0
    assert cr.is_grad_enabled()

    @cr.no_grad()
    def fail():
        raise KeyError("x")

    with pytest.raises(KeyError):
        fail()
    assert cr.is_grad_enabled()


def test_backward_under_no_grad_still_fills_grads():
    x = cr.Value(3.0)
    y = x * x
    with cr.no_grad():
        y.backward()
        assert not cr.is_grad_enabled()
    assert x.grad == 6.0


# ---------------------------------------------------------------------------
# Parents and traversal order
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "leaf", [lambda: cr.Value(3.0), lambda: cr.Tensor([3.0], requires_grad=True)]
)
def test_a_times_a_has_two_edges(leaf):
    a = leaf()
    c = a * a
    assert type(c._parents) is tuple
    assert len(c.parents) == 2 and c.parents[0] is a and c.parents[1] is a
    c.backward() if isinstance(c, cr.Value) else c.sum().backward()
    np.testing.assert_array_equal(a.grad, 2 * 3.0 * np.ones_like(a.data))


def test_parents_keep_operand_order_and_constants():
    a, b = cr.Value(1.0), cr.Value(2.0)
    d = a - b
    assert d.parents[0] is a and d.parents[1] is b
    e = b - a
    assert e.parents[0] is b and e.parents[1] is a
    f = 2.0 - a  # a constant stays in _parents but is not an edge
    assert f._parents[0] == 2.0 and f._parents[1] is a
    assert len(f.parents) == 1 and f.parents[0] is a
    f.backward()
    assert a.grad == -1.0

    t = cr.Tensor([1.0, 2.0], requires_grad=True)
    g = 5.0 / t
    assert g._parents[0] == 5.0 and g._parents[1] is t


def test_toposort_is_deterministic_and_topological():
    _, out = fanout_tensor()
    first = toposort([out])
    second = toposort([out])
    assert len(first) == len(second)
    assert all(m is n for m, n in zip(first, second))
    assert first[-1] is out
    position = {id(n): i for i, n in enumerate(first)}
    assert len(position) == len(first)  # each node once
    for n in first:
        for p in n.parents:
            if p.requires_grad:
                assert position[id(p)] < position[id(n)]


def test_same_graph_built_twice_sorts_the_same_way():
    orders = []
    for _ in range(2):
        _, out = fanout_value()
        orders.append([(n.op, n.name, n.data) for n in toposort([out])])
    assert orders[0] == orders[1]


# ---------------------------------------------------------------------------
# Reuse of a node
# ---------------------------------------------------------------------------


def test_reuse_adds_gradients_value():
    a = cr.Value(3.0)
    b = a + a
    c = b + b
    c.backward()
    assert (a.grad, b.grad, c.grad) == (4.0, 2.0, 1.0)


def test_reuse_adds_gradients_tensor():
    a = cr.Tensor([[3.0, -1.0], [0.5, 2.0]], requires_grad=True)
    b = a + a
    c = b + b
    c.sum().backward()
    np.testing.assert_array_equal(a.grad, np.full((2, 2), 4.0))
    np.testing.assert_array_equal(b.grad, np.full((2, 2), 2.0))


# ---------------------------------------------------------------------------
# Deep graphs: the traversal is iterative
# ---------------------------------------------------------------------------


@pytest.mark.usefixtures("refcount_only")
def test_million_op_value_chain_has_no_recursion_error():
    n = 1_000_000
    x0 = cr.Value(0.5)
    x = x0
    for _ in range(n // 2):
        x = -x
    mid = x
    for _ in range(n - n // 2):
        x = -x
    x.backward()
    # d(-x)/dx = -1 at each of the steps between a node and the output.
    assert x0.grad == (-1.0) ** n
    assert mid.grad == (-1.0) ** (n - n // 2)
    assert x.data == 0.5 * (-1.0) ** n


@pytest.mark.usefixtures("refcount_only")
def test_hundred_thousand_op_tensor_chain():
    n = 100_000
    c = 1.0 + 1e-6
    x0 = cr.Tensor(np.array(0.5), requires_grad=True)
    x = x0
    for _ in range(n):
        x = x * c
    x.backward()
    assert x0.grad.shape == () and x0.grad.dtype == np.float64
    np.testing.assert_allclose(x0.grad, c**n, rtol=1e-9)


# ---------------------------------------------------------------------------
# The 2-2-2 network, against the chain rule written out by hand
# ---------------------------------------------------------------------------

I1, I2 = 0.05, 0.10
W = {"w1": 0.15, "w2": 0.20, "w3": 0.25, "w4": 0.30, "w5": 0.40, "w6": 0.45, "w7": 0.50, "w8": 0.55}
B1, B2 = 0.35, 0.60
T1, T2 = 0.01, 0.99


def logistic(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def hand_network() -> tuple[dict[str, float], dict[str, float]]:
    """Forward figures and gradients of the 2-2-2 network with the delta rule, in floats."""
    w1, w2, w3, w4, w5, w6, w7, w8 = W.values()
    net_h1 = w1 * I1 + w2 * I2 + B1
    net_h2 = w3 * I1 + w4 * I2 + B1
    out_h1, out_h2 = logistic(net_h1), logistic(net_h2)
    net_o1 = w5 * out_h1 + w6 * out_h2 + B2
    net_o2 = w7 * out_h1 + w8 * out_h2 + B2
    out_o1, out_o2 = logistic(net_o1), logistic(net_o2)
    e = 0.5 * (T1 - out_o1) ** 2 + 0.5 * (T2 - out_o2) ** 2
    forward = {
        "net_h1": net_h1,
        "net_h2": net_h2,
        "out_h1": out_h1,
        "out_h2": out_h2,
        "net_o1": net_o1,
        "net_o2": net_o2,
        "out_o1": out_o1,
        "out_o2": out_o2,
        "E": e,
    }

    # delta = dE/dnet for each neuron: the output error times the logistic slope,
    # then sent back through the weights to the hidden layer.
    d_o1 = (out_o1 - T1) * out_o1 * (1 - out_o1)
    d_o2 = (out_o2 - T2) * out_o2 * (1 - out_o2)
    d_h1 = (d_o1 * w5 + d_o2 * w7) * out_h1 * (1 - out_h1)
    d_h2 = (d_o1 * w6 + d_o2 * w8) * out_h2 * (1 - out_h2)
    grads = {
        "w1": d_h1 * I1,
        "w2": d_h1 * I2,
        "w3": d_h2 * I1,
        "w4": d_h2 * I2,
        "w5": d_o1 * out_h1,
        "w6": d_o1 * out_h2,
        "w7": d_o2 * out_h1,
        "w8": d_o2 * out_h2,
        "b1": d_h1 + d_h2,  # the bias is shared by both neurons of the layer
        "b2": d_o1 + d_o2,
        "i1": d_h1 * w1 + d_h2 * w3,
        "i2": d_h1 * w2 + d_h2 * w4,
        "net_h1": d_h1,
        "net_h2": d_h2,
        "net_o1": d_o1,
        "net_o2": d_o2,
        "out_o1": out_o1 - T1,
        "out_o2": out_o2 - T2,
    }
    return forward, grads


def test_two_two_two_network_with_values():
    fwd, grads = hand_network()
    i1, i2 = cr.Value(I1), cr.Value(I2)
    w = {k: cr.Value(v, name=k) for k, v in W.items()}
    b1, b2 = cr.Value(B1), cr.Value(B2)
    net_h1 = w["w1"] * i1 + w["w2"] * i2 + b1
    net_h2 = w["w3"] * i1 + w["w4"] * i2 + b1
    out_h1, out_h2 = net_h1.sigmoid(), net_h2.sigmoid()
    net_o1 = w["w5"] * out_h1 + w["w6"] * out_h2 + b2
    net_o2 = w["w7"] * out_h1 + w["w8"] * out_h2 + b2
    out_o1, out_o2 = net_o1.sigmoid(), net_o2.sigmoid()
    e = 0.5 * (T1 - out_o1) ** 2 + 0.5 * (T2 - out_o2) ** 2
    e.backward()

    nodes = {
        "net_h1": net_h1,
        "net_h2": net_h2,
        "out_h1": out_h1,
        "out_h2": out_h2,
        "net_o1": net_o1,
        "net_o2": net_o2,
        "out_o1": out_o1,
        "out_o2": out_o2,
        "E": e,
    }
    for k, v in fwd.items():
        assert nodes[k].data == pytest.approx(v, rel=0, abs=1e-12), k
    nodes.update(w, b1=b1, b2=b2, i1=i1, i2=i2)
    for k, g in grads.items():
        assert nodes[k].grad == pytest.approx(g, rel=0, abs=1e-12), k


def test_two_two_two_network_with_tensors():
    fwd, grads = hand_network()
    x = cr.Tensor([I1, I2], requires_grad=True)
    w1 = cr.Tensor([[W["w1"], W["w2"]], [W["w3"], W["w4"]]], requires_grad=True)
    w2 = cr.Tensor([[W["w5"], W["w6"]], [W["w7"], W["w8"]]], requires_grad=True)
    b1 = cr.Tensor(B1, requires_grad=True)  # one number, broadcast to both neurons
    b2 = cr.Tensor(B2, requires_grad=True)
    target = cr.Tensor([T1, T2])
    net_h = w1 @ x + b1
    out_h = net_h.sigmoid()
    net_o = w2 @ out_h + b2
    out_o = net_o.sigmoid()
    e = 0.5 * ((target - out_o) ** 2).sum()
    e.backward()

    def close(actual: Any, expected: list[float]) -> None:
        np.testing.assert_allclose(actual, np.array(expected), rtol=0, atol=1e-12)

    close(net_h.data, [fwd["net_h1"], fwd["net_h2"]])
    close(out_h.data, [fwd["out_h1"], fwd["out_h2"]])
    close(net_o.data, [fwd["net_o1"], fwd["net_o2"]])
    close(out_o.data, [fwd["out_o1"], fwd["out_o2"]])
    close(e.data, fwd["E"])

    g = grads
    close(w1.grad, [[g["w1"], g["w2"]], [g["w3"], g["w4"]]])
    close(w2.grad, [[g["w5"], g["w6"]], [g["w7"], g["w8"]]])
    assert b1.grad.shape == () and b2.grad.shape == ()
    close(b1.grad, g["b1"])
    close(b2.grad, g["b2"])
    close(x.grad, [g["i1"], g["i2"]])
    close(net_h.grad, [g["net_h1"], g["net_h2"]])
    close(net_o.grad, [g["net_o1"], g["net_o2"]])
    close(out_o.grad, [g["out_o1"], g["out_o2"]])


# ---------------------------------------------------------------------------
# Memory: the graph holds no reference cycles
# ---------------------------------------------------------------------------


def _value_graph() -> tuple[list[cr.Value], cr.Value, list[weakref.ref[Any]]]:
    leaves, out = fanout_value()
    refs = [weakref.ref(n) for n in iter_graph([out]) if not n.is_leaf]
    return leaves, out, refs


def _tensor_graph() -> tuple[list[cr.Tensor], cr.Tensor, list[weakref.ref[Any]]]:
    leaves, out = fanout_tensor()
    refs = [weakref.ref(n) for n in iter_graph([out]) if not n.is_leaf]
    return leaves, out, refs


@pytest.mark.parametrize("build", [_value_graph, _tensor_graph], ids=["Value", "Tensor"])
@pytest.mark.parametrize("run_backward", [False, True], ids=["forward", "backward"])
@pytest.mark.usefixtures("refcount_only")
def test_graph_is_freed_by_reference_counting(build, run_backward):
    leaves, out, refs = build()
    assert len(refs) > 5 and all(r() is not None for r in refs)
    if run_backward:
        out.backward()
    del out
    assert all(r() is None for r in refs)
    assert all(leaf.data is not None for leaf in leaves)
    if run_backward:
        assert all(leaf.grad is not None for leaf in leaves)


def _fields(node):
    """Every slot of a node but its stamp and trace, as the node holds it."""
    names = {n for cls in type(node).__mro__ for n in getattr(cls, "__slots__", ())}
    return {n: getattr(node, n, "<unset>") for n in names - {"__weakref__", "_seq", "_trace"}}


@pytest.mark.parametrize("mode", ["plain", "no_grad", "scope", "anomaly", "constant"])
def test_value_arithmetic_sets_up_nodes_exactly_as_init_node_does(mode):
    """The Value arithmetic ops write init_node's set-up out for speed; they must agree."""
    from contextlib import ExitStack

    from chainrule.engine import init_node
    from chainrule.modes import scope

    a = cr.Value(1.5, requires_grad=mode != "constant")
    b = cr.Value(-2.0, requires_grad=False)
    cases = [
        (lambda: a * b, cr.OPS["mul"], (a, b)),
        (lambda: a + 2.0, cr.OPS["add"], (a, 2.0)),
        (lambda: 3.0 - a, cr.OPS["sub"], (3.0, a)),
        (lambda: a**2, cr.OPS["pow"], (a, 2)),
    ]
    with ExitStack() as stack:
        if mode == "no_grad":
            stack.enter_context(cr.no_grad())
        elif mode == "scope":
            stack.enter_context(scope("net.layer"))
        elif mode == "anomaly":
            stack.enter_context(cr.detect_anomaly())
        for make, op, parents in cases:
            made = make()
            reference = init_node(
                object.__new__(cr.Value), made.data, op, parents, None, a.requires_grad
            )
            got, want = _fields(made), _fields(reference)
            assert got.keys() == want.keys()
            for name in want:
                if name == "_parents":
                    assert len(got[name]) == len(want[name])
                    assert all(x is y for x, y in zip(got[name], want[name])), name
                else:
                    assert got[name] == want[name] or got[name] is want[name], (mode, name)
