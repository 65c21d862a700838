"""Numerics: IEEE 754 arithmetic without warnings, and undoing broadcasting.

chainrule computes as IEEE 754 says and says nothing about it: ``log(0)`` is
``-inf``, ``1e308 * 10`` is ``inf``, ``inf - inf`` is ``nan``, in the forward
pass and in the backward pass alike, and :class:`~chainrule.detect_anomaly`
is the way to hear where they came from.  numpy would warn instead, so every
numpy call that can meet them runs silenced, in one of two forms of the same
thing:

* ``with quiet(): ...`` for a block (a backward pass, a loss);
* ``quietly(fn, *args)`` for one call (a forward op), the cheaper form.

Python floats, which raise where IEEE 754 gives an infinity or a NaN, go
through the ``float_*`` functions here instead (the Value forward ops, and the
rules when they run on floats).

:func:`unbroadcast`, which every binary op's gradient goes through, lives here
too, so that the rule table and the engine both import it from below.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable
from typing import Any

import numpy as np


def silence() -> Any:
    """Turn numpy's divide, overflow and invalid warnings off; returns a token for :func:`restore`.

    The same as entering ``np.errstate(divide=, over=, invalid="ignore")``,
    which costs more than the whole backward pass of a small graph; this sets
    numpy's error-state context variable directly (falling back to
    ``np.errstate`` where numpy does not have it), remembering the last state
    it derived.
    """
    if _EXTOBJ is None:
        state = np.errstate(divide="ignore", invalid="ignore", over="ignore")
        state.__enter__()
        return state
    current = _EXTOBJ.get()
    seen, quiet = _SILENCED
    if seen is not current:
        quiet = _make_extobj(divide="ignore", invalid="ignore", over="ignore")
        _SILENCED[:] = [current, quiet]
    return _EXTOBJ.set(quiet)


def restore(token: Any) -> None:
    """Put back the numpy error state that :func:`silence` replaced."""
    if _EXTOBJ is None:
        token.__exit__(None, None, None)
    else:
        _EXTOBJ.reset(token)


try:
    from numpy._core._ufunc_config import (  # type: ignore[attr-defined]
        _extobj_contextvar as _EXTOBJ,
    )
    from numpy._core._ufunc_config import _make_extobj  # type: ignore[attr-defined]
except ImportError:  # another numpy layout: use the public (slower) errstate
    _EXTOBJ = None

#: The error state last seen by :func:`silence`, and the quiet state derived from it.
_SILENCED: list[Any] = [None, None]


class quiet:
    """Context manager: numpy's divide, overflow and invalid warnings off inside it.

    >>> import numpy as np
    >>> with quiet():
    ...     np.log(np.array([0.0]))
    array([-inf])
    """

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = silence()

    def __exit__(self, *exc: object) -> None:
        restore(self._token)


def _silenced(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` inside :class:`quiet`, written out (it is the fallback)."""
    token = silence()
    try:
        return fn(*args, **kwargs)
    finally:
        restore(token)


# Setting numpy's error state around each call costs more than a small op
# itself.  Where numpy keeps that state in a context variable, one private
# context is made at import with the warnings off, and a call runs inside it:
# entering a context is cheap, changing a variable is not.
if _EXTOBJ is not None:
    _QUIET_CONTEXT = contextvars.Context()
    _QUIET_CONTEXT.run(silence)
    #: Run ``fn(*args)`` quietly; raises RuntimeError if the private context is
    #: already in use (by another thread, or further up this call).
    run_quietly: Callable[..., Any] = _QUIET_CONTEXT.run
else:  # an older numpy keeps its error state elsewhere
    run_quietly = _silenced


def quietly(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` without numpy's floating-point warnings.

    >>> import numpy as np
    >>> quietly(np.divide, 1.0, 0.0)
    np.float64(inf)
    """
    try:
        return run_quietly(fn, *args, **kwargs)
    except RuntimeError:
        # The private context is busy: silence the current one instead.  (An
        # error of fn's own is raised again by this second call.)
        return _silenced(fn, *args, **kwargs)


# ---------------------------------------------------------------------------
# Python floats, the IEEE 754 way.
# ---------------------------------------------------------------------------


def float_exp(x: float) -> float:
    """``e**x``; inf where it overflows."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def float_log(x: float) -> float:
    """``ln x``; -inf at 0 and nan below."""
    if x > 0:
        return math.log(x)
    if x == 0:
        return -math.inf
    return math.nan


def float_pow(a: float, b: float) -> float:
    """``a**b``; inf for 0 to a negative power or overflow, nan for no real result."""
    try:
        r = a**b
    except (ZeroDivisionError, OverflowError):  # 0 ** negative, or too large
        odd = b == int(b) and int(b) % 2 == 1
        return math.copysign(math.inf, a) if odd else math.inf
    if isinstance(r, complex):  # negative base, fractional exponent: no real result
        return math.nan
    return float(r)


def float_sqrt(x: float) -> float:
    """``sqrt(x)``; nan below 0, as in numpy."""
    return math.sqrt(x) if x >= 0 else math.nan


def float_div(a: float, b: float) -> float:
    """``a / b``; x/0 is +-inf, and 0/0 and nan/0 are nan, as in numpy.

    >>> float_div(-1.0, 0.0), float_div(0.0, 0.0), float_div(math.nan, -0.0)
    (-inf, nan, nan)
    """
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0 or a != a:  # 0/0, or a NaN numerator (NaN != NaN)
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def float_sigmoid(x: float) -> float:
    """``1 / (1 + e**-x)``, in the form for each sign that never overflows."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


# ---------------------------------------------------------------------------
# Broadcasting.
# ---------------------------------------------------------------------------


def unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` down to ``shape``, undoing numpy broadcasting.

    Broadcasting copies an input along new leading axes and along axes of
    length 1, so each copy's gradient must be added back together: sum over
    the leading axes, then over the stretched axes (keeping them as length 1).
    Returns ``g`` untouched when the shapes already match.  ``g`` is an array
    or a Tensor node: both have ``sum`` and ``reshape``.

    >>> unbroadcast(np.ones((2, 3)), (3,))
    array([2., 2., 2.])
    >>> unbroadcast(np.ones((2, 3)), (2, 1))
    array([[3.],
           [3.]])
    """
    gshape = g.shape
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead))
    if 1 not in shape:
        if shape and isinstance(g, np.ndarray):
            return g.sum(axis=axes)  # only new leading axes: the sum has ``shape`` already
    else:
        axes += tuple(lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)
