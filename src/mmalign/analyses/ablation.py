"""Ablation grid of MM-Align (the paper's Table 5, Han et al., EMNLP 2022, section 4.4).

Four variants of the proposed method (``mm-align``), each a plain config override, so the
variants are ordinary grid runs (any engine, resumable, shared store):

- ``full``: MM-Align as configured;
- ``no-contrastive`` ("w/o L_con"): ``lambda_con = 0``;
- ``no-fit`` ("w/o L_fit"): ``train_fitter = false``, the fitter keeps its random weights;
- ``no-si`` ("w/o SI"): ``single_iteration = false``, the fitter and the backbone take
  separate passes over the complete split.

The variant is never stored as a separate field: it is a function of the run's config
(:func:`variant_of_config`), which the results store keeps with every row and hashes into the
fingerprint. Any store row of the proposed method can therefore be labelled later, whichever
command produced it, and a ``full`` run shares its fingerprint with a benchmark run of the same
config. The method and its label come from the registry
(:func:`~mmalign.models.registry.proposed_method`); the switches' defaults from the option
table (:class:`~mmalign.config.RunConfig`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mmalign.config import flat_fields
from mmalign.evaluate.tables import Table, build_table
from mmalign.experiments.grid import expand_grid
from mmalign.experiments.spec import RunSpec
from mmalign.models.registry import get_method, proposed_method
from mmalign.options import coerce, field_default
from mmalign.validation import ConfigError, check_in

__all__ = [
    "ABLATION_METHOD",
    "ABLATION_VARIANTS",
    "VARIANT_LABELS",
    "variant_of_config",
    "ablation_configs",
    "expand_ablation",
    "ablation_records",
    "ablation_tables",
]

#: The method every ablation variant trains: the proposed method of the registry.
ABLATION_METHOD = proposed_method()
_LABEL = get_method(ABLATION_METHOD).label

#: Variant name -> the config overrides that make it (Table 5's rows, in the paper's order).
ABLATION_VARIANTS: dict[str, dict[str, Any]] = {
    "full": {},
    "no-contrastive": {"lambda_con": 0.0},
    "no-fit": {"train_fitter": False},
    "no-si": {"single_iteration": False},
}

#: Row labels as the paper prints them.
VARIANT_LABELS: dict[str, str] = {
    "full": _LABEL,
    "no-contrastive": "w/o L_con",
    "no-fit": "w/o L_fit",
    "no-si": "w/o SI",
}

# the three switches the variants turn off, with their RunConfig fields (defaults from there)
_SWITCHES = {
    name: flat_fields()[name][1] for name in ("lambda_con", "train_fitter", "single_iteration")
}
_DEFAULTS = {name: field_default(f) for name, f in _SWITCHES.items()}


def _flag(config: Mapping[str, Any], name: str) -> Any:
    """Return the switch's value in ``config`` (its default when unset), read as the option's type."""
    return coerce(_SWITCHES[name], config.get(name, _DEFAULTS[name]))


def variant_of_config(config: Mapping[str, Any]) -> str:
    """Name the ablation variant a run's config overrides make.

    Several ablations at once are joined with ``+``.

    >>> variant_of_config({}), variant_of_config({"lambda_con": 0, "epochs": 3})
    ('full', 'no-contrastive')
    >>> variant_of_config({"train_fitter": False, "single_iteration": "false"})
    'no-fit+no-si'
    """
    names = []
    if float(_flag(config, "lambda_con")) == 0.0:
        names.append("no-contrastive")
    if _flag(config, "train_fitter") is False:
        names.append("no-fit")
    if _flag(config, "single_iteration") is False:
        names.append("no-si")
    return "+".join(names) or "full"


def ablation_configs(
    config: Mapping[str, Any] | None = None, variants: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Return variant -> full config overrides (the shared ``config`` plus the variant's).

    Parameters
    ----------
    config : dict, optional
        Overrides shared by every variant (epochs, window, ...). It must not ablate anything
        itself (``lambda_con = 0`` would make ``full`` and ``no-contrastive`` the same run).
    variants : sequence of str, optional
        A subset of :data:`ABLATION_VARIANTS` (default all four, in the paper's order).

    Returns
    -------
    dict

    Raises
    ------
    ConfigError
        An unknown variant, or a shared config that already ablates a component.

    Examples
    --------
    >>> ablation_configs({"epochs": 2}, ["full", "no-si"])
    {'full': {'epochs': 2}, 'no-si': {'epochs': 2, 'single_iteration': False}}
    """
    config = dict(config or {})
    chosen = list(dict.fromkeys(variants)) if variants is not None else list(ABLATION_VARIANTS)
    if not chosen:
        raise ConfigError(
            f"`variants` must name at least one of {list(ABLATION_VARIANTS)}; got []."
        )
    for name in chosen:
        check_in("variant", name, list(ABLATION_VARIANTS))
    shared = variant_of_config(config)
    if shared != "full":
        raise ConfigError(
            f"`config` must not ablate {_LABEL} itself (the variants do); got {shared!r} from "
            f"{ {k: config[k] for k in _DEFAULTS if k in config} }."
        )
    return {name: {**config, **ABLATION_VARIANTS[name]} for name in chosen}


def expand_ablation(
    data: str,
    pairs: Sequence[str] | str,
    ps: Sequence[float] | float,
    seeds: int | Sequence[int],
    config: Mapping[str, Any] | None = None,
    variants: Sequence[str] | None = None,
) -> list[RunSpec]:
    """Expand variants x pairs x ps x seeds into run specs of the proposed method.

    Parameters
    ----------
    data : str
        Data path or ``"synthetic[:knob=value,...]"``.
    pairs : list of str or str
        Directed pairs (``"t:v,v:a,a:t"`` for the paper's three).
    ps : list of float or float
        Survival rates.
    seeds : int or list of int
        ``n`` for seeds ``0..n-1``, or the seeds.
    config : dict, optional
        Overrides shared by every run (see :func:`ablation_configs`).
    variants : sequence of str, optional
        Default all four.

    Returns
    -------
    list of RunSpec
        Ordered by variant, then pair, p and seed. ``variant_of_config(spec.config)`` gives
        each spec's variant back.

    Examples
    --------
    >>> specs = expand_ablation("synthetic", "t:v", 0.1, 2, {"epochs": 2})
    >>> len(specs), len({s.fingerprint() for s in specs})
    (8, 8)
    >>> sorted({variant_of_config(s.config) for s in specs})
    ['full', 'no-contrastive', 'no-fit', 'no-si']
    """
    specs: list[RunSpec] = []
    for overrides in ablation_configs(config, variants).values():
        specs += expand_grid(data, [ABLATION_METHOD], pairs, ps, seeds, overrides)
    return specs


def ablation_records(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Flatten store rows into table records whose ``method`` is the variant's label.

    Parameters
    ----------
    rows : iterable of dict
        :meth:`mmalign.experiments.store.ResultStore.rows` output of the proposed method's runs.

    Returns
    -------
    list of dict
        The records of :meth:`~mmalign.experiments.store.ResultStore.to_records` (keys
        ``method, source, victim, p, seed, data_id, setting, split, metric, value``) with
        ``method`` = the variant label (``"w/o SI"``) and ``variant`` = its name.
    """
    records = []
    for row in rows:
        if row["method"] != ABLATION_METHOD:
            continue
        variant = variant_of_config(row.get("config") or {})
        label = VARIANT_LABELS.get(variant, variant)
        base = {
            "fingerprint": row.get("fingerprint"),
            "data": row.get("data"),
            "data_id": row.get("data_id", row.get("data")),
            "method": label,
            "variant": variant,
            "source": row["source"],
            "victim": row["victim"],
            "p": float(row["p"]),
            "seed": int(row["seed"]),
        }
        for setting in ("A", "B"):
            for split, metrics in (row["result"].get(setting) or {}).items():
                if not isinstance(metrics, Mapping):
                    continue
                for metric, value in metrics.items():
                    records.append(
                        {
                            **base,
                            "setting": setting,
                            "split": split,
                            "metric": metric,
                            "value": float("nan") if value is None else float(value),
                        }
                    )
    return records


def _check_one_run_per_cell(records: Sequence[Mapping[str, Any]]) -> None:
    """Raise ``ConfigError`` when one variant has two runs of one data set, pair, p and seed.

    The variant's name reads only the ablation switches, so runs that differ in another option
    (say ``lambda_imputed``) would otherwise be averaged into one cell.
    """
    seen: dict[tuple, Any] = {}
    for r in records:
        key = (r["data_id"], r["variant"], r["source"], r["victim"], r["p"], r["seed"])
        first = seen.setdefault(key, r["fingerprint"])
        if first != r["fingerprint"]:
            data, variant, source, victim, p, seed = key
            raise ConfigError(
                f"`rows` must hold one {ABLATION_METHOD} run per variant, pair, p and seed; "
                f"variant {variant!r} has two ({first} and {r['fingerprint']}) for {source}->"
                f"{victim}, p={p:g}, seed {seed} on {data}: they differ in an option other than "
                "the ablation's. Report a store that holds one ablation (`mmalign ablation` "
                "writes its own), or filter the rows first."
            )


def ablation_tables(
    rows: Iterable[Mapping[str, Any]],
    *,
    metrics: Sequence[str] | None = None,
    split: str = "test",
) -> list[Table]:
    """Build Table 5: rows = variants, columns = pair x setting x metric, one table per ``p``.

    Cells are mean ± std over seeds (:func:`mmalign.evaluate.tables.build_table`); the best
    mean per column is marked, and the full model gets the dagger where it beats the best
    ablated variant significantly (paired t-test over seeds).

    Parameters
    ----------
    rows : iterable of dict
        Store rows of one data set's ablation runs.
    metrics : sequence of str, optional
        Default MAE and Acc-2 (regression) or weighted F1 (classification).
    split : str, default "test"

    Returns
    -------
    list of Table
        Render with :func:`mmalign.evaluate.tables.render`.

    Raises
    ------
    ConfigError
        No rows of the proposed method.
    """
    records = ablation_records(rows)
    if not records:
        raise ConfigError(f"`rows` must hold finished {ABLATION_METHOD} runs; got none.")
    _check_one_run_per_cell(records)
    order = [VARIANT_LABELS[v] for v in ABLATION_VARIANTS]
    tables = []
    for p in sorted({r["p"] for r in records}):
        subset = [r for r in records if r["p"] == p]
        data = subset[0].get("data") or subset[0].get("data_id")
        table = build_table(
            subset,
            by="setting",
            metrics=metrics,
            p=p,
            split=split,
            ours=VARIANT_LABELS["full"],
            title=f"{data}: {_LABEL} ablation, {split} results, p = {100 * p:g}%",
        )
        present = list(table.methods)
        methods = tuple(m for m in order if m in present) + tuple(
            m for m in present if m not in order
        )
        tables.append(dataclasses.replace(table, methods=methods))
    return tables
