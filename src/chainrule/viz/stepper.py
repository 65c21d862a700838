"""A backward pass, one step at a time, as a self-contained HTML page.

:func:`backward_steps` replays what ``backward()`` does, in the engine's own
order: nodes are visited from the newest to the oldest (by their creation
stamp), each once all of its gradient has arrived; the visit hands each
operand ``local derivative x upstream gradient`` (the op's vector-Jacobian
product), which is added to the gradient that operand has received so far.
Nothing is stored in ``.grad``.

:func:`write_html` draws one picture per step (the node being processed and
the edges it sends gradient along in red, every gradient so far in the
labels, ``grad not computed`` where none has arrived) and writes them, with a
few lines of plain JavaScript to step through them, into one HTML file that
needs no network.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import Node, iter_graph, run_backward, seed_for, toposort, vjp
from ..explain import formula_text
from ..naming import graph_names, name_of
from ..numerics import quiet
from .dot import to_digraph
from .model import build, fmt_number
from .render import render


@dataclass
class Update:
    """One ``operand.grad += local * upstream`` of a step."""

    parent: Node
    operand: int
    formula: str
    local: float | None  # a number for scalars; None when it is a Jacobian
    contribution: Any
    total: Any  # the operand's gradient after the update


@dataclass
class BackwardStep:
    """The visit of one node: its (complete) upstream gradient and its updates."""

    node: Node
    upstream: Any
    updates: list[Update] = field(default_factory=list)
    grads: dict[Node, Any] = field(default_factory=dict)  # every gradient after the step


def _text(x: Any) -> str:
    a = np.asarray(x)
    if a.size == 1:
        return fmt_number(a.reshape(()))
    if a.size <= 6:
        return "[" + ", ".join(fmt_number(v) for v in a.ravel()) + "]"
    with quiet():  # a sum of infinities may be nan: say so, without a warning
        total = a.sum()
    return f"array{list(a.shape)} (sum {fmt_number(total)})"


def backward_steps(root: Node, gradient: Any = None) -> list[BackwardStep]:
    """The steps ``root.backward(gradient)`` takes, without touching ``.grad``.

    The pass is the engine's own (:func:`~chainrule.engine.run_backward`),
    watched edge by edge; a step is the visit of one node, in the engine's
    order (newest first), leaves included where their stamps put them.
    """
    if not isinstance(root, Node):
        raise TypeError(f"draw_backward: expected a Value or Tensor, got {type(root).__name__}")
    if not root.requires_grad:
        raise ValueError(
            f"draw_backward: {name_of(root)} does not require grad: there is no backward pass"
        )
    if gradient is None and np.size(root.data) != 1:
        raise ValueError(
            f"draw_backward: {name_of(root)} has shape {np.shape(root.data)}; "
            "pass gradient= for a non-scalar output"
        )
    # The seed is checked and converted as backward() does it (shape, and the
    # output's dtype: a float32 graph steps through float32 gradients).
    seed = seed_for(root, gradient, "draw_backward")
    handed: dict[Node, list[tuple[int, Node, Any]]] = {}

    def watch(node: Node, i: int, operand: Node, share: Any) -> None:
        handed.setdefault(node, []).append((i, operand, share))

    final = run_backward([root], [seed], store=False, wanted=toposort([root]), on_edge=watch)
    # Replay the pass in its order, to show each gradient as it grows.
    pending: dict[Node, Any] = {root: seed}
    steps: list[BackwardStep] = []
    for node in sorted(final, key=lambda n: -n._seq):
        step = BackwardStep(node, final[node])
        for i, operand, share in handed.get(node, ()):
            earlier = pending.get(operand)
            pending[operand] = share if earlier is None else earlier + share
            formula = formula_text(node._op, i, len(node._parents))
            local = _local(node, i, operand)
            step.updates.append(Update(operand, i, formula, local, share, pending[operand]))
        step.grads = dict(pending)
        steps.append(step)
    return steps


def _local(node: Node, i: int, operand: Node) -> float | None:
    """The local derivative on an edge as a number, where it is one (scalars); else None."""
    if not isinstance(node.data, np.ndarray):
        return float(vjp(node, i, 1.0))
    if node.data.size == 1 and np.size(operand.data) == 1:
        return float(np.asarray(vjp(node, i, np.ones_like(node.data))))
    return None


def _caption(k: int, n: int, step: BackwardStep, labels: dict[Node, str], root: Node) -> list[str]:
    name = labels[step.node]
    lines = [f"step {k} of {n}: {name}" + (f" = {step.node.op}(...)" if step.node.op else "")]
    lines.append(f"upstream gradient d{labels[root]}/d{name} = {_text(step.upstream)} (complete)")
    if step.node._op is None:
        lines.append(f"{name} is a leaf: its gradient is final and goes no further")
    for u in step.updates:
        p = labels[u.parent]
        if u.local is not None:
            lines.append(
                f"{p}.grad += local * upstream = {fmt_number(u.local)} * "
                f"{_text(step.upstream)} = {_text(u.contribution)}   "
                f"[{u.formula}]  ->  {p}.grad = {_text(u.total)}"
            )
        else:
            lines.append(
                f"{p}.grad += vjp(upstream) = {_text(u.contribution)}   [{u.formula}]  ->  "
                f"{p}.grad = {_text(u.total)}"
            )
    return lines


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 1em; }}
#controls button {{ font-size: 1em; margin-right: 0.3em; }}
#counter {{ margin: 0 1em; }}
.frame svg {{ max-width: 100%; height: auto; }}
#caption {{ font-family: monospace; white-space: pre-wrap; margin: 0.6em 0; }}
</style>
</head>
<body data-step="0">
<h1>{title}</h1>
<p>Use the buttons or the arrow keys (Home and End jump to the ends).</p>
<div id="controls">
<button id="first" title="first step (Home)">&#x25C0;&#x25C0; first</button>
<button id="prev" title="back (left arrow)">&#x25C0; back</button>
<span id="counter"></span>
<button id="next" title="forward (right arrow)">forward &#x25B6;</button>
<button id="last" title="last step (End)">last &#x25B6;&#x25B6;</button>
</div>
<div id="caption"></div>
{frames}
<script>
(function () {{
  var frames = document.querySelectorAll(".frame");
  var caption = document.getElementById("caption");
  var counter = document.getElementById("counter");
  var current = 0;
  function show(k) {{
    current = Math.max(0, Math.min(frames.length - 1, k));
    for (var i = 0; i < frames.length; i++) frames[i].hidden = (i !== current);
    caption.textContent = JSON.parse(frames[current].getAttribute("data-caption")).join("\\n");
    counter.textContent = (current + 1) + " / " + frames.length;
    document.body.setAttribute("data-step", String(current));
  }}
  document.getElementById("first").onclick = function () {{ show(0); }};
  document.getElementById("prev").onclick = function () {{ show(current - 1); }};
  document.getElementById("next").onclick = function () {{ show(current + 1); }};
  document.getElementById("last").onclick = function () {{ show(frames.length - 1); }};
  document.addEventListener("keydown", function (e) {{
    if (e.key === "ArrowRight") show(current + 1);
    else if (e.key === "ArrowLeft") show(current - 1);
    else if (e.key === "Home") show(0);
    else if (e.key === "End") show(frames.length - 1);
  }});
  var m = /^#step=(\\d+)$/.exec(location.hash);
  show(m ? parseInt(m[1], 10) : 0);
  // "#play" steps through every frame with the arrow key, as a reader would.
  if (location.hash === "#play") {{
    for (var i = 1; i < frames.length; i++) {{
      document.dispatchEvent(new KeyboardEvent("keydown", {{ key: "ArrowRight" }}));
    }}
  }}
}})();
</script>
</body>
</html>
"""


def write_html(
    root: Node,
    path: str | Path,
    *,
    gradient: Any = None,
    renderer: Any = None,
    inputs: Sequence[Node] = (),
    max_nodes: int | None = 200,
) -> Path:
    """Write the stepper page for ``root``'s backward pass to ``path``; returns the path."""

    steps = backward_steps(root, gradient)
    graph = iter_graph([root])
    names = graph_names(graph)
    labels = {n: names[id(n)] for n in graph}
    frames: list[tuple[list[str], dict[Node, Any], Node | None, list[Update]]] = [
        (
            [
                f"before the backward pass: no gradient computed ({len(steps)} steps follow)",
                f"the pass starts with d{labels[root]}/d{labels[root]} = 1",
            ],
            {},
            None,
            [],
        )
    ]
    for k, s in enumerate(steps, 1):
        frames.append((_caption(k, len(steps), s, labels, root), s.grads, s.node, s.updates))

    parts = []
    for k, (lines, grads, focus, updates) in enumerate(frames):
        model = build(root, inputs=inputs, max_nodes=max_nodes, grads=grads, cluster=False)
        if focus is not None:
            ids = {n.node: n.id for n in model.nodes if n.kind == "value" and n.node is not None}
            vid = ids[focus]
            oid = "op" + vid[1:]
            targets = {(ids[u.parent], oid, u.operand) for u in updates}
            for vn in model.nodes:
                vn.on_path = True if vn.id in (vid, oid) else None
            for e in model.edges:
                if (e.tail, e.head, e.operand) in targets:
                    e.on_path = True
                    u = next(
                        u for u in updates if (ids[u.parent], e.operand) == (e.tail, u.operand)
                    )
                    e.label = [f"+= {_text(u.contribution)}"]
        svg = render(str(to_digraph(model).source), "svg", renderer).decode("utf-8")
        svg = svg[svg.index("<svg") :]
        cap = html.escape(json.dumps(lines), quote=True)
        hidden = "" if k == 0 else " hidden"
        parts.append(
            f'<div class="frame" data-step="{k}" data-caption="{cap}"{hidden}>\n{svg}</div>'
        )
    title = html.escape(f"Backward pass of {labels[root]}, step by step")
    path = Path(path)
    path.write_text(PAGE.format(title=title, frames="\n".join(parts)), encoding="utf-8")
    return path
