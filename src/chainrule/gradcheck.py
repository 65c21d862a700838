"""Checking autodiff against central finite differences.

For a function f and an input element x_i, the central difference

    (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

approximates df/dx_i with an error of order eps^2.  :func:`gradcheck` builds
the whole Jacobian this way, one input element at a time, and compares it
with the Jacobian autodiff gives, one output element at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .engine import Node, grad
from .modes import enable_grad, no_grad
from .tensor import Tensor
from .value import Value


class GradcheckError(AssertionError):
    """Autodiff and finite differences disagree; the message says where."""


def _outputs(result: Any) -> list[Node]:
    outs = list(result) if isinstance(result, (tuple, list)) else [result]
    for k, o in enumerate(outs):
        if not isinstance(o, Node):
            raise TypeError(
                f"gradcheck: output {k} of fn is a {type(o).__name__}, not a Value or Tensor"
            )
    return outs


def _flat(x: Node) -> np.ndarray:
    """The data of a node as a flat float64 array (a copy)."""
    return np.array(x.data, dtype=np.float64).reshape(-1)


def _set(x: Node, flat: np.ndarray) -> None:
    if isinstance(x, Value):
        x.data = float(flat[0])
    else:
        x.data = flat.reshape(x.data.shape).astype(x.data.dtype)


def numerical_jacobian(
    fn: Callable[..., Any], inputs: Sequence[Node], eps: float = 1e-6
) -> list[list[np.ndarray]]:
    """Finite-difference Jacobians: ``J[k][i]`` has shape (output k size, input i size)."""
    inputs = list(inputs)
    with no_grad():
        outs0 = [_flat(o) for o in _outputs(fn(*inputs))]
    jac = [[np.zeros((o.size, _flat(x).size)) for x in inputs] for o in outs0]
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            continue
        base = _flat(x)
        for j in range(base.size):
            cols = []
            for step in (eps, -eps):
                moved = base.copy()
                moved[j] += step
                _set(x, moved)
                with no_grad():
                    cols.append([_flat(o) for o in _outputs(fn(*inputs))])
            _set(x, base)
            for k in range(len(outs0)):
                jac[k][i][:, j] = (cols[0][k] - cols[1][k]) / (2 * eps)
    return jac


def analytical_jacobian(fn: Callable[..., Any], inputs: Sequence[Node]) -> list[list[np.ndarray]]:
    """Autodiff Jacobians, one backward pass per output element (``.grad`` untouched)."""
    inputs = list(inputs)
    outs = _outputs(fn(*inputs))
    wrt = [x for x in inputs if x.requires_grad]
    jac = [[np.zeros((_flat(o).size, _flat(x).size)) for x in inputs] for o in outs]
    for k, o in enumerate(outs):
        if not o.requires_grad:
            continue  # does not depend on any input: its row stays zero
        n = _flat(o).size
        for r in range(n):
            seed: Any
            if isinstance(o, Value):
                seed = 1.0
            else:
                seed = np.zeros(n, dtype=o.data.dtype)
                seed[r] = 1.0
                seed = seed.reshape(o.data.shape)
            gs = grad(o, wrt, grad_outputs=seed, allow_unused=True)
            gi = iter(gs)
            for i, x in enumerate(inputs):
                if not x.requires_grad:
                    continue
                g = next(gi)
                if g is not None:
                    jac[k][i][r, :] = _flat(g)
    return jac


def _check_inputs(inputs: Sequence[Node], where: str) -> None:
    if not inputs:
        raise ValueError(f"{where}: no inputs given")
    for i, x in enumerate(inputs):
        if not isinstance(x, Node):
            raise TypeError(f"{where}: input {i} is a {type(x).__name__}, not a Value or Tensor")
        if isinstance(x, Tensor) and x.data.dtype != np.float64:
            raise TypeError(
                f"{where}: input {i} has dtype {x.data.dtype}; finite differences need float64 "
                "(make it with dtype=np.float64)"
            )
    if not any(x.requires_grad for x in inputs):
        raise ValueError(f"{where}: no input requires grad, so there is nothing to check")


def gradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Node] | Node,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
) -> bool:
    """Check the gradients of ``fn`` at ``inputs`` against central differences.

    ``fn`` takes the inputs (Values or float64 Tensors) and returns a node or
    a tuple of nodes.  Every entry of every Jacobian must satisfy
    ``|autodiff - numeric| <= atol + rtol * |numeric|``.

    Returns True, or raises :class:`GradcheckError` naming the output, the
    input, the element and both values.

    >>> import numpy as np, chainrule as cr
    >>> x = cr.Tensor(np.array([0.5, -1.0]), requires_grad=True)
    >>> cr.gradcheck(lambda t: (t * t).tanh().sum(), [x])
    True
    """
    ins = [inputs] if isinstance(inputs, Node) else list(inputs)
    _check_inputs(ins, "gradcheck")
    numeric = numerical_jacobian(fn, ins, eps)
    autodiff = analytical_jacobian(fn, ins)
    for k, (num_row, ad_row) in enumerate(zip(numeric, autodiff)):
        for i, (num, ad) in enumerate(zip(num_row, ad_row)):
            if not ins[i].requires_grad:
                continue
            bad = ~(np.abs(ad - num) <= atol + rtol * np.abs(num))
            if bad.any():
                r, c = np.argwhere(bad)[0]
                x = ins[i]
                label = f" ({x.name!r})" if x.name else ""
                where = _position(x, int(c))
                raise GradcheckError(
                    f"gradcheck: d(output {k})[{int(r)}] / d(input {i}{label}){where}: "
                    f"autodiff gives {float(ad[r, c])!r}, "
                    f"finite differences give {float(num[r, c])!r} "
                    f"(eps={eps}, atol={atol}, rtol={rtol}; {int(bad.sum())} entries disagree)"
                )
    return True


def _position(x: Node, flat_index: int) -> str:
    if isinstance(x, Value) or not x.data.shape:
        return ""
    return str([int(i) for i in np.unravel_index(flat_index, x.data.shape)])


def gradgradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Node] | Node,
    grad_outputs: Sequence[Any] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check second derivatives: gradcheck the gradient of ``fn`` itself.

    The gradient ``v . dfn/dx`` (with fixed random ``grad_outputs`` v unless
    given) is computed with ``create_graph=True``; it must equal the same
    gradient computed without a graph, and its own derivatives with respect to
    the inputs are compared with finite differences of it.
    """
    ins = [inputs] if isinstance(inputs, Node) else list(inputs)
    _check_inputs(ins, "gradgradcheck")
    outs = _outputs(fn(*ins))
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        gos: list[Any] = [
            float(rng.standard_normal())
            if isinstance(o, Value)
            else rng.standard_normal(o.data.shape)
            for o in outs
        ]
    else:
        gos = list(grad_outputs)
    wrt_idx = [i for i, x in enumerate(ins) if x.requires_grad]

    @enable_grad()
    def first_grad(*xs: Node) -> tuple[Node, ...]:
        os = _outputs(fn(*xs))
        gs = grad(
            os, [xs[i] for i in wrt_idx], grad_outputs=gos, create_graph=True, allow_unused=True
        )
        return tuple(
            g if g is not None else type(xs[i])._wrap_grad(np.zeros_like(xs[i].data))
            for g, i in zip(gs, wrt_idx)
        )

    # The node form of each rule (create_graph) must give the same first
    # derivative as its array form; otherwise a wrong but self-consistent
    # node form would pass the finite-difference check below.
    recorded = first_grad(*ins)
    plain = grad(outs, [ins[i] for i in wrt_idx], grad_outputs=gos, allow_unused=True)
    for g_rec, g_plain, i in zip(recorded, plain, wrt_idx):
        a = np.asarray(g_rec.data, dtype=np.float64)
        b = np.zeros_like(a) if g_plain is None else np.asarray(g_plain.data, dtype=np.float64)
        bad = ~(np.abs(a - b) <= atol + rtol * np.abs(b))
        if bad.any():
            k = int(np.argwhere(bad.reshape(-1))[0][0])
            raise GradcheckError(
                f"gradgradcheck: d(output)/d(input {i}){_position(ins[i], k)} is "
                f"{float(a.reshape(-1)[k])!r} with create_graph=True but "
                f"{float(b.reshape(-1)[k])!r} without it: the rule's node form disagrees "
                "with its array form"
            )
    return gradcheck(first_grad, ins, eps=eps, atol=atol, rtol=rtol)
