"""``mmalign bench NAME [ARGS...]``: run a speed benchmark from ``benchmarks/`` (issue #6).

The benchmarks live in the repository (not in the installed package), so this command
works from a checkout's root, exactly like ``python -m benchmarks.NAME``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import runpy
import sys

from mmalign.validation import ConfigError

__all__ = ["register", "BENCHMARKS"]

BENCHMARKS: tuple[str, ...] = (
    "adl_stage",
    "ot_solver",
    "ot_memory",
    "ot_unequal_memory",
    "train_step",
    "inference",
    "imputation_time",
    "epoch_profile",
    "epoch_ratio",
    "validation_pass",
    "roofline",
    "compile_cost",
    "monotone_cost",
    "grid_throughput",
)


def _bench(args: argparse.Namespace) -> int:
    if args.name not in BENCHMARKS:
        raise ConfigError(f"`name` must be one of {list(BENCHMARKS)}; got {args.name!r}.")
    module = f"benchmarks.{args.name}"
    if os.getcwd() not in sys.path:  # console scripts do not put the working folder on the path
        sys.path.insert(0, os.getcwd())
    if importlib.util.find_spec("benchmarks") is None:
        raise ConfigError(
            "the benchmarks are not installed with the package: run `mmalign bench` from the "
            "root of an mmalign checkout (or `python -m benchmarks.NAME` there)."
        )
    sys.argv = [module, *args.args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mmalign bench``."""
    p = subparsers.add_parser(
        "bench",
        help="run a speed benchmark (from a checkout's root)",
        description="Run one benchmark of benchmarks/ (ratios measured side by side; see benchmarks/README.md). "
        "Arguments after NAME go to the benchmark, e.g. `mmalign bench adl_stage --threads 1`.",
        allow_abbrev=False,
    )
    p.add_argument("name", metavar="NAME", help="one of: " + ", ".join(BENCHMARKS))
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    p.set_defaults(func=_bench)
