"""Flags and plumbing every grid command shares (``benchmark``, ``ablate``, ``sweep-window``).

Grid flags have their own plural names (``--pairs``, ``--ps``, ``--seeds``, ``--windows``),
so they never collide with a run option (``--pair``, ``--p``, ``--seed``, ``--window``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mmalign.validation import ConfigError

__all__ = [
    "add_engine_flags",
    "add_options_flags",
    "check_grid_protocol",
    "grid_overrides",
    "run_specs",
]

# options every RunSpec sets itself: they cannot come from --config or --set
SPEC_KEYS = ("data", "method", "pair", "p", "seed")


def add_options_flags(parser: argparse.ArgumentParser) -> None:
    """``--config FILE.yaml`` and repeatable ``--set KEY=VALUE`` (options for every run)."""
    parser.add_argument("--config", metavar="FILE.yaml", help="options for every run (YAML)")
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="set one option for every run (repeatable), e.g. --set epochs=10; an option that "
        "applies to some methods only (e.g. window) is passed to those methods only",
    )


def grid_overrides(config_file: str | None, items: list[str] | None) -> dict[str, Any]:
    """Merge ``--config`` and ``--set`` into typed flat options (checked against the table).

    The result is what every run of the grid receives as ``RunSpec.config`` (and what its
    fingerprint hashes). Options that the grid sets per run are refused.
    """
    from mmalign.config import config_from_dict, flat_fields, flatten, load_yaml_options
    from mmalign.options import parse_assignments

    values: dict[str, Any] = load_yaml_options(config_file) if config_file else {}
    values.update(parse_assignments("set", items or []))
    clash = sorted(set(flatten(values)) & set(SPEC_KEYS))
    if clash:
        raise ConfigError(
            f"`config` must not set {clash}: use --data, --methods, --pairs, --ps and --seeds."
        )
    resolved = config_from_dict(values)  # raises on an unknown option or a bad value
    fields = flat_fields()
    out = {}
    for name in flatten(values):
        section = fields[name][0]
        out[name] = getattr(getattr(resolved, section) if section else resolved, name)
    return out


def check_grid_protocol(overrides: dict[str, Any], **grid_flags: Any) -> None:
    """Refuse pair-protocol grid flags (``--pairs``, ``--ps``) in a random-missing grid.

    ``overrides`` are the grid's options (:func:`grid_overrides`); ``grid_flags`` maps a
    flag's name to what the user gave (``None``: not given). With a ``missing_rate`` every
    modality's presence is drawn: there is no source:victim pair nor survival rate.

    >>> check_grid_protocol({"missing_rate": 0.3}, pairs=None, ps=None)
    >>> check_grid_protocol({"missing_rate": 0.3}, pairs="t:v", ps=None)
    Traceback (most recent call last):
    ...
    mmalign.validation.ConfigError: `--pairs` must not be given with missing_rate=0.3: the random-missing protocol draws every modality's presence (no source:victim pair, no survival rate p); the grid is methods x seeds.
    """
    from mmalign.config import missing_rate_in

    rate = missing_rate_in(overrides)
    if rate is None:
        return
    for name, value in grid_flags.items():
        if value is not None:
            raise ConfigError(
                f"`--{name}` must not be given with missing_rate={rate!r}: the random-missing "
                "protocol draws every modality's presence (no source:victim pair, no survival "
                "rate p); the grid is methods x seeds."
            )


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
        help="run function (default mmalign.runs:run_spec)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show a progress bar (default: on)",
    )


def _resolve_runner(text: str | None):
    """Import a runner given as ``module:function`` (``None``: the default runner)."""
    if not text:
        return None
    import importlib

    module_name, sep, name = text.partition(":")
    if not sep or not module_name or not name:
        raise ConfigError(f"`--runner` must look like module:function; got {text!r}.")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(
            f"`--runner` must name an importable function; got {text!r} ({err})."
        ) from err


def run_specs(specs, args: argparse.Namespace, out_dir: str, name: str):
    """Run a grid with the engine flags of ``args``; return ``(store, GridResult)``."""
    from mmalign.experiments import ResultStore, run_grid

    store = ResultStore(args.store)
    print(f"mmalign {name}: store {store.path}, run folders under {out_dir}/", file=sys.stderr)
    result = run_grid(
        specs,
        store,
        runner=_resolve_runner(args.runner),
        engine=args.engine,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        address=args.address,
        out_dir=out_dir,
        progress=args.progress,
    )
    print(
        f"mmalign {name}: {result.n_done} runs done, {result.n_skipped} already in the store, "
        f"{len(result.failures)} failed",
        file=sys.stderr,
    )
    line = warning_summary(name, *store.warning_counts(result.fingerprints), store.path)
    if line:
        print(line, file=sys.stderr)
    return store, result


def warning_summary(name: str, n_runs: int, counts: dict[str, int], store: Path) -> str | None:
    """One line naming how many runs recorded each warning code; None when none did.

    >>> line = warning_summary("benchmark", 48, {"epoch_cap": 3, "below_floor": 1}, Path("g.db"))
    >>> line[:77]
    'mmalign benchmark: runs with warnings: epoch_cap 3 of 48, below_floor 1 of 48'
    >>> line[77:]
    ' (`mmalign report --store g.db --warnings` lists them; docs/warnings.md says what to do)'
    >>> warning_summary("report", 5, {}, Path("g.db")) is None
    True
    """
    if not counts:
        return None
    listed = ", ".join(f"{code} {n} of {n_runs}" for code, n in counts.items())
    return (
        f"mmalign {name}: runs with warnings: {listed} (`mmalign report --store {store} "
        "--warnings` lists them; docs/warnings.md says what to do)"
    )
