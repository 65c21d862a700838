"""chainrule: a small autograd framework on numpy.

A :class:`Value` (scalar) or :class:`Tensor` (array) records the operations
applied to it; ``backward()`` walks that graph in reverse and fills in
``.grad``.  Both share one engine (:mod:`chainrule.engine`) and one table of
derivative rules (:mod:`chainrule.rules`).

>>> import chainrule as cr
>>> x = cr.Value(0.5, name="x")
>>> y = (x * x).sigmoid()
>>> y.backward()
>>> round(x.grad, 6)
0.246134
"""

from . import func, nn, optim
from .compiler import TraceError, compile  # noqa: A004 (chainrule.compile, as torch.compile)
from .creation import (
    arange,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    zeros,
    zeros_like,
)
from .draw import draw, draw_backward
from .engine import AnomalyError, InplaceError, Node, grad
from .explain import explain
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .modes import detect_anomaly, enable_grad, is_grad_enabled, no_grad
from .ops import OPS, Op
from .random import manual_seed
from .serialization import load, save
from .tensor import (
    Tensor,
    ValuesIndices,
    cat,
    clip,
    concatenate,
    exp,
    log,
    log_softmax,
    logsumexp,
    maximum,
    minimum,
    relu,
    sigmoid,
    softmax,
    sqrt,
    stack,
    tanh,
    tensor,
    where,
)
from .value import Value

__version__ = "0.1.0"

__all__ = [
    "OPS",
    "AnomalyError",
    "GradcheckError",
    "InplaceError",
    "Node",
    "Op",
    "Tensor",
    "TraceError",
    "Value",
    "ValuesIndices",
    "arange",
    "cat",
    "clip",
    "compile",
    "concatenate",
    "detect_anomaly",
    "draw",
    "draw_backward",
    "enable_grad",
    "exp",
    "explain",
    "eye",
    "from_numpy",
    "full",
    "full_like",
    "func",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "is_grad_enabled",
    "linspace",
    "load",
    "log",
    "log_softmax",
    "logsumexp",
    "manual_seed",
    "maximum",
    "minimum",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "optim",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "relu",
    "save",
    "sigmoid",
    "softmax",
    "sqrt",
    "stack",
    "tanh",
    "tensor",
    "where",
    "zeros",
    "zeros_like",
]
