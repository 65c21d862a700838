"""The graph model as DOT: a ``graphviz.Digraph`` with safe, deterministic text.

Every label is an HTML-like label (``label=<...>``), built from the model's
plain-text rows by :func:`html_text`, so names may hold any character:

* ``& < > "`` become entities, so they are text and never markup; so does
  ``]``, which older Graphviz (2.43) rejects at the start of a text span;
* a backslash becomes ``<FONT>&#92;</FONT>``: Graphviz turns entities into
  characters and then still reads ``\\N``, ``\\G``, ``\\L``, ``\\\\`` ... as
  escapes inside HTML-like labels, one text span at a time, so a backslash
  is safe only alone in its own span;
* a newline becomes a line break (``<BR/>``);
* other control characters, lone surrogates and the two non-characters
  U+FFFE/U+FFFF cannot appear in XML (so not in an SVG) and have no glyph:
  they are shown as their escape, ``\\x07`` or ``\\ud800``;
* the characters that are syntax in record labels (``{ } | < >``) need no care,
  since no record shapes are used.

Node ids are plain ASCII (``v0``, ``op3``, ``c3_1``, ``m0``) and statements
are emitted in the model's order (parents first), with ``ordering=in`` so the
operands of each op keep their order: the same graph gives the same text, and
the same layout, every time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .model import GraphModel, Row, VizEdge, VizNode

if TYPE_CHECKING:
    import graphviz

FONT = "Helvetica"

#: Node style per role; the legend in :func:`chainrule.draw` describes it.
ROLE_STYLE: dict[str, dict[str, str]] = {
    "parameter": {"shape": "box", "style": "rounded,filled", "fillcolor": "#ffd9a8",
                  "color": "#b35900", "penwidth": "1.6"},
    "input": {"shape": "box", "style": "rounded,filled", "fillcolor": "#e4e4e4",
              "color": "#606060"},
    "constant": {"shape": "box", "style": "filled", "fillcolor": "#f0f0f0",
                 "color": "#a0a0a0", "fontsize": "10"},
    "intermediate": {"shape": "box", "style": "rounded,filled", "fillcolor": "#ffffff",
                     "color": "#404040"},
    "output": {"shape": "box", "style": "rounded,filled", "fillcolor": "#c9ddff",
               "color": "#0b3d91", "peripheries": "2", "penwidth": "1.4"},
    "op": {"shape": "ellipse", "style": "filled", "fillcolor": "#fff3b0",
           "color": "#8a7a00", "fontsize": "10", "margin": "0.02,0.01",
           "height": "0.3"},
    "module": {"shape": "box3d", "style": "filled", "fillcolor": "#d8f0d8",
               "color": "#2e7d32"},
}  # fmt: skip

PATH_COLOR = "#c62828"
FADED = "#c0c0c0"
FADED_TEXT = "#9a9a9a"
FADED_FILL = "#fafafa"

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "]": "&#93;"}


def _invisible(o: int) -> bool:
    """Characters XML 1.0 forbids, or that only steer text: shown as escapes."""
    return (
        o < 0x20
        or 0x7F <= o < 0xA0
        or 0xD800 <= o < 0xE000
        or o in (0xFFFE, 0xFFFF)
        or o in (0x2028, 0x2029)
    )


def html_text(s: str) -> str:
    r"""Escape ``s`` for the inside of an HTML-like label, keeping how it reads.

    >>> html_text('a<b> & "c"\\d')
    'a&lt;b&gt; &amp; &quot;c&quot;<FONT>&#92;</FONT>d'
    >>> html_text("x\ny")
    'x<BR/>y'
    >>> html_text("bell\a")
    'bell<FONT>&#92;</FONT>x07'
    """
    out: list[str] = []
    for ch in s:
        o = ord(ch)
        if ch == "\\":
            out.append("<FONT>&#92;</FONT>")
        elif ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif ch == "\n":
            out.append("<BR/>")
        elif _invisible(o):
            out.append("<FONT>&#92;</FONT>" + (f"x{o:02x}" if o < 0x100 else f"u{o:04x}"))
        else:
            out.append(ch)
    return "".join(out)


def visible_text(s: str) -> list[str]:
    r"""How ``s`` reads in a picture, line by line (the inverse view of :func:`html_text`).

    >>> visible_text("a\tb\nc")
    ['a\\x09b', 'c']
    """
    lines = []
    for line in s.split("\n"):
        chars = []
        for ch in line:
            o = ord(ch)
            if _invisible(o):
                chars.append("\\" + (f"x{o:02x}" if o < 0x100 else f"u{o:04x}"))
            else:
                chars.append(ch)
        lines.append("".join(chars))
    return lines


def _row_html(row: Row) -> str:
    if row.kind == "title":
        return f"<TR><TD><B>{html_text(row.text)}</B></TD></TR>"
    if row.kind == "text":
        return f'<TR><TD><FONT POINT-SIZE="10">{html_text(row.text)}</FONT></TD></TR>'
    width = max([1, *(len(r) for r in row.cells)])  # a COLSPAN of 0 is invalid
    cells = "".join(
        "<TR>" + "".join(f"<TD>{html_text(c)}</TD>" for c in r) + "</TR>" for r in row.cells
    )
    head = (
        f'<TR><TD COLSPAN="{width}" BORDER="0">{html_text(row.text)}</TD></TR>' if row.text else ""
    )
    grid = (
        '<FONT POINT-SIZE="9"><TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" '
        f'CELLPADDING="2">{head}{cells}</TABLE></FONT>'
    )
    return f"<TR><TD>{grid}</TD></TR>"


def node_html_label(n: VizNode) -> str:
    """The HTML-like label of a node (including the outer ``< >``)."""
    if n.kind in ("op", "constant") and all(r.kind == "text" for r in n.rows):
        return "<" + "<BR/>".join(html_text(r.text) for r in n.rows) + ">"
    body = "".join(_row_html(r) for r in n.rows)
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{body}</TABLE>>'


def lines_label(lines: list[str], align: str = "") -> str:
    br = f'<BR ALIGN="{align}"/>' if align else "<BR/>"
    return "<" + br.join(html_text(x) for x in lines) + (br if align else "") + ">"


def _node_attrs(n: VizNode) -> dict[str, str]:
    attrs = dict(ROLE_STYLE[n.role])
    if n.on_path is False:
        attrs.update(color=FADED, fontcolor=FADED_TEXT, fillcolor=FADED_FILL)
    elif n.on_path:
        attrs.update(color=PATH_COLOR, penwidth="2.2")
    return attrs


def _edge_attrs(e: VizEdge) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if e.on_path:
        attrs.update(color=PATH_COLOR, penwidth="2.6", fontcolor=PATH_COLOR)
    elif e.on_path is False:
        attrs.update(color=FADED, fontcolor=FADED_TEXT)
    if e.label:
        attrs["label"] = lines_label(e.label)
    return attrs


def to_digraph(model: GraphModel) -> graphviz.Digraph:
    """Build the ``graphviz.Digraph`` for ``model`` (imports ``graphviz`` lazily)."""
    import graphviz

    graph_attr = {
        "rankdir": model.rankdir,
        "ordering": "in",
        "fontname": FONT,
        "nodesep": "0.25",
        "ranksep": "0.35",
        "bgcolor": "white",
    }
    if model.caption:
        graph_attr.update(label=lines_label(model.caption, "LEFT"), labelloc="b", labeljust="l")
    dg = graphviz.Digraph(
        "chainrule",
        graph_attr=graph_attr,
        node_attr={"fontname": FONT, "fontsize": "11", "margin": "0.08,0.04"},
        edge_attr={"fontname": FONT, "fontsize": "9", "arrowsize": "0.7"},
    )

    def add_node(g: Any, n: VizNode) -> None:
        g.node(n.id, label=node_html_label(n), **_node_attrs(n))

    if model.cluster:
        # Nested boxes follow the dotted module names: "net.hidden" sits in "net".
        tree: dict[str, list[VizNode]] = {}
        top: list[VizNode] = []
        for n in model.nodes:
            (tree.setdefault(n.scope, []) if n.scope is not None else top).append(n)
        scopes = list(tree)
        all_scopes: list[str] = []
        for s in scopes:
            parts = s.split(".")
            for j in range(1, len(parts) + 1):
                prefix = ".".join(parts[:j])
                if prefix not in all_scopes:
                    all_scopes.append(prefix)
        index = {s: j for j, s in enumerate(all_scopes)}

        def emit(g: Any, s: str) -> None:
            with g.subgraph(name=f"cluster_{index[s]}") as sg:
                sg.attr(
                    label=lines_label([s]),
                    style="rounded,dashed",
                    color="#7a7a7a",
                    fontcolor="#444444",
                    fontname=FONT,
                    labeljust="l",
                )
                for child in all_scopes:
                    if child.rsplit(".", 1)[0] == s and child != s:
                        emit(sg, child)
                for n in tree.get(s, []):
                    add_node(sg, n)

        for s in all_scopes:
            if "." not in s:
                emit(dg, s)
        for n in top:
            add_node(dg, n)
    else:
        for n in model.nodes:
            add_node(dg, n)
    for e in model.edges:
        dg.edge(e.tail, e.head, **_edge_attrs(e))
    return dg
