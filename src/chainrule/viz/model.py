"""The graph model: what a picture of a computation graph contains.

:func:`build` walks the graph behind one or more output nodes and returns a
:class:`GraphModel`: a list of :class:`VizNode` (values, operations,
constants, or whole modules when collapsed) and a list of :class:`VizEdge`
in data-flow direction (operand -> op -> result).  Labels are kept as plain
text rows here; :mod:`chainrule.viz.dot` escapes and lays them out.

Roles (the legend of every picture):

* ``parameter``: a leaf that requires grad (a weight or bias), orange;
* ``input``: a leaf that needs no gradient, or one passed in ``inputs=``, grey;
* ``constant``: a plain number or array used as an operand, grey, small;
* ``intermediate``: a value computed by an op, white;
* ``output``: a value the picture was drawn from (the loss), blue, double border;
* ``op``: the operation that made a value, a small yellow ellipse;
* ``module``: a collapsed module standing for all the values it made, green.

Node ids come from the position in a parents-first walk of the graph, never
from ``id()``, so the same graph always gives the same ids and DOT text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine import Node, iter_graph, scope_of
from ..explain import explain, formula_text, reaching
from ..naming import GraphNames, graph_names, name_of
from ..numerics import quiet

#: Tensors up to this many elements show every number; larger ones show statistics.
GRID_LIMIT = 16

ROLES = ("parameter", "input", "constant", "intermediate", "output", "op", "module")


@dataclass
class Row:
    """One row of a node's label: a title, a line of text, or a grid of numbers."""

    kind: str  # "title", "text" or "grid"
    text: str = ""
    cells: list[list[str]] = field(default_factory=list)

    def plain(self) -> str:
        if self.kind == "grid":
            body = " | ".join(" ".join(r) for r in self.cells)
            return f"{self.text} {body}".strip()
        return self.text


@dataclass
class VizNode:
    """A node of the picture.

    Attributes:
        id: the DOT node id (``v3`` for value 3, ``op3`` for the op that made it,
            ``c3_1`` for constant operand 1 of op 3, ``m0`` for a module).
        kind: ``value``, ``op``, ``constant`` or ``module``.
        role: one of :data:`ROLES`.
        rows: the label, as rows of plain text.
        scope: the module the value was made in (dotted), or None.
        node: the chainrule node drawn (None for constants and modules).
        on_path: True when a highlighted path runs through it; False when
            highlighting is on and it does not; None without highlighting.
    """

    id: str
    kind: str
    role: str
    rows: list[Row]
    scope: str | None = None
    node: Node | None = None
    on_path: bool | None = None

    @property
    def text(self) -> str:
        """The label as one line of plain text (handy for tests and searching)."""
        return " / ".join(r.plain() for r in self.rows)


@dataclass
class VizEdge:
    """An edge in data-flow direction, with an optional label (a local derivative)."""

    tail: str
    head: str
    operand: int | None = None
    label: list[str] = field(default_factory=list)
    on_path: bool | None = None


@dataclass
class GraphModel:
    """Everything a picture shows; see :func:`build`."""

    nodes: list[VizNode]
    edges: list[VizEdge]
    rankdir: str = "LR"
    cluster: bool = True
    caption: list[str] = field(default_factory=list)

    def node(self, id: str) -> VizNode:  # noqa: A002
        for n in self.nodes:
            if n.id == id:
                return n
        raise KeyError(id)

    def by_role(self, role: str) -> list[VizNode]:
        return [n for n in self.nodes if n.role == role]

    def find(self, name: str) -> VizNode:
        """The value node whose chainrule node is named ``name``."""
        for n in self.nodes:
            if n.node is not None and n.kind == "value" and n.node.name == name:
                return n
        raise KeyError(name)

    def scopes(self) -> list[str]:
        """Module scopes in order of first appearance."""
        seen: dict[str, None] = {}
        for n in self.nodes:
            if n.scope is not None:
                seen.setdefault(n.scope, None)
        return list(seen)


# ---------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------


def fmt_number(x: Any) -> str:
    """A short, readable number: 4 significant digits."""
    x = float(x)
    if x == 0:
        return "0"
    if math.isnan(x) or math.isinf(x):
        return str(x)
    return f"{x:.4g}"


def dtype_code(dtype: Any) -> str:
    """``float64`` -> ``f64``, ``int32`` -> ``i32``, ``bool`` -> ``bool``."""
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return "bool"
    return f"{dt.kind}{dt.itemsize * 8}"


def shape_text(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(n) for n in shape) + "]"


def _raw(x: Any) -> Any:
    return x.data if isinstance(x, Node) else x


def _grid(arr: np.ndarray) -> list[list[str]]:
    a = np.asarray(arr)
    if a.ndim == 0:
        return [[fmt_number(a)]]
    a = a.reshape(1, -1) if a.ndim == 1 else a.reshape(-1, a.shape[-1])
    return [[fmt_number(v) for v in row] for row in a]


STATS_HEADER = ["", "mean", "std", "min", "max"]


def _stats(what: str, arr: np.ndarray) -> list[str]:
    a = np.asarray(arr, dtype=np.float64)
    with quiet():  # inf or nan data give inf or nan statistics, without warnings
        return [what] + [fmt_number(f(a)) for f in (np.mean, np.std, np.min, np.max)]


def _tensor_rows(data: np.ndarray, grad: np.ndarray | None, grad_note: str | None) -> list[Row]:
    """Small tensors: data and grad as grids; large ones: one table of statistics.

    A tensor with no elements (a shape with a 0) has no numbers to show: its
    title gives the shape, and the rows say that data and grad are empty.
    """
    note = [Row("text", grad_note)] if grad_note else []
    if data.size == 0:
        rows = [Row("text", "data: no elements")]
        if grad is not None:
            rows.append(Row("text", "grad: no elements"))
        return rows + note
    if data.size <= GRID_LIMIT:
        rows = [Row("grid", "data", _grid(data))]
        if grad is not None:
            rows.append(Row("grid", "grad", _grid(grad)))
        return rows + note
    table = [STATS_HEADER, _stats("data", data)]
    if grad is not None:
        table.append(_stats("grad", grad))
    return [Row("grid", "", table), *note]


_STORED = object()


def value_rows(
    node: Node, show_grad: bool, grad: Any = _STORED, names: GraphNames | None = None
) -> list[Row]:
    """The label of a value: its name (:func:`chainrule.naming.name_of`), then data and grad.

    ``grad`` replaces the stored ``node.grad`` (None: not computed yet);
    ``names`` are the names of the graph drawn, so an unnamed value reads
    ``mul#3`` as it does in :func:`chainrule.explain`.
    """
    title = name_of(node, names)
    data = node.data
    g = node.grad if grad is _STORED else grad
    rows: list[Row]
    if isinstance(data, np.ndarray):
        rows = [Row("title", f"{title} {dtype_code(data.dtype)}{shape_text(data.shape)}")]
        grad_arr: np.ndarray | None = None
        note = None
        if show_grad:
            if not node.requires_grad:
                note = "grad not required"
            elif g is None:
                note = "grad not computed"
            else:
                grad_arr = np.asarray(_raw(g))
        return rows + _tensor_rows(data, grad_arr, note)
    rows = [Row("title", title), Row("text", f"data {fmt_number(data)}")]
    if show_grad:
        if not node.requires_grad:
            rows.append(Row("text", "grad not required"))
        else:
            rows.append(
                Row("text", "grad not computed" if g is None else f"grad {fmt_number(_raw(g))}")
            )
    return rows


def constant_rows(c: Any) -> list[Row]:
    if isinstance(c, np.ndarray) and c.ndim > 0:
        title = Row("title", f"const {dtype_code(c.dtype)}{shape_text(c.shape)}")
        return [title, *_tensor_rows(c, None, None)]
    return [Row("text", fmt_number(c))]


# ---------------------------------------------------------------------------
# Building the model
# ---------------------------------------------------------------------------


def _as_list(x: Any, what: str) -> list[Node]:
    if x is None:
        return []
    items = [x] if isinstance(x, Node) else list(x)
    for i, n in enumerate(items):
        if not isinstance(n, Node):
            raise TypeError(f"draw: {what}[{i}] is a {type(n).__name__}, not a Value or Tensor")
    return items


def build(
    roots: Node | Sequence[Node],
    *,
    highlight: Node | Sequence[Node] | None = None,
    show_grad: bool = True,
    rankdir: str = "LR",
    cluster: bool = True,
    collapse: bool | None = None,
    max_nodes: int | None = 200,
    inputs: Sequence[Node] = (),
    grads: Mapping[Node, Any] | None = None,
) -> GraphModel:
    """The picture of the graph behind ``roots``, as a :class:`GraphModel`.

    See :func:`chainrule.draw` for the arguments.  ``grads``, if given,
    replaces every stored ``.grad`` (a node missing from it shows
    ``grad not computed``); the backward stepper draws its frames with it.
    """
    root_list = _as_list(roots, "root")
    if not root_list:
        raise ValueError("draw: no root given; pass the output node(s) to draw")
    marks = _as_list(highlight, "highlight")
    input_ids = {id(n) for n in _as_list(list(inputs), "inputs")}
    if rankdir not in ("LR", "RL", "TB", "BT"):
        raise ValueError(f"draw: rankdir must be LR, RL, TB or BT, got {rankdir!r}")

    order = iter_graph(root_list)
    pos = {id(n): k for k, n in enumerate(order)}
    names = graph_names(order)
    root_ids = {id(r) for r in root_list}
    for m in marks:
        what = name_of(m, names)
        if id(m) not in pos:
            raise ValueError(
                f"draw: the highlighted node {what} is not in the graph of the root(s)"
            )
        if not m.requires_grad:
            raise ValueError(
                f"draw: cannot highlight {what}: it does not require grad, so no gradient "
                "flows to it"
            )

    nodes: list[VizNode] = []
    edges: list[VizEdge] = []
    for k, n in enumerate(order):
        scope = scope_of(n) if n._op is not None else None
        if n._op is not None:
            for i, p in enumerate(n._parents):
                if isinstance(p, Node):
                    edges.append(VizEdge(f"v{pos[id(p)]}", f"op{k}", operand=i))
                else:
                    nodes.append(
                        VizNode(f"c{k}_{i}", "constant", "constant", constant_rows(p), scope)
                    )
                    edges.append(VizEdge(f"c{k}_{i}", f"op{k}", operand=i))
            nodes.append(VizNode(f"op{k}", "op", "op", [Row("text", n._op.name)], scope, n))
            edges.append(VizEdge(f"op{k}", f"v{k}"))
        if id(n) in root_ids:
            role = "output"
        elif n._op is not None:
            role = "intermediate"
        elif n.requires_grad and id(n) not in input_ids:
            role = "parameter"
        else:
            role = "input"
        g = _STORED if grads is None else grads.get(n)
        nodes.append(VizNode(f"v{k}", "value", role, value_rows(n, show_grad, g, names), scope, n))

    # A parameter named "hidden.weight" is drawn in the box of module "hidden".
    made_in = {n.scope for n in nodes if n.scope is not None}
    for vn in nodes:
        if vn.kind == "value" and vn.scope is None and vn.node is not None and vn.node.name:
            owner = vn.node.name.rpartition(".")[0]
            if owner in made_in:
                vn.scope = owner

    model = GraphModel(nodes, edges, rankdir=rankdir, cluster=cluster)
    if marks:
        _highlight(model, root_list, marks, pos, names)

    n_values = len(order)
    if collapse is None:
        collapse = max_nodes is not None and n_values > max_nodes and bool(model.scopes())
    if collapse:
        model = _collapse(model, names)
    if max_nodes is not None:
        shown = sum(1 for n in model.nodes if n.kind in ("value", "module"))
        if shown > max_nodes:
            raise ValueError(
                f"draw: the graph has {shown} values to show, more than max_nodes={max_nodes}; "
                "build the model from nn.Modules and pass collapse=True to draw one node per "
                "module, or pass max_nodes=None to draw every value anyway"
            )
    return model


def _highlight(
    model: GraphModel,
    roots: list[Node],
    marks: list[Node],
    pos: dict[int, int],
    names: GraphNames,
) -> None:
    """Mark every path from the roots to each highlighted node and label its edges."""
    on_nodes: set[str] = set()
    on_edges: dict[tuple[str, str, int | None], list[str]] = {}
    caption: list[str] = []
    for leaf in marks:
        for root in roots:
            sub, reach = reaching(root, leaf)
            if id(root) not in reach:
                continue
            # Local derivatives as numbers where the chain rule is a product
            # of numbers: a scalar root and a scalar leaf.
            local: dict[tuple[int, int], tuple[str, float]] = {}
            exp = None
            if leaf.requires_grad and np.size(root.data) == 1 and np.size(leaf.data) == 1:
                try:
                    exp = explain(root, leaf, max_paths=0, max_elements=2000)
                except ValueError:
                    exp = None
            if exp is not None:
                for s in exp.edges:
                    op = s.child._op
                    if op is not None and np.size(s.child.data) == np.size(s.parent.data) == 1:
                        local[(id(s.child), s.operand)] = (s.formula, s.local)
            for n in sub:
                if id(n) not in reach:
                    continue
                k = pos[id(n)]
                on_nodes.add(f"v{k}")
                if n._op is None or n is leaf:
                    continue
                on_nodes.add(f"op{k}")
                on_edges[(f"op{k}", f"v{k}", None)] = []
                for i, p in enumerate(n._parents):
                    if isinstance(p, Node) and p.requires_grad and id(p) in reach:
                        key: tuple[str, str, int | None] = (f"v{pos[id(p)]}", f"op{k}", i)
                        if (id(n), i) in local:
                            f, val = local[(id(n), i)]
                            on_edges[key] = [f, f"= {fmt_number(val)}"]
                        else:
                            formula = formula_text(n._op, i, len(n._parents))
                            on_edges.setdefault(key, [formula])
            rname, lname = name_of(root, names), name_of(leaf, names)
            if exp is not None:
                paths = f"{exp.count} path{'s' if exp.count != 1 else ''}"
                caption.append(
                    f"{paths} from {rname} to {lname}: the product of the local derivatives "
                    f"along each path, summed over the paths, is {fmt_number(exp.total)} "
                    f"= d{rname}/d{lname} = {lname}.grad"
                )
            else:
                caption.append(
                    f"paths from {rname} to {lname}: multiplying the local derivatives "
                    f"(Jacobians) along each path and summing over the paths gives "
                    f"d{rname}/d{lname} = {lname}.grad"
                )
    for vn in model.nodes:
        vn.on_path = vn.id in on_nodes
    for e in model.edges:
        e.on_path = (e.tail, e.head, e.operand) in on_edges
        if e.on_path:
            e.label = on_edges[(e.tail, e.head, e.operand)]
    model.caption = caption


def _collapse(model: GraphModel, names: GraphNames) -> GraphModel:
    """One node per module scope; leaves and unscoped values stay as they are."""
    scopes = model.scopes()
    mid = {s: f"m{j}" for j, s in enumerate(scopes)}
    rep: dict[str, str] = {}
    members: dict[str, list[VizNode]] = {s: [] for s in scopes}
    for n in model.nodes:
        # Leaves (parameters, inputs) stay visible next to their module.
        if n.scope is not None and not (n.node is not None and n.node.is_leaf):
            rep[n.id] = mid[n.scope]
            members[n.scope].append(n)
        else:
            rep[n.id] = n.id
    nodes: list[VizNode] = []
    placed: set[str] = set()
    for n in model.nodes:
        r = rep[n.id]
        if r in placed:
            continue
        placed.add(r)
        if r == n.id:
            nodes.append(n)
            continue
        scope = n.scope
        assert scope is not None
        inner = members[scope]
        n_ops = sum(1 for m in inner if m.kind == "op")
        rows = [Row("title", scope), Row("text", f"{n_ops} operation{'s' if n_ops != 1 else ''}")]
        # Show the values that leave the module (what the next one consumes).
        leaving = {e.tail for e in model.edges if rep[e.tail] == r and rep[e.head] != r}
        outputs = [m for m in inner if m.id in leaving and m.kind == "value"]
        for m in outputs[:3]:
            assert m.node is not None
            d = m.node.data
            shape = (
                f"{dtype_code(d.dtype)}{shape_text(d.shape)}" if isinstance(d, np.ndarray) else ""
            )
            rows.append(Row("text", f"out: {name_of(m.node, names)} {shape}".rstrip()))
        on = [m.on_path for m in inner]
        on_path = None if all(o is None for o in on) else any(bool(o) for o in on)
        role = "output" if any(m.role == "output" for m in inner) else "module"
        nodes.append(VizNode(r, "module", role, rows, None, None, on_path))
    edges: list[VizEdge] = []
    seen: dict[tuple[str, str], VizEdge] = {}
    for e in model.edges:
        t, h = rep[e.tail], rep[e.head]
        if t == h:
            continue
        if (t, h) in seen:
            old = seen[(t, h)]
            if e.on_path:
                old.on_path = True
            continue
        ne = VizEdge(t, h, None, list(e.label) if (t, h) == (e.tail, e.head) else [], e.on_path)
        seen[(t, h)] = ne
        edges.append(ne)
    return GraphModel(nodes, edges, model.rankdir, cluster=False, caption=model.caption)
