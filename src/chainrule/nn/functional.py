"""Layers and losses as plain functions of tensors.

Everything here is composed from :class:`~chainrule.Tensor` operations, so
the engine differentiates it with the rules it already has; no function in
this module computes a gradient itself.  The module classes in
:mod:`chainrule.nn` are thin wrappers around these.

Losses follow PyTorch's definitions and its ``reduction`` argument:
``'mean'`` (the default) averages the per-element losses, ``'sum'`` adds them
and ``'none'`` returns them unreduced.

>>> import chainrule as cr
>>> import chainrule.nn.functional as F
>>> logits = cr.Tensor([[2.0, 0.5, -1.0]], requires_grad=True)
>>> loss = F.cross_entropy(logits, [0])
>>> loss.backward()
>>> bool(abs(logits.grad.sum()) < 1e-12)   # softmax - one_hot sums to zero
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import rules as R
from ..numerics import quiet
from ..random import resolve
from ..tensor import Tensor, _make, keyword_error, where

_REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------------------
# Layers and activations.
# ---------------------------------------------------------------------------


def linear(input: Any, weight: Tensor, bias: Tensor | None = None) -> Tensor:  # noqa: A002
    """``input @ weight.T + bias``: an affine map of the last axis.

    ``input`` has shape ``(..., in_features)``, ``weight`` ``(out_features,
    in_features)`` and ``bias`` ``(out_features,)``; the result has shape
    ``(..., out_features)``; a single sample (1-D input) is computed as
    ``weight @ input``.  By the matmul rule, dL/dweight = g^T input and
    dL/dinput = g weight, with ``g`` the gradient of the output; the bias
    receives g summed over the leading axes.

    >>> import chainrule as cr
    >>> linear(cr.Tensor([1.0, 2.0]), cr.Tensor([[1.0, 1.0], [0.0, 2.0]]), cr.Tensor([0.5, 0.0]))
    Tensor([3.5, 4. ])
    """
    x = _as_tensor(input, "linear")
    w_shape = weight.shape
    if len(w_shape) != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got {w_shape}")
    if x.ndim == 0 or x.shape[-1] != w_shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not fit weight of shape {w_shape}: the "
            f"input's last dimension must be in_features = {w_shape[1]}"
        )
    # One sample reads as the textbook W x; a batch needs the rows transposed.
    out = weight @ x if x.ndim == 1 else x @ weight.T
    if bias is not None:
        if bias.shape != (w_shape[0],):
            raise ValueError(
                f"linear: bias has shape {bias.shape}, expected ({w_shape[0]},) to match weight "
                f"{w_shape}"
            )
        out = out + bias
    return out


def sigmoid(input: Any) -> Tensor:  # noqa: A002
    """The logistic function 1/(1+e^-x); its derivative is s(1-s)."""
    return _as_tensor(input, "sigmoid").sigmoid()


def tanh(input: Any) -> Tensor:  # noqa: A002
    """The hyperbolic tangent; its derivative is 1 - tanh(x)^2."""
    return _as_tensor(input, "tanh").tanh()


def relu(input: Any) -> Tensor:  # noqa: A002
    """max(x, 0); its derivative is 1 for x > 0, else 0."""
    return _as_tensor(input, "relu").relu()


def softplus(input: Any) -> Tensor:  # noqa: A002
    """log(1 + e^x), computed as ``logaddexp(0, x)`` so it never overflows.

    It is one ``softplus`` op whose derivative is the logistic function
    sigmoid(x), itself a graph op under ``create_graph``: every derivative
    is smooth, so the second one at x = 0 is sigmoid'(0) = 1/4.  (A stable
    formula built from ``abs`` or ``maximum`` would have the right first
    derivative but a second derivative of 0 at their kink.)

    >>> import chainrule as cr
    >>> x = cr.Tensor([0.0], requires_grad=True)
    >>> (g,) = cr.grad(softplus(x).sum(), [x], create_graph=True)
    >>> g.item(), cr.grad(g.sum(), [x])[0].item()
    (0.5, 0.25)
    """
    x = _as_tensor(input, "softplus")
    return _make(np.logaddexp(0.0, x.data), R.SOFTPLUS, (x,))


def softmax(input: Any, axis: int = -1, *, dim: int | None = None) -> Tensor:  # noqa: A002
    """e^x / sum(e^x) along ``axis`` (``dim`` is an alias); rows of the result sum to 1."""
    return _as_tensor(input, "softmax").softmax(axis, dim=dim)


def log_softmax(input: Any, axis: int = -1, *, dim: int | None = None) -> Tensor:  # noqa: A002
    """x - logsumexp(x) along ``axis`` (``dim`` is an alias), computed without overflow."""
    return _as_tensor(input, "log_softmax").log_softmax(axis, dim=dim)


def leaky_relu(input: Any, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:  # noqa: A002
    """x where x > 0, else ``negative_slope * x``, as ``torch.nn.functional.leaky_relu``.

    The derivative is 1 for x > 0 and ``negative_slope`` for x <= 0: at 0
    itself it is ``negative_slope``, as in PyTorch.  The choice is a ``where``
    on x > 0, so the gradient follows the branch that was taken.

    >>> import chainrule as cr
    >>> leaky_relu(cr.Tensor([-2.0, 0.0, 3.0]), 0.1)
    Tensor([-0.2,  0. ,  3. ])
    """
    x = _as_tensor(input, "leaky_relu")
    slope = _real(negative_slope, "leaky_relu", "negative_slope")
    _no_inplace(inplace, "leaky_relu")
    return where(x.data > 0, x, x * slope)


def elu(input: Any, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """x where x > 0, else ``alpha * (e^x - 1)``, as ``torch.nn.functional.elu``.

    The derivative is 1 for x > 0 and ``alpha * e^x`` for x <= 0 (``alpha``
    at 0 itself, as in PyTorch).  e^x - 1 is computed as
    ``tanh(x/2) * (e^x + 1)``, an identity free of the cancellation that
    ``exp(x) - 1`` suffers near 0, so small negative inputs keep all their
    digits, and smooth, so second derivatives are exact too.  The negative
    branch only ever sees x <= 0 (0 in place of positive x), so no exponential
    overflows, nor does a NaN reach the gradient of the branch not taken.

    >>> import chainrule as cr
    >>> elu(cr.Tensor([-1e-10, 2.0])).data
    array([-1.e-10,  2.e+00])
    """
    x = _as_tensor(input, "elu")
    a = _real(alpha, "elu", "alpha")
    _no_inplace(inplace, "elu")
    pos = x.data > 0
    neg = where(pos, 0.0, x)
    expm1 = (neg * 0.5).tanh() * (neg.exp() + 1.0)
    return where(pos, x, expm1 * a)


def silu(input: Any, inplace: bool = False) -> Tensor:  # noqa: A002
    """``x * sigmoid(x)`` (also called swish), as ``torch.nn.functional.silu``.

    Its derivative is s + x s (1 - s) with s = sigmoid(x), by the product
    rule; smooth everywhere.

    >>> import chainrule as cr
    >>> silu(cr.Tensor([0.0, 1.0])).data.round(6)
    array([0.      , 0.731059])
    """
    x = _as_tensor(input, "silu")
    _no_inplace(inplace, "silu")
    return x * x.sigmoid()


# sqrt(1/2) and sqrt(2/pi), the constants of PyTorch's two GELU formulas.
_SQRT_HALF = math.sqrt(0.5)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu(input: Any, approximate: str = "none") -> Tensor:  # noqa: A002
    """The Gaussian error linear unit x Phi(x), as ``torch.nn.functional.gelu``.

    Phi is the standard normal distribution function, so with
    ``approximate='none'`` it is ``0.5 x (1 + erf(x / sqrt(2)))``, and its
    derivative is Phi(x) + x phi(x), phi the normal density
    e^(-x^2/2)/sqrt(2 pi).  With ``approximate='tanh'`` it is PyTorch's
    approximation ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``,
    differentiated as written.  Both are smooth at every order.

    >>> import chainrule as cr
    >>> gelu(cr.Tensor([-1.0, 0.0, 1.0])).data.round(6)
    array([-0.158655,  0.      ,  0.841345])
    """
    x = _as_tensor(input, "gelu")
    _check_approximate(approximate, "gelu")
    if approximate == "tanh":
        inner = (x + 0.044715 * (x * x * x)) * _SQRT_2_OVER_PI
        return 0.5 * x * (1.0 + inner.tanh())
    return 0.5 * x * (1.0 + (x * _SQRT_HALF).erf())


def layer_norm(
    input: Any,  # noqa: A002
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize over the last dimensions, as ``torch.nn.functional.layer_norm``.

    The last ``len(normalized_shape)`` dimensions of ``input`` must equal
    ``normalized_shape``.  Over them each slice gets mean 0 and variance 1:
    ``y = (x - mean) / sqrt(var + eps)``, with the biased variance (divided
    by n, not n - 1), then ``y * weight + bias`` where they are given (both
    shaped ``normalized_shape``).  It is composed of means, a square root and
    arithmetic, so its gradient is theirs: for one slice of n elements,
    dx = (dy - mean(dy) - y mean(dy y)) / sqrt(var + eps), with dy the
    gradient reaching y.

    >>> import chainrule as cr
    >>> layer_norm(cr.Tensor([[1.0, 3.0], [2.0, 2.0]]), 2).data.round(4)
    array([[-1.,  1.],
           [ 0.,  0.]])
    """
    name = "layer_norm"
    x = _as_tensor(input, name)
    shape = _normalized_shape(normalized_shape, name)
    k = len(shape)
    if x.shape[x.ndim - k :] != shape or x.ndim < k:
        raise ValueError(
            f"{name}: input of shape {x.shape} does not end with normalized_shape {shape}; "
            f"its last {k} dimension{'s' if k > 1 else ''} must be {shape}"
        )
    e = _real(eps, name, "eps")
    for what, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != shape:
            raise ValueError(
                f"{name}: {what} has shape {tuple(p.shape)}, expected normalized_shape {shape}"
            )
    axes = tuple(range(-k, 0))
    centered = x - x.mean(axis=axes, keepdims=True)
    var = (centered * centered).mean(axis=axes, keepdims=True)
    out = centered / (var + e).sqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def embedding(
    input: Any,  # noqa: A002
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of ``weight`` picked by integer indices, as ``torch.nn.functional.embedding``.

    ``input`` holds integers in ``[0, num_embeddings)`` (a Tensor, array,
    list or int of any shape); ``weight`` has shape ``(num_embeddings,
    embedding_dim)``; the result has shape ``input.shape + (embedding_dim,)``.
    It is indexing, so the gradient of ``weight`` is the output's gradient
    added back into the picked rows: an index used k times gets k
    contributions.  The row ``padding_idx`` (if given) gets no gradient.
    ``max_norm`` and ``scale_grad_by_freq`` are refused (chainrule does not
    support them), and so is ``sparse=True``: the gradient is a dense array.

    >>> import chainrule as cr
    >>> w = cr.Tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], requires_grad=True)
    >>> out = embedding([[2, 0], [2, 2]], w)
    >>> out.shape
    (2, 2, 2)
    >>> out.sum().backward()
    >>> w.grad                   # row 2 was picked three times, row 1 never
    array([[1., 1.],
           [0., 0.],
           [3., 3.]])
    """
    name = "embedding"
    _embedding_options(max_norm, scale_grad_by_freq, sparse, name)
    if not isinstance(weight, Tensor):
        raise TypeError(f"{name}: weight must be a Tensor, got {type(weight).__name__}")
    if weight.ndim != 2:
        raise ValueError(
            f"{name}: weight must be 2-D (num_embeddings, embedding_dim), got shape {weight.shape}"
        )
    n = weight.shape[0]
    idx = _embedding_indices(input, n, name)
    out = weight[idx]
    if padding_idx is not None:
        pad = _padding_index(padding_idx, n, name)
        used = idx != pad
        if not used.all():  # the padding row's value, with no path back to weight
            out = where(used[..., None], out, out.detach())
    return out


def dropout(
    input: Any,  # noqa: A002
    p: float = 0.5,
    training: bool = True,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p).

    Only while ``training``; otherwise the input is returned unchanged.  The
    mask is a constant, so the gradient is the same mask times 1/(1-p).
    """
    x = _as_tensor(input, "dropout")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    rng = resolve(generator, "dropout")
    keep = (rng.random(x.shape) >= p).astype(x.dtype) / (1.0 - p)
    return x * keep


# ---------------------------------------------------------------------------
# Losses.
# ---------------------------------------------------------------------------


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Squared error ``(input - target)^2``, reduced.

    The derivative of each term with respect to the input is
    2 (input - target).  ``target`` must have the same shape as ``input``
    (no silent broadcasting, which would compare every element with every
    other).

    >>> import chainrule as cr
    >>> mse_loss(cr.Tensor([1.0, 3.0]), cr.Tensor([0.0, 1.0]))
    Tensor(2.5)
    """
    x = _as_tensor(input, "mse_loss")
    y = _target(target, x, "mse_loss")
    _check_reduction(reduction, "mse_loss")
    return _reduce((x - y) ** 2, reduction)


def binary_cross_entropy(
    input: Tensor,  # noqa: A002
    target: Any,
    weight: Any = None,
    reduction: str = "mean",
) -> Tensor:
    """Cross-entropy of probabilities: ``-(y log p + (1 - y) log(1 - p))``, reduced.

    ``input`` holds probabilities in [0, 1] (the output of a sigmoid);
    ``target`` the same shape, usually 0s and 1s.  Each logarithm is clamped
    below at -100, as PyTorch does, so a probability of exactly 0 or 1 gives
    a finite loss.  The derivative with respect to p is
    (p - y) / (p (1 - p)); for logits prefer
    :func:`binary_cross_entropy_with_logits`, which stays accurate when the
    sigmoid saturates.

    >>> import chainrule as cr
    >>> round(binary_cross_entropy(cr.Tensor([0.5]), cr.Tensor([1.0])).item(), 6)
    0.693147
    """
    p = _as_tensor(input, "binary_cross_entropy")
    y = _target(target, p, "binary_cross_entropy")
    _check_reduction(reduction, "binary_cross_entropy")
    data = p.data
    if data.size and not (np.all(data >= 0) and np.all(data <= 1)):
        raise ValueError(
            "binary_cross_entropy: input must hold probabilities in [0, 1], got values from "
            f"{np.nanmin(data):.4g} to {np.nanmax(data):.4g}"
            f"{' and NaN' if np.isnan(data).any() else ''} (apply a sigmoid first, or use "
            "binary_cross_entropy_with_logits on the raw scores)"
        )
    loss = -(y * _clamped_log(p) + (1.0 - y) * _clamped_log(1.0 - p))
    if weight is not None:
        loss = loss * _weight(weight, p, "binary_cross_entropy")
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(
    input: Tensor,  # noqa: A002
    target: Any,
    weight: Any = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Tensor:
    """Binary cross-entropy on logits x, with p = sigmoid(x), computed stably.

    Since -log sigmoid(x) = softplus(-x) and -log(1 - sigmoid(x)) =
    x + softplus(-x), the loss ``-(w_pos y log p + (1 - y) log(1 - p))`` is

        (1 - y) x + (1 + (w_pos - 1) y) softplus(-x)

    with the stable :func:`softplus`; no exponential can overflow.  Without
    ``pos_weight`` (w_pos = 1) this is ``softplus(x) - x y``, whose
    derivative with respect to x is sigmoid(x) - y and whose second
    derivative is sigmoid(x) (1 - sigmoid(x)), at x = 0 as anywhere.

    >>> import chainrule as cr
    >>> round(binary_cross_entropy_with_logits(cr.Tensor([0.0]), cr.Tensor([1.0])).item(), 6)
    0.693147
    """
    x = _as_tensor(input, "binary_cross_entropy_with_logits")
    y = _target(target, x, "binary_cross_entropy_with_logits")
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    if pos_weight is None:
        loss = softplus(x) - x * y
    else:
        pw = _weight(pos_weight, x, "binary_cross_entropy_with_logits (pos_weight)")
        loss = (1.0 - y) * x + (1.0 + (pw - 1.0) * y) * softplus(-x)
    if weight is not None:
        loss = loss * _weight(weight, x, "binary_cross_entropy_with_logits")
    return _reduce(loss, reduction)


def cross_entropy(
    input: Tensor,  # noqa: A002
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Softmax cross-entropy of logits against class indices: ``-log softmax(x)[y]``.

    ``input`` has shape ``(N, C)`` (or ``(C,)``, or ``(N, C, d1, ...)`` with
    the classes on axis 1); ``target`` holds integer class indices in
    ``[0, C)`` with the input's shape minus the class axis.  The loss is
    ``nll_loss(log_softmax(input, axis=1), target)``, and log-softmax never
    overflows.  Its derivative with respect to the logits is
    softmax(x) - one_hot(y) (per sample, before the reduction), so the whole
    loss is recorded as one ``cross_entropy`` node with that rule, not as the
    chain of ops above.

    ``weight`` gives each class a weight (then ``'mean'`` divides by the
    total weight of the targets, as PyTorch does); targets equal to
    ``ignore_index`` contribute nothing.

    >>> import chainrule as cr
    >>> x = cr.Tensor([[0.0, 0.0], [3.0, 1.0]])
    >>> cross_entropy(x, [1, 0], reduction='none').data.round(4)
    array([0.6931, 0.1269])
    """
    name = "cross_entropy"
    x = _as_tensor(input, name)
    _check_reduction(reduction, name)
    if x.ndim == 0:
        raise ValueError(f"{name}: input must have a class axis, got a 0-d tensor")
    # One graph node for the whole loss: its derivative, softmax(x) - onehot(y)
    # (weighted), is simpler than the chain of log-softmax, picking and reduction.
    axis = 0 if x.ndim == 1 else 1
    n_cls = x.shape[axis]
    t = _class_indices(target, x.shape[:axis] + x.shape[axis + 1 :], n_cls, ignore_index, name)
    data = x.data if x.dtype.kind == "f" else x.data.astype(np.float64)
    keep = t != ignore_index  # which targets count
    if keep.all():
        keep = None
    idx = t if keep is None else np.where(keep, t, 0)
    logp = R.log_softmax(data, axis)
    onehot = np.zeros_like(data)
    if x.ndim == 2:  # (N, C), the usual case: plain indexing is the quickest
        at = (np.arange(idx.size), idx)
        picked = logp[at]
        onehot[at] = 1.0
    else:
        at_axis = np.expand_dims(idx, axis)
        picked = np.take_along_axis(logp, at_axis, axis=axis).reshape(t.shape)
        np.put_along_axis(onehot, at_axis, 1.0, axis=axis)
    w: Any = None  # each sample's weight, when not all 1
    if weight is not None:
        cw = _weight(weight, None, name)
        if cw.shape != (n_cls,):
            raise ValueError(
                f"{name}: weight must have one entry per class, shape ({n_cls},), got {cw.shape}"
            )
        w = cw.astype(data.dtype)[idx]
        if keep is not None:
            w *= keep
    elif keep is not None:
        w = keep.astype(data.dtype)
    losses = -picked if w is None else -picked * w
    with quiet():  # 'mean' over targets that are all ignored is 0/0 = nan, as in PyTorch
        if reduction == "none":
            out = losses
            coef = np.ones_like(picked) if w is None else w
        elif reduction == "sum":
            out = np.add.reduce(losses, axis=None)
            coef = 1.0 if w is None else w
        else:
            total = t.size if w is None else np.add.reduce(w, axis=None)
            out = np.add.reduce(losses, axis=None) / total
            # (with no samples at all the gradient is empty, and any coefficient does)
            coef = (1.0 / (total or 1)) if w is None else w / total
    if isinstance(coef, np.ndarray):  # one weight per sample, spread over its classes
        coef = coef.reshape(x.shape[:axis] + (1,) + x.shape[axis + 1 :])
    ctx = (axis, np.exp(logp), onehot, coef, reduction == "none")
    return _make(np.asarray(out, dtype=data.dtype), R.CROSS_ENTROPY, (x,), ctx)


def nll_loss(
    input: Tensor,  # noqa: A002
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    *,
    _where: str = "nll_loss",
) -> Tensor:
    """Negative log-likelihood: ``-input[n, y_n]`` for log-probabilities ``input``.

    Shapes and arguments as :func:`cross_entropy`, which is this loss after
    a log-softmax.  Picking one entry per sample is indexing, whose gradient
    scatters -1 (times the weight) back to the picked entries.
    """
    x = _as_tensor(input, _where)
    _check_reduction(reduction, _where)
    if x.ndim == 0:
        raise ValueError(f"{_where}: input must have a class axis, got a 0-d tensor")
    cls_axis = 0 if x.ndim == 1 else 1
    n_cls = x.shape[cls_axis]
    t = _class_indices(
        target, x.shape[:cls_axis] + x.shape[cls_axis + 1 :], n_cls, ignore_index, _where
    )
    keep = t != ignore_index
    # Classes on the last axis, one row per sample: (M, C).
    if x.ndim == 1:
        rows = x.reshape(1, n_cls)
    elif x.ndim == 2:
        rows = x
    else:
        perm = (0, *range(2, x.ndim), 1)
        rows = x.transpose(perm).reshape(-1, n_cls)
    idx = np.where(keep, t, 0).reshape(-1)
    picked = rows[np.arange(idx.size), idx]
    w = None
    if weight is not None:
        cw = _weight(weight, None, _where)
        if cw.shape != (n_cls,):
            raise ValueError(
                f"{_where}: weight must have one entry per class, shape ({n_cls},), got {cw.shape}"
            )
        w = cw[idx].astype(x.dtype) * keep.reshape(-1)
    elif not keep.all():
        w = keep.reshape(-1).astype(x.dtype)
    loss = -picked if w is None else -picked * w
    if reduction == "none":
        return loss.reshape(t.shape)
    if reduction == "sum":
        return loss.sum()
    if w is None:
        return loss.mean()
    return loss.sum() / w.sum()


# ---------------------------------------------------------------------------
# Helpers.
# ---------------------------------------------------------------------------


def _as_tensor(x: Any, where: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    try:
        return Tensor(x)
    except TypeError as e:
        raise TypeError(f"{where}: input must be a Tensor or array-like: {e}") from None


def _target(target: Any, like: Tensor, where: str) -> Any:
    """The target as a Tensor (kept, if it is one) or a float array, shaped like the input."""
    if isinstance(target, Tensor):
        y: Any = target
        shape = target.shape
    else:
        try:
            y = np.asarray(target)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{where}: target must be array-like: {e}") from None
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{where}: target must hold numbers, got dtype {y.dtype}")
        y = y.astype(like.dtype if like.dtype.kind == "f" else np.float64)
        shape = y.shape
    if shape != like.shape:
        raise ValueError(
            f"{where}: target shape {shape} does not match input shape {like.shape}; "
            "they must be equal (reshape one of them)"
        )
    return y


def _weight(weight: Any, like: Tensor | None, where: str) -> np.ndarray:
    w = np.asarray(weight.data if isinstance(weight, Tensor) else weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{where}: weight must hold numbers, got dtype {w.dtype}")
    if like is not None:
        try:
            np.broadcast_shapes(w.shape, like.shape)
        except ValueError:
            raise ValueError(
                f"{where}: weight of shape {w.shape} does not broadcast to the input's shape "
                f"{like.shape}"
            ) from None
        return w.astype(like.dtype)
    return w


def _class_indices(
    target: Any, shape: tuple[int, ...], n_cls: int, ignore_index: int, where: str
) -> np.ndarray:
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{where}: target must hold integer class indices, got dtype {t.dtype}")
    if t.shape != shape:
        raise ValueError(
            f"{where}: target shape {t.shape} does not match the input: for input of "
            f"{n_cls} classes the target must have shape {shape} (the input's shape "
            "without the class axis)"
        )
    if _all_in(t, n_cls):
        return t if t.dtype == np.intp else t.astype(np.intp)
    bad = (t != ignore_index) & ((t < 0) | (t >= n_cls))
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{where}: target {int(t[pos])} at position {pos} is not a class index; "
            f"with {n_cls} classes targets must be in [0, {n_cls - 1}]"
        )
    return t.astype(np.intp)


def _all_in(t: np.ndarray, n: int) -> bool:
    """Whether every entry of the integer array ``t`` lies in ``[0, n)``."""
    return t.size == 0 or (
        np.minimum.reduce(t, axis=None) >= 0 and np.maximum.reduce(t, axis=None) < n
    )


def _clamped_log(x: Tensor) -> Tensor:
    """log(x) clamped below at -100, with a finite gradient even where x is exactly 0."""
    if np.all(x.data > 0):
        return x.log().clip(min=-100.0)
    pos = x.data > 0
    # Where x = 0 the log is taken of 1 instead and its gradient is discarded.
    return where(pos, where(pos, x, 1.0).log(), -100.0).clip(min=-100.0)


def _real(value: Any, where: str, what: str) -> float:
    """``value`` as a float, if it is a real number (not a bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{where}: {what} must be a real number, got {value!r}")
    if isinstance(value, np.complexfloating):
        raise TypeError(f"{where}: {what} must be a real number, got {value!r}")
    return float(value)


def _no_inplace(inplace: Any, where: str) -> None:
    if inplace:
        raise keyword_error(
            where, "inplace", "the result is always a new tensor (leave inplace=False)"
        )


def _check_approximate(approximate: Any, where: str) -> None:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"{where}: approximate must be 'none' or 'tanh', got {approximate!r}")


def _normalized_shape(shape: Any, where: str) -> tuple[int, ...]:
    """``normalized_shape`` as a tuple of positive ints (an int stands for a 1-tuple)."""
    dims = (shape,) if isinstance(shape, (int, np.integer)) else shape
    try:
        out = tuple(dims)
    except TypeError:
        raise TypeError(
            f"{where}: normalized_shape must be an int or a sequence of ints, got {shape!r}"
        ) from None
    if any(isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)) for d in out):
        raise TypeError(
            f"{where}: normalized_shape must be an int or a sequence of ints, got {shape!r}"
        )
    if not out:
        raise ValueError(f"{where}: normalized_shape must have at least one dimension, got ()")
    if any(d <= 0 for d in out):
        raise ValueError(f"{where}: normalized_shape must be positive sizes, got {out}")
    return tuple(int(d) for d in out)


def _embedding_options(max_norm: Any, scale_grad_by_freq: Any, sparse: Any, where: str) -> None:
    if max_norm is not None:
        raise keyword_error(where, "max_norm", "renormalize the weight rows yourself")
    if scale_grad_by_freq:
        raise keyword_error(where, "scale_grad_by_freq", "leave it False")
    if sparse:
        raise keyword_error(where, "sparse", "the gradient is always a dense array")


def _embedding_indices(indices: Any, n: int, where: str) -> np.ndarray:
    """The integer array of ``indices``, each checked to lie in ``[0, n)``."""
    if isinstance(indices, Tensor):
        idx = indices.data
    else:
        try:
            idx = np.asarray(indices)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{where}: indices must be integers: {e}") from None
    if idx.dtype.kind not in "iu":
        raise TypeError(
            f"{where}: indices must be integers, got dtype {idx.dtype} (use an integer "
            "tensor, e.g. cr.tensor([...], dtype=np.int64))"
        )
    if not _all_in(idx, n):
        bad = (idx < 0) | (idx >= n)
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise IndexError(
            f"{where}: index {int(idx[pos])} at position {pos} is out of range for "
            f"{n} embeddings; indices must be in [0, {n - 1}]"
            if n
            else f"{where}: index {int(idx[pos])} at position {pos}, but the table has no rows"
        )
    return idx


def _padding_index(padding_idx: Any, n: int, where: str) -> int:
    """``padding_idx`` in ``[0, n)``; a negative one counts from the end, as in PyTorch."""
    if isinstance(padding_idx, (bool, np.bool_)) or not isinstance(padding_idx, (int, np.integer)):
        raise TypeError(f"{where}: padding_idx must be an int or None, got {padding_idx!r}")
    if not -n <= padding_idx < n:
        raise ValueError(
            f"{where}: padding_idx must be in [-{n}, {n - 1}] for {n} embeddings, got {padding_idx}"
        )
    return int(padding_idx) % n


def _check_reduction(reduction: str, where: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"{where}: reduction must be one of 'mean', 'sum', 'none', got {reduction!r}"
        )


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss
