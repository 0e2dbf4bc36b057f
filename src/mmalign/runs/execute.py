"""One run end to end: data, missing split, method, training, test metrics, run folder.

:func:`run` is ``mmalign.run``; :func:`run_spec` is the grid runner that every experiment
engine calls (``docs/experiments.md``). Both return the same typed :class:`RunResult`
(the runner returns its dict), which is also ``metrics.json``.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from mmalign.config import (
    RunConfig,
    apply_overrides,
    check_protocol,
    config_from_dict,
    config_to_dict,
)
from mmalign.data.batching import PairData
from mmalign.data.checks import (
    DataQualityWarning,
    DataWarning,
    check_floor,
    check_modalities,
    check_ot_convergence,
    check_resampling,
    check_split_sizes,
    check_window,
)
from mmalign.data.dataset import MultimodalDataset, canonical_modality
from mmalign.data.spec import DataSpec
from mmalign.data.splits import MissingSplit, make_missing_split
from mmalign.data.statistics import step_statistics
from mmalign.evaluate.metrics import PRIMARY_METRIC, compute_metrics
from mmalign.models.method import MissingModalityModel, PairDims
from mmalign.models.registry import MethodSpec, get_method, options_for
from mmalign.runs.device import apply_threads, resolve_device
from mmalign.runs.fitting import cap_warnings, fit_run
from mmalign.runs.folder import RunFolder, default_random_run_dir, default_run_dir
from mmalign.runs.log import RunLog
from mmalign.runs.predictions import predictions_csv
from mmalign.runs.random_missing import RandomMissingPlan
from mmalign.runs.random_missing import train_and_test as train_random
from mmalign.runs.result import RunMeta, RunResult, SettingResult, warning_fields
from mmalign.train.checkpoint import load_checkpoint
from mmalign.train.loop import TrainData, predict_outputs
from mmalign.validation import ConfigError

__all__ = [
    "run",
    "run_spec",
    "load_data",
    "build_model",
    "standardize_inputs",
    "set_victim_rate",
    "RunPlan",
    "IDENTITY_KEYS",
]

#: Options a resumed run must share with the run it continues.
IDENTITY_KEYS = (
    "data", "format", "task", "label_key", "pair", "p", "seed", "method",
    "missing_rate", "frame_drop", "drop_burst",
)  # fmt: skip


def load_data(config: RunConfig) -> MultimodalDataset:
    """Load (cached per process) the dataset ``config.data`` names."""
    return DataSpec.parse(config.data).load(
        config.format, config.trust_pickle, task=config.task, label_key=config.label_key
    )


def build_model(config: RunConfig, dims: PairDims) -> MissingModalityModel:
    """Instantiate the configured method, initialised from the split seed."""
    torch.manual_seed(config.seed)
    return get_method(config.method).build(dims, config)


def standardize_inputs(
    model: MissingModalityModel, dataset: MultimodalDataset, plan: "RunPlan"
) -> None:
    """Set the encoders' input statistics from the training samples that hold each modality.

    The source is seen in every training sample, the victim only in the complete ones: no
    statistic comes from validation, test or absent data.
    """
    train = dataset.splits["train"]
    for encoder, modality, rows in (
        (model.backbone.source_encoder, plan.source, None),
        (model.backbone.victim_encoder, plan.victim, plan.complete),
    ):
        mean, std = step_statistics(train, modality, rows)
        encoder.set_input_statistics(torch.from_numpy(mean), torch.from_numpy(std))


def set_victim_rate(
    model: MissingModalityModel, dataset: MultimodalDataset, plan: "RunPlan"
) -> None:
    """Give a model that imputes on the victim's own axis its length rule (median ``Lv / Ls``).

    The ratio is taken over the complete training samples with both lengths > 0; it is 1
    for aligned data. Methods that do not impute on the victim's axis ignore it.
    """
    if not plan.method.own_axis:
        return
    train = dataset.splits["train"]
    n = np.asarray(train.lengths[plan.source])[plan.complete]
    m = np.asarray(train.lengths[plan.victim])[plan.complete]
    keep = (n > 0) & (m > 0)
    if keep.any():
        model.set_victim_rate(float(np.median(m[keep] / n[keep])))


@dataclass(frozen=True)
class RunPlan:
    """What one run trains on: the pair, the method, the missing split and the settings.

    Attributes
    ----------
    source, victim : str
    method : MethodSpec
    split : MissingSplit
    complete, missing : ndarray of int
        Training rows with and without the victim.
    present : dict[str, dict[str, ndarray]]
        Setting -> split name (``train``, ``valid``, ``test``) -> (N,) bool.
    dims : PairDims
    """

    source: str
    victim: str
    method: MethodSpec
    split: MissingSplit
    complete: np.ndarray
    missing: np.ndarray
    present: dict[str, dict[str, np.ndarray]]
    dims: PairDims

    @classmethod
    def make(cls, config: RunConfig, dataset: MultimodalDataset) -> "RunPlan":
        """Resolve the pair against the dataset and draw the missing split."""
        source, victim = (canonical_modality(m, dataset.modalities) for m in config.source_victim)
        if source == victim:
            raise ConfigError(f"`pair` must name two different modalities; got {config.pair!r}.")
        method = get_method(config.method)
        split = make_missing_split(dataset, victim, config.p, config.seed)
        sizes = {s: len(dataset.splits[s]) for s in ("train", "valid", "test")}
        if method.complete_data:  # the upper bound: the victim everywhere, one setting
            present = {"complete": {s: np.ones(n, bool) for s, n in sizes.items()}}
            complete, missing = np.arange(sizes["train"]), np.arange(0)
        else:
            present = {st: {s: split.present(s, st) for s in sizes} for st in ("A", "B")}
            complete, missing = split.train_complete, split.train_missing
        dims = PairDims(
            dataset.feature_dims[source],
            dataset.feature_dims[victim],
            dataset.output_dim,
            dataset.task,
        )
        return cls(source, victim, method, split, complete, missing, present, dims)

    def train_data(self, dataset: MultimodalDataset, device: torch.device) -> TrainData:
        """Return what the loop trains on: the training split and validation per setting."""
        return TrainData(
            self.pair_data(dataset, "train", device),
            self.complete,
            self.missing,
            self.pair_data(dataset, "valid", device),
            {st: p["valid"] for st, p in self.present.items()},
        )

    def pair_data(self, dataset: MultimodalDataset, name: str, device: torch.device) -> PairData:
        """Tensors of split ``name``, the victim kept where any setting has it."""
        present = np.any([p[name] for p in self.present.values()], axis=0)
        split = dataset.splits[name]
        resample = not self.method.own_axis
        pair = PairData.from_split(split, self.source, self.victim, present, resample=resample)
        return pair.to(device)


def _data_warnings(
    config: RunConfig, dataset: MultimodalDataset, plan: RunPlan
) -> list[DataWarning]:
    found = check_modalities(dataset, [plan.source, plan.victim])
    if not plan.method.complete_data:
        found += check_split_sizes(len(plan.complete), len(plan.missing), config.train.batch_size)
    train = dataset.splits["train"]
    if plan.method.own_axis:  # the victim keeps its own time axis: nothing is resampled
        if "window" in plan.method.options:
            found += check_window(
                train.lengths[plan.source][plan.complete],
                train.lengths[plan.victim][plan.complete],
                config.adl.window,
                source=plan.source,
                victim=plan.victim,
            )
        return found
    found += check_resampling(
        train.lengths[plan.source][plan.complete],
        train.lengths[plan.victim][plan.complete],
        source=plan.source,
        victim=plan.victim,
    )
    return found


def _sanity_floor(dataset: MultimodalDataset, plan: RunPlan) -> dict[str, Any]:
    """Ridge/logistic floor on pooled features of the modalities the method may use.

    ``source_only`` is the lower bound's floor; ``pair_A`` / ``pair_B`` use the victim where
    the run's split has it; the upper bound gets ``both``. The L2 strength is chosen on
    validation.
    """
    from mmalign.evaluate.floor import sanity_floor

    alphas = (0.1, 1.0, 10.0, 100.0)
    both = [plan.source, plan.victim]
    try:
        floor = {"source_only": sanity_floor(dataset, [plan.source], alpha=alphas)}
        if plan.method.complete_data:
            floor["both"] = sanity_floor(dataset, both, alpha=alphas)
        else:
            for setting, present in plan.present.items():
                floor[f"pair_{setting}"] = sanity_floor(
                    dataset, both, present={plan.victim: present}, alpha=alphas
                )
        return floor
    except Exception as err:  # the floor is a diagnostic: never lose a finished run to it
        return {"error": f"{type(err).__name__}: {err}"}


def _floor_warnings(result: dict[str, SettingResult], floor: dict, plan: RunPlan, task: str):
    name = PRIMARY_METRIC[task][0]
    found = []
    for setting, res in result.items():
        ref = floor.get(plan.method.floor_key(setting))
        if isinstance(ref, dict) and name in ref.get("test", {}):
            for w in check_floor(res.test[name], ref["test"][name], task, metric=name):
                found.append(DataWarning(w.code, f"setting {setting}: {w.message}"))
    return found


def _resume_state(folder: RunFolder, config: RunConfig) -> dict[str, Any]:
    saved = yaml.safe_load((folder / "config.yaml").read_text())
    for key in IDENTITY_KEYS:
        if saved.get(key, getattr(RunConfig(), key)) != getattr(config, key):
            raise ConfigError(
                f"`{key}` must match the run being resumed ({saved.get(key)!r}); "
                f"got {getattr(config, key)!r}."
            )
    return load_checkpoint(folder / "resume.pt")[1]


def run(
    config: RunConfig | None = None,
    out: str | Path | None = None,
    *,
    dataset: MultimodalDataset | None = None,
    resume: bool = False,
    log: Callable[[str], None] | None = None,
    **options: Any,
) -> RunResult:
    """Train and evaluate one method on one pair, survival rate and split seed.

    Parameters
    ----------
    config : RunConfig, optional
        The run's options (default: every default).
    out : path, optional
        Run folder (default ``runs/<method>_<pair>_p<p>_s<seed>_<time>``). It must not hold
        another run, unless ``resume``.
    dataset : MultimodalDataset, optional
        Use this dataset instead of loading ``config.data``.
    resume : bool
        Continue the interrupted run in ``out`` from its ``resume.pt``; data, method, pair,
        ``p`` and seed must be unchanged, other options (e.g. more ``epochs``) may differ.
    log : callable, optional
        Receives each log line (default: stderr); every line also goes to ``train.log``.
    **options
        Options overriding ``config``, by flat name (``epochs=5``, ``pair="a:t"``).

    Returns
    -------
    RunResult
    """
    check_protocol(options)
    config = apply_overrides(config or RunConfig(), options).validate()
    started = time.perf_counter()
    apply_threads(config.threads)
    dataset = dataset if dataset is not None else load_data(config)
    if config.random_missing:
        plan: Any = RandomMissingPlan.make(config, dataset)
        default = default_random_run_dir(plan.method.name, config.missing_rate, config.seed)
        train_and_test: Callable[..., RunResult] = train_random
    else:
        plan = RunPlan.make(config, dataset)
        default = default_run_dir(plan.method.name, plan.source, plan.victim, config.p, config.seed)
        train_and_test = _train_and_test
    folder = RunFolder(out or default, resume=resume)
    try:
        saved = _resume_state(folder, config) if resume else None
        echo = log or (lambda s: print(s, file=sys.stderr))
        with RunLog(
            folder.path, echo=echo, resume=resume, resume_epoch=saved and saved["epoch"]
        ) as runlog:
            result = train_and_test(config, dataset, plan, folder, runlog, saved, started)
    except BaseException:
        folder.discard_if_unused()
        raise
    return result


def _train_and_test(config, dataset, plan, folder, runlog, saved, started) -> RunResult:
    device = resolve_device(config.device)
    folder.write_text("config.yaml", yaml.safe_dump(config_to_dict(config), sort_keys=False))
    plan.split.save(folder / "split.json")
    meta = RunMeta(
        plan.method.name, plan.source, plan.victim, config.p, config.seed, dataset.name,
        plan.dims.source_dim, plan.dims.victim_dim, plan.dims.output_dim, plan.dims.task,
        len(plan.complete), len(plan.missing), device=str(device), torch_threads=torch.get_num_threads(),
    )  # fmt: skip
    folder.write_text("model.json", json.dumps(meta.to_dict(), indent=2) + "\n")
    before = _data_warnings(config, dataset, plan)
    runlog.line(
        f"{plan.method.name} {plan.source}->{plan.victim} p={config.p:g} seed={config.seed} on "
        f"{dataset.name}: {len(plan.complete)} complete / {len(plan.missing)} missing training "
        f"samples, device {device}, {torch.get_num_threads()} thread(s)"
    )
    runlog.warn(before)
    model = build_model(config, plan.dims)
    if config.model.standardize:
        standardize_inputs(model, dataset, plan)
    set_victim_rate(model, dataset, plan)
    model = model.to(device)
    data = plan.train_data(dataset, device)
    state = fit_run(model, data, config, plan.method, folder, runlog, saved, meta.to_dict())
    test_pair, test = plan.pair_data(dataset, "test", device), dataset.splits["test"]
    settings, outputs = {}, {}
    for setting, present in plan.present.items():
        model.load_state_dict(state.best_states[setting])
        outputs[setting] = predict_outputs(
            model, test_pair, present["test"], config.train.eval_batch_size
        ).numpy()
        metrics = compute_metrics(outputs[setting], test.labels, dataset.task)
        settings[setting] = SettingResult(
            state.best_valid[setting], metrics, state.best_epochs[setting]
        )
    if plan.method.complete_data:  # the upper bound reports its numbers under both settings
        settings = {"A": settings["complete"], "B": settings["complete"]}
        outputs = {"A": outputs["complete"], "B": outputs["complete"]}
    floor = _sanity_floor(dataset, plan)
    last = state.history[-1] if state.history else {}
    after = check_ot_convergence(
        last.get("complete/ot_unconverged", 0.0), config.adl.reg, config.adl.max_iter
    )
    after += _floor_warnings(settings, floor, plan, dataset.task)
    after += cap_warnings(state, config)
    runlog.warn(after)
    meta = RunMeta(
        **{
            **meta.to_dict(),
            "epochs_run": len(state.history),
            "wall_s": time.perf_counter() - started,
        }
    )
    result = RunResult(folder.path, settings, floor, meta, **warning_fields(before + after))
    folder.write_text("metrics.json", result.to_json())
    present = {s: plan.present.get(s, plan.present.get("complete"))["test"] for s in settings}
    folder.write_text(
        "predictions.csv", predictions_csv(test.ids, test.labels, present, outputs, dataset.task)
    )
    return result


def run_spec(spec: Any, run_dir: Path, threads: int) -> dict[str, Any]:
    """Grid runner: run one :class:`~mmalign.experiments.spec.RunSpec` into ``run_dir``.

    ``threads`` is the worker's torch thread count (the engine's share of the cores).
    Returns the ``metrics.json`` dict.
    """
    # options that do not apply to this method (a grid-wide --set window=4 for LB) are dropped
    config = config_from_dict(options_for(spec.method, dict(spec.config or {})))
    identity = {"data": spec.data, "method": spec.method, "seed": spec.seed}
    if not config.random_missing:  # the random-missing protocol has no pair and no p
        identity.update(pair=f"{spec.source}:{spec.victim}", p=spec.p)
    config = apply_overrides(config, {**identity, "progress": False, "threads": threads})
    with warnings.catch_warnings():  # recorded in metrics.json's "warnings" instead
        warnings.simplefilter("ignore", DataQualityWarning)
        return run(config, run_dir, log=lambda s: None).to_dict()
