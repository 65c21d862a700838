"""The chain rule, spelled out: every path from an output back to one input.

Reverse-mode autodiff computes ``d output / d leaf`` without ever listing the
paths through the graph, but the number it finds is exactly this sum::

    d output / d leaf  =   sum over paths p   product over edges e of p   local(e)

where a *path* runs from ``output`` back to ``leaf`` through the operations
that made each value, and ``local(e)`` is the local derivative of an op's
output with respect to the operand on that edge (a number from the derivative
table in :mod:`chainrule.rules`).  :func:`explain` lists those paths, the
factors on them, their products and the sum, and checks the sum against the
engine's own gradient.

For a Tensor graph the same holds element by element: a path runs from one
output element back to one element of the leaf, and each edge's factor is one
entry ``d out[j] / d in[i]`` of the op's local Jacobian.

>>> import chainrule as cr
>>> x = cr.Value(0.5, name="x")
>>> y = x * x
>>> y.name = "y"
>>> e = cr.explain(y, x)
>>> e.count, e.total
(2, 1.0)
>>> [p.product for p in e.paths]
[0.5, 0.5]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine import Node, iter_graph, vjp
from .engine import grad as autodiff_grad
from .naming import graph_names, name_of
from .numerics import quiet
from .value import Value

#: Listing stops here; larger explanations report only the count of paths.
MAX_PATHS = 200
#: At most this many (node, element) pairs are analysed for a Tensor graph.
MAX_ELEMENTS = 20_000

Index = tuple[int, ...]


@dataclass(frozen=True)
class Step:
    """One edge of a path: ``child = op(..., parent, ...)``, read backwards.

    Attributes:
        child: the value the op computed (nearer the output).
        parent: the operand (nearer the leaf).
        operand: the position of ``parent`` among the op's operands.
        op: the op's name.
        formula: the local derivative as text, e.g. ``d sigmoid(x)/dx = s(1-s)``.
        local: its value here, ``d child[child_index] / d parent[parent_index]``.
        child_index, parent_index: element positions (``()`` for scalars).
    """

    child: Node
    parent: Node
    operand: int
    op: str
    formula: str
    local: float
    child_index: Index = ()
    parent_index: Index = ()


@dataclass(frozen=True)
class Path:
    """A path from the output to the leaf: its steps (output first) and their product."""

    steps: tuple[Step, ...]
    product: float


@dataclass
class Explanation:
    """The result of :func:`explain`.

    Attributes:
        output, leaf: the two ends; ``output_index`` and ``leaf_index`` name the
            elements for Tensors (``()`` for Values).
        count: the number of paths (counted, even when too many to list).
        paths: every path, or empty when ``count`` exceeds the listing limit
            (``truncated`` is then True).
        edges: every edge that lies on at least one path, with its local
            derivative (also when the paths are not listed).
        total: the sum over paths of the products, computed edge by edge
            (from the output down, in the backward pass's order).
        autodiff: the engine's gradient of the same element, for comparison.
        matches: whether ``total`` and ``autodiff`` agree to rounding (see
            :func:`agree`); an inf or nan on both sides is agreement.
        tolerance: the relative tolerance of that check, set by the least
            precise dtype on the paths (see :func:`tolerance`).

    Arithmetic follows IEEE 754, as ``backward()`` does: a local derivative
    may be inf or nan (``d log(x)/dx`` at 0), and so may products and sums.
    """

    output: Node
    leaf: Node
    output_index: Index
    leaf_index: Index
    count: int
    paths: list[Path]
    edges: list[Step]
    total: float
    autodiff: float
    matches: bool
    truncated: bool
    labels: dict[int, str] = field(default_factory=dict, repr=False)
    tolerance: float = 1e-9

    def label(self, node: Node, index: Index = ()) -> str:
        """How a node (or one of its elements) is named in the table."""
        base = name_of(node, self.labels)
        if index and node.shape:
            base += "[" + ", ".join(str(i) for i in index) + "]"
        return base

    def __str__(self) -> str:
        out = self.label(self.output, self.output_index)
        leaf = self.label(self.leaf, self.leaf_index)
        verdict = "they match" if self.matches else "MISMATCH"
        if self.matches and self.tolerance > 1e-9:
            verdict += f" within {'float32' if self.tolerance <= 1e-4 else 'float16'} rounding"
        lines = [
            f"d {out} / d {leaf}: {self.count} path{'s' if self.count != 1 else ''} "
            f"from {out} back to {leaf}",
        ]
        if self.truncated:
            lines.append(
                f"  ({self.count} paths are too many to list; the sum below is computed "
                "edge by edge over the same paths)"
            )
        for n, path in enumerate(self.paths, 1):
            lines.append("")
            lines.append(f"path {n} of {self.count}")
            rows = [("edge", "op", "local derivative", "value")]
            for s in path.steps:
                rows.append(
                    (
                        f"{self.label(s.child, s.child_index)} <- "
                        f"{self.label(s.parent, s.parent_index)}",
                        s.op,
                        s.formula,
                        _number_text(s.local),
                    )
                )
            widths = [max(len(r[c]) for r in rows) for c in range(4)]
            for r in rows:
                lines.append("  " + "  ".join(r[c].ljust(widths[c]) for c in range(4)).rstrip())
            lines.append(f"  product along the path = {_number_text(path.product)}")
        lines.append("")
        if self.paths:
            terms = _number_text(self.paths[0].product) + "".join(
                f" - {_number_text(-p.product)}"
                if p.product < 0
                else f" + {_number_text(p.product)}"
                for p in self.paths[1:]
            )
            if len(self.paths) > 1:
                lines.append(f"sum over paths = {terms} = {_number_text(self.total)}")
            else:
                lines.append(f"sum over paths = {_number_text(self.total)}")
        else:
            lines.append(f"sum over paths = {_number_text(self.total)}")
        lines.append(f"autodiff gradient = {_number_text(self.autodiff)} ({verdict})")
        if not (math.isfinite(self.total) and math.isfinite(self.autodiff)):
            lines.append(self._non_finite_note())
        return "\n".join(lines)

    def _non_finite_note(self) -> str:
        """Where an inf or nan comes from, in words."""
        if not self.matches and math.isfinite(self.total):
            # Every path is finite, so the engine's inf or nan comes from
            # elsewhere: it computes vector-Jacobian products of whole arrays,
            # and the zero gradient of an element off these paths times an
            # infinite local derivative is 0 * inf = nan (as in PyTorch).
            return (
                f"(every path is finite; backward() gives {_number_text(self.autodiff)} because it "
                "multiplies the zero gradient of elements off these paths by an infinite or "
                "nan local derivative, and 0 * inf = nan under IEEE 754)"
            )
        for s in self.edges:
            if not math.isfinite(s.local):
                local = _number_text(s.local)
                return (
                    f"({local} comes from the edge {self.label(s.child, s.child_index)} "
                    f"<- {self.label(s.parent, s.parent_index)}: {s.formula} is {local} "
                    "here; products and sums follow IEEE 754, as backward() does)"
                )
        return (
            "(the products and sums overflow or meet an inf or nan; they follow IEEE 754, "
            "as backward() does)"
        )

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def _number_text(x: float) -> str:
    """A number as the table prints it: nine significant digits."""
    return f"{x:.9g}"


_UNARY_SYMBOLS = ("neg", "astype")


def formula_text(op: Any, i: int, arity: int) -> str:
    """The local derivative of ``op`` with respect to operand ``i``, as a sentence.

    >>> from chainrule.rules import OPS
    >>> formula_text(OPS["sigmoid"], 0, 1)
    'd sigmoid(x)/dx = s(1-s)'
    >>> formula_text(OPS["mul"], 1, 2)
    'd(a * b)/db = a'
    """
    symbol = op.symbol
    if op.variadic:
        var = f"xs[{i}]"
        expr = f"d {symbol}/d{var}"
    elif arity == 1:
        var = "a" if ("x" not in symbol and "a" in symbol) else "x"
        if symbol.startswith(op.name + "("):
            expr = f"d {symbol}/d{var}"
        elif op.elementwise and op.name not in _UNARY_SYMBOLS:
            expr = f"d {op.name}({var})/d{var}"
        else:
            expr = f"d({symbol})/d{var}"
    else:
        var = op.operands[i] if op.operands else "ab"[i] if i < 2 else f"x{i}"
        expr = f"d {symbol}/d{var}" if symbol.startswith(op.name + "(") else f"d({symbol})/d{var}"
    return f"{expr} = {op.formula(i)}"


# ---------------------------------------------------------------------------
# The element graph.  An element is (node, flat index); a Value has one element.
# ---------------------------------------------------------------------------

_Edge = tuple[int, Node, int, float]  # operand position, parent, parent flat index, local


def _is_array(node: Node) -> bool:
    return isinstance(node.data, np.ndarray)


def _broadcast_source(j: int, out_shape: Index, in_shape: Index) -> int:
    """The flat index of the input element that broadcasting copied to output ``j``."""
    if not in_shape:
        return 0
    multi = np.unravel_index(j, out_shape) if out_shape else ()
    lead = len(out_shape) - len(in_shape)
    src = tuple(0 if n == 1 else multi[lead + k] for k, n in enumerate(in_shape))
    return int(np.ravel_multi_index(src, in_shape))


def _element_edges(node: Node, j: int, keep: set[int]) -> list[_Edge]:
    """The edges from element ``j`` of ``node`` to elements of its operands in ``keep``.

    The local derivative ``d node[j] / d parent[k]`` is the op's VJP applied to
    a one-hot gradient (1 at ``j``), read at ``k``.  Elementwise ops have one
    edge per operand (to the element broadcasting placed at ``j``), kept even
    where the derivative happens to be 0.  For the other ops an edge goes to
    every ``k`` that the VJP makes depend on the gradient at ``j``, again also
    where the entry is 0 here (a zero weight of a matmul): the backward pass
    multiplies those zeros by the upstream gradient too, so an infinite
    gradient becomes nan there, and the sum over paths must do the same.
    Those ``k`` are found by applying the VJP to nan at ``j``: nan spreads to
    every entry it is combined with.
    """
    edges: list[_Edge] = []
    if not _is_array(node):
        for i, p in enumerate(node._parents):
            if isinstance(p, Node) and p.requires_grad and id(p) in keep:
                edges.append((i, p, 0, float(vjp(node, i, 1.0))))
        return edges
    assert node._op is not None
    elementwise = node._op.elementwise
    g = np.zeros(node.data.shape, dtype=node.data.dtype)
    g.flat[j] = 1
    probe = None
    if not elementwise:
        probe = np.zeros(node.data.shape, dtype=node.data.dtype)
        probe.flat[j] = np.nan
    for i, p in enumerate(node._parents):
        if not (isinstance(p, Node) and p.requires_grad and id(p) in keep):
            continue
        row = vjp(node, i, g)  # the gradient it hands on, fitted to the operand's shape
        if elementwise:
            k = _broadcast_source(j, node.data.shape, np.shape(p.data))
            edges.append((i, p, k, float(row.flat[k])))
            continue
        reached = vjp(node, i, probe)
        with quiet():
            spread = (row != 0) | np.isnan(reached)
        for nz in np.flatnonzero(spread):
            edges.append((i, p, int(nz), float(row.flat[nz])))
    return edges


def _element_index(node: Node, index: Any, what: str) -> tuple[Index, int]:
    """Normalise an element index into (multi-index, flat index)."""
    shape = tuple(np.shape(node.data))
    size = math.prod(shape)
    if size == 0:
        raise ValueError(
            f"explain: the {what} {name_of(node)} has shape {shape}, with no elements: "
            "there is no derivative to explain"
        )
    if index is None:
        if size != 1:
            raise ValueError(
                f"explain: {what} {name_of(node)} has shape {shape}; pass "
                f"{'output_index' if what == 'output' else 'index'}= to choose one element"
            )
        multi: Index = (0,) * len(shape)
    else:
        idx = (index,) if isinstance(index, (int, np.integer)) else tuple(index)
        if len(idx) != len(shape) or not all(isinstance(i, (int, np.integer)) for i in idx):
            raise ValueError(
                f"explain: the {what} index {index!r} does not name one element of "
                f"{name_of(node)}, which has shape {shape}"
            )
        try:
            multi = tuple(int(i) % n if -n <= i < n else _oob(i) for i, n in zip(idx, shape))
        except IndexError:
            raise IndexError(
                f"explain: the {what} index {index!r} is out of range for "
                f"{name_of(node)} of shape {shape}"
            ) from None
    flat = int(np.ravel_multi_index(multi, shape)) if shape else 0
    return (multi if shape else ()), flat


def _oob(i: int) -> int:
    raise IndexError(i)


def _unflat(node: Node, k: int) -> Index:
    shape = np.shape(node.data)
    return tuple(int(v) for v in np.unravel_index(k, shape)) if shape else ()


def reaching(output: Node, leaf: Node) -> tuple[list[Node], set[int]]:
    """The graph of ``output`` (parents first) and the ids of nodes with a path to ``leaf``."""
    order = iter_graph([output])
    reach: set[int] = set()
    for node in order:
        if node is leaf:
            reach.add(id(node))
            continue
        if any(isinstance(p, Node) and p.requires_grad and id(p) in reach for p in node._parents):
            reach.add(id(node))
    return order, reach


def _walk(
    start: tuple[int, int],
    target: tuple[int, int],
    edges: dict[tuple[int, int], list[_Edge]],
    count: dict[tuple[int, int], int],
    step: Callable[[tuple[int, int], _Edge], Step],
) -> Iterator[tuple[Step, ...]]:
    """Every path from ``start`` to ``target``, depth first, with an explicit stack
    (a chain may be far deeper than Python's recursion limit)."""
    if start == target:
        yield ()
        return
    trail: list[Step] = []  # the steps from start to the top of the stack
    elems = [start]
    todo = [iter(edges[start])]
    while todo:
        e = elems[-1]
        for edge in todo[-1]:
            pe = (id(edge[1]), edge[2])
            if not count.get(pe, 0):
                continue
            trail.append(step(e, edge))
            if pe == target:
                yield tuple(trail)
                trail.pop()
                continue
            elems.append(pe)
            todo.append(iter(edges[pe]))
            break
        else:
            todo.pop()
            elems.pop()
            if trail:
                trail.pop()


def explain(
    output: Node,
    leaf: Node,
    index: Any = None,
    *,
    output_index: Any = None,
    max_paths: int = MAX_PATHS,
    max_elements: int = MAX_ELEMENTS,
) -> Explanation:
    """Every path from ``output`` back to ``leaf``, with the chain rule along each.

    Args:
        output: a Value or Tensor computed from ``leaf``.
        leaf: a node that requires grad (an input, a parameter or an
            intermediate value).
        index: for a Tensor ``leaf`` with more than one element, which element
            (an int for 1-D, else a tuple).
        output_index: the same for a Tensor ``output``.
        max_paths: list the paths only if there are at most this many; the
            count and the sum are computed in any case.
        max_elements: refuse (ValueError) to analyse more than this many
            Tensor elements between the two ends.

    Returns:
        An :class:`Explanation`; ``print`` it for a table of the paths, the
        factors (formula and number), the products and their sum, checked
        against :func:`chainrule.grad`.

    The sum over paths is ``d output[output_index] / d leaf[index]`` by the
    chain rule of several variables: each path contributes the product of the
    local derivatives on its edges.

    >>> import chainrule as cr
    >>> w = cr.Value(0.5, name="w")
    >>> y = (w * 3.0).tanh()
    >>> y.name = "y"
    >>> print(cr.explain(y, w))
    d y / d w: 1 path from y back to w
    <BLANKLINE>
    path 1 of 1
      edge        op    local derivative      value
      y <- mul#1  tanh  d tanh(x)/dx = 1-t^2  0.180706639
      mul#1 <- w  mul   d(a * b)/da = b       3
      product along the path = 0.542119917
    <BLANKLINE>
    sum over paths = 0.542119917
    autodiff gradient = 0.542119917 (they match)
    """
    for what, n in (("output", output), ("leaf", leaf)):
        if not isinstance(n, Node):
            raise TypeError(f"explain: {what} must be a Value or Tensor, got {type(n).__name__}")
    if not leaf.requires_grad:
        raise ValueError(
            f"explain: the leaf {name_of(leaf)} does not require grad, so no gradient flows to it"
        )
    if isinstance(output, Value) != isinstance(leaf, Value):
        raise TypeError(
            f"explain: output is a {type(output).__name__} but leaf is a "
            f"{type(leaf).__name__}; a graph is made of one kind"
        )
    out_multi, out_flat = _element_index(output, output_index, "output")
    leaf_multi, leaf_flat = _element_index(leaf, index, "leaf")

    order, reach = reaching(output, leaf)
    pos = {id(n): k for k, n in enumerate(order)}
    labels = graph_names(order)  # the names draw() gives the same nodes

    # 1. The elements on paths: explore backwards from the output element.
    Elem = tuple[int, int]  # (id(node), flat index)
    nodes: dict[int, Node] = {id(n): n for n in order}
    edges: dict[Elem, list[_Edge]] = {}
    start: Elem = (id(output), out_flat)
    stack = [start] if id(output) in reach else []
    while stack:
        e = stack.pop()
        if e in edges:
            continue
        node = nodes[e[0]]
        if node is leaf or node._op is None:
            edges[e] = []
            continue
        if len(edges) >= max_elements:
            raise ValueError(
                f"explain: more than {max_elements} elements lie between "
                f"{name_of(output)} and {name_of(leaf)}; explain a smaller graph "
                "(fewer or smaller tensors)"
            )
        out_edges = _element_edges(node, e[1], reach)
        edges[e] = out_edges
        for _i, p, k, _local in out_edges:
            if (id(p), k) not in edges:
                stack.append((id(p), k))

    # 2. Count paths, parents first (dynamic programming): count[e] is the
    # number of paths from element e down to the leaf element.
    target: Elem = (id(leaf), leaf_flat)
    count: dict[Elem, int] = {}
    for e in sorted(edges, key=lambda e: pos[e[0]]):
        if e == target:
            count[e] = 1
            continue
        count[e] = sum(count.get((id(p), k), 0) for _i, p, k, _local in edges[e])
    n_paths = count.get(start, 0)

    # 3. Sum the products over the paths, from the output down, as the backward
    # pass does: each element hands ``its gradient * local`` to its operands.
    # In this order inf and nan arise exactly where backward() makes them
    # (distributing the other way round, inf * (2 - 1) would give inf where
    # backward() gives inf * 2 - inf * 1 = nan).
    adjoint: dict[Elem, float] = {start: 1.0} if n_paths else {}
    for e in sorted(edges, key=lambda e: -pos[e[0]]):
        a = adjoint.get(e)
        if a is None or e == target:
            continue
        for _i, p, k, local in edges[e]:
            pe = (id(p), k)
            if count.get(pe, 0):
                adjoint[pe] = adjoint[pe] + a * local if pe in adjoint else a * local
    summed = adjoint.get(target, 0.0)

    def step(e: Elem, edge: _Edge) -> Step:
        node = nodes[e[0]]
        i, p, k, local = edge
        assert node._op is not None
        return Step(
            child=node,
            parent=p,
            operand=i,
            op=node._op.name,
            formula=formula_text(node._op, i, len(node._parents)),
            local=local,
            child_index=_unflat(node, e[1]),
            parent_index=_unflat(p, k),
        )

    on_path = [
        step(e, edge)
        for e in sorted(edges, key=lambda e: -pos[e[0]])
        if count.get(e, 0)
        for edge in edges[e]
        if count.get((id(edge[1]), edge[2]), 0)
    ]

    # 4. List the paths, if there are not too many.
    paths: list[Path] = []
    truncated = n_paths > max_paths
    if n_paths and not truncated:
        for steps in _walk(start, target, edges, count, step):
            paths.append(Path(steps, math.prod(s.local for s in steps)))

    # 5. The engine's answer for the same element, compared to the rounding
    # of the least precise values on the paths (a float64 graph may pass
    # through float32).
    if _is_array(output):
        seed = np.zeros(output.data.shape, dtype=output.data.dtype)
        seed.flat[out_flat] = 1
        (g,) = autodiff_grad(output, leaf, grad_outputs=seed, allow_unused=True)
    else:
        (g,) = autodiff_grad(output, leaf, allow_unused=True)
    auto = 0.0 if g is None else float(np.asarray(g.data).flat[leaf_flat])
    on_nodes = {id(output): output, id(leaf): leaf}
    for e, c in count.items():
        if c:
            on_nodes[e[0]] = nodes[e[0]]
    tol = tolerance(on_nodes.values())
    matches = agree(summed, auto, tol)

    return Explanation(
        output=output,
        leaf=leaf,
        output_index=out_multi,
        leaf_index=leaf_multi,
        count=n_paths,
        paths=paths,
        edges=on_path,
        total=summed,
        autodiff=auto,
        matches=matches,
        truncated=truncated,
        labels=labels,
        tolerance=tol,
    )


def tolerance(nodes: Iterable[Node]) -> float:
    """The relative tolerance for comparing gradients through ``nodes``.

    It follows the least precise floating-point dtype among them: ``1e-9``
    when everything is float64 (Values are), ``1e-4`` with float32, ``1e-2``
    with float16.  Rounding to float32 anywhere on a path limits the whole
    path's product to float32 accuracy, whatever the dtype at the ends.
    """
    eps = _EPS64
    for n in nodes:
        data = n.data
        if isinstance(data, np.ndarray) and data.dtype.kind == "f":
            eps = max(eps, float(np.finfo(data.dtype).eps))
    if eps <= _EPS64:
        return 1e-9
    if eps <= _EPS32:
        return 1e-4
    return 1e-2


_EPS64 = float(np.finfo(np.float64).eps)
_EPS32 = float(np.finfo(np.float32).eps)


def agree(total: float, autodiff: float, tol: float) -> bool:
    """Whether a sum over paths and the engine's gradient agree.

    Finite numbers agree within ``tol`` relative to the gradient (absolute for
    gradients below 1).  Infinities agree when they are equal (same sign), and
    nan agrees with nan: both sides follow IEEE 754, so an inf or nan that
    backward() produces, the sum over paths produces too.
    """
    if math.isfinite(total) and math.isfinite(autodiff):
        return abs(total - autodiff) <= tol * max(1.0, abs(autodiff)) + tol * abs(autodiff)
    return total == autodiff or (math.isnan(total) and math.isnan(autodiff))
