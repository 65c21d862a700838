"""Pictures of computation graphs: the graph model, its DOT text, and renderers.

* :mod:`chainrule.viz.model`: what is drawn (value, op and constant nodes,
  their roles and labels, edges, module boxes, highlighted paths), as plain
  Python data, independent of Graphviz.
* :mod:`chainrule.viz.dot`: the model as a ``graphviz.Digraph`` and DOT text,
  with every label escaped.
* :mod:`chainrule.viz.render`: finding a program that turns DOT into SVG, PNG
  or PDF, and running it.

The entry point is :func:`chainrule.draw`.
"""
