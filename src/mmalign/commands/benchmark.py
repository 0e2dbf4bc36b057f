"""``mmalign benchmark``: run a paper-scale grid (methods x pairs x p x seeds), then report it.

Finished runs live in a SQLite results store (default ``runs/benchmark.sqlite``); running the
same command again skips them, so an interrupted grid resumes where it stopped. The table of
the grid's runs is printed at the end (``mmalign report`` prints it again at any time).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmalign.commands.grid_flags import (
    add_engine_flags,
    add_options_flags,
    grid_overrides,
    run_specs,
)

__all__ = ["register", "run_benchmark"]


def run_benchmark(args: argparse.Namespace) -> int:
    """Run the grid the arguments describe, then print its table (exit 1 if a run failed)."""
    from mmalign.evaluate.tables import build_tables, render
    from mmalign.experiments import expand_grid
    from mmalign.options import parse_list, parse_seeds

    specs = expand_grid(
        args.data,
        args.methods,
        args.pairs,
        parse_list("ps", args.ps, float),
        parse_seeds(args.seeds),
        grid_overrides(args.config, args.set),
    )
    out_dir = args.out or str(Path(args.store).parent / "grid")
    store, result = run_specs(specs, args, out_dir, "benchmark")
    wanted = set(result.fingerprints)
    records = [r for r in store.to_records() if r["fingerprint"] in wanted]
    if records:
        floors = [r for r in store.floor_records() if r["fingerprint"] in wanted]
        tables = build_tables(records, by="setting", floors=floors)
        print("\n".join(render(table, args.format) for table in tables), end="")
    return 1 if result.failures else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mmalign benchmark``."""
    from mmalign.models.registry import method_names

    every = ",".join(method_names())
    parser = subparsers.add_parser(
        "benchmark",
        help="run a grid of methods x pairs x p x seeds (resumable), then print the table",
        description="Run every method on every directed pair, survival rate and split seed; "
        "finished runs are kept in a SQLite store and skipped when the command runs again. "
        "Prints the paper-layout table of the grid at the end.",
        allow_abbrev=False,
    )
    parser.add_argument("--data", required=True, help="data path or synthetic[:knob=value,...]")
    parser.add_argument("--methods", default=every, help=f"comma list (default {every})")
    parser.add_argument(
        "--pairs", default="all", help="comma list of source:victim (t:v,a:t) or 'all' (default)"
    )
    parser.add_argument(
        "--ps", default="0.1,0.5", help="survival rates, comma list (default 0.1,0.5)"
    )
    parser.add_argument(
        "--seeds", default="5", help="a count n (seeds 0..n-1) or a comma list (default 5)"
    )
    add_options_flags(parser)
    parser.add_argument(
        "--store",
        default="runs/benchmark.sqlite",
        help="results store (default runs/benchmark.sqlite)",
    )
    parser.add_argument("--out", metavar="DIR", help="grid folder (default: <store folder>/grid)")
    add_engine_flags(parser)
    parser.add_argument(
        "--format",
        choices=("markdown", "csv", "latex"),
        default="markdown",
        help="table format at the end (default markdown)",
    )
    parser.set_defaults(func=run_benchmark)
