"""``mmalign benchmark``: run a paper-scale grid (methods x pairs x p x seeds), then report it.

Finished runs live in a SQLite results store (default ``runs/benchmark.sqlite``); running the
same command again skips them, so an interrupted grid resumes where it stopped. The table of
the grid's runs is printed at the end (``mmalign report`` prints it again at any time).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

import yaml

from mmalign.validation import ConfigError

__all__ = ["register", "parse_overrides", "load_overrides", "resolve_runner", "run_benchmark"]

ALL_METHODS = "lb,ub,mfm,smil,modal-trans,mm-align"
# options every RunSpec sets itself: they cannot come from --config or --set
_SPEC_KEYS = ("data", "method", "pair", "p", "seed")


def _flatten(values: dict[str, Any]) -> dict[str, Any]:
    """Flatten config sections and dotted keys to flat option names.

    >>> _flatten({"adl": {"window": 4}, "train.epochs": 2, "device": "cpu"})
    {'window': 4, 'epochs': 2, 'device': 'cpu'}
    """
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value))
        else:
            flat[str(key).split(".")[-1].replace("-", "_")] = value
    return flat


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """Parse ``--set key=value`` items; values are read as YAML scalars.

    >>> parse_overrides(["window=4", "adl.reg=0.05", "device=cpu", "single_iteration=false"])
    {'window': 4, 'reg': 0.05, 'device': 'cpu', 'single_iteration': False}
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"`--set` must look like key=value; got {item!r}.")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        out.update(_flatten({key.strip(): value}))
    return out


def load_overrides(config_file: str | None, items: list[str] | None) -> dict[str, Any]:
    """Merge a YAML config file and ``--set`` items into one flat dict of overrides.

    The result is what every run of the grid receives as ``RunSpec.config`` (and what its
    fingerprint hashes). Options that the grid sets per run (data, method, pair, p, seed)
    are refused. When the training package is present the overrides are checked against it.
    """
    values: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"`--config` must be an existing YAML file; got {config_file!r}.")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err}).") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of options.")
        values.update(_flatten(loaded))
    values.update(parse_overrides(items))
    clash = sorted(set(values) & set(_SPEC_KEYS))
    if clash:
        raise ConfigError(
            f"`config` must not set {clash}: use --data, --methods, --pairs, --p and --seeds."
        )
    try:
        from mmalign.train.config import config_from_dict
    except ImportError:  # training not installed in this build: the runner checks later
        return values
    config_from_dict(dict(values))  # raises ConfigError on an unknown option or bad type
    return values


def resolve_runner(text: str | None):
    """Import a runner given as ``module:function`` (``None``: the training entry point)."""
    if not text:
        return None
    module_name, sep, name = text.partition(":")
    if not sep or not module_name or not name:
        raise ConfigError(f"`--runner` must look like module:function; got {text!r}.")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(
            f"`--runner` must name an importable function; got {text!r} ({err})."
        ) from err


def parse_ps(text: str) -> list[float]:
    try:
        return [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"`--p` must be a comma list of survival rates; got {text!r}.") from None


def parse_seeds(text: str) -> int | list[int]:
    try:
        parts = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"`--seeds` must be a count or a comma list; got {text!r}.") from None
    if len(parts) == 1 and "," not in text:
        return parts[0]
    return parts


def add_engine_flags(parser: argparse.ArgumentParser) -> None:
    """Add the execution flags every grid command shares (engine, workers, runner, progress)."""
    parser.add_argument(
        "--engine",
        choices=("local", "ray", "serial"),
        default="local",
        help="local process pool (default), a Ray cluster, or serial in this process",
    )
    parser.add_argument("--address", help="Ray cluster address ('auto': the current cluster)")
    parser.add_argument("--workers", type=int, help="concurrent runs (default: cores / threads)")
    parser.add_argument(
        "--threads-per-worker", type=int, help="torch threads per run (default: cores / workers)"
    )
    parser.add_argument(
        "--runner",
        metavar="MODULE:FUNCTION",
        help="run function (default mmalign.train.run:run_spec)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_specs(specs, args: argparse.Namespace, out_dir: str, name: str):
    """Run a grid with the engine flags of ``args``; return ``(store, GridResult)``.

    Shared by every grid command (``benchmark``, ``ablate``, ``sweep-window``).
    """
    from mmalign.experiments import ResultStore, run_grid

    store = ResultStore(args.store)
    print(
        f"mmalign {name}: {len(specs)} runs, store {store.path}, run folders under {out_dir}",
        file=sys.stderr,
    )
    result = run_grid(
        specs,
        store,
        runner=resolve_runner(args.runner),
        engine=args.engine,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        address=args.address,
        out_dir=out_dir,
        progress=not args.no_progress,
    )
    print(
        f"mmalign {name}: {result.n_done} runs done, {result.n_skipped} already in the store, "
        f"{len(result.failures)} failed",
        file=sys.stderr,
    )
    return store, result


def run_benchmark(args: argparse.Namespace) -> int:
    """Run the grid the arguments describe, then print its table (exit 1 if a run failed)."""
    from mmalign.evaluate.tables import build_tables, render
    from mmalign.experiments import expand_grid

    config = load_overrides(args.config, args.set)
    specs = expand_grid(
        args.data, args.methods, args.pairs, parse_ps(args.p), parse_seeds(args.seeds), config
    )
    out_dir = args.out or str(Path(args.store).parent / "grid")
    store, result = run_specs(specs, args, out_dir, "benchmark")
    wanted = set(result.fingerprints)
    records = [r for r in store.to_records() if r["fingerprint"] in wanted]
    if records:
        tables = build_tables(records, by="setting")
        print("\n".join(render(table, args.format) for table in tables), end="")
    return 1 if result.failures else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mmalign benchmark``."""
    parser = subparsers.add_parser(
        "benchmark",
        help="run a grid of methods x pairs x p x seeds (resumable), then print the table",
        description="Run every method on every directed pair, survival rate and split seed; "
        "finished runs are kept in a SQLite store and skipped when the command runs again. "
        "Prints the paper-layout table of the grid at the end.",
    )
    parser.add_argument("--data", required=True, help="data path or synthetic[:knob=value,...]")
    parser.add_argument(
        "--methods", default=ALL_METHODS, help=f"comma list (default {ALL_METHODS})"
    )
    parser.add_argument(
        "--pairs", default="all", help="comma list of source:victim (t:v,a:t) or 'all' (default)"
    )
    parser.add_argument("--p", default="0.1,0.5", help="survival rates (default 0.1,0.5)")
    parser.add_argument(
        "--seeds", default="5", help="a count n (seeds 0..n-1) or a comma list (default 5)"
    )
    parser.add_argument("--config", metavar="FILE.yaml", help="hyperparameters for every run")
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override one option for every run (repeatable), e.g. --set window=4",
    )
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
