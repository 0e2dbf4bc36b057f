"""One run of the random-missing protocol: draw, build, fit, test per pattern, run folder.

The counterpart of :class:`~mmalign.runs.execute.RunPlan` and its training for
``mmalign run --missing-rate R [--frame-drop F]`` (``docs/protocols.md``): every modality
of the dataset, each (sample, modality) missing at random and steps dropped in bursts
(:mod:`mmalign.data.missingness`), the same rule in train, valid and test. Model selection
uses the validation split under its own draw. Test metrics are reported overall and per
pattern of present modalities.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import yaml

from mmalign.config import RunConfig, config_to_dict
from mmalign.data.checks import (
    DataWarning,
    check_floor,
    check_modalities,
    check_ot_convergence,
    check_window,
)
from mmalign.data.dataset import MultimodalDataset, Split
from mmalign.data.missingness import (
    RandomMissingness,
    SplitMissingness,
    draw_missingness,
    ordered_patterns,
)
from mmalign.data.pattern_batching import PatternData
from mmalign.data.statistics import step_statistics
from mmalign.evaluate.metrics import PRIMARY_METRIC, compute_metrics
from mmalign.models.pattern_method import PatternDims, PatternModel
from mmalign.models.registry import MethodSpec, get_method
from mmalign.runs.device import resolve_device
from mmalign.runs.fitting import cap_warnings, fit_run
from mmalign.runs.folder import RunFolder
from mmalign.runs.log import RunLog
from mmalign.runs.predictions import predictions_csv
from mmalign.runs.result import (
    PatternResult,
    RunMeta,
    RunResult,
    SettingResult,
    warning_fields,
)
from mmalign.train.loop import TrainData, predict_outputs
from mmalign.validation import ConfigError

__all__ = [
    "RandomMissingPlan",
    "SETTING",
    "MIN_PATTERN_SAMPLES",
    "pattern_results",
    "train_and_test",
]

#: The random-missing protocol's one setting: the drawn patterns, in every split.
SETTING = "random"
#: Fewer test samples than this in a pattern: its metrics are flagged as noisy.
MIN_PATTERN_SAMPLES = 20


@dataclass(frozen=True)
class RandomMissingPlan:
    """What one random-missing run trains on.

    Attributes
    ----------
    method : MethodSpec
    draw : RandomMissingness
        The drawn presence and dropped steps of every split.
    dims : PatternDims
    """

    method: MethodSpec
    draw: RandomMissingness
    dims: PatternDims

    @classmethod
    def make(cls, config: RunConfig, dataset: MultimodalDataset) -> "RandomMissingPlan":
        """Check the method takes the protocol and draw the missingness."""
        method = get_method(config.method)
        if method.build_patterns is None:
            raise ConfigError(
                f"`method` {method.name!r} does not take the random-missing protocol "
                f"(--missing-rate): {method.patterns_note}. Use lb, ub or mm-align."
            )
        if len(dataset.modalities) < 2:
            raise ConfigError(
                f"`missing_rate` needs at least two modalities; {dataset.name} has "
                f"{list(dataset.modalities)}."
            )
        draw = draw_missingness(
            dataset, config.missing_rate, config.frame_drop, config.drop_burst, config.seed
        )
        dims = PatternDims(dict(dataset.feature_dims), dataset.output_dim, dataset.task)
        return cls(method, draw, dims)

    def missingness(self, dataset: MultimodalDataset, name: str) -> SplitMissingness:
        """Return what a method sees of split ``name``: the draw, or all of it for the upper bound."""
        if self.method.complete_data:
            return SplitMissingness.complete(dataset.splits[name])
        return self.draw.splits[name]

    def data(self, dataset: MultimodalDataset, name: str, device: torch.device) -> PatternData:
        """Tensors of split ``name`` as the method sees it, on ``device``."""
        split = dataset.splits[name]
        return PatternData.from_split(split, self.missingness(dataset, name)).to(device)


def _standardize(model: PatternModel, dataset: MultimodalDataset, plan: RandomMissingPlan) -> None:
    """Input statistics per modality from the readable training steps only."""
    train = dataset.splits["train"]
    seen = plan.missingness(dataset, "train")
    for m, encoder in model.backbone.encoders.items():
        mean, std = step_statistics(train, m, valid=seen.valid_steps(train, m))
        encoder.set_input_statistics(torch.from_numpy(mean), torch.from_numpy(std))


def _pair_lengths(
    dataset: MultimodalDataset, plan: RandomMissingPlan
) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Lengths (L_s, L_v) per ordered pair over the training samples that hold both."""
    train, seen = dataset.splits["train"], plan.missingness(dataset, "train")
    out = {}
    for i, s in enumerate(seen.modalities):
        for j, v in enumerate(seen.modalities):
            if s == v:
                continue
            n, m = np.asarray(train.lengths[s]), np.asarray(train.lengths[v])
            keep = seen.present[:, i] & seen.present[:, j] & (n > 0) & (m > 0)
            out[s, v] = n[keep], m[keep]
    return out


def _victim_rates(
    dataset: MultimodalDataset, plan: RandomMissingPlan
) -> dict[tuple[str, str], float]:
    """Median ``L_v / L_s`` per ordered pair over training samples that hold both (1 if none)."""
    return {
        pair: float(np.median(m / n)) if n.size else 1.0
        for pair, (n, m) in _pair_lengths(dataset, plan).items()
    }


def _window_warnings(
    config: RunConfig, dataset: MultimodalDataset, plan: RandomMissingPlan
) -> list[DataWarning]:
    """``window_narrow`` for each ordered pair whose source is the finer axis (MM-Align)."""
    if "window" not in plan.method.options:
        return []
    found = []
    for (s, v), (n, m) in _pair_lengths(dataset, plan).items():
        found += check_window(n, m, config.adl.window, source=s, victim=v)
    return found


def _shared_axis(dataset: MultimodalDataset) -> bool:
    """Tell whether every modality of every sample has the same padded width and length."""
    for split in dataset.splits.values():
        first = split.modalities[0]
        for m in split.modalities[1:]:
            if split.features[m].shape[1] != split.features[first].shape[1]:
                return False
            if not np.array_equal(split.lengths[m], split.lengths[first]):
                return False
    return True


def pattern_results(
    outputs: np.ndarray,
    labels: np.ndarray,
    patterns: np.ndarray,
    task: str,
    order: Sequence[str] | None = None,
) -> dict[str, PatternResult]:
    """Test metrics overall and per pattern.

    Parameters
    ----------
    outputs : ndarray, shape (N, C)
    labels : ndarray, shape (N,)
    patterns : ndarray of str, shape (N,)
        Each sample's pattern name.
    task : str
    order : sequence of str, optional
        The order of the patterns (:func:`~mmalign.data.missingness.ordered_patterns`);
        default: by length, then alphabetically.

    Returns
    -------
    dict[str, PatternResult]
        ``"overall"``, then one entry per pattern present, in ``order``.
    """
    out = {"overall": PatternResult(len(labels), compute_metrics(outputs, labels, task))}
    found = set(patterns.tolist())
    names = (
        [p for p in order if p in found]
        if order is not None
        else sorted(found, key=lambda p: (len(p), p))
    )
    for name in names:
        rows = patterns == name
        out[name] = PatternResult(
            int(rows.sum()), compute_metrics(outputs[rows], labels[rows], task)
        )
    return out


def _floor_view(dataset: MultimodalDataset, plan: RandomMissingPlan) -> MultimodalDataset:
    """Return the dataset as the method sees it: absent modalities empty, kept steps first."""
    splits = {}
    for name, split in dataset.splits.items():
        seen = plan.missingness(dataset, name)
        features, lengths = {}, {}
        for m in split.modalities:
            keep = seen.valid_steps(split, m)  # (N, L_m)
            order = np.argsort(~keep, axis=1, kind="stable")  # kept steps first, in order
            x = np.take_along_axis(split.features[m], order[:, :, None], axis=1)
            lengths[m] = keep.sum(1).astype(np.int64)
            inside = np.arange(keep.shape[1])[None, :] < lengths[m][:, None]
            features[m] = np.where(inside[:, :, None], x, 0.0).astype(np.float32)
        splits[name] = Split(features, lengths, split.labels, split.ids)
    return MultimodalDataset(splits, dataset.task, dataset.n_classes, name=dataset.name)


def _sanity_floor(dataset: MultimodalDataset, plan: RandomMissingPlan) -> dict[str, Any]:
    """Ridge/logistic floor on pooled readable features of the present modalities."""
    from mmalign.evaluate.floor import sanity_floor

    view = _floor_view(dataset, plan)
    present = {
        m: {s: plan.missingness(dataset, s).present[:, k] for s in dataset.splits}
        for k, m in enumerate(dataset.modalities)
    }
    try:
        floor = sanity_floor(
            view, list(dataset.modalities), present=present, alpha=(0.1, 1.0, 10.0, 100.0)
        )
        return {SETTING: floor}
    except Exception as err:  # the floor is a diagnostic: never lose a finished run to it
        return {"error": f"{type(err).__name__}: {err}"}


def _pattern_warnings(results: dict[str, PatternResult]) -> list[DataWarning]:
    small = {k: r.n for k, r in results.items() if k != "overall" and r.n < MIN_PATTERN_SAMPLES}
    if not small:
        return []
    listed = ", ".join(f"{k} ({n})" for k, n in small.items())
    return [
        DataWarning(
            "pattern_small",
            f"test patterns with fewer than {MIN_PATTERN_SAMPLES} samples: {listed}; their "
            "metrics are noisy (compare them over several seeds).",
        )
    ]


def _pattern_counts(seen: SplitMissingness) -> str:
    names, counts = np.unique(seen.patterns(), return_counts=True)
    return " ".join(
        f"{n} {c}" for n, c in sorted(zip(names, counts), key=lambda x: (len(x[0]), x[0]))
    )


def train_and_test(
    config: RunConfig,
    dataset: MultimodalDataset,
    plan: RandomMissingPlan,
    folder: RunFolder,
    runlog: RunLog,
    saved: dict[str, Any] | None,
    started: float,
) -> RunResult:
    """Train ``plan``'s method and write the run folder; return the result."""
    import time

    device = resolve_device(config.device)
    folder.write_text("config.yaml", yaml.safe_dump(config_to_dict(config), sort_keys=False))
    plan.draw.save(folder / "missingness.json")
    n_train = len(dataset.splits["train"])
    meta = RunMeta(
        plan.method.name, "", "", 0.0, config.seed, dataset.name, 0, 0, plan.dims.output_dim,
        plan.dims.task, n_train, 0, device=str(device), torch_threads=torch.get_num_threads(),
        protocol=SETTING, missing_rate=float(config.missing_rate), frame_drop=config.frame_drop,
        modalities=tuple(plan.dims.input_dims), input_dims=tuple(plan.dims.input_dims.values()),
    )  # fmt: skip
    folder.write_text("model.json", json.dumps(meta.to_dict(), indent=2) + "\n")
    train_seen = plan.missingness(dataset, "train")
    runlog.line(
        f"{plan.method.name} random missing rate={config.missing_rate:g} frame_drop="
        f"{config.frame_drop:g} seed={config.seed} on {dataset.name}: training patterns "
        f"{_pattern_counts(train_seen)}; device {device}, {torch.get_num_threads()} thread(s)"
    )
    before = check_modalities(dataset, list(dataset.modalities))
    before += _window_warnings(config, dataset, plan)
    runlog.warn(before)
    torch.manual_seed(config.seed)
    model = plan.method.build_patterns(plan.dims, config)
    if config.model.standardize:
        _standardize(model, dataset, plan)
    model.set_victim_rates(_victim_rates(dataset, plan), shared_axis=_shared_axis(dataset))
    model = model.to(device)
    n_valid = len(dataset.splits["valid"])
    data = TrainData(
        plan.data(dataset, "train", device),
        np.arange(n_train),
        np.arange(0),
        plan.data(dataset, "valid", device),
        {SETTING: np.ones(n_valid, dtype=bool)},
    )
    state = fit_run(model, data, config, plan.method, folder, runlog, saved, meta.to_dict())
    test = dataset.splits["test"]
    model.load_state_dict(state.best_states[SETTING])
    outputs = predict_outputs(
        model, plan.data(dataset, "test", device), np.ones(len(test), bool),
        config.train.eval_batch_size,
    ).numpy()  # fmt: skip
    patterns = plan.draw.splits["test"].patterns()  # the drawn patterns, for UB too
    order = ordered_patterns(tuple(dataset.modalities))
    results = pattern_results(outputs, np.asarray(test.labels), patterns, dataset.task, order)
    settings = {
        SETTING: SettingResult(
            state.best_valid[SETTING], results["overall"].metrics, state.best_epochs[SETTING]
        )
    }
    floor = _sanity_floor(dataset, plan)
    last = state.history[-1] if state.history else {}
    after = check_ot_convergence(
        last.get("mixed/ot_unconverged", 0.0), config.adl.reg, config.adl.max_iter
    )
    after += _pattern_warnings(results)
    after += cap_warnings(state, config)
    name = PRIMARY_METRIC[dataset.task][0]
    ref = floor.get(SETTING, {}).get("test", {})
    if name in ref:
        after += check_floor(results["overall"].metrics[name], ref[name], dataset.task, metric=name)
    runlog.warn(after)
    meta = RunMeta(
        **{
            **meta.to_dict(),
            "epochs_run": len(state.history),
            "wall_s": time.perf_counter() - started,
        }
    )
    result = RunResult(
        folder.path, settings, floor, meta, patterns=results, **warning_fields(before + after)
    )
    folder.write_text("metrics.json", result.to_json())
    folder.write_text(
        "predictions.csv",
        predictions_csv(
            test.ids, test.labels, {SETTING: patterns}, {SETTING: outputs}, dataset.task, "pattern"
        ),
    )
    return result
