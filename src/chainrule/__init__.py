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
from .derive import Derivation, derive
from .draw import draw, draw_backward
from .engine import AnomalyError, InplaceError, Node, grad
from .explain import explain
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .modes import detect_anomaly, enable_grad, is_grad_enabled, no_grad
from .ops import OPS, Op
from .random import manual_seed
from .serialization import load, save
from .symbolic import symbolic
from .tensor import (
    Tensor,
    ValuesIndices,
    argmax,
    argmin,
    cat,
    clamp,
    clip,
    clone,
    concatenate,
    cos,
    cumsum,
    exp,
    exp2,
    expm1,
    flatten,
    log,
    log1p,
    log2,
    log_softmax,
    logsumexp,
    matmul,
    maximum,
    minimum,
    norm,
    numel,
    permute,
    prod,
    relu,
    reshape,
    rsqrt,
    sigmoid,
    sin,
    softmax,
    sqrt,
    square,
    squeeze,
    stack,
    std,
    t,
    tanh,
    tensor,
    unsqueeze,
    var,
    where,
)
from .tensor import absolute as abs  # noqa: A004
from .tensor import power as pow  # noqa: A004
from .value import Value


def __getattr__(name: str) -> str:
    # chainrule.__version__ is looked up on first use (reading package
    # metadata costs more than the rest of an import): the installed
    # package's version, or a source tree's pyproject.toml's (chainrule._version).
    if name == "__version__":
        from ._version import find_version

        version = find_version(__file__)
        globals()["__version__"] = version
        return version
    raise AttributeError(f"module 'chainrule' has no attribute {name!r}")


__all__ = [
    "OPS",
    "AnomalyError",
    "Derivation",
    "GradcheckError",
    "InplaceError",
    "Node",
    "Op",
    "Tensor",
    "TraceError",
    "Value",
    "ValuesIndices",
    "abs",
    "arange",
    "argmax",
    "argmin",
    "cat",
    "clamp",
    "clip",
    "clone",
    "compile",
    "concatenate",
    "cos",
    "cumsum",
    "derive",
    "detect_anomaly",
    "draw",
    "draw_backward",
    "enable_grad",
    "exp",
    "exp2",
    "explain",
    "expm1",
    "eye",
    "flatten",
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
    "log1p",
    "log2",
    "log_softmax",
    "logsumexp",
    "manual_seed",
    "matmul",
    "maximum",
    "minimum",
    "nn",
    "no_grad",
    "norm",
    "numel",
    "ones",
    "ones_like",
    "optim",
    "permute",
    "pow",
    "prod",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "relu",
    "reshape",
    "rsqrt",
    "save",
    "sigmoid",
    "sin",
    "softmax",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "std",
    "symbolic",
    "t",
    "tanh",
    "tensor",
    "unsqueeze",
    "var",
    "where",
    "zeros",
    "zeros_like",
]
