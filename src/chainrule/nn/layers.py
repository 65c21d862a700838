"""Layers with parameters (Linear, LayerNorm, Embedding) and structural ones (Identity,
Dropout, Flatten)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..random import resolve
from ..tensor import Tensor
from . import functional as F
from .module import Module, Parameter


class Linear(Module):
    """An affine map of the last axis: ``y = x @ weight.T + bias``.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: True for a learnable bias, False for none, or the bias values
            themselves (shape ``(out_features,)``).
        weight: the weight values (shape ``(out_features, in_features)``);
            when omitted they are drawn as PyTorch does, uniformly from
            [-1/sqrt(in_features), 1/sqrt(in_features)], and so is the bias.
        dtype: the parameters' float type (float64 by default).
        generator: where random initial values come from (the default
            generator, which :func:`chainrule.manual_seed` seeds, if None).

    >>> from chainrule import nn
    >>> layer = nn.Linear(2, 2, weight=[[0.15, 0.20], [0.25, 0.30]], bias=[0.35, 0.35])
    >>> layer
    Linear(in_features=2, out_features=2, bias=True)
    >>> layer([0.05, 0.10]).data
    array([0.3775, 0.3925])
    """

    weight: Parameter
    bias: Parameter | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: Any = True,
        *,
        weight: Any = None,
        dtype: Any = np.float64,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        for what, n in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
                raise ValueError(f"Linear: {what} must be a non-negative int, got {n!r}")
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise TypeError(f"Linear: dtype must be a floating-point type, got {dt}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        rng = resolve(generator, "Linear")
        bound = 1.0 / math.sqrt(in_features) if in_features else 0.0
        self.weight = Parameter(
            _given(weight, (out_features, in_features), dt, "weight")
            if weight is not None
            else rng.uniform(-bound, bound, size=(out_features, in_features)).astype(dt)
        )
        if isinstance(bias, (bool, np.bool_)):
            if bias:
                values = rng.uniform(-bound, bound, size=(out_features,)).astype(dt)
                self.bias = Parameter(values)
            else:
                self.register_parameter("bias", None)
        else:
            self.bias = Parameter(_given(bias, (out_features,), dt, "bias"))

    def forward(self, x: Any) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


def _given(
    values: Any, shape: tuple[int, ...], dtype: np.dtype[Any], what: str, where: str = "Linear"
) -> np.ndarray:
    arr = np.array(values.data if isinstance(values, Tensor) else values)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{where}: {what} must hold numbers, got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{where}: {what} has shape {arr.shape}, expected {shape}")
    return arr.astype(dtype)


class Identity(Module):
    """Returns its input unchanged (a placeholder where a layer is optional)."""

    def forward(self, x: Any) -> Any:
        return x


class Dropout(Module):
    """While training, zero each element with probability ``p`` and scale the rest by 1/(1-p).

    In evaluation mode (after ``.eval()``) it passes the input through.
    """

    def __init__(self, p: float = 0.5, generator: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p}")
        self.p = float(p)
        self.generator = generator

    def forward(self, x: Any) -> Tensor:
        return F.dropout(x, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LayerNorm(Module):
    """Normalize each sample over its last dimensions, then scale and shift.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``, the mean and the
    biased variance taken over the last ``len(normalized_shape)`` dimensions,
    as PyTorch's ``nn.LayerNorm``.  ``weight`` starts at ones and ``bias`` at
    zeros, both shaped ``normalized_shape``; with ``elementwise_affine=False``
    there are neither, and with ``bias=False`` no bias.  See
    :func:`chainrule.nn.functional.layer_norm` for the gradient.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> norm = nn.LayerNorm(3)
    >>> norm
    LayerNorm((3,), eps=1e-05, elementwise_affine=True, bias=True)
    >>> list(norm.state_dict())
    ['weight', 'bias']
    >>> norm(cr.Tensor([[1.0, 2.0, 3.0]])).data.round(4)
    array([[-1.2247,  0.    ,  1.2247]])
    """

    weight: Parameter | None
    bias: Parameter | None

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        *,
        dtype: Any = np.float64,
    ) -> None:
        super().__init__()
        self.normalized_shape = F._normalized_shape(normalized_shape, "LayerNorm")
        self.eps = eps
        F._real(eps, "LayerNorm", "eps")
        self.elementwise_affine = bool(elementwise_affine)
        dt = _float_dtype(dtype, "LayerNorm")
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dt))
        else:
            self.register_parameter("weight", None)
        if self.elementwise_affine and bias:
            self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dt))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Any) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class Embedding(Module):
    """A lookup table: row ``i`` of ``weight`` for each integer index ``i`` of the input.

    ``weight`` has shape ``(num_embeddings, embedding_dim)`` and is drawn
    from the standard normal distribution, as PyTorch does (or given as
    ``weight=``); the row ``padding_idx``, if any, starts at zeros and never
    receives a gradient.  The input holds integers in ``[0, num_embeddings)``
    of any shape; the output adds a last axis of ``embedding_dim``.  The
    weight's gradient adds the output's gradient into each picked row, once
    per time it was picked.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> _ = cr.manual_seed(0)
    >>> emb = nn.Embedding(10, 3, padding_idx=0)
    >>> emb
    Embedding(10, 3, padding_idx=0)
    >>> emb(cr.tensor([[1, 2, 0]])).shape
    (1, 3, 3)
    """

    weight: Parameter

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        *,
        weight: Any = None,
        dtype: Any = np.float64,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        where = "Embedding"
        for what, n in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
                raise ValueError(f"{where}: {what} must be a non-negative int, got {n!r}")
        F._embedding_options(max_norm, scale_grad_by_freq, sparse, where)
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.padding_idx = (
            None
            if padding_idx is None
            else F._padding_index(padding_idx, self.num_embeddings, where)
        )
        dt = _float_dtype(dtype, where)
        shape = (self.num_embeddings, self.embedding_dim)
        if weight is not None:
            values = _given(weight, shape, dt, "weight", where)
        else:
            values = resolve(generator, where).standard_normal(shape).astype(dt)
            if self.padding_idx is not None:
                values[self.padding_idx] = 0.0
        self.weight = Parameter(values)

    @classmethod
    def from_pretrained(
        cls, embeddings: Any, freeze: bool = True, padding_idx: int | None = None
    ) -> Embedding:
        """An Embedding holding a copy of the 2-D ``embeddings``; frozen (no gradient) unless told.

        >>> from chainrule import nn
        >>> emb = nn.Embedding.from_pretrained([[0.0, 1.0], [2.0, 3.0]])
        >>> emb([1, 1]).data, emb.weight.requires_grad
        (array([[2., 3.],
               [2., 3.]]), False)
        """
        arr = np.asarray(embeddings.data if isinstance(embeddings, Tensor) else embeddings)
        if arr.ndim != 2:
            raise ValueError(
                f"Embedding.from_pretrained: embeddings must be 2-D, got shape {arr.shape}"
            )
        dt = arr.dtype if arr.dtype.kind == "f" else np.dtype(np.float64)
        emb = cls(arr.shape[0], arr.shape[1], padding_idx, weight=arr, dtype=dt)
        emb.weight.requires_grad_(not freeze)
        return emb

    def forward(self, x: Any) -> Tensor:
        return F.embedding(x, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        return text


class Flatten(Module):
    """Merge the dimensions ``start_dim`` to ``end_dim`` (both included) into one.

    With the defaults every dimension but the first (the batch) is merged:
    ``(N, C, H, W)`` becomes ``(N, C*H*W)``.  It is a reshape, so its
    gradient is the output's gradient reshaped back.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.Flatten()(cr.Tensor(np.zeros((2, 3, 4)))).shape
    (2, 12)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        for what, d in (("start_dim", start_dim), ("end_dim", end_dim)):
            if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
                raise TypeError(f"Flatten: {what} must be an int, got {d!r}")
        self.start_dim = int(start_dim)
        self.end_dim = int(end_dim)

    def forward(self, x: Any) -> Tensor:
        return flatten(x, self.start_dim, self.end_dim, "Flatten")

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


def flatten(x: Any, start_dim: int, end_dim: int, where: str) -> Tensor:
    """``x`` with dimensions ``start_dim`` to ``end_dim`` merged (a 0-d ``x`` counts as 1-d)."""
    t = F._as_tensor(x, where)
    shape = t.shape if t.ndim else (1,)
    n = len(shape)
    dims = []
    for what, d in (("start_dim", start_dim), ("end_dim", end_dim)):
        if not -n <= d < n:
            raise IndexError(
                f"{where}: {what}={d} is out of range for a tensor of shape {t.shape} "
                f"(expected a dimension in [{-n}, {n - 1}])"
            )
        dims.append(d % n)
    s, e = dims
    if s > e:
        raise ValueError(
            f"{where}: start_dim={start_dim} comes after end_dim={end_dim} for a tensor of "
            f"shape {t.shape}"
        )
    return t.reshape(shape[:s] + (math.prod(shape[s : e + 1]),) + shape[e + 1 :])


def _float_dtype(dtype: Any, where: str) -> np.dtype[Any]:
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"{where}: dtype must be a floating-point type, got {dt}")
    return dt
