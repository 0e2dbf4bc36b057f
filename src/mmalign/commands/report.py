"""``mmalign report``: print the paper-layout tables of a results store.

One table per data set, and with ``--by setting`` (Tables 2-4: settings A and B side by side)
one per survival rate ``p``; ``--by p`` (Tables 9-11) puts the survival rates side by side for
one setting. Formats: Markdown (default), CSV (one row per cell) and LaTeX.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmalign.validation import ConfigError, DataError

__all__ = ["register", "run_report"]


def run_report(args: argparse.Namespace) -> int:
    """Build and print (or write) the tables of ``args.store``."""
    from mmalign.evaluate.tables import build_tables, render
    from mmalign.experiments.store import ResultStore

    path = Path(args.store)
    if not path.is_file():
        raise DataError(f"{path}: no such results store.")
    filters = {}
    if args.data:
        filters["data"] = args.data
    if args.config_hash:
        filters["config_hash"] = args.config_hash
    records = ResultStore(path).to_records(**filters)
    if args.pairs:
        from mmalign.experiments.grid import parse_pairs

        wanted = set(parse_pairs(args.pairs, modalities=("text", "vision", "audio")))
        records = [r for r in records if (r["source"], r["victim"]) in wanted]
    if not records:
        raise DataError(f"{path}: the results store holds no runs for this selection.")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    options = {"metrics": metrics, "split": args.split}
    if args.by == "setting":
        options["p"] = args.p
    else:
        if args.p is not None:
            raise ConfigError(f"`--p` must not be given with --by p; got {args.p!r}.")
        options["setting"] = args.setting
    tables = build_tables(records, by=args.by, **options)
    blocks = []
    for table in tables:
        text = render(table, args.format)
        # CSV carries no title: say which table a block is in a comment line above it
        blocks.append(f"# {table.title}\n{text}" if args.format == "csv" else text)
    output = "\n".join(blocks)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(output)
        print(f"mmalign report: {len(tables)} table(s) written to {out}", file=sys.stderr)
    else:
        print(output, end="")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mmalign report``."""
    parser = subparsers.add_parser(
        "report",
        help="print paper-layout result tables from a results store",
        description="Mean ± std over seeds per method and column, the best cell in bold (the "
        "upper bound excluded), † where MM-Align beats the best baseline (paired t-test over "
        "seeds, p < 0.05).",
    )
    parser.add_argument("--store", required=True, help="results store (SQLite) to read")
    parser.add_argument(
        "--format", choices=("markdown", "csv", "latex"), default="markdown", help="output format"
    )
    parser.add_argument(
        "--metrics", help="comma list (default: mae,acc2_nonzero; f1_weighted for classes)"
    )
    parser.add_argument(
        "--by",
        choices=("setting", "p"),
        default="setting",
        help="column groups: settings A/B at one p (default) or the survival rates",
    )
    parser.add_argument("--p", type=float, help="with --by setting: only this survival rate")
    parser.add_argument(
        "--setting", choices=("A", "B"), default="A", help="with --by p: the setting (default A)"
    )
    parser.add_argument("--split", default="test", help="split to report (default test)")
    parser.add_argument("--data", help="only runs on this data (as given to benchmark)")
    parser.add_argument("--config-hash", help="only runs with this config hash")
    parser.add_argument("--pairs", help="only these source:victim pairs, e.g. t:v,a:t")
    parser.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    parser.set_defaults(func=run_report)
