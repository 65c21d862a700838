"""Pictures of computation graphs, with Graphviz.

:func:`draw` turns the graph behind one or more outputs into a :class:`Drawing`:
DOT text (always available), a ``graphviz.Digraph``, and SVG/PNG/PDF files
when a renderer is installed (see :mod:`chainrule.viz.render`).

Legend
------
* **parameter** (orange, rounded box): a leaf that requires grad, a weight or bias;
* **input** (grey, rounded box): a leaf that needs no gradient (or listed in
  ``inputs=``); **constant** (grey, small square box): a plain number or array
  operand;
* **intermediate** (white, rounded box): a value an operation computed;
* **output** (blue, double border): the value(s) drawn from, e.g. the loss;
* **op** (small yellow ellipse): the operation that made the value its arrow
  points to; its operands come in top to bottom in operand order;
* **module** (green box): a whole ``nn.Module`` when drawn collapsed;
* dashed boxes group the values made inside a module, named by the module.

Each value shows its name (unnamed: the op that made it and a counter,
``mul#3``, as :func:`chainrule.explain` names it), its data and its grad;
``grad not computed`` means no backward pass has reached it yet.  With
``highlight=``, the paths from the output to the highlighted leaves are red
and bold, every other node and edge is faded, each edge on a path is labelled
with its local derivative, and the caption states the chain rule: the product
along each path, summed over the paths, is the leaf's gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine import Node
from .viz.errors import RendererNotFoundError, RenderError

# The picture machinery (and the graphviz package) loads on first use, so
# that importing chainrule stays quick.
if TYPE_CHECKING:
    import graphviz

    from .viz.model import GraphModel
    from .viz.render import Renderer

__all__ = ["Drawing", "RenderError", "RendererNotFoundError", "draw", "draw_backward"]

_SUFFIXES = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".json": "json"}


class Drawing:
    """A picture of a computation graph (made by :func:`draw`).

    Attributes:
        model: the :class:`~chainrule.viz.model.GraphModel` drawn.
        source: the DOT text (no renderer needed).
        digraph: the ``graphviz.Digraph`` it was built with.
    """

    def __init__(self, model: GraphModel) -> None:
        self.model = model

    @cached_property
    def digraph(self) -> graphviz.Digraph:
        from .viz.dot import to_digraph

        return to_digraph(self.model)

    @property
    def source(self) -> str:
        return str(self.digraph.source)

    def pipe(self, format: str = "svg", renderer: Renderer | None = None) -> bytes:  # noqa: A002
        """The picture rendered to ``format`` (``svg``, ``png``, ``pdf``, ``json``), as bytes."""
        from .viz.render import render

        return render(self.source, format, renderer)

    def svg(self, renderer: Renderer | None = None) -> str:
        """The picture as SVG text."""
        return self.pipe("svg", renderer).decode("utf-8")

    def save(self, path: str | Path, renderer: Renderer | None = None) -> Path:
        """Write the picture to ``path``; the suffix chooses the format.

        ``.dot`` (or ``.gv``) writes the DOT text; ``.svg``, ``.png`` and ``.pdf``
        need a renderer.  With none installed, the DOT text is written next to
        ``path`` (same name, ``.dot``) and :class:`RendererNotFoundError` says
        how to render it.  Returns the path written.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix in (".dot", ".gv"):
            path.write_text(self.source, encoding="utf-8")
            return path
        fmt = _SUFFIXES.get(suffix)
        if fmt is None:
            raise ValueError(
                f"save: cannot tell the format from {path.name!r}; "
                "use a name ending in .svg, .png, .pdf or .dot"
            )
        try:
            data = self.pipe(fmt, renderer)
        except RendererNotFoundError as e:
            dot_path = path.with_suffix(".dot")
            dot_path.write_text(self.source, encoding="utf-8")
            raise RendererNotFoundError(
                f"save: cannot write {path}: {e}. The DOT text was written to {dot_path}; "
                f"render it with `dot -T{fmt} {dot_path} -o {path}` "
                f"(or `graphviz-pure -T{fmt} ...`)"
            ) from None
        path.write_bytes(data)
        return path

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None, **kwargs: Any
    ) -> dict[str, str]:
        """Inline display in Jupyter: SVG when a renderer is found, else a hint and the DOT."""
        try:
            return {"image/svg+xml": self.svg()}
        except (RendererNotFoundError, RenderError) as e:
            return {"text/plain": f"(no picture: {e})\n\n{self.source}"}

    def __repr__(self) -> str:
        n_values = sum(1 for n in self.model.nodes if n.kind in ("value", "module"))
        n_ops = sum(1 for n in self.model.nodes if n.kind == "op")
        return f"<Drawing: {n_values} values, {n_ops} ops; .source, .save(path), .svg()>"


def draw(
    root: Node | Sequence[Node],
    *,
    highlight: Node | Sequence[Node] | None = None,
    show_grad: bool = True,
    rankdir: str = "LR",
    cluster: bool = True,
    max_nodes: int | None = 200,
    collapse: bool | None = None,
    inputs: Sequence[Node] = (),
) -> Drawing:
    """Draw the computation graph behind ``root`` (a Value, a Tensor, or several).

    Args:
        root: the output(s) to draw from, e.g. the loss.
        highlight: a leaf (or a list) whose paths to the root are drawn bold,
            labelled with their local derivatives, with the rest faded.
        show_grad: show each value's ``.grad`` (or ``grad not computed``).
        rankdir: ``LR`` (data flows left to right), ``TB``, ``RL`` or ``BT``.
        cluster: group the values made inside each ``nn.Module`` in a box.
        max_nodes: refuse (with a clear error) to draw more values than this;
            a larger graph built from modules is collapsed automatically when
            ``collapse`` is None.  None for no limit.
        collapse: one node per module (True), every value (False), or
            decide from ``max_nodes`` (None).
        inputs: leaves drawn as inputs even though they require grad.

    Returns:
        A :class:`Drawing`: ``.source`` (DOT), ``.digraph``, ``.save(path)``,
        ``.svg()``, and inline display in Jupyter.

    See the module docstring for the legend.

    >>> import chainrule as cr
    >>> x = cr.Value(2.0, name="x", requires_grad=False)
    >>> w = cr.Value(-0.5, name="w")
    >>> y = (w * x).tanh()
    >>> y.name = "y"
    >>> d = cr.draw(y)
    >>> [(n.id, n.role) for n in d.model.nodes if n.kind == "value"]
    [('v0', 'parameter'), ('v1', 'input'), ('v2', 'intermediate'), ('v3', 'output')]
    >>> d.source.splitlines()[0]
    'digraph chainrule {'
    """
    from .viz.model import build

    m = build(
        root,
        highlight=highlight,
        show_grad=show_grad,
        rankdir=rankdir,
        cluster=cluster,
        collapse=collapse,
        max_nodes=max_nodes,
        inputs=inputs,
    )
    return Drawing(m)


def draw_backward(
    root: Node,
    path: str | Path = "backward.html",
    *,
    gradient: Any = None,
    inputs: Sequence[Node] = (),
    max_nodes: int | None = 200,
) -> Path:
    """Write an HTML page that steps through ``root.backward()``, one node at a time.

    The steps follow the engine's own order (newest node first, each once all
    its gradient has arrived).  Each shows the node being processed, the
    upstream gradient it received, and for each operand the local derivative
    and the update ``operand.grad += local * upstream``; gradients that have
    not arrived yet read ``grad not computed``.  The page is one file with
    the pictures inline (SVG) and a few lines of JavaScript: buttons and the
    arrow keys step forward and back; it needs no network.  ``.grad`` is not
    changed.  Needs a renderer (see :func:`draw`).  Returns the path written.
    """
    from .viz.stepper import write_html

    return write_html(root, path, gradient=gradient, inputs=inputs, max_nodes=max_nodes)
