"""A Griffe extension that lets mkdocstrings render chainrule's docstrings.

The docstrings are written for ``help()`` and doctest: examples are bare ``>>>``
blocks, cross-references are Sphinx roles (``:class:`~chainrule.Tensor```), and a
literal block follows a line ending in ``::``.  Markdown reads none of that: a
doctest's output ``[1.0, 2.0]`` looks like a link, and a role shows its colons.
When the package has been loaded, this extension rewrites each docstring's text
(the source files stay as they are):

* a run of doctest lines becomes a ``pycon`` code block;
* ``text::`` becomes ``text:`` (the indented block after it is already code);
* a role becomes a cross-reference to the object it names.  The name is resolved
  the way Python would from where the docstring is (``Drawing`` inside
  ``chainrule.draw``, ``.hand`` inside ``chainrule.tutorial``); a name that
  resolves to nothing in chainrule is reported as a warning, which fails
  ``mkdocs build --strict``.  An object that exists but has no page in the API
  reference (an internal helper) is shown as code, unlinked.

mkdocs.yml loads it with ``extensions: [scripts/griffe_markup.py]``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_log = griffe.get_logger("griffe_markup")

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`(?P<target>[^`]+)`")
# Roles naming things outside chainrule are shown as code without a check.
_EXTERNAL = ("numpy.", "np.", "graphviz.", "math.", "typing.", "collections.")


def _exists(loader: griffe.GriffeLoader, path: str) -> bool:
    try:
        loader.modules_collection[path]
    except Exception:  # KeyError, or an alias that cannot be resolved
        return False
    return True


def _resolve(obj: griffe.Object, target: str, loader: griffe.GriffeLoader) -> str | None:
    """The full path ``target`` names, seen from ``obj``; None if it names nothing."""
    module = obj if obj.is_module else obj.module
    candidates: list[str] = []
    if target.startswith("."):
        candidates.append(module.path + target)
        if module.parent is not None:
            candidates.append(module.parent.path + target)
    else:
        first, _, rest = target.partition(".")
        try:
            resolved = obj.resolve(first)
        except griffe.NameResolutionError:
            resolved = None
        if resolved is not None:
            candidates.append(resolved + ("." + rest if rest else ""))
        candidates.append(target)
    for path in candidates:
        if _exists(loader, path):
            return path
    return None


def _role_text(obj: griffe.Object, match: re.Match[str], loader: griffe.GriffeLoader) -> str:
    target = match["target"]
    short = target.startswith("~")
    target = target.lstrip("~")
    shown = target.rsplit(".", 1)[-1] if short else target.lstrip(".")
    code = f"<code>{shown}</code>"
    if target.startswith(_EXTERNAL) or "{" in target:
        return code
    path = _resolve(obj, target, loader)
    if path is None:
        where = f"{obj.relative_filepath}:{obj.lineno}" if obj.lineno else obj.path
        _log.warning("%s: the cross-reference %r names nothing in chainrule", where, target)
        return code
    # "optional": linked when the object has a page in the API reference, plain
    # code when it is an internal helper without one.
    return f'<autoref identifier="{path}" optional>{code}</autoref>'


def _fence_doctests(text: str) -> str:
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    in_fence = False
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith("```"):
            in_fence = not in_fence
        if not in_fence and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}```pycon")
            while i < len(lines) and lines[i].strip():
                out.append(lines[i])
                i += 1
            out.append(f"{indent}```")
            continue
        if not in_fence and stripped.endswith("::"):
            line = line[:-1] if stripped != "::" else ""
        out.append(line)
        i += 1
    return "\n".join(out)


def rewrite(obj: griffe.Object, text: str, loader: griffe.GriffeLoader) -> str:
    """The Markdown mkdocstrings should render for a docstring of ``obj``."""
    text = _fence_doctests(text)
    return _ROLE.sub(lambda m: _role_text(obj, m, loader), text)


class DocstringMarkup(griffe.Extension):
    """Rewrite every docstring of a loaded package (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        def walk(obj: griffe.Object) -> None:
            if obj.docstring is not None:
                obj.docstring.value = rewrite(obj, obj.docstring.value, loader)
            for member in obj.members.values():
                if not member.is_alias:
                    walk(member)  # type: ignore[arg-type]

        walk(pkg)
