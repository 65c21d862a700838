"""Every op in the rule table has a forward rule (a JVP), checked on its own.

``op.jvps[i](t, out, ctx, *inputs)`` is input ``i``'s part of the output's
tangent when that input moves along ``t``.  For every op node built by the
cases of ``test_rule_table`` (several shapes, broadcasting included), and
every operand that requires grad, these tests check:

* the JVP against central differences of the op's forward in float64;
* that it is the transpose of the op's VJP: ``<u, J v> = <J^T u, v>``;
* that on graph nodes it records a node with the same numbers, whose own
  gradient is the VJP again, and which gradcheck finds right in every operand
  (forward-over-reverse differentiates it);
* for the ops a Value records, that on Python floats it gives the numbers it
  gives on arrays, IEEE 754 infinities and NaNs included, without raising.

The forward of each op is written out below from its ``ctx`` alone, with
numpy: an op added to the table without one fails here by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from test_rule_table import REGISTRY, VALUE_CASES, Case

import chainrule as cr
from chainrule.engine import iter_graph, operand_data, vjp
from chainrule.numerics import quiet

# -- the forward of each op, from its operands and ctx ------------------------


def _softmax(x: np.ndarray, axis: Any) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, axis: Any) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _logsumexp(x: np.ndarray, ctx: Any) -> np.ndarray:
    axis, keepdims = ctx
    m = x.max(axis=axis, keepdims=True)
    r = m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))
    return r if keepdims else r.squeeze(axis=axis)


def _scatter(x: np.ndarray, shape: tuple[int, ...], index: Any) -> np.ndarray:
    out = np.zeros(shape)
    np.add.at(out, index, x)
    return out


def _setitem(base: Any, v: Any, index: Any) -> np.ndarray:
    out = np.array(base, dtype=np.float64)
    out[index] = v
    return out


def _cross_entropy(x: np.ndarray, ctx: Any) -> np.ndarray:
    # The loss from what the node keeps: the weighted negative log-probability
    # of each target class, per sample ('none') or summed ('sum'; 'mean' has
    # the 1/total inside its coefficients).
    axis, _, onehot, coef, per_sample = ctx
    return -np.sum(coef * onehot * _log_softmax(x, axis), axis=axis if per_sample else None)


#: name -> forward(inputs, ctx, out): the op's output for the operands ``inputs``.
FORWARD: dict[str, Callable[[list[Any], Any, np.ndarray], Any]] = {
    "add": lambda xs, ctx, out: xs[0] + xs[1],
    "sub": lambda xs, ctx, out: xs[0] - xs[1],
    "mul": lambda xs, ctx, out: xs[0] * xs[1],
    "div": lambda xs, ctx, out: xs[0] / xs[1],
    "pow": lambda xs, ctx, out: np.power(xs[0], xs[1]),
    "neg": lambda xs, ctx, out: -xs[0],
    "exp": lambda xs, ctx, out: np.exp(xs[0]),
    "log": lambda xs, ctx, out: np.log(xs[0]),
    "tanh": lambda xs, ctx, out: np.tanh(xs[0]),
    "sigmoid": lambda xs, ctx, out: 1.0 / (1.0 + np.exp(-xs[0])),
    "relu": lambda xs, ctx, out: np.maximum(xs[0], 0.0),
    "softplus": lambda xs, ctx, out: np.logaddexp(0.0, xs[0]),
    "abs": lambda xs, ctx, out: np.abs(xs[0]),
    "sqrt": lambda xs, ctx, out: np.sqrt(xs[0]),
    "clip": lambda xs, ctx, out: np.clip(xs[0], ctx[0], ctx[1]),
    "maximum": lambda xs, ctx, out: np.maximum(xs[0], xs[1]),
    "minimum": lambda xs, ctx, out: np.minimum(xs[0], xs[1]),
    "where": lambda xs, ctx, out: np.where(ctx, xs[0], xs[1]),
    # The identity on values: compared in float64 (the JVP's dtype is checked apart).
    "astype": lambda xs, ctx, out: np.asarray(xs[0], dtype=np.float64),
    "matmul": lambda xs, ctx, out: xs[0] @ xs[1],
    "sum": lambda xs, ctx, out: xs[0].sum(axis=ctx[0], keepdims=ctx[1]),
    "mean": lambda xs, ctx, out: xs[0].mean(axis=ctx[0], keepdims=ctx[1]),
    "max": lambda xs, ctx, out: xs[0].max(axis=ctx[0], keepdims=ctx[1]),
    "reshape": lambda xs, ctx, out: xs[0].reshape(out.shape),
    "transpose": lambda xs, ctx, out: xs[0].transpose(ctx),
    "broadcast_to": lambda xs, ctx, out: np.broadcast_to(xs[0], out.shape),
    "getitem": lambda xs, ctx, out: xs[0][ctx],
    "scatter": lambda xs, ctx, out: _scatter(xs[0], *ctx),
    "setitem": lambda xs, ctx, out: _setitem(xs[0], xs[1], ctx),
    "concatenate": lambda xs, ctx, out: np.concatenate(xs, axis=ctx[0]),
    "stack": lambda xs, ctx, out: np.stack(xs, axis=ctx),
    "logsumexp": lambda xs, ctx, out: _logsumexp(xs[0], ctx),
    "softmax": lambda xs, ctx, out: _softmax(xs[0], ctx),
    "log_softmax": lambda xs, ctx, out: _log_softmax(xs[0], ctx),
    "cross_entropy": lambda xs, ctx, out: _cross_entropy(xs[0], ctx),
    "erf": lambda xs, ctx, out: np.vectorize(math.erf)(xs[0]),
    "sin": lambda xs, ctx, out: np.sin(xs[0]),
    "cos": lambda xs, ctx, out: np.cos(xs[0]),
    "exp2": lambda xs, ctx, out: 2.0 ** xs[0],
    "log2": lambda xs, ctx, out: np.log(xs[0]) / np.log(2.0),
    "log1p": lambda xs, ctx, out: np.log1p(xs[0]),
    "expm1": lambda xs, ctx, out: np.expm1(xs[0]),
    "clone": lambda xs, ctx, out: np.array(xs[0]),
    "cumsum": lambda xs, ctx, out: np.cumsum(xs[0], axis=ctx),
    "prod": lambda xs, ctx, out: xs[0].prod(axis=ctx[0], keepdims=ctx[1]),
    "norm": lambda xs, ctx, out: np.sqrt((xs[0] ** 2).sum(axis=ctx[0], keepdims=ctx[1])),
}


# -- helpers ------------------------------------------------------------------


def combine(contributions: list[Any], shape: tuple[int, ...]) -> np.ndarray:
    """The output's tangent: the inputs' contributions added up, broadcast to its shape."""
    total: Any = 0.0
    for c in contributions:
        total = total + np.asarray(c, dtype=np.float64)
    return np.broadcast_to(total, shape)


def _jvp(op: cr.Op, i: int, t: Any, out: Any, ctx: Any, args: Any) -> Any:
    with quiet():
        return op.jvps[i](t, out, ctx, *args)


def _op_nodes(name: str, case: Case) -> list[cr.Node]:
    """The nodes of op ``name`` in the graph ``case`` builds, in a fixed order."""
    with cr.enable_grad():
        result = case.fn(*case.inputs)
    outs = list(result) if isinstance(result, (tuple, list)) else [result]
    nodes = [n for n in iter_graph(outs) if n._op is cr.OPS[name]]
    assert nodes, f"{name} [{case.label}]: the graph has no {name} node"
    return nodes


def _cases(name: str) -> list[Case]:
    rng = np.random.default_rng(sorted(REGISTRY).index(name))
    return REGISTRY[name].cases(rng)


def _edges(name: str) -> list[tuple[str, cr.Node, int]]:
    """(label, node, i) for every operand ``i`` that requires grad of every ``name`` node."""
    edges = []
    for case in _cases(name):
        for k, node in enumerate(_op_nodes(name, case)):
            for i, p in enumerate(node._parents):
                if isinstance(p, cr.Node) and p.requires_grad:
                    edges.append((f"{name} [{case.label}, node {k}, input {i}]", node, i))
    assert edges, f"{name}: no case has an operand that requires grad"
    return edges


# -- the tests ----------------------------------------------------------------


def test_every_op_in_the_table_has_a_jvp_and_a_forward_here() -> None:
    no_jvp = sorted(n for n, op in cr.OPS.items() if getattr(op, "jvps", None) is None)
    assert not no_jvp, f"ops in chainrule.OPS with no JVP: {no_jvp}"
    missing = sorted(set(cr.OPS) - set(FORWARD))
    assert not missing, f"ops in chainrule.OPS with no forward in {__name__}: {missing}"
    unknown = sorted(set(FORWARD) - set(cr.OPS))
    assert not unknown, f"{__name__} has forwards for ops chainrule.OPS lacks: {unknown}"


def test_an_op_without_a_jvp_is_refused() -> None:
    with pytest.raises(ValueError, match="'nojvp' needs jvps"):
        cr.Op("nojvp", "f(a)", (lambda g, out, ctx, a: g,), ("1",), "no JVP")
    with pytest.raises(ValueError, match="'nojvp' needs jvps with one JVP per input"):
        cr.Op(
            "nojvp",
            "f(a, b)",
            (lambda g, out, ctx, a, b: g, lambda g, out, ctx, a, b: g),
            ("1", "1"),
            "one JVP short",
            jvps=(lambda t, out, ctx, a, b: t,),
        )
    with pytest.raises(ValueError, match="'nojvp' takes any number of inputs, so it needs njvp"):
        cr.Op("nojvp", "f(*xs)", None, ("1",), "no JVP", nvjp=lambda i, g, out, ctx, *xs: g)
    assert "nojvp" not in cr.OPS


@pytest.mark.parametrize("name", sorted(cr.OPS))
def test_jvp_matches_central_differences(name: str) -> None:
    op = cr.OPS[name]
    assert getattr(op, "jvps", None) is not None, f"{name} has no JVP"
    forward = FORWARD[name]
    rng = np.random.default_rng(1)
    for label, node, i in _edges(name):
        args = list(operand_data(node._parents))
        out = node.data
        x = np.asarray(args[i], dtype=np.float64)
        v = rng.standard_normal(x.shape)
        t = v.astype(args[i].dtype)
        got = _jvp(op, i, t, out, node._ctx, args)
        assert np.broadcast_shapes(np.shape(got), out.shape) == out.shape, (
            f"{label}: the JVP has shape {np.shape(got)}, which does not broadcast to the "
            f"output's {out.shape}"
        )
        if name == "astype":
            assert np.asarray(got).dtype == out.dtype, f"{label}: the JVP is not {out.dtype}"
        eps = 1e-6 if name != "astype" else 1e-2
        ahead, behind = ([*args[:i], x + s * eps * v, *args[i + 1 :]] for s in (1.0, -1.0))
        with quiet():
            numeric = (forward(ahead, node._ctx, out) - forward(behind, node._ctx, out)) / (2 * eps)
        analytic = combine([got], out.shape)
        assert np.allclose(analytic, numeric, rtol=1e-5, atol=1e-6), (
            f"{label}: JVP {analytic} but central differences give {numeric}"
        )


@pytest.mark.parametrize("name", sorted(cr.OPS))
def test_jvp_is_the_transpose_of_the_vjp(name: str) -> None:
    op = cr.OPS[name]
    rng = np.random.default_rng(2)
    for label, node, i in _edges(name):
        args = list(operand_data(node._parents))
        x = args[i]
        v = rng.standard_normal(np.shape(x)).astype(x.dtype)
        u = rng.standard_normal(node.shape).astype(node.dtype)
        jv = combine([_jvp(op, i, v, node.data, node._ctx, args)], node.shape)
        jtu = np.asarray(vjp(node, i, u), dtype=np.float64)
        assert jtu.shape == np.shape(x), label
        left = float(np.sum(u * jv))
        right = float(np.sum(jtu * v))
        tol = 1e-5 if np.float32 in (x.dtype, node.dtype) else 1e-10
        assert np.isclose(left, right, rtol=tol, atol=tol), (
            f"{label}: <u, J v> = {left} but <J^T u, v> = {right}"
        )


@pytest.mark.parametrize("name", sorted(cr.OPS))
def test_jvp_on_graph_nodes(name: str) -> None:
    """On nodes the JVP records a node: same numbers, and backward through it is the VJP."""
    op = cr.OPS[name]
    rng = np.random.default_rng(3)
    for label, node, i in _edges(name):
        args = list(operand_data(node._parents))
        t = rng.standard_normal(np.shape(args[i])).astype(args[i].dtype)
        want = _jvp(op, i, t, node.data, node._ctx, args)
        tangent = cr.Tensor(t, requires_grad=True)
        with cr.enable_grad():
            got = _jvp(op, i, tangent, node, node._ctx, node._parents)
            assert isinstance(got, cr.Tensor), f"{label}: on nodes the JVP gave {type(got)}"
            assert np.allclose(got.data, want, rtol=1e-12, atol=1e-14), (
                f"{label}: on nodes {got.data}, on arrays {want}"
            )
            # Raw tangent, node operands (a constant direction through a recorded graph).
            mixed = _jvp(op, i, t, node, node._ctx, node._parents)
            mixed_data = mixed.data if isinstance(mixed, cr.Node) else mixed
            assert np.allclose(mixed_data, want, rtol=1e-12, atol=1e-14), label
            u = rng.standard_normal(node.shape).astype(node.dtype)
            (back,) = cr.grad((got.broadcast_to(node.shape) * cr.Tensor(u)).sum(), tangent)
        expected = vjp(node, i, u)
        assert np.allclose(back.data, expected, rtol=1e-5, atol=1e-10), (
            f"{label}: backward through the JVP gives {back.data}, the VJP {expected}"
        )


@pytest.mark.parametrize("name", sorted(cr.OPS))
def test_jvp_on_nodes_differentiates_in_every_operand(name: str) -> None:
    """gradcheck of the recorded JVP as a function of the case's inputs and the tangent."""
    op = cr.OPS[name]
    rng = np.random.default_rng(4)
    for case in _cases(name):
        count = len(_op_nodes(name, case))
        for k in range(count):
            node = _op_nodes(name, case)[k]
            for i, p in enumerate(node._parents):
                if not (isinstance(p, cr.Node) and p.requires_grad and p.dtype == np.float64):
                    continue
                tangent = cr.Tensor(rng.standard_normal(p.shape), requires_grad=True)

                def fn(*xs: Any, case: Case = case, k: int = k, i: int = i) -> Any:
                    *leaves, t = xs
                    with cr.enable_grad():
                        result = case.fn(*leaves)
                        outs = list(result) if isinstance(result, (tuple, list)) else [result]
                        n = [m for m in iter_graph(outs) if m._op is op][k]
                        with quiet():
                            return op.jvps[i](t, n, n._ctx, *n._parents)

                try:
                    cr.gradcheck(fn, [*case.inputs, tangent], eps=case.eps)
                except cr.GradcheckError as e:
                    label = f"{name} [{case.label}, node {k}, input {i}]"
                    raise AssertionError(f"{label}: {e}") from None


# -- Value: the same rules on Python floats ------------------------------------

#: Points where a float rule meets IEEE 754 infinities or NaNs (Python would raise).
EDGE_VALUE_CASES: dict[str, list[tuple[Callable[..., Any], tuple[float, ...]]]] = {
    "div": [(lambda a, b: a / b, (1.5, 0.0)), (lambda a, b: a / b, (0.0, 0.0))],
    "log": [(lambda a: a.log(), (0.0,))],
    "pow": [
        (lambda a, b: a**b, (0.0, -1.0)),
        (lambda a, b: a**b, (0.0, 0.0)),
        (lambda a, b: a**b, (0.0, 2.0)),
        (lambda a, b: a**b, (-2.0, 0.5)),
    ],
    "exp": [(lambda a: a.exp(), (800.0,))],
    "relu": [(lambda a: a.relu(), (0.0,))],
    "sqrt": [(lambda a: a.sqrt(), (0.0,)), (lambda a: a.sqrt(), (-1.0,))],
    "abs": [(lambda a: a.abs(), (0.0,))],
}


@pytest.mark.parametrize("name", sorted(VALUE_CASES))
def test_value_jvp_on_floats_equals_the_array_jvp(name: str) -> None:
    op = cr.OPS[name]
    for fn, at in VALUE_CASES[name] + EDGE_VALUE_CASES.get(name, []):
        xs = [cr.Value(x, requires_grad=True) for x in at]
        nodes = [n for n in iter_graph([fn(*xs)]) if n._op is op]
        assert nodes, (name, at)
        for node in nodes:
            args = operand_data(node._parents)
            for i, p in enumerate(node._parents):
                if not isinstance(p, cr.Node):
                    continue
                for t in (0.75, -1.25, 0.0):
                    got = op.jvps[i](t, node.data, node._ctx, *args)  # raises nothing
                    assert type(got) is float, f"Value {name} at {at}: gave {type(got)}"
                    arrays = [np.asarray(a, dtype=np.float64) for a in args]
                    want = _jvp(op, i, np.asarray(t), np.asarray(node.data), node._ctx, arrays)
                    assert np.array_equal(got, want, equal_nan=True), (
                        f"Value {name} at {at}, input {i}, tangent {t}: "
                        f"float JVP {got}, array JVP {want}"
                    )
                    # On Value nodes (forward-over-reverse): a node with the same number.
                    with cr.enable_grad():
                        on_nodes = op.jvps[i](
                            cr.Value(t, requires_grad=True), node, node._ctx, *node._parents
                        )
                    assert isinstance(on_nodes, cr.Value), (name, at)
                    assert np.array_equal(on_nodes.data, got, equal_nan=True), (
                        f"Value {name} at {at}: on nodes {on_nodes.data}, on floats {got}"
                    )
