"""The 2-2-2 network as a compiled program: ``python -m chainrule tutorial --program``.

:func:`chainrule.compile` traces the network of :func:`~.network.build_values`
with its eight weights as arguments and the gradient taken inside, and writes
forward and backward out as one Python function (see ``docs/compile.md``): the
backward lines are the delta rule of the derivation, each with the rule-table
formula it comes from.

>>> from chainrule.tutorial.program import program_source
>>> print(program_source().splitlines()[0])
def program(w1, w2, w3, w4, w5, w6, w7, w8):
"""

from __future__ import annotations

from typing import Any

from ..compiler import compile as compile_program
from ..engine import grad
from .network import build_values
from .reference import WEIGHT_NAMES, WEIGHTS


def _network(*ws: Any) -> Any:
    """The total error and its gradient by each weight, from the weights as arguments."""
    net = build_values(pin=dict(zip(WEIGHT_NAMES, ws)))
    return net["E_total"], grad(net["E_total"], list(ws))


def program_source() -> str:
    """The source of the compiled program: E_total and d E_total / d w1..w8 from w1..w8."""
    step = compile_program(_network)
    step(*[WEIGHTS[k] for k in WEIGHT_NAMES])
    return step.source
