"""Initialising parameters in place, with PyTorch's schemes.

Each function fills ``tensor.data`` in place (no graph is recorded) and
returns the tensor.  Random ones draw from ``generator``, or from the default
generator that :func:`chainrule.manual_seed` seeds.

>>> import numpy as np
>>> from chainrule import nn
>>> w = nn.Parameter(np.empty((3, 4)))
>>> _ = nn.init.uniform_(w, -0.5, 0.5, generator=np.random.default_rng(0))
>>> bool((np.abs(w.data) <= 0.5).all())
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..random import resolve
from ..tensor import Tensor


def calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """Inputs and outputs per unit: ``(shape[1], shape[0])`` for a 2-D weight."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(
            f"init: fan in and fan out need a tensor with at least 2 dimensions, got shape {shape}"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor that keeps activations' variance steady through ``nonlinearity``."""
    if nonlinearity in ("linear", "identity", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope * slope))
    raise ValueError(
        f"calculate_gain: unknown nonlinearity {nonlinearity!r} "
        "(use linear, identity, sigmoid, tanh, relu or leaky_relu)"
    )


def _fill(tensor: Tensor, values: Any) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init: expected a Tensor, got {type(tensor).__name__}")
    tensor.data[...] = values
    tensor._bump()  # an in-place change, like an optimizer step
    return tensor


def uniform_(
    tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: np.random.Generator | None = None
) -> Tensor:
    """Fill with values drawn uniformly from [a, b)."""
    if a > b:
        raise ValueError(f"uniform_: the lower bound {a} is above the upper bound {b}")
    rng = resolve(generator, "uniform_")
    return _fill(tensor, rng.uniform(a, b, size=tensor.shape))


def normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Fill with values drawn from a normal distribution."""
    if std < 0:
        raise ValueError(f"normal_: std must be non-negative, got {std}")
    rng = resolve(generator, "normal_")
    return _fill(tensor, rng.normal(mean, std, size=tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    return _fill(tensor, val)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with zeros."""
    return _fill(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with ones."""
    return _fill(tensor, 1.0)


def xavier_uniform_(
    tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None
) -> Tensor:
    """Glorot uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / max(fan_in + fan_out, 1))
    return uniform_(tensor, -bound, bound, generator)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Tensor:
    """He uniform: U(-b, b) with b = gain * sqrt(3 / fan_in).

    With ``a = sqrt(5)`` (as :class:`~chainrule.nn.Linear` uses) the bound is
    exactly 1/sqrt(fan_in).
    """
    fan_in, _ = calculate_fan_in_and_fan_out(tensor)
    gain = calculate_gain(nonlinearity, a)
    bound = gain * math.sqrt(3.0 / fan_in) if fan_in else 0.0
    return uniform_(tensor, -bound, bound, generator)
