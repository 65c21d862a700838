"""The autodiff engine: one graph node type and one backward traversal.

Every differentiable quantity in chainrule, a scalar :class:`~chainrule.Value`
or an array :class:`~chainrule.Tensor`, is a :class:`Node`.  When an operation
runs on nodes that require grad, its result records three things:

* ``_op``: the :class:`~chainrule.ops.Op` that made it (name and derivative
  rules, from the table in :mod:`chainrule.rules`);
* ``_parents``: the operands, *in order*, as a tuple.  Operands that are nodes
  are graph edges; plain numbers and arrays sit there too, as constants;
* ``_ctx``: what the op's rule needs besides the operands and the output, or
  None: the op's other arguments (an axis, a shape, an index, a mask) and,
  for a few ops, arrays the forward pass computed for the rule (cross_entropy
  keeps its probabilities and one-hot targets).  Never a graph edge.

Besides these, a node has its value ``data``, its ``.grad``, ``requires_grad``,
a ``name``, and its stamp ``_seq``, a tick of the engine's clock (see below);
inside a module's forward it keeps the module's dotted name (``_scope``), and
under anomaly mode the lines of code that made it (``_trace``).  Every node is
set up by one function, :func:`init_node`.  There is no closure and no
reference from a parent to its child, so the graph has no reference cycles and
is freed by reference counting as soon as its output is dropped.

How the module reads, top to bottom:

* :func:`init_node`, where every node is set up;
* :func:`run_backward`, the one backward traversal, and its helpers
  (:func:`fit`, which shapes a gradient for its operand; :func:`_keep`, which
  stores a finished pass's gradients; the pass's set-up and clean-up) and
  :func:`vjp`, one edge of a pass for callers that look at edges one at a
  time (:func:`chainrule.explain`);
* the checks a pass makes (in-place changes, anomalies) and :func:`grad`.

``run_backward`` walks the graph from the outputs to the leaves without
recursion.  A parent is always made before its children, so its stamp is
smaller, and visiting nodes by decreasing stamp (a heap) is a topological
order: when a node is reached, all the gradient flowing into it has arrived.
At each node the op's rule gives the vector-Jacobian product for each input
that requires grad; shares that meet at an input add up, and broadcast
gradients are summed back to the input's shape.  (:func:`toposort` gives the
same kind of order by depth-first search, for drawing and explaining graphs.)

Gradient semantics
------------------
* A pass keeps the gradients that flow through it apart from the stored
  ``.grad`` of each node, and adds them to ``.grad`` at the end.  Calling
  ``backward()`` twice therefore stores exactly two copies of every gradient
  (leaves and intermediates alike), as PyTorch does with ``retain_graph=True``.
* Every node that requires grad keeps its ``.grad`` after backward, not only
  the leaves, and the graph stays in place so it can be drawn or explained.
* With ``create_graph=True`` the rules run on nodes instead of raw arrays, so
  the gradients are themselves nodes of a new graph and can be differentiated
  again.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Sequence
from heapq import heapify, heappop, heappush
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .modes import INPLACE, PLAIN, STATE, no_grad, tick
from .modes import detect_anomaly as detect_anomaly  # (also importable from here, as before)
from .modes import enable_grad as enable_grad
from .modes import is_grad_enabled as is_grad_enabled
from .modes import scope as scope
from .naming import describe
from .numerics import quiet, restore, silence, unbroadcast

if TYPE_CHECKING:
    from .ops import Op

N = TypeVar("N", bound="Node")


def init_node(
    node: N,
    data: Any,
    op: Op | None = None,
    parents: tuple[Any, ...] = (),
    ctx: Any = None,
    recorded: bool | None = None,
) -> N:
    """Give ``node`` every field a node has: the one place a node is set up.

    Value and Tensor, leaves and results of ops, all come through here.  The
    node gets ``data``, no gradient and no name, and the clock's next tick as
    its stamp.  An op's result records ``op``, its operands ``parents`` (in
    order; constants among them) and ``ctx`` when grad mode is on and some
    operand requires grad (``recorded``; found from ``parents`` when None);
    otherwise it is a constant leaf and keeps none of them.  Inside a module's
    scope the node remembers the scope; under anomaly mode its values are
    checked and the line that made it is kept.  Returns ``node``.
    """
    node.data = data
    node.grad = None
    node.name = None
    node._seq = tick()
    mode = STATE.mode
    if op is not None and mode.grad:
        if recorded is None:
            recorded = False
            for p in parents:
                if isinstance(p, Node) and p.requires_grad:
                    recorded = True
                    break
        if recorded:
            node.requires_grad = True
            node._op = op
            node._parents = parents
            node._ctx = ctx
            if mode is not PLAIN:  # a module's scope, anomaly mode or forward mode
                _note_mode(node, op, parents, ctx, mode)
            return node
    node.requires_grad = False
    node._op = None
    node._parents = ()
    node._ctx = None
    if op is not None and mode is not PLAIN:
        _note_mode(node, op, parents, ctx, mode)
    return node


def _note_mode(node: Node, op: Op, parents: tuple[Any, ...], ctx: Any, mode: Any) -> None:
    """What an op's result gets beyond the usual: its scope, anomaly checks, tangents."""
    if mode.scope is not None and node._op is not None:
        node._scope = mode.scope
    if mode.anomaly:
        check_forward(node, op, parents)
    if mode.forward:
        carry_tangents(node, op, parents, ctx)


def carry_tangents(node: Node, op: Op, parents: tuple[Any, ...], ctx: Any) -> None:
    """Forward mode: give ``node`` its tangent at every level where an operand has one.

    The tangent of an op's result is the sum over its operands of the op's
    JVP rule applied to the operand's tangent, ``J_i t_i`` (dual numbers).
    The rules run on nodes, so a tangent is a node too: an outer level of
    forward mode, or a reverse pass, can differentiate it again.  Level ``k``
    is evaluated with only the levels outside it switched on, so that a
    level never mistakes its own tangents for inputs (nested forward mode),
    and the outer levels go first, so an inner rule that reads the output
    sees the output's outer tangents.
    """
    levels = STATE.levels
    try:
        for k in range(len(levels)):  # outermost first: inner levels read its tangents
            tangents = levels[k]
            found = [
                (i, tangents[p])
                for i, p in enumerate(parents)
                if isinstance(p, Node) and p in tangents
            ]
            if not found:
                continue
            STATE.levels = levels[:k]
            STATE.switch(forward=k > 0)
            total: Any = None
            for i, t in found:
                part = op.jvps[i](t, node, ctx, *parents)
                total = part if total is None else total + part
            tangents[node] = _fit_tangent(total, node)
    finally:
        STATE.levels = levels
        STATE.switch(forward=True)


def _fit_tangent(t: Any, node: Node) -> Any:
    """A tangent shaped and typed as ``node``: a Value for a Value, a Tensor for a Tensor."""
    if not isinstance(t, Node):
        t = type(node)._wrap_grad(t)
    data = node.data
    if isinstance(data, np.ndarray):
        if t.shape != data.shape:
            t = t.broadcast_to(data.shape)
        if t.data.dtype != data.dtype:
            t = t.astype(data.dtype)
    return t


def scope_of(node: Node) -> str | None:
    """The module scope ``node`` was recorded in, or None."""
    return getattr(node, "_scope", None)


class Node:
    """A value in a computation graph; the common base of Value and Tensor.

    Attributes:
        data: the value (a Python float for Value, a numpy array for Tensor).
        grad: the accumulated gradient of the last outputs backpropagated,
            same type and shape as ``data``; None until a backward reaches it.
        requires_grad: whether gradients flow to this node.
        name: a label used in pictures and explanations.
    """

    __slots__ = (
        "__weakref__",
        "_ctx",
        "_op",
        "_parents",
        "_scope",
        "_seq",
        "_trace",
        "data",
        "grad",
        "name",
        "requires_grad",
    )

    data: Any
    grad: Any
    requires_grad: bool
    name: str | None
    _op: Op | None
    _parents: tuple[Any, ...]
    _ctx: Any
    _scope: str
    _seq: int
    _trace: Any

    __hash__ = object.__hash__

    @property
    def is_leaf(self) -> bool:
        """True for nodes made by the user rather than by an operation."""
        return self._op is None

    @property
    def op(self) -> str | None:
        """Name of the operation that made this node (None for a leaf)."""
        return None if self._op is None else self._op.name

    @property
    def parents(self) -> tuple[Node, ...]:
        """The operand nodes, in order (constants are left out)."""
        return tuple(p for p in self._parents if isinstance(p, Node))

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``data`` (``()`` for a scalar)."""
        return np.shape(self.data)

    def zero_grad(self) -> None:
        """Forget the stored gradient (sets ``.grad`` to None)."""
        self.grad = None

    def backward(
        self,
        gradient: Any = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
    ) -> None:
        """Backpropagate from this node, adding gradients into ``.grad``.

        Args:
            gradient: d(something)/d(self), same shape as ``self``. May be
                omitted only for a single-element output, where it is 1.
            retain_graph: accepted for PyTorch's sake and ignored: a recorded
                graph is always kept, so it can be walked again without asking.
            create_graph: record the backward pass itself so that the stored
                gradients are nodes that can be differentiated again.

        Every node on the graph that requires grad gets ``.grad`` (leaves and
        intermediates).  A second call adds one more copy of each gradient.
        """
        data = self.data
        seed: Any = None
        if gradient is None and not create_graph and self.requires_grad:  # the usual case
            if isinstance(data, float):
                seed = 1.0
            elif data.size == 1:
                seed = _one(data.shape, data.dtype) if self._op is not None else None
        tracer = STATE.tracing
        if tracer is not None:  # inside chainrule.compile: the backward pass is recorded
            seed = seed_for(self, gradient, "backward", True)
            run_backward(
                [self], [seed], create_graph=True, store=True, on_edge=tracer.edge_hook([self])
            )
            return
        if seed is None:
            seed = seed_for(self, gradient, "backward", create_graph)
        run_backward([self], [seed], create_graph=create_graph, store=True)

    # Subclasses convert raw arrays / floats to their own node type.
    @classmethod
    def _wrap_grad(cls, g: Any) -> Node:
        raise NotImplementedError


_ONES: dict[tuple[tuple[int, ...], np.dtype[Any]], np.ndarray] = {}


def _one(shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    """A read-only array holding 1 (the usual seed), made once per shape and dtype.

    It becomes the ``.grad`` of the output, which is not a leaf: intermediate
    gradients that share memory are read-only anyway (see :func:`run_backward`).
    """
    one = _ONES.get((shape, dtype))
    if one is None:
        one = np.ones(shape, dtype)
        one.setflags(write=False)
        _ONES[shape, dtype] = one
    return one


def seed_for(node: Node, gradient: Any, where: str, create_graph: bool = False) -> Any:
    """The gradient that starts a backward pass from ``node``, checked and normalised.

    None stands for 1 (allowed for a one-element output); otherwise the shape
    must match and the numbers become the output's dtype (nodes, with
    ``create_graph``).  ``where`` names the caller in error messages.
    """
    if not isinstance(node, Node):
        raise TypeError(f"{where}: expected a Value or Tensor output, got {type(node).__name__}")
    if not node.requires_grad:
        raise RuntimeError(
            f"{where}: {describe(node)} does not require grad, so there is no "
            "graph to backpropagate through (did every input have requires_grad=False, "
            "or was it computed under no_grad?)"
        )
    if isinstance(gradient, Node):
        if create_graph:
            if gradient.shape != node.shape:
                raise ValueError(
                    f"{where}: gradient has shape {gradient.shape} but the output "
                    f"{describe(node)} has shape {node.shape}; they must match"
                )
            return gradient
        gradient = gradient.data
    data = node.data
    g: Any
    if isinstance(data, np.ndarray):
        if gradient is None:
            if data.size != 1:
                raise RuntimeError(
                    f"{where}: the output {describe(node)} has shape {data.shape}; "
                    "a gradient is needed for a non-scalar output (pass gradient= "
                    "of the same shape, or reduce the output, e.g. with .sum())"
                )
            g = np.ones(data.shape, data.dtype)
        else:
            g = np.asarray(gradient)
            if g.shape != data.shape:
                raise ValueError(
                    f"{where}: gradient has shape {g.shape} but the output "
                    f"{describe(node)} has shape {data.shape}; they must match"
                )
            if g.dtype.kind not in "fiu":
                raise TypeError(f"{where}: gradient must be real numbers, got dtype {g.dtype}")
            g = g.astype(data.dtype)
    elif gradient is None:  # a scalar Value
        g = 1.0
    else:
        if np.shape(gradient) != ():
            raise ValueError(
                f"{where}: gradient has shape {np.shape(gradient)} but the output "
                f"{describe(node)} is a scalar (shape ()); they must match"
            )
        try:
            g = float(gradient)
        except (TypeError, ValueError):
            raise TypeError(
                f"{where}: gradient for the Value output {describe(node)} must be a number, "
                f"got {type(gradient).__name__}"
            ) from None
    return type(node)._wrap_grad(g) if create_graph else g


def toposort(roots: Sequence[Node], *, everything: bool = False) -> list[Node]:
    """Nodes reachable from ``roots``, each after all of its parents.

    Only nodes that require grad are followed, unless ``everything`` is true.
    An iterative depth-first search: each node is entered once, its parents
    are visited in operand order, and it is emitted when the last of them is
    done, so the order is deterministic and nothing recurses.
    """
    order: list[Node] = []
    emit = order.append
    seen: set[Node] = set()
    mark = seen.add
    for root in roots:
        if root in seen:
            continue
        mark(root)
        stack = [(root, iter(root._parents))]
        push, pop = stack.append, stack.pop
        while stack:
            node, parents = stack[-1]
            for p in parents:
                if isinstance(p, Node) and (everything or p.requires_grad) and p not in seen:
                    mark(p)
                    push((p, iter(p._parents)))
                    break
            else:
                pop()
                emit(node)
    return order


def run_backward(
    roots: Sequence[Node],
    seeds: Sequence[Any],
    *,
    create_graph: bool = False,
    store: bool = True,
    wanted: Sequence[Node] | None = None,
    on_edge: Callable[..., Any] | None = None,
) -> dict[Node, Any]:
    """Backpropagate ``seeds`` from ``roots`` through the recorded graph: the chain rule.

    Every op node is visited once, newest first, when all of its gradient ``g``
    has arrived (each child of a node is newer than it).  For each operand that
    requires grad, the op's rule turns ``g`` into that operand's share, the
    vector-Jacobian product; shares meeting at a node add up.  Leaves hand
    nothing on.  At the end each node's gradient of this pass is kept.

    Args:
        roots: output nodes.
        seeds: d(objective)/d(root) for each root (raw, or nodes when
            ``create_graph`` is true).
        create_graph: run the rules on nodes, so the gradients record a graph.
        store: add each node's gradient of this pass into its ``.grad``.
        wanted: the nodes whose gradients of this pass the caller wants back.
        on_edge: called as ``on_edge(node, i, operand, share)`` for every
            share handed on, in the order of the pass: a way to watch a pass
            edge by edge (the backward stepper does).  When it returns
            something other than None, that is handed on instead of ``share``;
            a hook with the attribute ``wants_gradient`` set is also given
            ``node``'s own gradient, as a fifth argument.

    Returns:
        A dict from each ``wanted`` node reached to its gradient in this pass.

    The gradients flowing in a pass live in a dict of their own, apart from
    the stored ``.grad``; that is what makes a second call add exactly one copy.
    """
    grads: dict[Node, Any] = {}
    for root, seed in zip(roots, seeds):
        grads[root] = seed if root not in grads else grads[root] + seed
    heap = [(-n._seq, n) for n in grads if n._op is not None]  # newest first
    if len(heap) > 1:
        heapify(heap)
    private = store and not create_graph  # stored .grad arrays must not share memory
    last_change = INPLACE.last
    anomaly = STATE.mode.anomaly
    watched = anomaly or on_edge is not None
    wants_g = on_edge is not None and getattr(on_edge, "wants_gradient", False)
    get, ndarray = grads.get, np.ndarray  # (local names: they are read once per edge)
    setup = _enter_pass(roots, create_graph)
    try:
        while heap:
            node = heappop(heap)[1]
            g = grads[node]
            if node._seq < last_change:  # something was changed in place since it was made
                _check_versions(node)
            parents, ctx, vjps = node._parents, node._ctx, node._op.vjps  # type: ignore[union-attr]
            out, args = node.data, parents  # what the rule reads: numbers, or nodes to record
            if not create_graph:  # (one and two operands, the usual ops, unpacked inline)
                if len(parents) == 1:
                    args = (parents[0].data,)
                elif len(parents) == 2:
                    a, b = parents
                    args = (
                        a.data if isinstance(a, Node) else a,
                        b.data if isinstance(b, Node) else b,
                    )
                else:
                    args = operand_data(parents)
            else:
                out = node
            arrays = isinstance(node.data, ndarray)
            i = -1
            for p in parents:
                i += 1  # (counted by hand: enumerate would cost about 500 instructions a node)
                if not (isinstance(p, Node) and p.requires_grad):
                    continue
                try:
                    share = vjps[i](g, out, ctx, *args)  # g times the local derivative
                except ArithmeticError:  # Python floats raise where IEEE 754 gives inf or nan
                    share = _rerun_ieee(node, i, g, args)
                if arrays:
                    share = fit(share, p, g, private)
                if watched:
                    if anomaly:
                        _check_gradient(node, i, share)
                    if on_edge is not None:
                        replaced = (
                            on_edge(node, i, p, share, g) if wants_g else on_edge(node, i, p, share)
                        )
                        if replaced is not None:
                            share = replaced
                earlier = get(p)
                if earlier is not None:
                    grads[p] = earlier + share
                else:
                    grads[p] = share
                    if p._op is not None:
                        heappush(heap, (-p._seq, p))
    finally:
        _leave_pass(setup)
    return _keep(grads, store, create_graph, wanted)


def operand_data(parents: tuple[Any, ...]) -> tuple[Any, ...]:
    """What a rule reads as its inputs: each operand's data; constants as they are."""
    return tuple([p.data if isinstance(p, Node) else p for p in parents])


def fit(share: Any, parent: Node, g: Any, private: bool) -> Any:
    """Make an array share into the gradient ``parent`` takes.

    Its shape: a broadcast operand gets the sum over its copies
    (:func:`~chainrule.numerics.unbroadcast`).  Its dtype: a float32 operand
    of a float64 result gets float32.  And, when the gradients will be stored
    (``private``), memory of its own: a rule that hands on ``g`` itself or a
    view of it (add, reshape, ...) would make two ``.grad`` arrays share
    memory.  A leaf then gets a copy (optimizers and users change a leaf's
    ``.grad`` in place); between intermediates the shared array is made
    read-only instead, which costs nothing.
    """
    target = parent.data
    if share.shape != target.shape:
        share = unbroadcast(share, target.shape)
    if share.dtype is not target.dtype and share.dtype != target.dtype:
        # (A boolean or integer operand is a comparison or an index that compile records
        # so that arithmetic on it is recorded too; it has no derivative, and its share
        # is not cast.)
        return share if target.dtype.kind in "biu" else share.astype(target.dtype)
    if private and (share is g or (share.base is not None and _shares(share, g))):
        if parent._op is None:
            return share.copy()
        g.setflags(write=False)
        share.setflags(write=False)
    return share


def _enter_pass(roots: Sequence[Node], create_graph: bool) -> tuple[bool, Any, bool]:
    """Set up what a pass needs around it; returns what :func:`_leave_pass` puts back.

    * The cycle collector is paused: the pass makes many short-lived objects
      and no cycles, and the collector would keep walking the whole (large,
      live) graph.  It is one for the process: when passes in two threads
      overlap, the last to finish may turn it back on early, which costs time,
      never results.
    * numpy's warnings are off (see :mod:`chainrule.numerics`): log(0), 1/0
      and friends give inf and nan, which :class:`detect_anomaly` reports.
      (Value rules use Python floats, which never warn: see :func:`_rerun_ieee`.)
    * Grad mode is turned on for a pass that records its own graph, in this
      thread only; rules on raw arrays record nothing, so a plain pass leaves
      it as it is.
    """
    collecting = gc.isenabled()
    gc.disable()
    token = None
    for root in roots:
        if isinstance(root.data, np.ndarray):
            token = silence()
            break
    switched = create_graph and not STATE.mode.grad
    if switched:
        STATE.switch(grad=True)
    return collecting, token, switched


def _leave_pass(setup: tuple[bool, Any, bool]) -> None:
    """Put back what :func:`_enter_pass` changed."""
    collecting, token, switched = setup
    if switched:
        STATE.switch(grad=False)
    if token is not None:
        restore(token)
    if collecting:
        gc.enable()


def _keep(
    grads: dict[Node, Any], store: bool, create_graph: bool, wanted: Sequence[Node] | None
) -> dict[Node, Any]:
    """Store a finished pass's gradients into ``.grad``; return those of the ``wanted`` nodes."""
    if store and create_graph:
        for node, g in grads.items():
            _store_node_grad(node, g)
    elif store:
        ndarray = np.ndarray
        for node, g in grads.items():
            if node.grad is None and (g.__class__ is float or g.__class__ is ndarray):
                node.grad = g  # the first gradient a node stores: the usual case
            else:
                add_to_grad(node, g)
    if wanted is None:
        return {}
    return {node: grads[node] for node in wanted if node in grads}


def add_to_grad(node: Node, g: Any) -> None:
    """Add a raw gradient ``g`` into ``node.grad`` (a pass that records nothing).

    A ``.grad`` left as a node by an earlier ``create_graph=True`` pass stays a
    node (the sum records no graph, as grad mode is off); a numpy scalar
    becomes a 0-d array for a Tensor and a float for a Value.
    """
    prev = node.grad
    if isinstance(prev, Node):
        with no_grad():
            g = prev + g
    elif prev is not None:
        g = prev + g
    if isinstance(g, np.generic):
        g = np.asarray(g) if isinstance(node.data, np.ndarray) else float(g)
    node.grad = g


def _rerun_ieee(node: Node, i: int, g: Any, args: Sequence[Any]) -> Any:
    """Run a Value rule again on numpy float64 scalars, which follow IEEE 754.

    Python floats raise ZeroDivisionError or OverflowError where numpy gives
    inf or nan; Value gradients follow numpy, as Tensors do.
    """
    f = np.float64
    op = node._op
    assert op is not None
    with quiet():
        pg = op.vjps[i](
            f(g), f(node.data), node._ctx, *[f(a) if isinstance(a, float) else a for a in args]
        )
    return float(pg.real) if isinstance(pg, complex) else float(pg)


def vjp(node: Node, i: int, g: Any) -> Any:
    """What ``node`` hands its operand ``i`` when its own gradient is ``g``: one edge of a pass.

    The same arithmetic as :func:`run_backward` (IEEE 754 without warnings,
    fitted to the operand's shape and dtype), for callers that look at one
    edge at a time, such as :func:`chainrule.explain`.
    """
    op = node._op
    assert op is not None
    args = operand_data(node._parents)
    with quiet():
        try:
            share = op.vjps[i](g, node.data, node._ctx, *args)
        except ArithmeticError:
            share = _rerun_ieee(node, i, g, args)
        if isinstance(node.data, np.ndarray):
            share = fit(np.asarray(share), node._parents[i], g, False)
    return share


def _shares(pg: np.ndarray, g: Any) -> bool:
    """Whether a rule handed on ``g`` itself or a view of it."""
    base = pg.base
    return pg is g or (base is not None and (base is g or base is getattr(g, "base", g)))


class InplaceError(RuntimeError):
    """A value saved for backward was changed in place after the forward pass."""


def _check_versions(node: Node) -> None:
    """Raise if ``node`` or one of its tensor inputs changed since ``node`` was made."""
    made = node._seq
    for k, p in enumerate((node, *node._parents)):
        version = getattr(p, "_vc", None)  # only tensors changed in place or viewed have one
        if version is not None and version.tick > made:
            what = "its output" if k == 0 else f"its input {k - 1}"
            name = f" {p.name!r}" if p.name else ""
            assert node._op is not None
            raise InplaceError(
                f"backward: {node._op.name} ({node._op.symbol}) needs {what}, tensor{name} of "
                f"shape {p.shape}, but that tensor was changed in place after the forward pass "
                "(an in-place op or an optimizer step); run the forward pass again after "
                "changing it"
            )


class AnomalyError(RuntimeError):
    """A NaN or infinity appeared while :func:`detect_anomaly` was on."""


def _check_gradient(node: Node, i: int, pg: Any) -> None:
    data = pg.data if isinstance(pg, Node) else pg
    if np.all(np.isfinite(data)):
        return
    assert node._op is not None
    raise AnomalyError(
        f"backward: the gradient that {node._op.name} ({node._op.symbol}) passes to its input "
        f"{i} contains {_bad_kind(data)} (shape {np.shape(data)}).{created_at(node)}"
    )


def check_forward(out: Node, op: Op, parents: tuple[Any, ...]) -> None:
    """Called for every new node under :func:`detect_anomaly`: record where, check values."""
    import traceback

    here = os.path.dirname(__file__)
    out._trace = [f for f in traceback.extract_stack() if not f.filename.startswith(here)]
    if np.all(np.isfinite(out.data)):
        return
    shapes = ", ".join(str(np.shape(p.data if isinstance(p, Node) else p)) for p in parents)
    raise AnomalyError(
        f"forward: {op.name} ({op.symbol}) produced {_bad_kind(out.data)} from inputs of "
        f"shapes {shapes}.{created_at(out)}"
    )


def _bad_kind(data: Any) -> str:
    arr = np.asarray(data)
    nan = bool(np.isnan(arr).any())
    inf = bool(np.isinf(arr).any())
    return "NaN and infinity" if nan and inf else "NaN" if nan else "infinity"


def created_at(node: Node) -> str:
    """Where in user code ``node`` was made (known under detect_anomaly only)."""
    trace = getattr(node, "_trace", None)
    if not trace:
        return ""
    import traceback

    return "\nThe operation was created at:\n" + "".join(traceback.format_list(trace[-6:]))


def _store_node_grad(node: Node, g: Any) -> None:
    """Add a differentiable gradient (a node) into ``node.grad``."""
    if not isinstance(g, Node):
        g = type(node)._wrap_grad(g)
    node.grad = g if node.grad is None else node.grad + g


def grad(
    outputs: Node | Sequence[Node],
    inputs: Node | Sequence[Node],
    grad_outputs: Any = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Any, ...]:
    """Gradients of ``outputs`` with respect to ``inputs``, without touching ``.grad``.

    The semantics of ``torch.autograd.grad``: computes
    ``sum_k d(outputs[k])/d(input) . grad_outputs[k]`` for every input and
    returns them as a tuple of nodes (Tensors for Tensor inputs, Values for
    Value inputs).  With ``create_graph=True`` the results carry a graph, so
    they can be differentiated again.

    >>> import chainrule as cr
    >>> x = cr.Value(3.0)
    >>> (dy,) = cr.grad(x ** 3, x, create_graph=True)
    >>> dy.data, cr.grad(dy, x)[0].data
    (27.0, 18.0)
    """
    outs = [outputs] if isinstance(outputs, Node) else list(outputs)
    ins = [inputs] if isinstance(inputs, Node) else list(inputs)
    tracer = STATE.tracing
    if tracer is not None:  # inside chainrule.compile: the backward pass becomes graph nodes
        create_graph = True
    if not outs:
        raise ValueError("grad: outputs is empty")
    if not ins:
        raise ValueError("grad: inputs is empty")
    for i, x in enumerate(ins):
        if not isinstance(x, Node):
            raise TypeError(f"grad: inputs[{i}] is a {type(x).__name__}, not a Value or Tensor")
        if not x.requires_grad:
            raise RuntimeError(f"grad: inputs[{i}] ({describe(x)}) does not require grad")
    if grad_outputs is None:
        gos: list[Any] = [None] * len(outs)
    elif isinstance(grad_outputs, (Node, np.ndarray, float, int)) and len(outs) == 1:
        gos = [grad_outputs]
    else:
        gos = list(grad_outputs)
        if len(gos) != len(outs):
            raise ValueError(
                f"grad: got {len(gos)} grad_outputs for {len(outs)} outputs; they must pair up"
            )
    seeds = []
    for k, (o, go) in enumerate(zip(outs, gos)):
        seeds.append(seed_for(o, go, f"grad (outputs[{k}])", create_graph))
    found = run_backward(
        outs,
        seeds,
        create_graph=create_graph,
        store=False,
        wanted=ins,
        on_edge=None if tracer is None else tracer.edge_hook(outs),
    )
    result: list[Any] = []
    for i, x in enumerate(ins):
        g = found.get(x)
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: inputs[{i}] ({describe(x)}) is not used to compute the outputs; "
                    "pass allow_unused=True to get None for it"
                )
            result.append(None)
        elif isinstance(g, Node):
            result.append(g)
        else:
            result.append(type(x)._wrap_grad(g))
    return tuple(result)


def iter_graph(roots: Iterable[Node]) -> list[Node]:
    """Every node reachable from ``roots`` (also those needing no grad), parents first."""
    return toposort(list(roots), everything=True)
