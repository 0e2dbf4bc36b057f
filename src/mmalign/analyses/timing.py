"""Per-batch training time of the imputation modules (the paper's Table 8).

Han et al. (EMNLP 2022, appendix E) report the average training time per batch of the
imputation module, MM-Align (window 8; the registry's proposed method) against Modal-Trans.
The costly stage is training on the *missing* split, where MM-Align imputes with its fitter
(one GRU pass and a banded sum) while Modal-Trans decodes the victim autoregressively.
:func:`time_imputation` measures, in one process and on the very same batches for every
method:

- ``missing``: one training step on a missing-split batch, i.e.
  ``compute_losses(batch, "missing")`` (imputation + main loss), backward and the
  optimiser step, exactly as the training loop does it;
- ``complete``: one training step on a complete-split batch (MM-Align: OT solve, fitter
  step and backbone step; Modal-Trans: teacher-forced translation), reported separately.

Methods are interleaved batch by batch (method 1, method 2, method 1, ...), so a change of
machine load during the measurement hits every method alike. Untimed warm-up steps come
first (allocator and kernel caches).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from mmalign.config import RunConfig, apply_overrides, config_from_dict
from mmalign.data.batching import Batch, PairData, iterate_batches
from mmalign.data.dataset import MultimodalDataset, canonical_modality
from mmalign.data.splits import make_missing_split
from mmalign.models.method import Losses, PairDims
from mmalign.models.registry import get_method, proposed_method
from mmalign.runs import build_model, resolve_device
from mmalign.train.loop import build_optimizers, train_step
from mmalign.validation import ConfigError

__all__ = ["PHASES", "DEFAULT_METHODS", "time_imputation", "timing_stats", "format_timing"]

#: The timed phases: steps on missing-split batches, steps on complete-split batches.
PHASES: tuple[str, ...] = ("missing", "complete")

#: Table 8's comparison: the proposed method (the reference of the ratios) and Modal-Trans.
DEFAULT_METHODS: tuple[str, ...] = (proposed_method(), "modal-trans")


def timing_stats(seconds: Sequence[float]) -> dict[str, float]:
    """Summarise per-batch times: mean, median, min, max and std (``ddof=1``; 0 for one).

    >>> timing_stats([0.3, 0.1, 0.2])
    {'mean': 0.2, 'median': 0.2, 'min': 0.1, 'max': 0.3, 'std': 0.1, 'n': 3}
    """
    values = [float(s) for s in seconds]
    if not values:
        raise ConfigError("`seconds` must hold at least one time; got none.")
    return {
        "mean": round(statistics.fmean(values), 12),
        "median": float(statistics.median(values)),
        "min": min(values),
        "max": max(values),
        "std": round(statistics.stdev(values), 12) if len(values) > 1 else 0.0,
        "n": len(values),
    }


def _draw_batches(
    pair: PairData,
    rows: np.ndarray,
    n_batches: int,
    batch_size: int,
    seed: int,
    has_victim: bool | None,
) -> list[Batch]:
    """``n_batches`` shuffled batches of ``rows`` (reshuffled passes when one is too short)."""
    generator = torch.Generator().manual_seed(seed)
    batches: list[Batch] = []
    while len(batches) < n_batches:
        for batch in iterate_batches(
            pair, rows, batch_size, shuffle=True, generator=generator, has_victim=has_victim
        ):
            batches.append(batch)
            if len(batches) == n_batches:
                break
    return batches


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _resolve_config(config: RunConfig | Mapping[str, Any] | None) -> RunConfig:
    if config is None:
        return RunConfig()
    if isinstance(config, RunConfig):
        return config
    if isinstance(config, Mapping):
        return config_from_dict(dict(config))
    raise ConfigError(f"`config` must be a RunConfig, a dict or None; got {config!r}.")


def time_imputation(
    dataset: MultimodalDataset,
    source: str,
    victim: str,
    methods: Sequence[str] = DEFAULT_METHODS,
    n_batches: int = 20,
    batch_size: int = 32,
    config: RunConfig | Mapping[str, Any] | None = None,
    *,
    p: float = 0.1,
    seed: int = 0,
    warmup_batches: int = 2,
) -> dict[str, Any]:
    """Time one training step per batch of each method on the same missing / complete batches.

    Parameters
    ----------
    dataset : MultimodalDataset
    source, victim : str
        The directed pair (short or full modality names).
    methods : sequence of str, default :data:`DEFAULT_METHODS`
        Registered methods (``("mm-align", "modal-trans")``); the first is the reference of
        the ratios.
    n_batches : int, default 20
        Timed batches per phase (a split shorter than ``n_batches * batch_size`` is
        reshuffled and visited again).
    batch_size : int, default 32
    config : RunConfig or dict, optional
        Model and optimiser options (``window``, ``d_model``, ``device``, ...); its
        ``method`` is replaced by each entry of ``methods``.
    p : float, default 0.1
        Survival rate of the missing split the batches come from.
    seed : int, default 0
        Split seed; also seeds initialisation and batch order.
    warmup_batches : int, default 2
        Untimed steps per method and phase before the timed ones.

    Returns
    -------
    dict
        ``{"methods": {name: {"missing": stats, "complete": stats}}, "ratio": {phase:
        {name: mean_name / mean_first}}, "seconds": {name: {phase: [per-batch seconds]}},
        "threads", "device", "n_batches", "batch_size", "source", "victim", "p", "seed",
        "window", "dataset", "max_length"}``; ``stats`` is :func:`timing_stats`. Times are
        wall-clock seconds per batch (CUDA work is synchronised before the clock stops).

    Raises
    ------
    ConfigError
        Bad counts, unknown method, an empty missing or complete split.
    """
    for name, value, low in (
        ("n_batches", n_batches, 1),
        ("batch_size", batch_size, 1),
        ("warmup_batches", warmup_batches, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"`{name}` must be an integer >= {low}; got {value!r}.")
    methods = list(dict.fromkeys(methods))
    if not methods:
        raise ConfigError("`methods` must name at least one method; got none.")
    specs = [get_method(m) for m in methods]
    complete_data = [s.name for s in specs if s.complete_data]
    if complete_data:
        raise ConfigError(
            f"`methods` must impute a missing victim; got {complete_data} "
            "(trains on complete data)."
        )
    base = _resolve_config(config)
    source = canonical_modality(source, dataset.modalities)
    victim = canonical_modality(victim, dataset.modalities)
    split = make_missing_split(dataset, victim, p, seed)
    if len(split.train_missing) == 0 or len(split.train_complete) == 0:
        raise ConfigError(
            f"`p` must leave both a complete and a missing training split; got p={p!r} "
            f"({len(split.train_complete)} complete, {len(split.train_missing)} missing)."
        )
    device = resolve_device(base.device)
    train = PairData.from_split(
        dataset.splits["train"], source, victim, present=split.present("train")
    ).to(device)
    total = n_batches + warmup_batches
    batches = {
        "missing": _draw_batches(train, split.train_missing, total, batch_size, seed, False),
        "complete": _draw_batches(train, split.train_complete, total, batch_size, seed, None),
    }
    dims = PairDims(
        dataset.feature_dims[source],
        dataset.feature_dims[victim],
        dataset.output_dim,
        dataset.task,
    )
    models, optimizers = {}, {}
    for name in methods:
        method_config = apply_overrides(base, {"method": name, "seed": seed})
        model = build_model(method_config, dims).to(device)
        model.train()
        models[name] = model
        optimizers[name] = build_optimizers(
            model,
            get_method(name).learning_rates(method_config),
            method_config.train.weight_decay,
            log=lambda s: None,
        )

    seconds: dict[str, dict[str, list[float]]] = {m: {ph: [] for ph in PHASES} for m in methods}
    for phase in PHASES:
        for position, batch in enumerate(batches[phase]):
            for name in methods:  # interleaved: load changes hit every method alike
                model, opts = models[name], optimizers[name]
                _synchronize(device)
                start = time.perf_counter()
                losses: Losses = model.compute_losses(batch, phase)
                train_step(model, losses, opts, tuple(opts), base.train.grad_clip)
                _synchronize(device)
                if position >= warmup_batches:
                    seconds[name][phase].append(time.perf_counter() - start)
    stats = {m: {ph: timing_stats(seconds[m][ph]) for ph in PHASES} for m in methods}
    reference = methods[0]
    ratio = {
        ph: {
            m: (stats[m][ph]["mean"] / stats[reference][ph]["mean"])
            if stats[reference][ph]["mean"] > 0
            else math.nan
            for m in methods
        }
        for ph in PHASES
    }
    return {
        "methods": stats,
        "ratio": ratio,
        "seconds": seconds,
        "reference": reference,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "n_batches": int(n_batches),
        "batch_size": int(batch_size),
        "source": source,
        "victim": victim,
        "p": float(p),
        "seed": int(seed),
        "window": int(base.adl.window),
        "d_model": int(base.model.d_model),
        "dataset": dataset.name,
        "max_length": int(train.source.shape[1]),
    }


def format_timing(report: Mapping[str, Any]) -> str:
    """Render a :func:`time_imputation` report as a small text table (seconds per batch)."""
    methods = list(report["methods"])
    reference = report.get("reference", methods[0])
    lines = [
        f"{report['dataset']} {report['source']}->{report['victim']} p={report['p']:g}: "
        f"{report['n_batches']} timed batches of {report['batch_size']} per phase, "
        f"device {report['device']}, torch threads {report['threads']}, "
        f"window K={report['window']}, d={report['d_model']}",
        "",
        f"{'method':<14} {'phase':<9} {'mean s':>9} {'median s':>9} {'min s':>9} {'ratio':>7}",
    ]
    for name in methods:
        for phase in PHASES:
            s = report["methods"][name][phase]
            r = report["ratio"][phase][name]
            lines.append(
                f"{name:<14} {phase:<9} {s['mean']:>9.4f} {s['median']:>9.4f} {s['min']:>9.4f} "
                f"{r:>6.2f}x"
            )
    lines += ["", f"ratio = mean time / mean time of {reference} on the same batches"]
    return "\n".join(lines) + "\n"
