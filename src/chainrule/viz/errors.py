"""The errors of rendering, in a module light enough to import with chainrule."""

from __future__ import annotations


class RendererNotFoundError(RuntimeError):
    """No program to turn DOT into an image was found."""


class RenderError(RuntimeError):
    """The renderer ran but failed."""
