"""Activation functions as modules (no parameters)."""

from __future__ import annotations

from typing import Any

from ..tensor import Tensor
from . import functional as F
from .module import Module


class Sigmoid(Module):
    """The logistic function 1/(1+e^-x), elementwise; derivative s(1-s)."""

    def forward(self, x: Any) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """The hyperbolic tangent, elementwise; derivative 1 - tanh(x)^2."""

    def forward(self, x: Any) -> Tensor:
        return F.tanh(x)


class ReLU(Module):
    """max(x, 0), elementwise; derivative 1 for x > 0, else 0."""

    def forward(self, x: Any) -> Tensor:
        return F.relu(x)


class Softplus(Module):
    """log(1 + e^x), elementwise and overflow-free; derivative sigmoid(x)."""

    def forward(self, x: Any) -> Tensor:
        return F.softplus(x)


class Softmax(Module):
    """e^x / sum(e^x) along ``axis`` (``dim`` is PyTorch's name for it)."""

    def __init__(self, axis: int = -1, *, dim: int | None = None) -> None:
        super().__init__()
        self.axis = axis if dim is None else dim

    def forward(self, x: Any) -> Tensor:
        return F.softmax(x, self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class LogSoftmax(Softmax):
    """x - logsumexp(x) along ``axis``, computed without overflow."""

    def forward(self, x: Any) -> Tensor:
        return F.log_softmax(x, self.axis)
