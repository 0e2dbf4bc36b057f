"""``mmalign benchmark``: run a paper-scale grid (methods x pairs x p x seeds), then report it.

With ``--set missing_rate=R`` (or a ``missing_rate`` in ``--config``) the grid follows the
random-missing protocol instead: methods x seeds, no pairs nor survival rates, and the table
at the end is the per-pattern one (``mmalign report --patterns``).

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
    check_grid_protocol,
    grid_overrides,
    run_specs,
)

# pair-protocol grid flags when not given
DEFAULT_PAIRS = "all"
DEFAULT_PS = "0.1,0.5"

__all__ = ["register", "run_benchmark"]


def run_benchmark(args: argparse.Namespace) -> int:
    """Run the grid the arguments describe, then print its table (exit 1 if a run failed)."""
    from mmalign.config import missing_rate_in
    from mmalign.evaluate.tables import render
    from mmalign.experiments import expand_grid, expand_random_grid, random_missing_methods
    from mmalign.models.registry import method_names
    from mmalign.options import parse_list, parse_seeds

    overrides = grid_overrides(args.config, args.set)
    check_grid_protocol(overrides, pairs=args.pairs, ps=args.ps)
    random_missing = missing_rate_in(overrides) is not None
    if random_missing:
        methods = args.methods or random_missing_methods()
        specs = expand_random_grid(args.data, methods, parse_seeds(args.seeds), overrides)
    else:
        specs = expand_grid(
            args.data,
            args.methods or method_names(),
            args.pairs or DEFAULT_PAIRS,
            parse_list("ps", args.ps or DEFAULT_PS, float),
            parse_seeds(args.seeds),
            overrides,
        )
    out_dir = args.out or str(Path(args.store).parent / "grid")
    store, result = run_specs(specs, args, out_dir, "benchmark")
    tables = _grid_tables(store, set(result.fingerprints), random_missing)
    if tables:
        print("\n".join(render(table, args.format) for table in tables), end="")
    return 1 if result.failures else 0


def _grid_tables(store, fingerprints: set[str], random_missing: bool) -> list:
    """Return the tables of the grid's stored runs: per pattern, or the paper's layout."""
    from mmalign.evaluate.pattern_table import build_pattern_tables
    from mmalign.evaluate.tables import build_tables

    def mine(records: list[dict]) -> list[dict]:
        # filtered here, not in SQL: a large grid would pass more parameters than SQLite takes
        return [r for r in records if r["fingerprint"] in fingerprints]

    if random_missing:
        records = mine(store.pattern_records())
        if not records:
            return []
        return build_pattern_tables(records, floors=mine(store.pattern_floor_records()))
    records = mine(store.to_records())
    if not records:
        return []
    return build_tables(records, by="setting", floors=mine(store.floor_records()))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mmalign benchmark``."""
    from mmalign.models.registry import method_names

    every = ",".join(method_names())
    parser = subparsers.add_parser(
        "benchmark",
        help="run a grid of methods x pairs x p x seeds (resumable), then print the table",
        description="Run every method on every directed pair, survival rate and split seed; "
        "finished runs are kept in a SQLite store and skipped when the command runs again. "
        "Prints the paper-layout table of the grid at the end. With --set missing_rate=R "
        "(the random-missing protocol) the grid is methods x seeds and the table is per "
        "pattern of present modalities.",
        allow_abbrev=False,
    )
    parser.add_argument("--data", required=True, help="data path or synthetic[:knob=value,...]")
    parser.add_argument(
        "--methods",
        help=f"comma list (default {every}; with missing_rate: the methods that take it)",
    )
    parser.add_argument(
        "--pairs",
        help=f"comma list of source:victim (t:v,a:t) or 'all' (default {DEFAULT_PAIRS}); "
        "not with missing_rate",
    )
    parser.add_argument(
        "--ps",
        help=f"survival rates, comma list (default {DEFAULT_PS}); not with missing_rate",
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
