"""Layers with parameters (Linear) and simple structural ones (Identity, Dropout)."""

from __future__ import annotations

import math
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


def _given(values: Any, shape: tuple[int, ...], dtype: np.dtype[Any], what: str) -> np.ndarray:
    arr = np.array(values.data if isinstance(values, Tensor) else values)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"Linear: {what} must hold numbers, got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"Linear: {what} has shape {arr.shape}, expected {shape}")
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
