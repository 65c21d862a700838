"""The ``chainrule`` command: ``python -m chainrule <sub-command>``.

Sub-commands:

* ``tutorial``: the 2-2-2 worked example, hand derivation against autodiff,
  figure by figure (see :mod:`chainrule.tutorial`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one sub-parser per sub-command."""
    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="chainrule: a small autograd framework on numpy.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="<command>")
    tutorial = commands.add_parser(
        "tutorial",
        help="the classic 2-2-2 backpropagation example, hand derivation vs autodiff",
        description=(
            "Build the 2-2-2 network three ways, compute every published figure by a hand "
            "derivation, by autodiff and by finite differences, show the chain rule path by "
            "path, train for 10,000 updates, and draw the graph. Exits 0 only if every figure "
            "agrees with the published one or differs for a reason found by computation."
        ),
    )
    tutorial.add_argument(
        "--out",
        default="tutorial-out",
        help="folder for the graph picture (default: ./tutorial-out/)",
    )
    tutorial.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text tables (default) or machine-readable JSON",
    )
    tutorial.add_argument(
        "--no-picture", action="store_true", help="skip drawing the graph picture"
    )
    tutorial.add_argument(
        "--full-picture",
        action="store_true",
        help="draw the graph left to right on one row (about 4,400 px wide) instead of "
        "top to bottom (about 1,400 px)",
    )
    tutorial.add_argument(
        "--verbose", action="store_true", help="print every table in full (default: ~80 lines)"
    )
    tutorial.add_argument(
        "--program",
        action="store_true",
        help="print the network's compiled program instead (forward and backward as Python, "
        "see docs/compile.md)",
    )
    variant = tutorial.add_argument_group(
        "variants", "change the setup; a changed setup is computed and printed with its own figures"
    )
    variant.add_argument(
        "--hidden",
        type=int,
        default=2,
        metavar="N",
        help="N hidden neurons (default 2; weights evenly spaced over the example's, "
        "see docs/derivation.md)",
    )
    variant.add_argument("--update-biases", action="store_true", help="update b1 and b2 as well")
    variant.add_argument(
        "--order",
        choices=("stated", "published"),
        default="stated",
        help="stated: every gradient from the original weights (default); published: the "
        "output layer updated before the hidden layer's gradients, which reproduces the "
        "post's after-training figures",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chainrule`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "tutorial":
        from .tutorial import Setup
        from .tutorial import main as tutorial_main

        try:
            setup = Setup(hidden=args.hidden, update_biases=args.update_biases, order=args.order)
        except ValueError as e:
            parser.error(str(e))
        if args.program:
            if not setup.is_published_example or args.format != "text":
                parser.error(
                    "--program prints the example's network as Python text; "
                    "it takes no variant options and no --format json"
                )
            from .tutorial.program import program_source

            print(program_source(), end="")
            return 0
        return tutorial_main(
            out=args.out,
            fmt=args.format,
            picture=not args.no_picture,
            verbose=args.verbose,
            full_picture=args.full_picture,
            setup=setup,
        )
    parser.error(f"unknown command {args.command!r}")  # argparse has already checked; never here
    return 2


if __name__ == "__main__":
    sys.exit(main())
