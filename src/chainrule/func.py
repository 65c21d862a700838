"""Functional transforms: gradients, Jacobians and Hessians of functions of pytrees.

The names and semantics of ``torch.func``.  A function's arguments are
*pytrees*: dicts, lists and tuples, nested as you like, whose leaves are
Python floats, numpy arrays, :class:`~chainrule.Value` or
:class:`~chainrule.Tensor`.  Results come back in the same structure; called
with plain numbers and arrays, a transform returns plain floats and numpy
arrays, and called with nodes (as it is when one transform runs inside
another) it returns nodes, so transforms compose: ``jvp`` of ``grad``,
``jacfwd`` of ``jacrev``, ``grad`` of ``grad``.

* :func:`grad`, :func:`value_and_grad` and :func:`vjp` run reverse mode: the
  backward traversal of :mod:`chainrule.engine`, recording its own graph so
  that it can be differentiated again.
* :func:`jvp` runs true forward mode: a tangent travels with every value as
  the function runs (dual numbers), each op's tangent coming from its JVP rule
  in the rule table, next to its VJPs.
* :func:`jacrev` builds a Jacobian a row per output element (reverse mode),
  :func:`jacfwd` a column per input element (forward mode), and
  :func:`hessian` is forward over reverse.

>>> import numpy as np
>>> from chainrule import func
>>> f = lambda p: (p["w"] * p["x"]).sum() ** 2
>>> params = {"w": np.array([1.0, 2.0]), "x": np.array([3.0, -1.0])}
>>> func.grad(f)(params)["w"]
array([ 6., -2.])
>>> func.jvp(lambda x: x ** 3, (2.0,), (1.0,))
(8.0, 12.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .engine import Node
from .engine import grad as _node_grad
from .modes import STATE, enable_grad
from .nn.module import Module
from .tensor import Tensor, stack
from .value import Value

__all__ = [
    "functional_call",
    "grad",
    "hessian",
    "jacfwd",
    "jacrev",
    "jvp",
    "tree_flatten",
    "tree_unflatten",
    "value_and_grad",
    "vjp",
]

# ---------------------------------------------------------------------------
# Pytrees.
# ---------------------------------------------------------------------------

#: How a pytree is put together: ("leaf",), ("dict", keys, children),
#: ("list", children) or ("tuple", children).
Spec = tuple[Any, ...]


def tree_flatten(tree: Any, where: str = "func") -> tuple[list[Any], Spec]:
    """The leaves of ``tree`` in order, and the spec that puts them back.

    >>> tree_flatten({"a": [1.0, 2.0], "b": (3.0,)})[0]
    [1.0, 2.0, 3.0]
    """
    leaves: list[Any] = []

    def walk(t: Any, path: str) -> Spec:
        if isinstance(t, dict):
            keys = list(t)
            return ("dict", keys, [walk(t[k], f"{path}[{k!r}]") for k in keys])
        if isinstance(t, (list, tuple)) and not isinstance(t, Node):
            kind = "list" if isinstance(t, list) else "tuple"
            return (kind, [walk(x, f"{path}[{i}]") for i, x in enumerate(t)])
        leaves.append(_check_leaf(t, path, where))
        return ("leaf",)

    return leaves, walk(tree, "input")


def tree_unflatten(spec: Spec, leaves: Sequence[Any]) -> Any:
    """The pytree of ``spec`` with ``leaves`` in place of its leaves, in order."""
    it = iter(leaves)

    def build(s: Spec) -> Any:
        if s[0] == "leaf":
            return next(it)
        if s[0] == "dict":
            return {k: build(c) for k, c in zip(s[1], s[2])}
        children = [build(c) for c in s[1]]
        return children if s[0] == "list" else tuple(children)

    return build(spec)


def _check_leaf(x: Any, path: str, where: str) -> Any:
    if isinstance(x, Node):
        return x
    if isinstance(x, bool) or not isinstance(x, (int, float, np.ndarray, np.generic)):
        raise TypeError(
            f"{where}: {path} is a {type(x).__name__}; a leaf must be a float, a numpy array, "
            "a Value or a Tensor (containers: dict, list, tuple)"
        )
    if np.asarray(x).dtype.kind not in "iuf":
        raise TypeError(f"{where}: {path} has dtype {np.asarray(x).dtype}; leaves must be real")
    return x


# ---------------------------------------------------------------------------
# Leaves in and out.
# ---------------------------------------------------------------------------


def _as_input(x: Any, arrays: bool = False) -> Node:
    """A node to differentiate by, standing for the leaf ``x``.

    A plain number or array becomes a fresh Value or Tensor that requires
    grad (a number becomes a 0-d Tensor when ``arrays``: the call also has
    arrays or Tensors, which a Value cannot mix with).  A node that already
    takes part in an outer transform is used as it is, so that the outer
    transform still sees through this one; a constant node becomes a fresh
    leaf that carries the outer tangents it had.
    """
    if isinstance(x, Node):
        if x.requires_grad:
            return x
        fresh: Node = (
            Value(x.data) if isinstance(x, Value) else Tensor(x.data.astype(_float(x.data)))
        )
        fresh.requires_grad = True
        for tangents in STATE.levels:
            if x in tangents:
                tangents[fresh] = tangents[x]
        return fresh
    if arrays or isinstance(x, np.ndarray) or (isinstance(x, np.generic) and np.ndim(x) > 0):
        return Tensor(np.asarray(x, dtype=_float(np.asarray(x))), requires_grad=True)
    return Value(float(x))


def _has_arrays(leaves: Sequence[Any]) -> bool:
    """Whether numbers among ``leaves`` must become Tensors to meet the others."""
    return any(isinstance(x, (np.ndarray, Tensor)) for x in leaves)


def _float(a: np.ndarray) -> Any:
    return a.dtype if a.dtype.kind == "f" else np.float64


def _like(node: Node, data: Any) -> Node:
    """``data`` as a constant node of ``node``'s kind."""
    if isinstance(node, Value):
        return Value(float(np.asarray(data)), requires_grad=False)
    return Tensor(np.broadcast_to(np.asarray(data, dtype=node.data.dtype), node.shape))


def _zeros(node: Node) -> Node:
    return _like(node, np.zeros(np.shape(node.data)))


def _out(x: Any, raw: bool) -> Any:
    """A result leaf: a float or an array when the transform was given plain data."""
    if not raw or not isinstance(x, Node):
        return x
    return float(x.data) if isinstance(x, Value) else np.array(x.data)


def _is_raw(leaves: Sequence[Any]) -> bool:
    return not any(isinstance(x, Node) for x in leaves)


def _argnums(argnums: int | tuple[int, ...], n: int, where: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums:
        raise ValueError(f"{where}: argnums is empty")
    for a in nums:
        if not isinstance(a, int) or not -n <= a < n:
            raise ValueError(
                f"{where}: argnums {argnums!r} is out of range for a call with {n} positional "
                "argument(s)"
            )
    return tuple(a % n for a in nums)


class _Inputs:
    """The differentiated arguments of one call, as input nodes."""

    def __init__(self, args: tuple[Any, ...], nums: tuple[int, ...], where: str) -> None:
        self.nums = nums
        self.specs: list[Spec] = []
        self.nodes: list[Node] = []
        self.counts: list[int] = []
        self.numbers: list[bool] = []  # which leaves were plain numbers
        raw = True
        new_args = list(args)
        flat = [tree_flatten(args[a], where) for a in nums]
        arrays = _has_arrays([x for leaves, _ in flat for x in leaves])
        for a, (leaves, spec) in zip(nums, flat):
            raw = raw and _is_raw(leaves)
            nodes = [_as_input(x, arrays) for x in leaves]
            self.numbers += [not isinstance(x, (Node, np.ndarray)) for x in leaves]
            self.specs.append(spec)
            self.nodes += nodes
            self.counts.append(len(nodes))
            new_args[a] = tree_unflatten(spec, nodes)
        self.args = tuple(new_args)
        self.raw = raw

    def structure(self, leaves: Sequence[Any], single: bool) -> Any:
        """Per-leaf results, put back in the structure of the differentiated arguments."""
        if self.raw:  # a number's result is a number, even if it ran as a 0-d Tensor
            leaves = [
                float(x) if number and np.ndim(x) == 0 else x
                for x, number in zip(leaves, self.numbers)
            ]
        trees, k = [], 0
        for spec, n in zip(self.specs, self.counts):
            trees.append(tree_unflatten(spec, list(leaves[k : k + n])))
            k += n
        return trees[0] if single else tuple(trees)


# ---------------------------------------------------------------------------
# Reverse mode.
# ---------------------------------------------------------------------------


def value_and_grad(
    f: Callable[..., Any], argnums: int | tuple[int, ...] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """``f``'s value and its gradient with respect to the arguments ``argnums``.

    ``f`` returns a scalar (or ``(scalar, aux)`` with ``has_aux``).  The
    gradient has the structure of the argument (a tuple of them for a tuple
    of ``argnums``); the call returns ``(value, gradient)``, or
    ``((value, aux), gradient)`` with ``has_aux``.

    >>> value_and_grad(lambda x: x * x)(3.0)
    (9.0, 6.0)
    """

    def transformed(*args: Any, **kwargs: Any) -> Any:
        nums = _argnums(argnums, len(args), "value_and_grad")
        inputs = _Inputs(args, nums, "grad")
        with enable_grad():
            result = f(*inputs.args, **kwargs)
        out, aux = _split_aux(result, has_aux, "grad")
        if not isinstance(out, Node) or np.size(out.data) != 1:
            what = type(out).__name__ if not isinstance(out, Node) else f"shape {out.shape}"
            raise ValueError(
                f"grad: f must return a scalar Value or a one-element Tensor, got {what}; "
                "use jacrev or vjp for other outputs"
            )
        grads = _reverse([out], [None], inputs.nodes)
        value = _out(out, inputs.raw)
        if isinstance(value, np.ndarray):
            value = value.reshape(()).item() if inputs.raw else value
        tree = inputs.structure([_out(g, inputs.raw) for g in grads], isinstance(argnums, int))
        return ((value, aux), tree) if has_aux else (value, tree)

    return transformed


def grad(
    f: Callable[..., Any], argnums: int | tuple[int, ...] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """The gradient of scalar-valued ``f`` with respect to the arguments ``argnums``.

    Returns the gradient (``(gradient, aux)`` with ``has_aux``), shaped as
    the arguments: see :func:`value_and_grad`.

    >>> grad(lambda x, y: x * y, argnums=(0, 1))(3.0, 4.0)
    (4.0, 3.0)
    """
    both = value_and_grad(f, argnums, has_aux)

    def transformed(*args: Any, **kwargs: Any) -> Any:
        (value, tree) = both(*args, **kwargs)
        return (tree, value[1]) if has_aux else tree

    return transformed


def vjp(f: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """``f(*primals)`` and a function taking cotangents to their vector-Jacobian products.

    ``vjp_fn(cotangents)`` takes a pytree shaped as the output and returns a
    tuple with one pytree per primal: ``sum over outputs of cotangent *
    d output / d primal``.

    >>> out, vjp_fn = vjp(lambda x: x * 2.0, 3.0)
    >>> out, vjp_fn(1.0)
    (6.0, (2.0,))
    """
    inputs = _Inputs(primals, tuple(range(len(primals))), "vjp")
    with enable_grad():
        result = f(*inputs.args)
    out_tree, aux = _split_aux(result, has_aux, "vjp")
    outs, out_spec = tree_flatten(out_tree, "vjp (output)")

    def vjp_fn(cotangents: Any) -> tuple[Any, ...]:
        cots, spec = tree_flatten(cotangents, "vjp (cotangents)")
        if spec != out_spec:
            raise ValueError("vjp: the cotangents' structure does not match f's output")
        for k, (o, c) in enumerate(zip(outs, cots)):
            if np.shape(getattr(c, "data", c)) != np.shape(getattr(o, "data", o)):
                raise ValueError(
                    f"vjp: cotangent {k} has shape {np.shape(getattr(c, 'data', c))} but the "
                    f"output has shape {np.shape(getattr(o, 'data', o))}"
                )
        grads = _reverse(outs, cots, inputs.nodes)
        tree = inputs.structure([_out(g, inputs.raw) for g in grads], False)
        return tuple(tree)

    value = tree_unflatten(out_spec, [_out(o, inputs.raw) for o in outs])
    return (value, vjp_fn, aux) if has_aux else (value, vjp_fn)


def _reverse(outs: Sequence[Any], cots: Sequence[Any], nodes: Sequence[Node]) -> list[Node]:
    """``sum_k cot_k d outs[k] / d node`` for each node, recorded so it can be differentiated."""
    pairs = [(o, c) for o, c in zip(outs, cots) if isinstance(o, Node) and o.requires_grad]
    if not pairs:
        return [_zeros(n) for n in nodes]
    found = _node_grad(
        [o for o, _ in pairs],
        list(nodes),
        grad_outputs=[None if c is None or isinstance(c, Node) else _like(o, c) for o, c in pairs]
        if all(c is None or not isinstance(c, Node) for _, c in pairs)
        else [c for _, c in pairs],
        create_graph=True,
        allow_unused=True,
    )
    return [_zeros(n) if g is None else g for n, g in zip(nodes, found)]


def _split_aux(result: Any, has_aux: bool, where: str) -> tuple[Any, Any]:
    if not has_aux:
        return result, None
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ValueError(f"{where}: with has_aux=True, f must return a pair (output, aux)")
    return result


# ---------------------------------------------------------------------------
# Forward mode.
# ---------------------------------------------------------------------------


def jvp(
    f: Callable[..., Any], primals: tuple[Any, ...], tangents: tuple[Any, ...]
) -> tuple[Any, Any]:
    """``f(*primals)`` and its Jacobian-vector product with ``tangents``, in one forward pass.

    Each value computed carries its tangent (the derivative along
    ``tangents``) beside it, as a dual number does; every op's tangent comes
    from its JVP rule.  ``tangents`` has the structure and shapes of
    ``primals``.

    >>> jvp(lambda x, y: x * y, (3.0, 4.0), (1.0, 0.0))
    (12.0, 4.0)
    """
    if not isinstance(primals, tuple) or not isinstance(tangents, tuple):
        raise TypeError("jvp: primals and tangents must be tuples (one entry per argument)")
    if STATE.tracing is not None:
        STATE.tracing.refuse_forward_mode("jvp")
    p_leaves, p_spec = tree_flatten(primals, "jvp (primals)")
    t_leaves, t_spec = tree_flatten(tangents, "jvp (tangents)")
    if p_spec != t_spec:
        raise ValueError("jvp: the tangents' structure does not match the primals'")
    for k, (p, t) in enumerate(zip(p_leaves, t_leaves)):
        ps, ts = np.shape(getattr(p, "data", p)), np.shape(getattr(t, "data", t))
        if ps != ts:
            raise ValueError(f"jvp: tangent {k} has shape {ts} but its primal has shape {ps}")
    raw = _is_raw(p_leaves) and _is_raw(t_leaves)
    arrays = _has_arrays(p_leaves)
    nodes = [_forward_input(p, arrays) for p in p_leaves]
    level: dict[Any, Any] = {}
    for n, t in zip(nodes, t_leaves):
        level[n] = t if isinstance(t, Node) else _like(n, t)
    STATE.levels = [*STATE.levels, level]
    STATE.switch(forward=True)
    try:
        result = f(*tree_unflatten(p_spec, nodes))
    finally:
        STATE.levels = STATE.levels[:-1]
        STATE.switch(forward=bool(STATE.levels))
    outs, o_spec = tree_flatten(result, "jvp (output)")
    tangent_out = [level.get(o) if isinstance(o, Node) else None for o in outs]
    tangent_out = [
        _zeros(o) if t is None and isinstance(o, Node) else (0.0 if t is None else t)
        for o, t in zip(outs, tangent_out)
    ]
    return (
        tree_unflatten(o_spec, [_out(o, raw) for o in outs]),
        tree_unflatten(o_spec, [_out(t, raw) for t in tangent_out]),
    )


def _forward_input(x: Any, arrays: bool) -> Node:
    """A node for a primal: a fresh one for plain data, else an alias the level can tag."""
    if isinstance(x, Node):
        alias: Node = x * 1.0  # type: ignore[operator,assignment]  # an op: the level tags it
        return alias
    if arrays or isinstance(x, np.ndarray) or (isinstance(x, np.generic) and np.ndim(x) > 0):
        return Tensor(np.asarray(x, dtype=_float(np.asarray(x))))
    return Value(float(x), requires_grad=False)


# ---------------------------------------------------------------------------
# Jacobians and Hessians.
# ---------------------------------------------------------------------------


def jacrev(f: Callable[..., Any], argnums: int | tuple[int, ...] = 0) -> Callable[..., Any]:
    """The Jacobian of ``f`` by reverse mode: one backward pass per output element.

    For an output of shape ``O`` and an input of shape ``I`` the Jacobian has
    shape ``O + I``; for pytrees it is nested: the output's structure, each
    leaf holding the inputs' structure.

    >>> jacrev(lambda x: x ** 2)(np.array([1.0, 2.0]))
    array([[2., 0.],
           [0., 4.]])
    """

    def transformed(*args: Any) -> Any:
        nums = _argnums(argnums, len(args), "jacrev")
        inputs = _Inputs(args, nums, "jacrev")
        with enable_grad():
            result = f(*inputs.args)
        outs, o_spec = tree_flatten(result, "jacrev (output)")
        per_output = []
        for o in outs:
            size = int(np.size(getattr(o, "data", o)))
            rows = []
            for j in range(size):
                basis = np.zeros(size)
                basis[j] = 1.0
                cot = basis.reshape(np.shape(o.data)) if isinstance(o, Node) else basis
                rows.append(_reverse([o], [cot], inputs.nodes))
            per_output.append(
                [
                    _assemble([r[k] for r in rows], np.shape(getattr(o, "data", o)), n)
                    for k, n in enumerate(inputs.nodes)
                ]
            )
        trees = [
            inputs.structure([_out(x, inputs.raw) for x in leaves], isinstance(argnums, int))
            for leaves in per_output
        ]
        return tree_unflatten(o_spec, trees)

    return transformed


def jacfwd(f: Callable[..., Any], argnums: int | tuple[int, ...] = 0) -> Callable[..., Any]:
    """The Jacobian of ``f`` by forward mode: one forward pass per input element.

    The same result as :func:`jacrev` (shape ``O + I`` per output and input),
    computed column by column with :func:`jvp`.

    >>> jacfwd(lambda x: x ** 2)(np.array([1.0, 2.0]))
    array([[2., 0.],
           [0., 4.]])
    """

    def transformed(*args: Any) -> Any:
        nums = _argnums(argnums, len(args), "jacfwd")
        p_leaves, p_spec = tree_flatten(tuple(args[a] for a in nums), "jacfwd")
        raw = _is_raw(p_leaves) and _is_raw(list(args))

        def g(*chosen: Any) -> Any:
            full = list(args)
            for a, v in zip(nums, chosen):
                full[a] = v
            return f(*full)

        zero = [np.zeros(np.shape(getattr(p, "data", p))) for p in p_leaves]
        columns: list[list[Any]] = []  # per input leaf, per element: the output leaves' tangents
        o_spec: Spec = ("leaf",)
        outs: list[Any] = []
        for k in range(len(p_leaves)):
            per_element = []
            for j in range(int(np.size(zero[k]))):
                direction: list[Any] = list(zero)
                e = np.zeros(zero[k].size)
                e[j] = 1.0
                direction[k] = e.reshape(zero[k].shape) if zero[k].ndim else float(e[0])
                tangents = tree_unflatten(p_spec, direction)
                out, tangent = jvp(g, tree_unflatten(p_spec, p_leaves), tangents)
                outs, o_spec = tree_flatten(out, "jacfwd (output)")
                per_element.append(tree_flatten(tangent, "jacfwd (output)")[0])
            columns.append(per_element)
        trees = []
        for i, o in enumerate(outs):
            o_shape = np.shape(getattr(o, "data", o))
            per_input = []
            for k in range(len(p_leaves)):
                cols = [col[i] for col in columns[k]]
                per_input.append(_assemble_columns(cols, o_shape, np.shape(zero[k]), raw))
            trees.append(tree_unflatten(p_spec, per_input))
        if isinstance(argnums, int):
            trees = [t[0] for t in trees]
        return tree_unflatten(o_spec, trees)

    return transformed


def hessian(f: Callable[..., Any], argnums: int | tuple[int, ...] = 0) -> Callable[..., Any]:
    """The Hessian of scalar-valued ``f``: :func:`jacfwd` of :func:`jacrev` (forward over reverse).

    >>> hessian(lambda x: (x ** 3).sum())(np.array([1.0, 2.0]))
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    return jacfwd(jacrev(f, argnums), argnums)


def _assemble(rows: list[Any], out_shape: tuple[int, ...], node: Node) -> Any:
    """Rows d out[j] / d node (one per output element) as one block of shape ``O + I``."""
    in_shape = np.shape(node.data)
    if not out_shape and len(rows) == 1:
        return rows[0]
    block = stack([r if isinstance(r, Tensor) else Tensor(np.asarray(r.data)) for r in rows])
    return block.reshape(out_shape + in_shape)


def _assemble_columns(
    cols: list[Any], out_shape: tuple[int, ...], in_shape: tuple[int, ...], raw: bool
) -> Any:
    """Columns d out / d input[j] (one per input element) as one block of shape ``O + I``."""
    if not in_shape and len(cols) == 1:
        return cols[0]
    if raw:
        block = np.stack([np.asarray(c, dtype=float) for c in cols], axis=-1)
        return block.reshape(out_shape + in_shape)
    tensors = [c if isinstance(c, Tensor) else Tensor(np.asarray(c.data)) for c in cols]
    return stack(tensors, axis=-1).reshape(out_shape + in_shape)


# ---------------------------------------------------------------------------
# Models.
# ---------------------------------------------------------------------------


def functional_call(module: Module, params: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``module(*args, **kwargs)`` with some parameters taken from ``params``.

    ``params`` maps dotted parameter names (as :meth:`Module.named_parameters`
    gives them) to arrays or Tensors, used in place of the module's own for
    this call only; the module is left as it was.  So every transform here
    applies to a model, with its parameters as a pytree:

    >>> from chainrule import nn
    >>> import chainrule as cr
    >>> layer = nn.Linear(2, 1, weight=[[1.0, 2.0]], bias=[0.0])
    >>> loss = lambda p: functional_call(layer, p, cr.Tensor([3.0, 4.0])).sum()
    >>> grad(loss)({"weight": np.array([[1.0, 2.0]]), "bias": np.array([0.0])})["weight"]
    array([[3., 4.]])
    """
    own = dict(module.named_parameters())
    unknown = sorted(set(params) - set(own))
    if unknown:
        raise KeyError(
            f"functional_call: {type(module).__name__} has no parameter(s) {unknown}; "
            f"its parameters are {sorted(own)}"
        )
    swapped = []
    try:
        for name, value in params.items():
            owner, key = _owner(module, name)
            new = value if isinstance(value, Tensor) else Tensor(value)
            if new.shape != own[name].shape:
                raise ValueError(
                    f"functional_call: {name!r} has shape {new.shape}, but the module's "
                    f"parameter has shape {own[name].shape}"
                )
            swapped.append((owner, key, owner.__dict__[key]))
            object.__setattr__(owner, key, new)
        return module(*args, **kwargs)
    finally:
        for owner, key, old in reversed(swapped):
            object.__setattr__(owner, key, old)


def _owner(module: Module, dotted: str) -> tuple[Module, str]:
    """The module that holds the parameter called ``dotted``, and its own name for it."""
    *path, key = dotted.split(".")
    for part in path:
        module = getattr(module, part)
    return module, key
