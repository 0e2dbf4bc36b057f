"""``mmalign report``: print the paper-layout tables of a results store.

One table per data set, and with ``--by setting`` (Tables 2-4: settings A and B side by side)
one per survival rate ``p``; ``--by p`` (Tables 9-11) puts the survival rates side by side for
one setting. Formats: Markdown (default), CSV (one row per cell) and LaTeX.

Each table also shows the runs' linear sanity floors (``floor (source only)``, ``floor
(pair)``, ``floor (both)``; ``--no-floor`` hides them) and, below it, one ``warning:`` line per
method whose mean primary metric is worse than its own floor in a column (a ``#`` line after a
CSV block, a ``%`` comment after a LaTeX table).

``--list`` prints the configurations the store holds instead (config hash, data, methods,
runs, non-default options), to pick one with ``--config-hash`` (a unique prefix is enough).

``--warnings`` lists the runs that recorded warnings instead: per run, its label, its folder
under the grid's ``--out`` folder and each warning with its code (``docs/warnings.md``).

``--patterns`` prints the tables of the random-missing runs instead (``mmalign benchmark
--set missing_rate=R``): one per data set and metric, methods x the patterns of present
modalities (MMIN's layout), with the runs' floor and the test samples per pattern.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmalign.validation import ConfigError, DataError

if TYPE_CHECKING:
    from mmalign.experiments.store import WarnedRun

__all__ = ["register", "run_report"]

#: Hex digits of a config hash shown by --list and in messages (any unique prefix is accepted).
SHORT_HASH = 12


def _options_text(options: dict[str, Any]) -> str:
    if not options:
        return "(defaults)"
    parts = []
    for key, value in options.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        parts.append(f"{key}={text}")
    return ", ".join(parts)


def list_configs(configs: list[dict[str, Any]]) -> str:
    """Render :meth:`ResultStore.configs` summaries as an aligned text table.

    >>> print(list_configs([{"config_hash": "ab" * 32, "data": ["synthetic"],
    ...     "methods": ["lb", "mm-align"], "n_runs": 4, "options": {"epochs": 3}}]), end="")
    config_hash   runs  data       methods       options
    abababababab     4  synthetic  lb, mm-align  epochs=3
    """
    header = ("config_hash", "runs", "data", "methods", "options")
    rows = [
        (
            c["config_hash"][:SHORT_HASH],
            str(c["n_runs"]),
            ", ".join(c["data"]),
            ", ".join(c["methods"]),
            _options_text(c["options"]),
        )
        for c in configs
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [
            row[i].rjust(widths[i]) if i == 1 else row[i].ljust(widths[i])
            for i in range(len(widths))
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def _resolve_config_hash(store, prefix: str, data: str | None) -> str:
    """Return the full config hash that ``prefix`` starts (or is)."""
    hashes = [c["config_hash"] for c in store.configs(**({"data": data} if data else {}))]
    if prefix in hashes:
        return prefix
    matches = [h for h in hashes if h.startswith(prefix)]
    if len(matches) == 1:
        return matches[0]
    shown = ", ".join(h[:SHORT_HASH] for h in (matches or hashes)) or "none"
    what = "matches several configs" if matches else "matches no config of this selection"
    raise ConfigError(
        f"`--config-hash` must name one config of the store (a unique prefix is enough); "
        f"got {prefix!r}, which {what}: {shown}. "
        f"`mmalign report --store {store.path} --list` describes them."
    )


def _check_one_config(records: list[dict[str, Any]], path: Path) -> None:
    """Refuse records of one data set made under two or more configs (they would mix)."""
    by_data: dict[str, dict[str, None]] = {}
    names: dict[str, str] = {}
    for record in records:
        key = str(record.get("data_id", record["data"]))
        by_data.setdefault(key, {})[record["config_hash"]] = None
        names.setdefault(key, record["data"])
    for key, hashes in by_data.items():
        if len(hashes) > 1:
            shown = ", ".join(h[:SHORT_HASH] for h in hashes)
            raise DataError(
                f"{path}: the runs of {names[key]} were made under {len(hashes)} configs "
                f"({shown}); pick one with --config-hash HASH (a unique prefix is enough). "
                f"`mmalign report --store {path} --list` shows what each config sets."
            )


def _pattern_tables(
    store, filters: dict[str, Any], args: argparse.Namespace
) -> tuple[list, set[str]]:
    """Return the tables of the store's random-missing runs (``--patterns``) and their fingerprints."""
    from mmalign.evaluate.pattern_table import build_pattern_tables

    for flag, given in (("--by", args.by), ("--p", args.p), ("--pairs", args.pairs)):
        if given is not None:
            raise ConfigError(
                f"`{flag}` must not be given with --patterns (random-missing runs have no "
                f"pair, survival rate nor setting); got {given!r}."
            )
    if args.split != "test":
        raise ConfigError(
            f"`--split` must be 'test' with --patterns (per-pattern results are kept for the "
            f"test split only); got {args.split!r}."
        )
    records = store.pattern_records(**filters)
    if not records:
        raise DataError(
            f"{store.path}: the results store holds no random-missing runs for this selection "
            "(`mmalign benchmark --set missing_rate=R` makes them)."
        )
    _check_one_config(records, store.path)
    floors = None if args.no_floor else store.pattern_floor_records(**filters)
    tables = build_pattern_tables(records, metrics=_metrics(args), floors=floors)
    return tables, {r["fingerprint"] for r in records}


def list_warned(n_runs: int, warned: list[WarnedRun]) -> str:
    """Render :meth:`ResultStore.warned_runs` as text: per run, its label, folder and warnings.

    Runs are listed by data, method, pair, survival rate (or missing rate) and seed.

    >>> from mmalign.experiments.spec import RunSpec
    >>> from mmalign.experiments.store import WarnedRun
    >>> spec = RunSpec("synthetic", "lb", "text", "vision", 0.1, 0)
    >>> run = WarnedRun(spec, "72d2efc5", ("epoch_cap",), ("lb stopped at its cap",))
    >>> print(list_warned(12, [run]), end="")
    1 of 12 runs recorded warnings (folders are under the grid's --out folder):
    <BLANKLINE>
    lb text->vision p=0.1 seed=0 on synthetic: lb/t-v/p0.1_seed0_72d2efc5
      [epoch_cap] lb stopped at its cap
    >>> print(list_warned(12, []), end="")
    none of the 12 runs recorded warnings.
    """
    from mmalign.experiments.grid import run_dir_for

    if not warned:
        return f"none of the {n_runs} runs recorded warnings.\n"
    lines = [
        f"{len(warned)} of {n_runs} runs recorded warnings "
        "(folders are under the grid's --out folder):"
    ]

    def order(run) -> tuple:
        spec = run.spec
        return (
            spec.data,
            spec.method,
            spec.pair,
            spec.p or 0.0,
            spec.missing_rate or 0.0,
            spec.seed,
        )

    for run in sorted(warned, key=order):
        folder = run_dir_for(".", run.spec, run.fingerprint).as_posix()
        lines += ["", f"{run.spec.label} on {run.spec.data}: {folder}"]
        # codes and texts pair up one to one, except in runs stored before codes existed
        codes = run.codes if len(run.codes) == len(run.texts) else ("",) * len(run.texts)
        lines += [
            f"  [{code}] {text}" if code else f"  {text}" for code, text in zip(codes, run.texts)
        ]
    return "\n".join(lines) + "\n"


def _metrics(args: argparse.Namespace) -> list[str] | None:
    return [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None


def run_report(args: argparse.Namespace) -> int:
    """Build and print (or write) the tables of ``args.store`` (``--list``: its configs)."""
    from mmalign.evaluate.tables import build_tables
    from mmalign.experiments.store import ResultStore

    path = Path(args.store)
    if not path.is_file():
        raise DataError(f"{path}: no such results store.")
    store = ResultStore(path)
    if args.list:
        configs = store.configs(**({"data": args.data} if args.data else {}))
        if not configs:
            raise DataError(f"{path}: the results store holds no runs for this selection.")
        print(list_configs(configs), end="")
        return 0
    filters = {}
    if args.data:
        filters["data"] = args.data
    if args.config_hash:
        filters["config_hash"] = _resolve_config_hash(store, args.config_hash, args.data)
    if args.warnings:
        n_runs, warned = store.warned_runs(**filters)
        if not n_runs:
            raise DataError(f"{path}: the results store holds no runs for this selection.")
        _write(list_warned(n_runs, warned), args, "the list of runs with warnings")
        return 0
    if args.patterns:
        tables, fingerprints = _pattern_tables(store, filters, args)
        _print_tables(tables, args)
        _print_warning_summary(store, fingerprints, filters)
        return 0
    records = store.to_records(**filters)
    floors = None if args.no_floor else store.floor_records(**filters)
    if args.pairs:
        from mmalign.experiments.grid import parse_pairs

        wanted = set(parse_pairs(args.pairs, modalities=("text", "vision", "audio")))
        records = [r for r in records if (r["source"], r["victim"]) in wanted]
        if floors is not None:
            floors = [f for f in floors if (f["source"], f["victim"]) in wanted]
    if not records:
        if not args.pairs and store.pattern_records(**filters):
            raise DataError(
                f"{path}: the results store holds only random-missing runs for this selection; "
                f"their tables are per pattern: `mmalign report --store {path} --patterns`."
            )
        raise DataError(f"{path}: the results store holds no runs for this selection.")
    _check_one_config(records, path)
    options = {"metrics": _metrics(args), "split": args.split, "floors": floors}
    by = args.by or "setting"
    if by == "setting":
        options["p"] = args.p
    else:
        if args.p is not None:
            raise ConfigError(f"`--p` must not be given with --by p; got {args.p!r}.")
        options["setting"] = args.setting
    _print_tables(build_tables(records, by=by, **options), args)
    _print_warning_summary(store, {r["fingerprint"] for r in records}, filters)
    n_random = len({r["fingerprint"] for r in store.pattern_records(**filters)})
    if n_random:
        print(
            f"mmalign report: the store also holds {n_random} random-missing run(s); "
            "--patterns shows their tables.",
            file=sys.stderr,
        )
    return 0


def _print_tables(tables: list, args: argparse.Namespace) -> None:
    """Render ``tables`` in ``args.format`` to stdout or ``args.out``."""
    from mmalign.evaluate.tables import render

    blocks = []
    for table in tables:
        text = render(table, args.format)
        if args.format == "csv":
            # CSV carries no title nor warnings: comment lines above and below the block
            text = f"# {table.title}\n{text}" + "".join(f"# {w}\n" for w in table.warnings)
        blocks.append(text)
    _write("\n".join(blocks), args, f"{len(tables)} table(s)")


def _write(output: str, args: argparse.Namespace, what: str) -> None:
    """Print ``output`` to stdout, or write it to ``args.out`` and say so on stderr."""
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(output)
        print(f"mmalign report: {what} written to {out}", file=sys.stderr)
    else:
        print(output, end="")


def _print_warning_summary(store, fingerprints: set[str], filters: dict[str, Any]) -> None:
    """After the tables: one stderr line counting the reported runs' warnings, if any."""
    from mmalign.commands.grid_flags import warning_summary

    line = warning_summary("report", *store.warning_counts(fingerprints, **filters), store.path)
    if line:
        print(line, file=sys.stderr)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mmalign report``."""
    parser = subparsers.add_parser(
        "report",
        help="print paper-layout result tables from a results store",
        description="Mean ± std over seeds per method and column, the best cell in bold (the "
        "upper bound excluded), † where MM-Align beats the best baseline (paired t-test over "
        "seeds, p < 0.05); rows of the runs' linear sanity floors below, with a warning line "
        "per method worse than its own floor.",
        allow_abbrev=False,
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
        help="column groups: settings A/B at one p (default setting) or the survival rates",
    )
    parser.add_argument("--p", type=float, help="with --by setting: only this survival rate")
    parser.add_argument(
        "--setting", choices=("A", "B"), default="A", help="with --by p: the setting (default A)"
    )
    parser.add_argument("--split", default="test", help="split to report (default test)")
    parser.add_argument("--data", help="only runs on this data (as given to benchmark)")
    parser.add_argument(
        "--config-hash", help="only runs with this config hash (a unique prefix is enough)"
    )
    parser.add_argument("--pairs", help="only these source:victim pairs, e.g. t:v,a:t")
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--list",
        action="store_true",
        help="list the store's configs (hash, data, methods, runs, options) and exit",
    )
    what.add_argument(
        "--warnings",
        action="store_true",
        help="list the runs that recorded warnings (label, run folder, each warning) and exit",
    )
    what.add_argument(
        "--patterns",
        action="store_true",
        help="the random-missing runs instead: per pattern of present modalities (MMIN's "
        "layout), one table per metric",
    )
    parser.add_argument(
        "--no-floor",
        action="store_true",
        help="hide the linear sanity-floor rows (and the below-floor warnings)",
    )
    parser.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    parser.set_defaults(func=run_report)
