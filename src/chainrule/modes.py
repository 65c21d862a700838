"""Modes and stamps: what a thread records, and when memory last changed.

The switches each thread reads as it records operations (:class:`no_grad`,
:class:`enable_grad`, :class:`scope`, :class:`detect_anomaly`), and the
bookkeeping that keeps in-place changes honest: the engine's clock, which
stamps every node and every change, and the :class:`Version` that a tensor
shares with the tensors viewing its memory.  Nothing here knows about graphs;
the engine (:mod:`chainrule.engine`) reads these to decide what to record and
what to refuse.
"""

from __future__ import annotations

import functools
import itertools
import threading
import weakref
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Mode:
    """What a thread records (one shared instance per combination, never changed).

    ``grad``: whether operations record a graph (see :class:`no_grad`);
    ``scope``: the dotted name of the innermost module whose forward is running
    (see :class:`scope`); ``anomaly``: whether :class:`detect_anomaly` is on;
    ``forward``: whether forward mode carries tangents (``STATE.levels``, see
    :mod:`chainrule.func`).
    """

    __slots__ = ("anomaly", "forward", "grad", "scope")

    def __init__(self, grad: bool, scope: str | None, anomaly: bool, forward: bool) -> None:
        self.grad = grad
        self.scope = scope
        self.anomaly = anomaly
        self.forward = forward

    def __repr__(self) -> str:
        return (
            f"Mode(grad={self.grad}, scope={self.scope!r}, anomaly={self.anomaly}, "
            f"forward={self.forward})"
        )


@functools.lru_cache(maxsize=4096)
def _mode(grad: bool, scope: str | None, anomaly: bool, forward: bool) -> Mode:
    """The one Mode with these switches: switching reuses it instead of making another."""
    return Mode(grad, scope, anomaly, forward)


#: The usual mode: recording, outside any module scope, no anomaly checks, no
#: forward mode.  Ops compare with it by identity to skip the rarer work in one test.
PLAIN = _mode(True, None, False, False)


class _ThreadState(threading.local):
    """Each thread's own :class:`Mode`, as ``STATE.mode``.

    As in PyTorch, the switches belong to the thread that sets them: a
    backward pass or a ``no_grad`` block in one thread never changes what
    another thread records, and a new thread starts from the defaults.  The
    three are kept in one object so that making a node reads thread-local
    storage once, and compares it with :data:`PLAIN`.
    """

    mode: Mode = PLAIN
    #: Forward mode's tangents, one dict (node -> tangent node) per nested
    #: level, outermost first; ``mode.forward`` is true while it is not empty.
    levels: list[dict[Any, Any]]
    #: The tracer of :func:`chainrule.compile` while it runs the user's function
    #: in this thread, else None.  Read only by the conversions a trace must
    #: refuse (``bool``, ``float``, ``item``, ...), in-place changes and ``grad``,
    #: never by an op.
    tracing: Any = None

    def __init__(self) -> None:
        self.levels = []

    def switch(
        self,
        grad: bool | None = None,
        scope: Any = ...,
        anomaly: bool | None = None,
        forward: bool | None = None,
    ) -> None:
        """Change some of this thread's switches, keeping the others."""
        m = self.mode
        self.mode = _mode(
            m.grad if grad is None else grad,
            m.scope if scope is ... else scope,
            m.anomaly if anomaly is None else anomaly,
            m.forward if forward is None else forward,
        )

    @property
    def grad(self) -> bool:
        return self.mode.grad

    @property
    def scope(self) -> str | None:
        return self.mode.scope

    @property
    def anomaly(self) -> bool:
        return self.mode.anomaly


STATE = _ThreadState()


#: The engine's clock: every node gets the next tick as ``_seq`` when it is
#: made, and every in-place change of a tensor takes one too.  A parent is
#: always made before its children, so creation order is a topological order,
#: and backward can visit nodes by decreasing ``_seq`` without sorting.
tick = itertools.count(1).__next__


class _Inplace:
    """When the most recent in-place change happened (a tick of the clock).

    A tensor changed in place stores the tick in its :class:`Version`.  A
    backward step whose node or inputs have a version newer than the node
    (``tick > node._seq``) would read values changed after the forward pass,
    so it raises instead of returning a wrong gradient.  While ``last`` is
    older than every node of a graph, which is the usual case, nothing needs
    checking.  (One for the process: a change is a fact about memory, which
    threads share.)
    """

    last: int = 0


INPLACE = _Inplace()


class Version:
    """When a block of tensor memory was last changed in place, and who shares it.

    A tensor and every tensor that views its memory (a slice, ``reshape``,
    ``transpose``, ``.T``, ``detach()``) hold the same Version, so a change
    made through any of them is seen by all: ``tick`` is the clock's tick at
    the latest change, and a backward step recorded before it raises.

    ``holders`` has a weak reference to each live tensor sharing the memory
    (filled only once a view exists; a reference drops out as its tensor
    dies).  A write that carries a gradient uses it to refuse leaving another
    tensor holding changed numbers that no graph explains.
    """

    __slots__ = ("holders", "tick")

    def __init__(self) -> None:
        self.tick = 0
        self.holders: set[weakref.ref[Any]] = set()

    def share(self, tensor: Any) -> None:
        """Record that ``tensor`` holds this memory."""
        self.holders.add(weakref.ref(tensor, self.holders.discard))

    def others(self, tensor: Any) -> list[Any]:
        """The live tensors other than ``tensor`` that share this memory."""
        found = (ref() for ref in list(self.holders))
        return [t for t in found if t is not None and t is not tensor]


class no_grad:
    """Context manager and decorator that turns graph recording off.

    Inside it, operations compute their values but record nothing, so results
    never require grad.  Nested uses restore the state they found on exit.
    The switch is this thread's own: other threads keep recording.

    >>> import chainrule as cr
    >>> w = cr.Tensor([1.0, 2.0], requires_grad=True)
    >>> with cr.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """

    _target = False
    _prevs: list[bool]

    def __enter__(self) -> None:
        # A stack, so that one instance can be re-entered while it is active.
        if not hasattr(self, "_prevs"):
            self._prevs = []
        self._prevs.append(STATE.mode.grad)
        STATE.switch(grad=self._target)

    def __exit__(self, *exc: object) -> None:
        STATE.switch(grad=self._prevs.pop())

    def __call__(self, fn: F) -> F:
        target = self._target

        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            prev = STATE.mode.grad
            STATE.switch(grad=target)
            try:
                return fn(*args, **kwargs)
            finally:
                STATE.switch(grad=prev)

        return wrapper  # type: ignore[return-value]


class enable_grad(no_grad):
    """Context manager and decorator that turns graph recording back on."""

    _target = True


class scope:
    """Context manager: nodes recorded inside it remember ``name`` as ``_scope``.

    ``nn.Module.__call__`` uses it with the module's dotted name, so pictures
    can group the values a module made.  Scopes nest; the innermost wins.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._outer: list[str | None] = []

    def __enter__(self) -> None:
        self._outer.append(STATE.mode.scope)
        STATE.switch(scope=self.name)

    def __exit__(self, *exc: object) -> None:
        STATE.switch(scope=self._outer.pop())


def is_grad_enabled() -> bool:
    """Whether operations record a graph in this thread."""
    return STATE.grad


class detect_anomaly:
    """Context manager: raise at the first NaN or infinity, saying where it came from.

    In the forward pass, each op's result is checked as it is made, and the
    place in your code that made it is remembered.  In the backward pass,
    each gradient an op passes on is checked.  The error names the op, the
    shapes involved and the lines of code that created the op.  Off by
    default; when off, it costs one flag test per op.

    >>> import chainrule as cr
    >>> x = cr.Tensor([1.0, 0.0], requires_grad=True)
    >>> with cr.detect_anomaly():
    ...     y = x.log()
    Traceback (most recent call last):
    ...
    chainrule.engine.AnomalyError: forward: log (log(x)) produced infinity ...
    """

    def __enter__(self) -> detect_anomaly:
        self._prev = STATE.mode.anomaly
        STATE.switch(anomaly=True)
        return self

    def __exit__(self, *exc: object) -> None:
        STATE.switch(anomaly=self._prev)
