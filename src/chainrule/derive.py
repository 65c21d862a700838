"""A graph derived by hand, automatically: the forward and backward passes written out.

:func:`derive` writes the derivation a student writes for a small network,
for any graph of :class:`~chainrule.Value`\\ s or small
:class:`~chainrule.Tensor`\\ s:

* the **forward pass**, one line per named quantity, formula, then numbers,
  then result (``net_h1 = w1·i1 + w2·i2 + b1 = 0.15·0.05 + 0.2·0.1 + 0.35 =
  0.3775``).  Values that no one named and that are used once are folded into
  the expression of the quantity that uses them, as a person writes them;
* the **backward pass**: for every quantity ``q`` on the way to the wanted
  leaves, its *delta* ``δ[q] = ∂output/∂q``, written once and reused, as the
  sum over the quantities ``c`` that use ``q`` of ``δ[c] · ∂c/∂q``.  Each
  local derivative ``∂c/∂q`` is a product of the op's local derivatives along
  the folded expression: each factor's formula is the op's entry in the rule
  table (:mod:`chainrule.rules`), with the operands' names put in, and its
  number is what the engine's rule gives (:func:`chainrule.engine.vjp`).
  Because every delta is written once, the derivation grows with the graph,
  not with the number of paths through it (a chain of 20 two-wide layers
  has a million paths and a few hundred lines);
* **checks** on every delta: the engine's gradient from one backward pass,
  a central finite difference (the graph's forward pass replayed with the
  quantity nudged), and whether the three agree.

A quantity is a node with a name of its own, the output, a leaf, a node used
more than once, or a node whose folded expression would grow past
:data:`FOLD_LIMIT` ops; every other node folds into its one user.  Nodes are
called as everywhere else in chainrule (:mod:`chainrule.naming`): their own
name, else ``op#k``.

Tensors are written element by element, with index notation
(``δ[W[0, 1]]``), while every tensor on the derivation has at most
:data:`ELEMENT_LIMIT` elements; larger ones are written in matrix notation,
one line per tensor quantity, with each op's vector-Jacobian product in the
form the rule table gives (``δ[W] = δ[C] bᵀ`` for a matrix product), and
with numbers printed while a tensor has at most :data:`PRINT_LIMIT`
elements (its shape and norm otherwise).  A graph holding a tensor of more
than :data:`MAX_ELEMENTS` elements is refused with a ValueError that names
it: the checks replay the forward pass per checked element, and the text
would say nothing a reader can follow.

>>> import chainrule as cr
>>> x = cr.Value(0.5, name="x")
>>> w = cr.Value(-2.0, name="w")
>>> y = (w * x).tanh()
>>> y.name = "y"
>>> print(cr.derive(y).text())
Forward pass
  y = tanh(w·x) = tanh(-2·0.5) = -0.761594156
Backward pass (δ[q] = ∂y/∂q, each written once and reused)
  δ[y] = 1
  ∂y/∂x = (1-y^2)·w = 0.4199743416·(-2) = -0.8399486832
  δ[x] = δ[y]·∂y/∂x = 1·(-0.8399486832) = -0.8399486832
    check: autodiff -0.8399486832, finite difference -0.8399486832: agree
  ∂y/∂w = (1-y^2)·x = 0.4199743416·0.5 = 0.2099871708
  δ[w] = δ[y]·∂y/∂w = 1·0.2099871708 = 0.2099871708
    check: autodiff 0.2099871708, finite difference 0.2099871708: agree
Gradients
  ∂y/∂w = δ[w] = 0.2099871708
  ∂y/∂x = δ[x] = -0.8399486832
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import rules as R
from .engine import Node, iter_graph, run_backward, vjp
from .explain import _broadcast_source, _element_edges, agree, tolerance
from .naming import graph_names
from .numerics import float_sqrt, quiet
from .ops import Op

#: Tensors with at most this many elements are written element by element.
ELEMENT_LIMIT = 4
#: In matrix notation, numbers are printed for tensors of at most this many elements.
PRINT_LIMIT = 16
#: A graph with a larger tensor than this is refused (ValueError).
MAX_ELEMENTS = 10_000
#: A folded expression holds at most this many ops; a larger one names a quantity.
FOLD_LIMIT = 8
#: Width of :meth:`Derivation.text`.
WIDTH = 100
#: Relative tolerance between a finite difference and the engine's gradient.
FD_TOLERANCE = 1e-5
#: How many elements of each matrix-notation delta the finite differences check.
FD_SAMPLES = 3

Elem = tuple[int, int]  # (id(node), flat index); a Value has the one index 0


@dataclass(frozen=True)
class Factor:
    """One local derivative on a folded path: element ``k`` of ``node`` by element
    ``pk`` of its operand ``i`` (the node ``p``), worth ``local`` here."""

    node: Node
    k: int
    i: int
    p: Node
    pk: int
    local: float


Chain = list[Factor]


# ---------------------------------------------------------------------------
# One line of the derivation, in every format.
# ---------------------------------------------------------------------------


@dataclass
class Line:
    """One line of a derivation.

    Attributes:
        kind: ``"forward"`` (a quantity's value), ``"local"`` (a local
            derivative ``∂c/∂q``), ``"delta"`` (``δ[q] = ∂output/∂q``),
            ``"note"`` (a sentence), or ``"term"`` (one term of a delta, from
            :meth:`Derivation.term_line`; not among a derivation's own lines).
        quantity: the quantity the line is about (``q``; for a forward line,
            the quantity computed).
        user: for a local line, the quantity ``c`` that uses ``q``.
        parts: the sides of the equation, each as (text, LaTeX): left-hand
            side, formula, numbers (some may be missing); the value comes last.
        value: the result: a float, or a list (nested, a tensor's) in matrix notation.
        terms: for a delta, the number of each term of its sum, in order; for
            a local line, the number of each factor (of each path, when the
            quantity appears more than once).
        users: for a delta, the quantity ``c`` of each term ``δ[c] · ∂c/∂q``.
        autodiff, finite_difference, agree: the checks of a delta (None elsewhere).
    """

    kind: str
    quantity: str
    parts: list[tuple[str, str]]
    value: Any = None
    user: str | None = None
    terms: list[Any] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    autodiff: Any = None
    finite_difference: Any = None
    agree: bool | None = None
    check_note: str = ""

    def text(self) -> str:
        return " = ".join(p[0] for p in self.parts)

    def latex(self, aligned: bool = True) -> str:
        eq = " &= " if aligned else " = "
        return eq.join(p[1] for p in self.parts[:2]) + "".join(" = " + p[1] for p in self.parts[2:])

    def check_text(self) -> str:
        if self.kind != "delta":
            return ""
        fd = "n/a" if self.finite_difference is None else _show(self.finite_difference)
        verdict = "agree" if self.agree else "DISAGREE"
        extra = f" ({self.check_note})" if self.check_note else ""
        auto = _show(self.autodiff)
        if np.ndim(self.autodiff):  # a whole tensor: how far it is, rather than all of it again
            gap = np.max(np.abs(np.asarray(self.value, dtype=np.float64) - self.autodiff))
            auto = f"differs by at most {gap:.1e}"
        return f"check: autodiff {auto}, finite difference {fd}: {verdict}{extra}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "quantity": self.quantity,
            "user": self.user,
            "text": self.text(),
            "latex": self.latex(),
            "value": _plain(self.value),
            "terms": [_plain(t) for t in self.terms],
            "users": list(self.users),
            "autodiff": _plain(self.autodiff),
            "finite_difference": _plain(self.finite_difference),
            "agree": self.agree,
        }


def _plain(x: Any) -> Any:
    """A number or array as JSON can hold it (inf and nan as strings)."""
    if x is None or isinstance(x, (str, bool)):
        return x
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    f = float(x)
    return f if math.isfinite(f) else repr(f)


@dataclass
class Derivation:
    """The result of :func:`derive`: lines of the forward and backward passes.

    Attributes:
        output: the name of the output.
        forward: the forward lines, in the order computed.
        backward: the local derivatives and deltas, output first.
        notation: ``"scalar"``, ``"elements"`` or ``"matrix"``.
        gradients: the derived gradient of each wanted node, by name (a float,
            or an array in matrix notation).
        ok: whether every delta agrees with autodiff and finite differences.
    """

    output: str
    forward: list[Line]
    backward: list[Line]
    notation: str
    gradients: dict[str, Any]

    @property
    def ok(self) -> bool:
        return all(line.agree is not False for line in self.backward)

    @property
    def lines(self) -> list[Line]:
        return self.forward + self.backward

    def line(self, kind: str, quantity: str, user: str | None = None) -> Line:
        """The line of ``kind`` about ``quantity`` (for a local line, as used by ``user``).

        >>> import chainrule as cr
        >>> x = cr.Value(3.0, name="x")
        >>> y = x * x
        >>> cr.derive(y).line("local", "x", user="mul#1").text()
        '∂mul#1/∂x = x + x = 3 + 3 = 6'
        """
        for line in self.lines:
            if line.kind == kind and line.quantity == quantity and line.user == user:
                return line
        raise KeyError(f"derive: no {kind} line for {quantity}" + (f" in {user}" if user else ""))

    def term(self, quantity: str, through: str) -> float:
        """The term ``δ[through] · ∂through/∂quantity`` of ``δ[quantity]``: the part of
        the gradient that flows through the quantity ``through``."""
        line = self.line("delta", quantity)
        if through not in line.users:
            raise KeyError(f"derive: δ[{quantity}] has no term through {through}")
        return float(line.terms[line.users.index(through)])

    def term_line(self, quantity: str, through: str) -> Line:
        """The term ``δ[through] · ∂through/∂quantity`` of ``δ[quantity]`` as a line of its
        own, formula, numbers and value (kind ``"term"``): the worked example's
        ``∂E_o1/∂out_h1``, the part of the gradient that flows through one user.

        >>> import chainrule as cr
        >>> x = cr.Value(2.0, name="x")
        >>> a = x * 3.0
        >>> a.name = "a"
        >>> z = a * a + x
        >>> cr.derive(z).term_line("x", through="a").text()
        'δ[a]·∂a/∂x = 12·3 = 36'
        """
        value = self.term(quantity, through)
        kind = (
            "delta"
            if any(ln.kind == "delta" and ln.quantity == through for ln in self.backward)
            else "seed"
        )
        delta = self.line(kind, through)
        local = self.line("local", quantity, user=through)
        formula = _product(
            [Shown(delta.parts[0][0], delta.parts[0][1], _ATOM), Shown(*local.parts[0], _ATOM)]
        )
        numbers = _product([_number_shown(delta.value), _number_shown(local.value)])
        parts = [(formula.text, formula.tex), (numbers.text, numbers.tex)]
        parts.append((_num(value), _tex_num(value)))
        return Line("term", quantity, parts, value=value, user=through)

    @property
    def steps(self) -> list[dict[str, Any]]:
        """Every line as a dict of plain numbers and strings (``json.dumps`` takes it)."""
        return [line.as_dict() for line in self.lines]

    def _heading(self) -> str:
        return f"Backward pass (δ[q] = ∂{self.output}/∂q, each written once and reused)"

    def text(self, width: int = WIDTH) -> str:
        """The derivation as plain text, no line longer than ``width`` columns."""
        out = ["Forward pass"]
        out += _wrapped(self.forward, width)
        out += textwrap.wrap(self._heading(), width)
        out += _wrapped(self.backward, width)
        return "\n".join(out)

    def latex(self) -> str:
        """The body of a LaTeX ``align*`` environment, one equation a row."""
        rows = [line.latex() for line in self.lines if line.kind != "note"]
        return " \\\\\n".join(rows)

    def markdown(self) -> str:
        """Markdown with the maths in ``$…$`` and ``$$…$$`` (GitHub and Jupyter render it)."""
        out = ["**Forward pass**", ""]
        out += [f"$${line.latex(aligned=False)}$$" for line in self.forward]
        out += [
            "",
            f"**Backward pass** ($\\delta[q] = \\partial {_tex_name(self.output)}"
            "/\\partial q$, each written once and reused)",
            "",
        ]
        for line in self.backward:
            if line.kind == "note":
                out.append(line.text())
                continue
            out.append(f"$${line.latex(aligned=False)}$$")
            if line.kind == "delta":
                out.append(f"check: {line.check_text().removeprefix('check: ')}")
                out.append("")
        return "\n".join(out)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def json(self) -> str:
        """:attr:`steps` as a JSON document."""
        return json.dumps({"output": self.output, "notation": self.notation, "steps": self.steps})

    def __str__(self) -> str:
        return self.text()


def _wrapped(lines: Iterable[Line], width: int) -> list[str]:
    out: list[str] = []
    for line in lines:
        if line.kind == "note":
            out.append(line.text())
            continue
        out += textwrap.wrap(
            line.text(),
            width,
            initial_indent="  ",
            subsequent_indent="        ",
            break_on_hyphens=False,
        )
        check = line.check_text()
        if check:
            out += textwrap.wrap(check, width, initial_indent="    ", subsequent_indent="      ")
    return out


# ---------------------------------------------------------------------------
# Numbers and names in text and LaTeX.
# ---------------------------------------------------------------------------


def _num(x: Any) -> str:
    """A number as the derivation prints it: ten significant digits (a figure given to nine
    decimals, such as 1.105905967, is printed in full)."""
    x = float(x)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.10g}"


def _show(x: Any) -> str:
    """A number, or a small array as nested lists, or a large one by shape and norm."""
    if isinstance(x, (list, tuple)):
        x = np.asarray(x, dtype=np.float64)
    if isinstance(x, np.ndarray) and x.ndim:
        if x.size <= PRINT_LIMIT:
            return _array_text(x)
        return f"<{'x'.join(map(str, x.shape))} array, norm {_num(np.linalg.norm(x))}>"
    return _num(x)


def _array_text(x: np.ndarray) -> str:
    if x.ndim == 0:
        return _num(x)
    return "[" + ", ".join(_array_text(v) for v in x) + "]"


def _tex_name(name: str) -> str:
    """A node's name in LaTeX: ``net_h1`` → ``net_{h1}``, ``w1`` → ``w_{1}``."""
    m = re.fullmatch(r"([A-Za-z]+)_?([A-Za-z0-9_]*)", name)
    if m is None:
        return "\\mathrm{" + name.replace("#", "\\#").replace("_", "\\_") + "}"
    head, tail = m.groups()
    head = head if len(head) == 1 else "\\mathit{" + head + "}"
    return head + ("_{" + tail.replace("_", "\\_") + "}" if tail else "")


def _tex_num(x: Any) -> str:
    text = _num(x)
    if "e" in text:
        mant, exp = text.split("e")
        return f"{mant} \\times 10^{{{int(exp)}}}"
    return text


# ---------------------------------------------------------------------------
# Expressions: the forward pass as a person writes it.
# ---------------------------------------------------------------------------

_INFIX = re.compile(r"^a (\S+) b$")
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "**": 4}
_TEXT_OP = {"+": " + ", "-": " - ", "*": "·", "/": "/", "@": " @ ", "**": "^"}
_TEX_OP = {"+": " + ", "-": " - ", "*": " \\cdot ", "/": " / ", "@": " ", "**": "^"}
_ATOM = 9


@dataclass
class Shown:
    """An expression shown four ways: with names or numbers, as text or LaTeX."""

    text: str
    tex: str
    prec: int


def _paren(s: Shown, need: bool) -> Shown:
    if not need:
        return s
    return Shown(f"({s.text})", f"\\left({s.tex}\\right)", _ATOM)


def _number_shown(x: Any) -> Shown:
    if isinstance(x, (list, tuple)):
        x = np.asarray(x, dtype=np.float64)
    if isinstance(x, np.ndarray) and x.ndim:
        t = _show(x)
        return Shown(t, t, _ATOM)
    v = float(np.asarray(x))
    prec = _ATOM if v >= 0 else 3
    return Shown(_num(v), _tex_num(v), prec)


def _apply(op: Op, args: Sequence[Shown]) -> Shown:
    """``op`` applied to shown operands, with the parentheses precedence needs."""
    m = _INFIX.match(op.symbol)
    if m and len(args) == 2:
        sym = m.group(1)
        p = _PRECEDENCE.get(sym, 2)
        a, b = args
        if sym == "**":
            a = _paren(a, a.prec <= p)
            b = _paren(b, b.prec < 3)
            return Shown(f"{a.text}^{b.text}", f"{{{a.tex}}}^{{{b.tex}}}", p)
        a = _paren(a, a.prec < p)
        b = _paren(b, b.prec < p or (b.prec == p and sym in "-/") or b.prec == 3)
        return Shown(a.text + _TEXT_OP[sym] + b.text, a.tex + _TEX_OP[sym] + b.tex, p)
    if op.symbol == "-a" and len(args) == 1:
        a = _paren(args[0], args[0].prec < 3)
        return Shown("-" + a.text, "-" + a.tex, 3)
    name = op.name
    tex_fn = {"sigmoid": "\\sigma", "exp": "\\exp", "log": "\\ln", "tanh": "\\tanh"}.get(
        name, "\\operatorname{" + name.replace("_", "\\_") + "}"
    )
    if name == "sqrt" and len(args) == 1:
        return Shown(f"sqrt({args[0].text})", f"\\sqrt{{{args[0].tex}}}", _ATOM)
    if name == "abs" and len(args) == 1:
        return Shown(f"|{args[0].text}|", f"\\left|{args[0].tex}\\right|", _ATOM)
    return Shown(
        f"{name}({', '.join(a.text for a in args)})",
        f"{tex_fn}\\left({', '.join(a.tex for a in args)}\\right)",
        _ATOM,
    )


# ---------------------------------------------------------------------------
# Rule-table formulas with the operands put in.
# ---------------------------------------------------------------------------

_VAR = re.compile(r"(?<![A-Za-z0-9_])([abxst])(?![A-Za-z0-9_])")
_TEX_WORDS = re.compile(r"\b(if|else|where|for|at|the|of|row|column|otherwise)\b")


def _formula_tex(template: str) -> str:
    """A rule-table formula (placeholders kept) in LaTeX."""
    t = template
    t = re.sub(r"sqrt\(([^()]*)\)", r"\\sqrt{\1}", t)
    t = re.sub(r"\^\(([^()]*)\)", r"^{\1}", t)
    t = re.sub(r"\^([A-Za-z0-9]+)", r"^{\1}", t)
    t = re.sub(r"\bln\b", r"\\ln", t)
    t = re.sub(r"\bexp\b", r"\\exp", t)
    t = t.replace("*", " \\cdot ").replace(">=", "\\ge ").replace("<=", "\\le ")
    return _TEX_WORDS.sub(lambda m: f"\\text{{ {m.group(1)} }}", t)


def _formula(op: Op, i: int, operands: Sequence[Shown], output: Shown) -> Shown:
    """The local derivative of ``op`` for operand ``i``, from the rule table, operands put in.

    The table writes operands as ``a``, ``b`` (``x`` for one input) and a
    unary op's output as ``s`` or ``t`` (sigmoid's ``s(1-s)``, tanh's
    ``1-t^2``); those letters are replaced by what the derivation calls them.
    Formulas that are not elementwise (a matrix product's) are kept as written.
    """
    template = op.formula(i)
    if not op.elementwise:
        return Shown(template, "\\text{" + template + "}", _ATOM)
    names = list(op.operands) or (["x"] if len(operands) == 1 else ["a", "b"])
    if len(operands) == 1 and names == ["x"] and "a" in template and "x" not in template:
        names = ["a"]
    table: dict[str, Shown] = dict(zip(names, operands))
    if len(operands) == 1:
        for letter in "st":
            if letter not in table:
                table[letter] = output
    found: list[Shown] = []

    def mark(m: re.Match[str]) -> str:
        shown = table.get(m.group(1))
        if shown is None:
            return m.group(1)
        found.append(_paren(shown, shown.prec < _ATOM))
        return f"\x00{len(found) - 1}\x00"

    marked = _VAR.sub(mark, template)
    # A letter before a bracket multiplies it (``s(1-s)``): written out, so a name is not
    # read as a function.
    marked = re.sub("(\x00\\d+\x00)\\(", "\\1*(", marked)
    text = marked.replace("*", "·")
    tex = _formula_tex(marked)
    for k, s in enumerate(found):
        text = text.replace(f"\x00{k}\x00", s.text)
        tex = tex.replace(f"\x00{k}\x00", s.tex)
    return Shown(text, tex, _precedence(text))


def _precedence(text: str) -> int:
    """How tightly a formula binds: 1 with a sum at the top, 2 with a product, 3 for a
    leading minus, else an atom."""
    depth, top = 0, _ATOM
    for k, c in enumerate(text):
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0:
            if c in "+-" and k > 0 and text[k - 1] not in "^e(":
                return 1
            if c in "·/* ":
                top = min(top, 2)
    if top == _ATOM and text.startswith("-"):
        return 3
    return top


# ---------------------------------------------------------------------------
# Replaying the forward pass on numbers, for the finite differences.
# ---------------------------------------------------------------------------


def _as_value(node: Node, x: Any) -> Any:
    return float(x) if isinstance(node.data, float) else np.asarray(x, dtype=np.float64)


def _tanh(a: Any) -> Any:
    return math.tanh(a) if isinstance(a, float) else np.tanh(a)


def _sqrt(a: Any) -> Any:
    return float_sqrt(a) if isinstance(a, float) else np.sqrt(a)


def _logsumexp(a: Any, ctx: Any) -> Any:
    axis, keep = ctx
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    s = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return s if keep else np.squeeze(s, axis=axis)


#: How each op computes its output from its operands' numbers (``ctx`` as the op records it).
#: The forward pass only: no derivative is written here.
_REPLAY: dict[str, Callable[..., Any]] = {
    "add": lambda n, a, b: a + b,
    "sub": lambda n, a, b: a - b,
    "mul": lambda n, a, b: a * b,
    "div": lambda n, a, b: R.divide(a, b),
    "pow": lambda n, a, b: R.power(a, b),
    "neg": lambda n, a: -a,
    "exp": lambda n, a: R.exp(a),
    "log": lambda n, a: R.log(a),
    "tanh": lambda n, a: _tanh(a),
    "sigmoid": lambda n, a: R.sigmoid(a),
    "relu": lambda n, a: a * (a > 0),
    "softplus": lambda n, a: np.logaddexp(0.0, a),
    "abs": lambda n, a: abs(a),
    "sqrt": lambda n, a: _sqrt(a),
    "clip": lambda n, a: np.clip(a, *n._ctx),
    "maximum": lambda n, a, b: np.maximum(a, b),
    "minimum": lambda n, a, b: np.minimum(a, b),
    "where": lambda n, a, b: np.where(n._ctx, a, b),
    "astype": lambda n, a: a,
    "matmul": lambda n, a, b: np.matmul(a, b),
    "sum": lambda n, a: np.sum(a, axis=n._ctx[0], keepdims=n._ctx[1]),
    "mean": lambda n, a: np.mean(a, axis=n._ctx[0], keepdims=n._ctx[1]),
    "max": lambda n, a: np.max(a, axis=n._ctx[0], keepdims=n._ctx[1]),
    "reshape": lambda n, a: np.reshape(a, np.shape(n.data)),
    "transpose": lambda n, a: np.transpose(a, n._ctx),
    "broadcast_to": lambda n, a: np.broadcast_to(a, np.shape(n.data)),
    "getitem": lambda n, a: np.asarray(a)[n._ctx],
    "logsumexp": lambda n, a: _logsumexp(a, n._ctx),
    "softmax": lambda n, a: np.exp(R.log_softmax(a, n._ctx)),
    "log_softmax": lambda n, a: R.log_softmax(a, n._ctx),
    "concatenate": lambda n, *xs: np.concatenate(xs, axis=n._ctx[0]),
    "stack": lambda n, *xs: np.stack(xs, axis=n._ctx),
}


class _Replay:
    """The forward pass of a graph on numbers, rerun from one nudged node."""

    def __init__(self, order: Sequence[Node], output: Node) -> None:
        self.order = order
        self.output = output
        self.pos = {id(n): k for k, n in enumerate(order)}
        self.base = {id(n): n.data for n in order}
        self.missing = sorted({n._op.name for n in order if n._op and n._op.name not in _REPLAY})

    def run(self, node: Node, flat: int, delta: float) -> float:
        values = dict(self.base)
        x = np.array(node.data, dtype=np.float64)
        x.reshape(-1)[flat] += delta
        values[id(node)] = _as_value(node, x)
        changed = {id(node)}
        for n in self.order[self.pos[id(node)] + 1 :]:
            if n._op is None:
                continue
            if not any(isinstance(p, Node) and id(p) in changed for p in n._parents):
                continue
            args = [values[id(p)] if isinstance(p, Node) else p for p in n._parents]
            values[id(n)] = _as_value(n, _REPLAY[n._op.name](n, *args))
            changed.add(id(n))
        return float(np.asarray(values[id(self.output)]).reshape(-1)[0])

    def slope(self, node: Node, flat: int) -> float | None:
        """Central difference of the output for element ``flat`` of ``node``."""
        if self.missing:
            return None
        x = float(np.asarray(node.data).reshape(-1)[flat])
        h = 1e-6 * max(1.0, abs(x))
        with quiet():
            return (self.run(node, flat, h) - self.run(node, flat, -h)) / (2 * h)


# ---------------------------------------------------------------------------
# The derivation.
# ---------------------------------------------------------------------------


def _wanted_list(output: Node, wrt: Any) -> list[Node] | None:
    if wrt is None:
        return None
    items = [wrt] if isinstance(wrt, Node) else list(wrt)
    for k, w in enumerate(items):
        if not isinstance(w, Node):
            raise TypeError(f"derive: wrt[{k}] is a {type(w).__name__}, not a Value or Tensor")
        if not w.requires_grad:
            raise ValueError(f"derive: wrt[{k}] does not require grad, so it has no gradient")
    return items


def derive(output: Node, wrt: Node | Iterable[Node] | None = None) -> Derivation:
    """The derivation of ``output`` by hand, written out, with checks.

    Args:
        output: a Value, or a Tensor with one element, computed from leaves
            that require grad.
        wrt: the nodes whose gradients are wanted (a node or a list): leaves,
            or intermediates.  Default: every leaf that requires grad.

    Returns:
        A :class:`Derivation`: ``.text()``, ``.markdown()``, ``.latex()`` and
        ``.steps``; its ``gradients`` hold the derived gradient of each
        wanted node.

    The backward pass is reverse-mode differentiation written out: with
    ``δ[q] = ∂output/∂q``, ``δ[q] = Σ_c δ[c] · ∂c/∂q`` over the quantities
    ``c`` that use ``q``, and ``∂c/∂q`` is the product of the rule table's
    local derivatives along the folded expression of ``c`` (summed when ``q``
    appears in it more than once).
    """
    if not isinstance(output, Node):
        raise TypeError(f"derive: output must be a Value or Tensor, got {type(output).__name__}")
    if not output.requires_grad:
        raise ValueError(
            "derive: the output does not require grad, so there is nothing to derive "
            "(did every input have requires_grad=False?)"
        )
    if np.size(output.data) != 1:
        raise ValueError(
            f"derive: the output has shape {np.shape(output.data)}; derive a single number "
            "(reduce it first, e.g. with .sum())"
        )
    wanted = _wanted_list(output, wrt)
    return _Deriver(output, wanted).run()


class _Deriver:
    def __init__(self, output: Node, wanted: list[Node] | None) -> None:
        self.output = output
        self.order = iter_graph([output])
        self.names = graph_names(self.order)
        self.pos = {id(n): k for k, n in enumerate(self.order)}
        big = max(self.order, key=lambda n: np.size(n.data))
        if np.size(big.data) > MAX_ELEMENTS:
            raise ValueError(
                f"derive: the graph holds {self.name(big)} of shape {np.shape(big.data)} "
                f"({np.size(big.data)} elements); derive writes out graphs whose tensors have "
                f"at most {MAX_ELEMENTS} elements (chainrule.derive.MAX_ELEMENTS)"
            )
        if wanted is None:
            wanted = [n for n in self.order if n._op is None and n.requires_grad]
        else:
            for k, w in enumerate(wanted):
                if id(w) not in self.pos:
                    raise ValueError(
                        f"derive: wrt[{k}] ({self.name(w)}) is not part of the output's graph"
                    )
        self.wanted = wanted
        wanted_ids = {id(w) for w in wanted}
        # Nodes with a path to a wanted node (through nodes that require grad).
        self.reach: set[int] = set()
        for n in self.order:
            if id(n) in wanted_ids or any(
                isinstance(p, Node) and p.requires_grad and id(p) in self.reach for p in n._parents
            ):
                self.reach.add(id(n))
        # Uses: how often each node appears as an operand.
        uses: dict[int, int] = {}
        for n in self.order:
            for p in n._parents:
                if isinstance(p, Node):
                    uses[id(p)] = uses.get(id(p), 0) + 1
        self.quantity: set[int] = set()
        size: dict[int, int] = {}
        for n in self.order:
            if n._op is None:
                size[id(n)] = 0
                if n.requires_grad:
                    self.quantity.add(id(n))
                continue
            inner = 1 + sum(
                size[id(p)]
                for p in n._parents
                if isinstance(p, Node) and id(p) not in self.quantity
            )
            if (
                n is output
                or n.name
                or uses.get(id(n), 0) != 1
                or id(n) in wanted_ids
                or inner > FOLD_LIMIT
            ):
                self.quantity.add(id(n))
                inner = 0
            size[id(n)] = inner
        tensors = [n for n in self.order if isinstance(n.data, np.ndarray)]
        if not tensors:
            self.notation = "scalar"
        elif all(np.size(n.data) <= ELEMENT_LIMIT for n in self.order if id(n) in self.reach):
            self.notation = "elements"
        else:
            self.notation = "matrix"
        self.replay = _Replay(self.order, output)
        self.by_label: dict[str, int] = {}

    # -- names --------------------------------------------------------------

    def name(self, node: Node) -> str:
        return node.name or self.names.get(id(node), node.op or "leaf")

    def elem_name(self, node: Node, flat: int) -> str:
        base = self.name(node)
        shape = np.shape(node.data)
        if not shape or self.notation == "matrix":
            return base
        idx = np.unravel_index(flat, shape)
        return f"{base}[{', '.join(str(int(i)) for i in idx)}]"

    def shown_elem(self, node: Node, flat: int) -> Shown:
        name = self.elem_name(node, flat)
        m = re.fullmatch(r"(.*)\[(.*)\]", name)
        tex = _tex_name(m.group(1)) + "_{[" + m.group(2) + "]}" if m else _tex_name(name)
        return Shown(name, tex, _ATOM)

    # -- forward ------------------------------------------------------------

    def expression(
        self, node: Any, numbers: bool, top: bool = False, k: int | None = None
    ) -> Shown:
        """``node`` folded: quantities by name (or number), unnamed single-use nodes inlined.

        With ``k``, element ``k`` of it, in index notation: elementwise ops pass each
        operand the element broadcasting placed there; another op shows its whole
        expression, indexed (``(W @ x)[0]``).
        """
        if not isinstance(node, Node):
            if k is not None and np.size(node) > 1:
                return _number_shown(np.asarray(node).reshape(-1)[k])
            return _number_shown(node)
        indexed = k is not None and np.size(node.data) > 1
        is_quantity = id(node) in self.quantity or node._op is None
        if is_quantity and not top:
            if numbers or (node._op is None and not node.requires_grad and not node.name):
                data = np.asarray(node.data).reshape(-1)[k] if indexed else node.data
                return _number_shown(data)
            if indexed:
                return self.shown_elem(node, k)  # type: ignore[arg-type]
            return self.shown_elem(node, 0) if np.size(node.data) == 1 else self._whole(node)
        op = node._op
        assert op is not None
        if indexed and op.elementwise:
            shape = np.shape(node.data)
            return _apply(
                op,
                [
                    self.expression(p, numbers, k=_source(k, shape, p))  # type: ignore[arg-type]
                    for p in node._parents
                ],
            )
        whole = _apply(op, [self.expression(p, numbers) for p in node._parents])
        if not indexed:
            return whole
        idx = ", ".join(str(int(i)) for i in np.unravel_index(k, np.shape(node.data)))  # type: ignore[arg-type]
        inner = _paren(whole, whole.prec < _ATOM)
        return Shown(f"{inner.text}[{idx}]", f"{inner.tex}_{{[{idx}]}}", _ATOM)

    def _whole(self, node: Node) -> Shown:
        name = self.name(node)
        return Shown(name, _tex_name(name), _ATOM)

    def forward_lines(self) -> list[Line]:
        lines = []
        for n in self.order:
            if n._op is None or id(n) not in self.quantity:
                continue
            lhs = self._whole(n)
            formula = self.expression(n, numbers=False, top=True)
            parts = [(lhs.text, lhs.tex), (formula.text, formula.tex)]
            scalar = np.size(n.data) == 1 and not isinstance(n.data, np.ndarray)
            if scalar:
                nums = self.expression(n, numbers=True, top=True)
                if nums.text != formula.text:
                    parts.append((nums.text, nums.tex))
            value = _number_shown(n.data) if scalar or np.ndim(n.data) == 0 else None
            if value is None:
                shown = _show(np.asarray(n.data))
                value = Shown(shown, shown, _ATOM)
            if value.text != parts[-1][0]:
                parts.append((value.text, value.tex))
            lines.append(Line("forward", lhs.text, parts, value=_plain(n.data)))
        return lines

    # -- backward: elements (Values are tensors of one element) --------------

    def element_chains(self, user: Node, j: int) -> dict[Elem, list[Chain]]:
        """For element ``j`` of quantity ``user``: every path down its folded expression to
        a quantity element, each a list of factors.  The numbers are the engine's
        (:func:`chainrule.explain` reads them with :func:`chainrule.engine.vjp`)."""
        found: dict[Elem, list[Chain]] = {}
        stack: list[tuple[Node, int, Chain]] = [(user, j, [])]
        while stack:
            node, k, chain = stack.pop()
            edges = _element_edges(node, k, self.reach)
            for i, p, pk, local in reversed(edges):
                step = [*chain, Factor(node, k, i, p, pk, local)]
                if id(p) in self.quantity:
                    found.setdefault((id(p), pk), []).append(step)
                else:
                    stack.append((p, pk, step))
        return found

    def factor_formula(self, f: Factor) -> Shown:
        """The rule table's formula for one factor, operands shown at their elements."""
        node = f.node
        assert node._op is not None
        shape = np.shape(node.data)
        if node._op.elementwise:
            args = [self.expression(p, False, k=_source(f.k, shape, p)) for p in node._parents]
        else:
            args = [self.expression(p, False) for p in node._parents]
        return _formula(node._op, f.i, args, self.expression(node, False, k=f.k))

    def local_line(
        self, user: Node, j: int, q: Node, k: int, chains: list[Chain]
    ) -> tuple[Line, float]:
        lhs_t = f"∂{self.elem_name(user, j)}/∂{self.elem_name(q, k)}"
        lhs_x = _partial(self.shown_elem(user, j).tex, self.shown_elem(q, k).tex)
        formulas: list[Shown] = []
        numbers: list[Shown] = []
        value = 0.0
        terms: list[Any] = []
        for chain in chains:
            fs: list[Shown] = []
            ns: list[Shown] = []
            product = 1.0
            for factor in chain:
                product *= factor.local
                f = self.factor_formula(factor)
                if f.text == "1" and len(chain) > 1:
                    continue  # a factor 1 (a sum's) is left out, as on paper
                fs.append(f)
                ns.append(_number_shown(factor.local))
            if not fs:
                fs, ns = [Shown("1", "1", _ATOM)], [Shown("1", "1", _ATOM)]
            formulas.append(_product(fs))
            numbers.append(_product(ns))
            terms.append([float(x.local) for x in chain])
            value = value + product if len(terms) > 1 else product
        formula = _sum(formulas)
        nums = _sum(numbers)
        parts = [(lhs_t, lhs_x), (formula.text, formula.tex)]
        if nums.text != formula.text:
            parts.append((nums.text, nums.tex))
        if _num(value) != parts[-1][0]:
            parts.append((_num(value), _tex_num(value)))
        line = Line(
            "local",
            self.elem_name(q, k),
            parts,
            value=value,
            user=self.elem_name(user, j),
            terms=terms,
        )
        return line, value

    def run(self) -> Derivation:
        forward = self.forward_lines()
        if self.notation == "matrix":
            backward, gradients = self.matrix_backward()
        else:
            backward, gradients = self.element_backward()
        order = {id(w): k for k, w in enumerate(self.wanted)}
        gradients = dict(
            sorted(gradients.items(), key=lambda kv: (order.get(self.by_label[kv[0]], 0), 0))
        )
        backward += self.gradient_lines(gradients)
        return Derivation(self.name(self.output), forward, backward, self.notation, gradients)

    def autodiff(self, nodes: list[Node]) -> dict[Node, Any]:
        seed = 1.0 if isinstance(self.output.data, float) else np.ones_like(self.output.data)
        return run_backward([self.output], [seed], store=False, wanted=nodes)

    def element_backward(self) -> tuple[list[Line], dict[str, Any]]:
        quantities = [n for n in self.order if id(n) in self.quantity and id(n) in self.reach]
        engine = self.autodiff(quantities)
        # Local derivatives, user by user (output first), gathered by the quantity they reach.
        incoming: dict[Elem, list[tuple[Node, int, list[Chain]]]] = {}
        for user in reversed(quantities):
            if user._op is None:
                continue
            for j in range(np.size(user.data)):
                for (qid, k), chains in self.element_chains(user, j).items():
                    incoming.setdefault((qid, k), []).append((user, j, chains))
        delta: dict[Elem, float] = {(id(self.output), 0): 1.0}
        out_name = self.elem_name(self.output, 0)
        seed_tex = f"\\delta[{self.shown_elem(self.output, 0).tex}]"
        lines = [Line("seed", out_name, [(f"δ[{out_name}]", seed_tex), ("1", "1")], value=1.0)]
        gradients: dict[str, Any] = {}
        wanted_ids = {id(w) for w in self.wanted}
        tol = tolerance(self.order)
        for q in reversed(quantities):
            if q is self.output:
                continue
            for k in range(np.size(q.data)):
                total = 0.0
                dterms_t: list[Shown] = []
                nterms_t: list[Shown] = []
                values: list[float] = []
                users: list[str] = []
                for user, j, chains in incoming.get((id(q), k), []):
                    users.append(self.elem_name(user, j))
                    line, local = self.local_line(user, j, q, k, chains)
                    lines.append(line)
                    d = delta.get((id(user), j), 0.0)
                    term = d * local
                    values.append(term)
                    total = term if len(values) == 1 else total + term
                    un = self.shown_elem(user, j)
                    qn = self.shown_elem(q, k)
                    dterms_t.append(
                        _product(
                            [
                                Shown(f"δ[{un.text}]", f"\\delta[{un.tex}]", _ATOM),
                                Shown(
                                    f"∂{un.text}/∂{qn.text}",
                                    f"\\frac{{\\partial {un.tex}}}{{\\partial {qn.tex}}}",
                                    _ATOM,
                                ),
                            ]
                        )
                    )
                    nterms_t.append(_product([_number_shown(d), _number_shown(local)]))
                if not values:
                    continue
                delta[(id(q), k)] = total
                qn = self.shown_elem(q, k)
                parts = [self.delta_lhs(qn, id(q) in wanted_ids)]
                f = _sum(dterms_t)
                parts.append((f.text, f.tex))
                n = _sum(nterms_t)
                parts.append((n.text, n.tex))
                if len(values) > 1:
                    s = _sum([_number_shown(v) for v in values])
                    parts.append((s.text, s.tex))
                if _num(total) != parts[-1][0]:
                    parts.append((_num(total), _tex_num(total)))
                auto = engine.get(q)
                auto_k = float(np.asarray(auto).reshape(-1)[k]) if auto is not None else 0.0
                fd = self.replay.slope(q, k)
                ok = agree(total, auto_k, tol) and (fd is None or _fd_agrees(fd, auto_k, tol))
                line = Line(
                    "delta",
                    qn.text,
                    parts,
                    value=total,
                    terms=values,
                    users=users,
                    autodiff=auto_k,
                    finite_difference=fd,
                    agree=ok,
                    check_note=self._missing_note() if fd is None else "",
                )
                lines.append(line)
                if id(q) in wanted_ids:
                    gradients[qn.text] = total
                    self.by_label[qn.text] = id(q)
        return lines, gradients

    def delta_lhs(self, q: Shown, wanted: bool) -> tuple[str, str]:
        """``δ[q]``, as text and LaTeX."""
        return f"δ[{q.text}]", f"\\delta[{q.tex}]"

    def gradient_lines(self, gradients: dict[str, Any]) -> list[Line]:
        """The answers, in the order asked for: ``∂output/∂q = δ[q] = value``."""
        out = self.shown_elem(self.output, 0)
        lines = [Line("note", "", [("Gradients", "")])]
        for key, value in gradients.items():
            m = re.fullmatch(r"(.*)\[(.*)\]", key)
            tex = _tex_name(m.group(1)) + "_{[" + m.group(2) + "]}" if m else _tex_name(key)
            shown = _show(np.asarray(value)) if np.ndim(value) else _num(value)
            lines.append(
                Line(
                    "gradient",
                    key,
                    [
                        (
                            f"∂{out.text}/∂{key}",
                            f"\\frac{{\\partial {out.tex}}}{{\\partial {tex}}}",
                        ),
                        (f"δ[{key}]", f"\\delta[{tex}]"),
                        (shown, shown),
                    ],
                    value=_plain(value),
                )
            )
        return lines

    def _missing_note(self) -> str:
        return "no finite difference: no forward replay for " + ", ".join(self.replay.missing)

    # -- backward: matrix notation ------------------------------------------

    def matrix_backward(self) -> tuple[list[Line], dict[str, Any]]:
        quantities = [n for n in self.order if id(n) in self.quantity and id(n) in self.reach]
        engine = self.autodiff(quantities)
        delta: dict[int, Any] = {id(self.output): np.ones_like(np.asarray(self.output.data))}
        incoming: dict[int, list[tuple[Node, Shown, Any]]] = {}
        out = self._whole(self.output)
        lines = [
            Line(
                "seed", out.text, [(f"δ[{out.text}]", f"\\delta[{out.tex}]"), ("1", "1")], value=1.0
            )
        ]
        gradients: dict[str, Any] = {}
        wanted_ids = {id(w) for w in self.wanted}
        tol = tolerance(self.order)
        for q in reversed(quantities):
            if q is not self.output:
                terms = incoming.get(id(q), [])
                if not terms:
                    continue
                total = terms[0][2]
                for t in terms[1:]:
                    total = total + t[2]
                delta[id(q)] = total
                qn = self._whole(q)
                f = _sum([t[1] for t in terms])
                parts = [self.delta_lhs(qn, id(q) in wanted_ids), (f.text, f.tex)]
                shown = _show(np.asarray(total))
                parts.append((shown, shown))
                auto = np.asarray(
                    engine.get(q, np.zeros_like(np.asarray(q.data))), dtype=np.float64
                )
                flat = np.asarray(total, dtype=np.float64).reshape(-1)
                ok = all(agree(float(a), float(b), tol) for a, b in zip(flat, auto.reshape(-1)))
                picks = sorted({0, flat.size // 2, flat.size - 1})[:FD_SAMPLES]
                fds = [self.replay.slope(q, p) for p in picks]
                fd_ok = all(
                    fd is None or _fd_agrees(fd, float(auto.reshape(-1)[p]), tol)
                    for fd, p in zip(fds, picks)
                )
                fd_value: Any = None if any(fd is None for fd in fds) else fds
                note = (
                    self._missing_note()
                    if fd_value is None
                    else f"finite differences at elements {picks} of {flat.size}"
                )
                lines.append(
                    Line(
                        "delta",
                        qn.text,
                        parts,
                        value=_plain(total),
                        terms=[_plain(t[2]) for t in terms],
                        autodiff=auto,
                        finite_difference=fd_value,
                        agree=ok and fd_ok,
                        check_note=note,
                    )
                )
                if id(q) in wanted_ids:
                    gradients[qn.text] = np.asarray(total)
                    self.by_label[qn.text] = id(q)
            if q._op is None:
                continue
            # Hand δ[q] down q's folded expression, op by op, with the engine's rules.
            stack: list[tuple[Node, Shown, Any]] = [
                (
                    q,
                    Shown(f"δ[{self.name(q)}]", f"\\delta[{_tex_name(self.name(q))}]", _ATOM),
                    delta[id(q)],
                )
            ]
            while stack:
                node, g_shown, g = stack.pop()
                assert node._op is not None
                for i, p in enumerate(node._parents):
                    if not (isinstance(p, Node) and p.requires_grad and id(p) in self.reach):
                        continue
                    share = vjp(node, i, g)
                    share_shown = self._matrix_term(node, i, g_shown)
                    if id(p) in self.quantity:
                        incoming.setdefault(id(p), []).append((node, share_shown, share))
                    else:
                        stack.append((p, share_shown, share))
        return lines, gradients

    def _matrix_term(self, node: Node, i: int, g: Shown) -> Shown:
        """What ``node`` hands operand ``i``, in matrix notation, from the rule table."""
        op = node._op
        assert op is not None
        args = [self.expression(a, False) for a in node._parents]
        if op.elementwise:
            f = _formula(op, i, args, self.expression(node, False))
            if f.text == "1":
                return g
            if f.text == "-1":
                return Shown("-" + _paren(g, g.prec < 3).text, "-" + g.tex, 3)
            a, b = _paren(g, g.prec < 2), _paren(f, f.prec < 2)
            return Shown(f"{a.text} ⊙ {b.text}", f"{a.tex} \\odot {b.tex}", 2)
        matrix = getattr(op, "matrix", ())
        if i < len(matrix):
            template = matrix[i]
            names = ["a", "b"] if len(args) == 2 else ["x"]
            shown: dict[str, Shown] = {n: _paren(s, s.prec < _ATOM) for n, s in zip(names, args)}
            shown["g"] = _paren(g, g.prec < _ATOM)
            text = re.sub(r"\b([abxg])\b", lambda m: "\x00" + m.group(1) + "\x00", template)
            out_t = text.replace("^T", "ᵀ")
            out_x = text.replace("^T", "^{\\top}")
            for k, s in shown.items():
                out_t = out_t.replace(f"\x00{k}\x00", s.text)
                out_x = out_x.replace(f"\x00{k}\x00", s.tex)
            return Shown(out_t, out_x, 2)
        return Shown(
            f"{op.name}ᵀ({g.text})",
            f"\\operatorname{{{op.name}}}^{{\\top}}\\left({g.tex}\\right)",
            _ATOM,
        )


def _source(k: int, shape: tuple[int, ...], operand: Any) -> int:
    """The flat index of the operand's element that broadcasting placed at element ``k``."""
    return _broadcast_source(
        k, shape, np.shape(operand.data if isinstance(operand, Node) else operand)
    )


def _partial(top: str, bottom: str) -> str:
    """``∂top/∂bottom`` in LaTeX."""
    return f"\\frac{{\\partial {top}}}{{\\partial {bottom}}}"


def _fd_agrees(fd: float, auto: float, tol: float) -> bool:
    t = max(FD_TOLERANCE, math.sqrt(tol))
    if not (math.isfinite(fd) and math.isfinite(auto)):
        return fd == auto
    return abs(fd - auto) <= t * max(1.0, abs(auto))


def _product(items: Sequence[Shown]) -> Shown:
    if len(items) == 1:
        return items[0]
    parts = [_paren(s, s.prec < 2 or (k > 0 and s.prec == 3)) for k, s in enumerate(items)]
    return Shown("·".join(p.text for p in parts), " \\cdot ".join(p.tex for p in parts), 2)


def _sum(items: Sequence[Shown]) -> Shown:
    if len(items) == 1:
        return items[0]
    text, tex = items[0].text, items[0].tex
    for s in items[1:]:
        if s.text.startswith("-") and s.prec >= 2:
            text += " - " + s.text[1:]
            tex += " - " + s.tex[1:]
        else:
            text += " + " + s.text
            tex += " + " + s.tex
    return Shown(text, tex, 1)
