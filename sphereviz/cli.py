"""The ``sphereviz`` command: a thin dispatcher to the subcommand that each module owns.

Each subcommand is ``main(argv) -> int`` in its own module, which parses its own options,
so a module is imported only when its subcommand runs (``sphereviz bounds`` never loads torch).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from sphereviz import __version__
from sphereviz.errors import report_error

SUBCOMMANDS = {
    "demo": ("sphereviz.demo", "the bounds, 5 MNIST runs (3-D, seed 0), figures in build/demo"),
    "bounds": ("sphereviz.bounds", "derive m >= 2+sqrt(3) and m >= 3 with sympy, step by step"),
    "margin": ("sphereviz.margin_cli", "the margin A-Softmax trains at annealing weight λ"),
    "train": ("sphereviz.train", "train a loss of the family on MNIST, Fashion-MNIST or faces"),
    "evaluate-lfw": ("sphereviz.evaluate", "open-set verification on LFW pairs, 10-fold"),
    "open-set": ("sphereviz.openset", "train on digits 0-5, verify pairs of the unseen 6-9"),
    "prepare-faces": ("sphereviz.data.prepare", "decode, align and cache a face folder"),
    "fetch-lfw": ("sphereviz.data.fetch_lfw", "download LFW, its pairs files and landmarks"),
    "figures": ("sphereviz.figures", "regenerate the figure set for papers"),
    "render-notebooks": ("sphereviz.notebook_html", "execute notebooks into static HTML pages"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sphereviz",
        description="SphereFace (A-Softmax) and angular-margin losses: train, derive, plot.",
    )
    parser.add_argument("--version", action="version", version=f"sphereviz {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (or SPHEREVIZ_DEBUG=1)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        commands.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand; a foreseeable fault it lets through (an ``OSError``: full disk,
    read-only folder, symlink loop …) ends in one line, the traceback only with ``--debug``
    (anywhere on the line) or ``SPHEREVIZ_DEBUG=1``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--debug" in argv:
        argv = [arg for arg in argv if arg != "--debug"]
        os.environ["SPHEREVIZ_DEBUG"] = "1"
    parser = build_parser()
    if not argv or argv[0] not in SUBCOMMANDS:
        parser.parse_args(argv)  # handles --version, --help and unknown commands
        parser.print_help()
        return 2
    module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
    try:
        return int(module.main(argv[1:]) or 0)
    except OSError as error:
        return report_error(argv[0], error, status=1)
    except KeyboardInterrupt:
        print(f"sphereviz {argv[0]}: interrupted", file=sys.stderr)
        return 130
