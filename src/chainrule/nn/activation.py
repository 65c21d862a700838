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

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        F._no_inplace(inplace, "ReLU")

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


class LeakyReLU(Module):
    """x for x > 0, else ``negative_slope * x``; derivative 1, or ``negative_slope`` (at 0 too).

    >>> from chainrule import nn
    >>> nn.LeakyReLU(0.2)
    LeakyReLU(negative_slope=0.2)
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        F._real(negative_slope, "LeakyReLU", "negative_slope")
        F._no_inplace(inplace, "LeakyReLU")
        self.negative_slope = negative_slope

    def forward(self, x: Any) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """x for x > 0, else ``alpha * (e^x - 1)``; derivative 1, or ``alpha * e^x`` for x <= 0.

    >>> from chainrule import nn
    >>> nn.ELU()
    ELU(alpha=1.0)
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        F._real(alpha, "ELU", "alpha")
        F._no_inplace(inplace, "ELU")
        self.alpha = alpha

    def forward(self, x: Any) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class SiLU(Module):
    """``x * sigmoid(x)``; derivative s + x s (1 - s) with s = sigmoid(x)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        F._no_inplace(inplace, "SiLU")

    def forward(self, x: Any) -> Tensor:
        return F.silu(x)


class GELU(Module):
    """x Phi(x), Phi the normal distribution function (``approximate='tanh'``: PyTorch's tanh form).

    >>> from chainrule import nn
    >>> nn.GELU(approximate="tanh")
    GELU(approximate='tanh')
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        F._check_approximate(approximate, "GELU")
        self.approximate = approximate

    def forward(self, x: Any) -> Tensor:
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"
