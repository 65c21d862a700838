"""Gradient tools: clipping as PyTorch defines it, and gradient norms to watch training by.

``clip_grad_norm_`` and ``clip_grad_value_`` clip gradients;
``grad_norms`` measures each parameter's gradient and ``plot_grad_flow``
draws those measurements over training, layer by layer (with matplotlib).

Both clipping functions change the ``.grad`` of the given parameters in place (between
``backward()`` and the optimizer's ``step()``) and skip parameters without a
gradient.  Where ``.grad`` is a Tensor left by ``backward(create_graph=True)``,
its numbers are changed in place and its version bumped, so a graph that used
the old numbers refuses to backpropagate instead of giving wrong results.

>>> import chainrule as cr
>>> w = cr.nn.Parameter([3.0, 4.0])
>>> (w * w).sum().backward()                 # gradient 2w = [6, 8], norm 10
>>> cr.nn.utils.clip_grad_norm_([w], max_norm=5.0).item()
10.0
>>> w.grad.round(6)                          # scaled by 5 / (10 + 1e-6)
array([3., 4.])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..tensor import Tensor
from .module import Module

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["clip_grad_norm_", "clip_grad_value_", "grad_norms", "plot_grad_flow"]


def _grads(owner: str, parameters: Tensor | Iterable[Tensor]) -> list[tuple[Tensor, np.ndarray]]:
    """(parameter, its gradient's numbers) for every parameter that has a gradient."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    try:
        items = list(parameters)
    except TypeError:
        raise TypeError(
            f"{owner}: parameters must be a Tensor or an iterable of Tensors, "
            f"got {type(parameters).__name__}"
        ) from None
    out = []
    for i, p in enumerate(items):
        if not isinstance(p, Tensor):
            raise TypeError(f"{owner}: parameter {i} is a {type(p).__name__}, not a Tensor")
        g = p.grad
        if g is None:
            continue
        arr = g.data if isinstance(g, Tensor) else g
        if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
            raise TypeError(
                f"{owner}: the grad of parameter {i} ({p.name or 'unnamed'}) is "
                f"{type(arr).__name__} of dtype {getattr(arr, 'dtype', None)}, "
                "not a floating-point array"
            )
        out.append((p, arr))
    return out


def _bump_grad(p: Tensor) -> None:
    # A Tensor gradient (from create_graph) is a graph node: changing its data
    # in place must invalidate graphs that recorded the old numbers.
    if isinstance(p.grad, Tensor):
        p.grad._bump()


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    The total norm is the ``norm_type``-norm of all gradients seen as one
    vector, ``(sum_i sum_j |g_ij|^p)^(1/p)``, or ``max |g_ij|`` for
    ``norm_type=inf`` (``float("inf")`` or ``"inf"``).  When
    ``c = max_norm / (total + 1e-6)`` is below 1, every gradient is multiplied
    by ``c`` in place; otherwise they are left as they are.

    Returns the total norm before clipping, as a 0-d Tensor (0.0 when no
    parameter has a gradient).  A non-finite total norm raises a
    RuntimeError when ``error_if_nonfinite`` is set; otherwise the scaling
    proceeds and leaves NaNs, as in PyTorch.

    >>> import chainrule as cr
    >>> a, b = cr.nn.Parameter([1.0, -3.0]), cr.nn.Parameter([2.0])
    >>> a.sum().backward(); (b * 4.0).sum().backward()    # grads [1, 1] and [4]
    >>> cr.nn.utils.clip_grad_norm_([a, b], max_norm=10.0, norm_type="inf").item()
    4.0
    """
    owner = "clip_grad_norm_"
    # (PyTorch would flip the gradients' sign for a negative bound: a mistake here)
    max_norm = _bound(owner, "max_norm", max_norm)
    try:
        p_norm = float(norm_type)
    except (TypeError, ValueError):
        raise ValueError(
            f"{owner}: norm_type must be a positive number or inf, got {norm_type!r}"
        ) from None
    if not p_norm > 0:
        raise ValueError(f"{owner}: norm_type must be a positive number or inf, got {norm_type!r}")
    grads = _grads(owner, parameters)
    if not grads:
        return Tensor(np.array(0.0))
    if math.isinf(p_norm):
        total = max(float(np.max(np.abs(g), initial=0.0)) for _, g in grads)
    else:
        # The norm of the per-gradient norms equals the norm of all entries together.
        per = np.array([np.linalg.norm(g.ravel(), ord=p_norm) for _, g in grads])
        total = float(np.linalg.norm(per, ord=p_norm))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"{owner}: the total norm of order {norm_type} of the gradients is {total}, "
            "so they cannot be clipped; set error_if_nonfinite=False to scale anyway"
        )
    coef = max_norm / (total + 1e-6)
    if not coef >= 1.0:  # (also when coef is NaN: the NaN spreads, as in PyTorch)
        # An infinite entry times 0 is NaN; that result is the documented one.
        with np.errstate(invalid="ignore"):
            for p, g in grads:
                g *= coef
                _bump_grad(p)
    return Tensor(np.array(total))


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient entry into ``[-clip_value, clip_value]``, in place.

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter([1.0, -2.0, 0.5])
    >>> (w * 4.0).sum().backward()
    >>> cr.nn.utils.clip_grad_value_(w, 1.5)
    >>> w.grad
    array([1.5, 1.5, 1.5])
    """
    owner = "clip_grad_value_"
    # (with a negative bound the interval is empty; PyTorch would set every entry to it)
    clip_value = _bound(owner, "clip_value", clip_value)
    for p, g in _grads(owner, parameters):
        np.clip(g, -clip_value, clip_value, out=g)
        _bump_grad(p)


def _bound(owner: str, name: str, value: Any) -> float:
    """A clipping bound as a float: a real number, not negative (nor NaN)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    bound = float(value)
    if not bound >= 0:
        raise ValueError(f"{owner}: {name} must be non-negative, got {bound}")
    return bound


def grad_norms(model: Module) -> dict[str, float]:
    """The Euclidean (Frobenius) norm of each parameter's gradient, by dotted name.

    ``{"0.weight": ||dL/dW0||, "0.bias": ..., ...}`` in the order of
    ``model.named_parameters()``, for the parameters that have a gradient
    (frozen ones, or all before the first ``backward()``, are left out).
    Called after ``backward()`` at each step, it shows how the gradient
    signal reaches each layer: in a deep network it can shrink layer by
    layer towards the input (vanishing) or grow (exploding), and the norms
    show which.  :func:`plot_grad_flow` draws a list of them.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> layer = nn.Linear(2, 1, weight=[[3.0, 4.0]], bias=[0.0])
    >>> layer(cr.Tensor([[1.0, 0.0], [0.0, 1.0]])).sum().backward()  # dL/dW = [[1, 1]]
    >>> {name: round(n, 4) for name, n in grad_norms(layer).items()}
    {'weight': 1.4142, 'bias': 2.0}
    """
    if not isinstance(model, Module):
        raise TypeError(f"grad_norms: expected an nn.Module, got {type(model).__name__}")
    out: dict[str, float] = {}
    for name, p in model.named_parameters():
        g = p.grad
        if g is None:
            continue
        arr = g.data if isinstance(g, Tensor) else g
        # In float64, so that a float32 gradient's squares cannot overflow.
        out[name] = float(np.linalg.norm(np.asarray(arr, dtype=np.float64).ravel()))
    return out


def plot_grad_flow(
    history: Sequence[Mapping[str, float]],
    ax: Axes | None = None,
    *,
    names: Sequence[str] | None = None,
    title: str | None = None,
) -> Axes:
    """Draw gradient norms over training: one line per parameter, on a log scale.

    ``history`` holds one :func:`grad_norms` result per training step.  Lines
    are coloured by the parameter's place in the model, from the first layer
    (dark) to the last (light), so a gap that opens between the first layers
    and the last ones is vanishing gradients at sight.  ``names`` picks the
    parameters to draw (default: all, in the order first met); ``ax`` is the
    matplotlib Axes to draw on (default: a new figure's).  Returns the Axes.

    Needs matplotlib (``pip install matplotlib``, or the ``examples`` extra);
    it is imported only here.
    """
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError(
            "plot_grad_flow: drawing needs matplotlib; install it with: pip install matplotlib "
            "(or pip install 'chainrule[examples]')"
        ) from e
    if isinstance(history, Mapping) or not isinstance(history, Sequence):
        raise TypeError(
            "plot_grad_flow: history must be a list of grad_norms(model) results (one per "
            f"step), got {type(history).__name__}"
        )
    if not history:
        raise ValueError("plot_grad_flow: history is empty; record grad_norms(model) each step")
    for step, record in enumerate(history):
        if not isinstance(record, Mapping):
            raise TypeError(
                f"plot_grad_flow: history[{step}] is a {type(record).__name__}, not a dict of "
                "gradient norms"
            )
    seen: dict[str, None] = {}
    for record in history:
        seen.update(dict.fromkeys(record))
    chosen = list(seen) if names is None else list(names)
    unknown = [n for n in chosen if n not in seen]
    if unknown:
        raise ValueError(
            f"plot_grad_flow: no recorded norms for {unknown}; recorded are {list(seen)}"
        )
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4))
    colours = matplotlib.colormaps["viridis"]
    steps = np.arange(len(history))
    for i, name in enumerate(chosen):
        # A step without this parameter's gradient leaves a gap in its line.
        values = np.array([float(r.get(name, np.nan)) for r in history])
        shade = 0.9 * i / max(len(chosen) - 1, 1)
        ax.plot(steps, values, color=colours(shade), label=name, linewidth=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("gradient norm")
    if title is not None:
        ax.set_title(title)
    ax.legend(fontsize="x-small", ncol=2 if len(chosen) > 8 else 1)
    return ax
