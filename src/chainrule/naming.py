"""What a node is called, in every text and picture that mentions it.

One rule names a node everywhere: the name the user gave it (``w``,
``loss``); else, inside a graph, the op that made it and its place among
the nodes that op made there, ``mul#3`` (``leaf#1`` for an unnamed leaf).
The count runs over the graph parents first (:func:`chainrule.engine.iter_graph`
order, which does not change from run to run), so :func:`chainrule.explain`,
the backward stepper and :func:`chainrule.draw` of the same output all call a
node by the same name.

Without a graph there is nothing to count in, so :func:`name_of` gives the
op alone (``mul``) and :func:`describe`, which error messages use, marks it
as an op rather than a name: ``Tensor <mul>``.

>>> import chainrule as cr
>>> w = cr.Value(0.5, name="w")
>>> y = (w * 3.0) * w
>>> names = graph_names(cr.engine.iter_graph([y]))
>>> [name_of(n, names) for n in cr.engine.iter_graph([y])]
['w', 'mul#1', 'mul#2']
>>> name_of(y), describe(y), describe(w)
('mul', 'Value <mul>', 'Value w')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol


class Node(Protocol):
    """What naming reads of a node (:class:`chainrule.engine.Node` has it).

    Spelled out here, rather than imported, so that the engine can name
    nodes in its own error messages without an import cycle.
    """

    name: str | None

    @property
    def op(self) -> str | None: ...


#: Names of the nodes of one graph, by ``id(node)`` (see :func:`graph_names`).
GraphNames = Mapping[int, str]


def graph_names(order: Iterable[Node]) -> dict[int, str]:
    """The name of every node of a graph, by ``id(node)``.

    ``order`` is the graph parents first, as :func:`chainrule.engine.iter_graph`
    gives it.  A named node keeps its name; the k-th unnamed node made by
    ``op`` in that order is ``op#k``, and the k-th unnamed leaf ``leaf#k``.
    """
    names: dict[int, str] = {}
    counts: dict[str, int] = {}
    for node in order:
        if node.name:
            names[id(node)] = node.name
        else:
            base = node.op or "leaf"
            counts[base] = counts.get(base, 0) + 1
            names[id(node)] = f"{base}#{counts[base]}"
    return names


def name_of(node: Node, names: GraphNames | None = None) -> str:
    """What ``node`` is called: its own name, else its name in ``names``, else its op.

    ``names`` comes from :func:`graph_names` for the graph being shown; a
    node outside it (or no ``names`` at all) is called by the op that made
    it, or ``leaf``.
    """
    if node.name:
        return node.name
    if names is not None:
        named = names.get(id(node))
        if named is not None:
            return named
    return node.op or "leaf"


def describe(node: Node) -> str:
    """``node`` in an error message: its kind and what it is called.

    ``Tensor w`` for a node named ``w``; ``Tensor <mul>`` for an unnamed
    node made by ``mul`` (the angle brackets say that this is the op, not a
    name); ``Value leaf`` for an unnamed leaf.
    """
    kind = type(node).__name__
    if node.name:
        return f"{kind} {node.name}"
    return f"{kind} <{node.op}>" if node.op else f"{kind} leaf"
