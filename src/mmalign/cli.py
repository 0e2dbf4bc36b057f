"""Command-line entry point ``mmalign``.

Each sub-command lives in its own module under :mod:`mmalign.commands` and exposes
``register(subparsers)``; this file only assembles them and turns known errors into one
clear line on stderr with exit code 2 (the full traceback with ``--debug``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from mmalign import __version__
from mmalign.validation import MMAlignError

__all__ = ["main", "build_parser"]

# Modules under mmalign.commands, in the order their commands appear in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "data",
    "run",
    "predict",
    "benchmark",
    "report",
    "analysis",
    "plot_history",
    "bench",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``mmalign`` argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="mmalign",
        description="MM-Align and baselines for multimodal sequences with a missing modality.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"mmalign {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"mmalign.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 2 bad input, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MMAlignError as err:
        if args.debug:
            traceback.print_exc()
        print(f"mmalign: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmalign: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
