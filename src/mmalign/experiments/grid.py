"""Experiment grids: methods x directed pairs x survival rates x split seeds.

:func:`expand_grid` turns the paper's protocol into a list of :class:`RunSpec`, and
:func:`expand_random_grid` the random-missing protocol (methods x seeds: no pair, no ``p``);
each run gets its own folder under the grid folder (:func:`run_dir_for`), which :func:`prepare_run_dir`
empties before a (re)start, so a run killed mid-way never leaves half-written files that a
restart could mistake for its own.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from mmalign.config import check_option, flatten, missing_rate_in
from mmalign.data.dataset import MODALITY_ALIASES, canonical_modality
from mmalign.data.spec import DataSpec
from mmalign.experiments.spec import RunSpec
from mmalign.models.registry import METHODS, get_method, upper_bound
from mmalign.options import parse_list, parse_seeds, split_pair
from mmalign.validation import ConfigError

__all__ = [
    "PAPER_PAIR_ORDER",
    "dataset_modalities",
    "parse_pairs",
    "expand_grid",
    "expand_random_grid",
    "random_missing_methods",
    "run_dir_for",
    "prepare_run_dir",
]

#: The order of the six directed pairs in the paper's tables (T->V, V->A, A->T, V->T, A->V, T->A).
PAPER_PAIR_ORDER: tuple[tuple[str, str], ...] = (
    ("text", "vision"),
    ("vision", "audio"),
    ("audio", "text"),
    ("vision", "text"),
    ("audio", "vision"),
    ("text", "audio"),
)


def dataset_modalities(data: str) -> tuple[str, ...]:
    """Return the modality names of ``data`` (loads a data file; synthetic is t, v, a).

    >>> dataset_modalities("synthetic:n_train=32")
    ('text', 'vision', 'audio')
    """
    return DataSpec.parse(data).modalities()


def parse_pairs(
    pairs: str | Sequence[str], modalities: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """Parse directed pairs ``"t:v"`` (or ``"text->vision"``) into full-name tuples.

    ``"all"`` gives every directed pair of ``modalities`` (the paper's order for t, v, a).

    >>> parse_pairs("t:v,a:t")
    [('text', 'vision'), ('audio', 'text')]
    >>> len(parse_pairs("all", ["text", "vision", "audio"]))
    6
    """
    if isinstance(pairs, str):
        if pairs.strip() == "all":
            if modalities is None:
                raise ConfigError("`modalities` must be given to expand pairs='all'; got None.")
            full = [canonical_modality(m) for m in modalities]
            ordered = [pr for pr in PAPER_PAIR_ORDER if pr[0] in full and pr[1] in full]
            rest = [pr for pr in itertools.permutations(full, 2) if pr not in ordered]
            return ordered + rest
        pairs = [s for s in pairs.split(",") if s.strip()]
    out: list[tuple[str, str]] = []
    for item in pairs:
        source, victim = (canonical_modality(m, modalities) for m in split_pair(item))
        if source == victim:
            raise ConfigError(f"`pair` must join two different modalities; got {item!r}.")
        if (source, victim) not in out:
            out.append((source, victim))
    if not out:
        raise ConfigError(f"`pairs` must name at least one pair; got {pairs!r}.")
    return out


def expand_grid(
    data: str,
    methods: Sequence[str] | str,
    pairs: Sequence[str] | str,
    ps: Sequence[float] | float,
    seeds: int | Sequence[int],
    config: dict | None = None,
    *,
    modalities: Sequence[str] | None = None,
) -> list[RunSpec]:
    """Expand the grid methods x pairs x ps x seeds into run specs.

    The upper bound ``ub`` trains with both modalities complete, so ``p`` does not apply: it
    is expanded once per pair and seed with ``p = 1.0`` (the report shows it in every ``p``
    column).

    Parameters
    ----------
    data : str
        Data path or ``"synthetic[:knob=value,...]"``.
    methods : list of str or str
        Method names (a comma-separated string is split).
    pairs : list of str or str
        ``["t:v", "a:t"]``, ``"t:v,a:t"`` or ``"all"`` (the six directed pairs of the data's
        modalities).
    ps : list of float or float
        Survival rates in (0, 1].
    seeds : int or list of int
        ``n`` for seeds ``0..n-1``, or the seeds themselves.
    config : dict, optional
        Resolved hyperparameter overrides shared by every run.
    modalities : list of str, optional
        The data's modalities for ``pairs="all"``; read from the data when omitted.

    Returns
    -------
    list of RunSpec
        Ordered by pair, method, p, seed.

    Examples
    --------
    >>> specs = expand_grid("synthetic", "lb,ub,mm-align", "t:v,a:t", [0.1, 0.5], 2)
    >>> len(specs)  # 2 pairs x (lb, mm-align: 2 p x 2 seeds + ub: 2 seeds)
    20

    Raises
    ------
    ConfigError
        ``config`` sets ``missing_rate`` (the random-missing protocol has no pairs nor
        ``p``: use :func:`expand_random_grid`), or a bad method, pair, ``p`` or seed.
    """
    rate = missing_rate_in(config or {})
    if rate is not None:
        raise ConfigError(
            f"`pairs` and `ps` do not apply to the random-missing protocol (the config sets "
            f"missing_rate={rate!r}: every modality's presence is drawn, there is no "
            "source:victim pair nor survival rate). Run such a grid as methods x seeds "
            "(`mmalign benchmark --set missing_rate=R`, or expand_random_grid); the ablation "
            "and the window sweep take the pair protocol only: drop missing_rate."
        )
    methods = _method_list(methods)
    ps = [ps] if isinstance(ps, (int, float)) else ps
    ps = list(dict.fromkeys(check_option("p", p) for p in parse_list("ps", ps, float)))
    if isinstance(pairs, str) and pairs.strip() == "all" and modalities is None:
        modalities = dataset_modalities(data)
    pair_list = parse_pairs(pairs, modalities)
    seed_list = parse_seeds(seeds)
    specs = []
    for source, victim in pair_list:
        for method in methods:
            method_ps = [1.0] if method == upper_bound() else ps
            for p in method_ps:
                for seed in seed_list:
                    specs.append(RunSpec(data, method, source, victim, p, seed, dict(config or {})))
    return specs


def expand_random_grid(
    data: str,
    methods: Sequence[str] | str,
    seeds: int | Sequence[int],
    config: dict,
) -> list[RunSpec]:
    """Expand a random-missing grid, methods x seeds, into run specs.

    Every run gets the grid's ``config``, which must set ``missing_rate`` (and may set
    ``frame_drop``, ``drop_burst``); the specs have ``source``, ``victim`` and ``p`` set to
    ``None`` (:meth:`RunSpec.random_missing`). The upper bound ``ub`` runs once per seed like
    every other method.

    Parameters
    ----------
    data : str
        Data path or ``"synthetic[:knob=value,...]"``.
    methods : list of str or str
        Method names (a comma-separated string is split).
    seeds : int or list of int
        ``n`` for seeds ``0..n-1``, or the seeds themselves.
    config : dict
        Resolved overrides shared by every run, with ``missing_rate``.

    Returns
    -------
    list of RunSpec
        Ordered by method, seed.

    Raises
    ------
    ConfigError
        ``config`` sets no ``missing_rate``, a method does not take the random-missing
        protocol (:func:`random_missing_methods`), or a bad seed.

    Examples
    --------
    >>> specs = expand_random_grid("synthetic", "lb,ub,mm-align", 3, {"missing_rate": 0.3})
    >>> len(specs), specs[0].label
    (9, 'lb random missing_rate=0.3 seed=0')
    """
    if missing_rate_in(config) is None:
        raise ConfigError(
            f"`config` must set missing_rate for a random-missing grid; got {config!r}."
        )
    methods = _method_list(methods)
    takes = random_missing_methods()
    for method in methods:
        if method not in takes:
            raise ConfigError(
                f"`method` must be one of {list(takes)} in the random-missing protocol; got "
                f"{method!r}: {get_method(method).patterns_note}."
            )
    seed_list = parse_seeds(seeds)
    return [
        RunSpec.random_missing(data, method, seed, dict(config))
        for method in methods
        for seed in seed_list
    ]


def random_missing_methods() -> tuple[str, ...]:
    """Return the methods that take the random-missing protocol, in the registry's order.

    >>> random_missing_methods()
    ('lb', 'ub', 'mm-align')
    """
    return tuple(name for name, spec in METHODS.items() if spec.build_patterns is not None)


def _method_list(methods: Sequence[str] | str) -> list[str]:
    """Registry names of ``methods``, in the order given, without repeats."""
    return list(dict.fromkeys(get_method(m).name for m in parse_list("methods", methods)))


def _short(modality: str) -> str:
    short = {v: k for k, v in MODALITY_ALIASES.items()}
    return short.get(modality, modality)


def run_dir_for(out_dir: str | Path, spec: RunSpec, fingerprint: str) -> Path:
    """Return the run folder of ``spec`` under the grid folder ``out_dir``.

    The name is readable and ends with the fingerprint, so it is unique per run:

    >>> spec = RunSpec("synthetic", "mm-align", "text", "vision", 0.1, 3)
    >>> run_dir_for("grid", spec, "0123abcd").as_posix()
    'grid/mm-align/t-v/p0.1_seed3_0123abcd'

    A random-missing run goes under ``random/``, named by its missing rate (and its frame
    drop when there is one):

    >>> spec = RunSpec.random_missing("synthetic", "lb", 0, {"missing_rate": 0.3})
    >>> run_dir_for("grid", spec, "0123abcd").as_posix()
    'grid/lb/random/r0.3_seed0_0123abcd'
    """
    safe_method = re.sub(r"[^A-Za-z0-9._-]+", "_", spec.method)
    if spec.protocol == "random":
        frame_drop = float(flatten(spec.config).get("frame_drop") or 0.0)
        rates = f"r{spec.missing_rate:g}" + (f"_f{frame_drop:g}" if frame_drop else "")
        return Path(out_dir) / safe_method / "random" / f"{rates}_seed{spec.seed}_{fingerprint}"
    pair = f"{_short(spec.source)}-{_short(spec.victim)}"
    return Path(out_dir) / safe_method / pair / f"p{spec.p:g}_seed{spec.seed}_{fingerprint}"


def prepare_run_dir(run_dir: str | Path, spec: RunSpec, fingerprint: str) -> Path:
    """Empty (or create) ``run_dir`` and write ``spec.json`` into it; return the folder.

    Whatever an earlier, unfinished attempt left there is removed: only runs recorded in the
    store count as done.
    """
    run_dir = Path(run_dir)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    payload = {"fingerprint": fingerprint, **spec.to_dict()}
    (run_dir / "spec.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return run_dir
