"""One run end to end: data, missing split, method, training, test metrics, run folder.

A run folder holds ``config.yaml`` (resolved), ``metrics.json`` (validation and test metrics
per setting, the sanity floor, timings), ``predictions.csv`` (per test sample and setting),
``checkpoint.pt`` (best weights per setting, weights only), ``model.json`` (what is needed to
rebuild the model) and ``train.log``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml

from mmalign.data.batching import PairData
from mmalign.data.dataset import MultimodalDataset, canonical_modality
from mmalign.data.splits import MissingSplit, make_missing_split
from mmalign.evaluate.metrics import compute_metrics
from mmalign.models.method import MissingModalityModel, PairDims
from mmalign.models.registry import get_method
from mmalign.train.checkpoint import atomic_write_bytes, load_checkpoint, save_checkpoint
from mmalign.train.config import RunConfig, apply_overrides, config_from_dict, config_to_dict
from mmalign.train.loop import fit, predict_outputs
from mmalign.validation import ConfigError

__all__ = [
    "RunResult",
    "load_run_data",
    "resolve_device",
    "resolve_pair",
    "build_model",
    "run_experiment",
    "run_spec",
    "default_run_dir",
]

_DATA_CACHE: dict[tuple, MultimodalDataset] = {}


@dataclass
class RunResult:
    """What :func:`run_experiment` returns: the run folder and its metrics."""

    run_dir: Path
    metrics: dict[str, Any]
    config: RunConfig


def _parse_synthetic(spec: str) -> dict[str, Any]:
    """``"synthetic"`` or ``"synthetic:n_train=200,task=classification"`` -> knobs dict."""
    _, _, rest = spec.partition(":")
    knobs: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"`data` knobs must look like key=value; got {item!r} in {spec!r}.")
        knobs[key.strip().replace("-", "_")] = value.strip()
    return knobs


def load_run_data(data: str, format: str = "", trusted: bool = False) -> MultimodalDataset:
    """Load (and cache per process) the dataset a run names.

    ``data`` is a path, ``"synthetic"`` or ``"synthetic:key=value,..."`` (knobs of
    :class:`~mmalign.data.synthetic.SyntheticConfig`).
    """
    key = (data, format, trusted)
    if key in _DATA_CACHE:
        return _DATA_CACHE[key]
    if data == "synthetic" or data.startswith("synthetic:"):
        import dataclasses

        from mmalign.data.synthetic import SyntheticConfig, make_synthetic

        types = {f.name: type(f.default) for f in dataclasses.fields(SyntheticConfig)}
        knobs = {}
        for name, value in _parse_synthetic(data).items():
            if name not in types:
                raise ConfigError(
                    f"unknown synthetic knob {name!r}; valid knobs are {sorted(types)}."
                )
            kind = types[name]
            knobs[name] = (value.lower() in ("1", "true", "yes")) if kind is bool else kind(value)
        dataset = make_synthetic(SyntheticConfig(**knobs))
    else:
        from mmalign.data.formats import load_dataset

        dataset = load_dataset(data, format=format or None, trusted=trusted)
    _DATA_CACHE[key] = dataset
    return dataset


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else as given (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"`device` must be available on this machine; got {name!r} but CUDA is not."
        )
    return torch.device(name)


def resolve_pair(config: RunConfig, dataset: MultimodalDataset) -> tuple[str, str]:
    """Full modality names of the configured pair, checked against the dataset."""
    source, victim = config.source_victim
    source = canonical_modality(source, dataset.modalities)
    victim = canonical_modality(victim, dataset.modalities)
    if source == victim:
        raise ConfigError(f"`pair` must name two different modalities; got {config.pair!r}.")
    return source, victim


def build_model(config: RunConfig, dims: PairDims) -> MissingModalityModel:
    """Instantiate the configured method (seeded by the split seed)."""
    torch.manual_seed(config.seed)
    return get_method(config.method).build(dims, config)


def default_run_dir(config: RunConfig, source: str, victim: str) -> Path:
    """``runs/<method>_<src>-<victim>_p<p>_s<seed>_<timestamp>``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return (
        Path("runs")
        / f"{config.method}_{source[0]}-{victim[0]}_p{config.p:g}_s{config.seed}_{stamp}"
    )


def _write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


def _predictions_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _prediction_rows(
    setting: str,
    ids: np.ndarray,
    labels: np.ndarray,
    present: np.ndarray,
    outputs: np.ndarray,
    task: str,
) -> list[dict[str, Any]]:
    """Per-sample prediction records (one dict per test sample)."""
    if task == "regression":
        preds = outputs[:, 0]
        return [
            {
                "setting": setting,
                "id": str(i),
                "victim_present": int(p),
                "label": float(y),
                "prediction": float(q),
            }
            for i, y, p, q in zip(ids, labels, present, preds)
        ]
    classes = outputs.argmax(1)
    return [
        {
            "setting": setting,
            "id": str(i),
            "victim_present": int(p),
            "label": int(y),
            "prediction": int(q),
        }
        for i, y, p, q in zip(ids, labels, present, classes)
    ]


def run_experiment(
    config: RunConfig,
    out_dir: str | Path | None = None,
    *,
    log: Callable[[str], None] | None = None,
    dataset: MultimodalDataset | None = None,
    resume: bool = False,
) -> RunResult:
    """Train and evaluate one method on one pair, survival rate and split seed.

    Parameters
    ----------
    config : RunConfig
    out_dir : path, optional
        Run folder (default :func:`default_run_dir`).
    log : callable, optional
        Receives log lines (default: print to stderr); every line also goes to ``train.log``.
    dataset : MultimodalDataset, optional
        Use this dataset instead of loading ``config.data``.
    resume : bool
        Continue an interrupted run in ``out_dir`` from its ``resume.pt`` (written after every
        epoch). The run's data, method, pair, ``p`` and seed must be unchanged; other options
        (e.g. more ``epochs``) may differ.

    Returns
    -------
    RunResult
    """
    config.validate()
    started = time.perf_counter()
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    dataset = (
        dataset
        if dataset is not None
        else load_run_data(config.data, config.format, config.trust_pickle)
    )
    source, victim = resolve_pair(config, dataset)
    method = get_method(config.method)
    run_dir = Path(out_dir) if out_dir else default_run_dir(config, source, victim)
    state = _load_resume_state(run_dir, config) if resume else None
    run_dir.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def emit(line: str) -> None:
        lines.append(line)
        (log or (lambda s: print(s, file=sys.stderr)))(line)

    device = resolve_device(config.device)
    split: MissingSplit = make_missing_split(dataset, victim, config.p, config.seed)
    _write_text(run_dir / "config.yaml", yaml.safe_dump(config_to_dict(config), sort_keys=False))
    split.save(run_dir / "split.json")
    n_train = len(dataset.splits["train"])
    if method.complete_data:
        complete_idx, missing_idx = np.arange(n_train), np.arange(0)
        train_present = np.ones(n_train, dtype=bool)
        settings = {
            "complete": {s: np.ones(len(dataset.splits[s]), dtype=bool) for s in ("valid", "test")}
        }
    else:
        complete_idx, missing_idx = split.train_complete, split.train_missing
        train_present = split.present("train", "A")
        settings = {st: {s: split.present(s, st) for s in ("valid", "test")} for st in ("A", "B")}

    def pair_for(name: str, present: np.ndarray) -> PairData:
        return PairData.from_split(dataset.splits[name], source, victim, present=present).to(device)

    union = {s: np.any([settings[st][s] for st in settings], axis=0) for s in ("valid", "test")}
    train_pair = pair_for("train", train_present)
    valid_pair, test_pair = pair_for("valid", union["valid"]), pair_for("test", union["test"])
    dims = PairDims(
        dataset.feature_dims[source], dataset.feature_dims[victim], dataset.output_dim, dataset.task
    )
    model = build_model(config, dims).to(device)
    generator = torch.Generator().manual_seed(config.seed)
    emit(
        f"{config.method} {source}->{victim} p={config.p:g} seed={config.seed} on {dataset.name}: "
        f"{len(complete_idx)} complete / {len(missing_idx)} missing training samples, device {device}"
    )
    meta = {
        "method": method.name,
        "source": source,
        "victim": victim,
        "p": config.p,
        "seed": config.seed,
        "dims": {
            "source_dim": dims.source_dim,
            "victim_dim": dims.victim_dim,
            "output_dim": dims.output_dim,
            "task": dims.task,
        },
        "dataset": dataset.name,
    }
    _write_text(run_dir / "model.json", json.dumps(meta, indent=2))

    def on_improve(setting: str, epoch: int, state: dict) -> None:
        best[setting] = state
        save_checkpoint(run_dir / "checkpoint.pt", dict(best), {**meta, "partial": True})

    best: dict[str, dict] = {}
    result = fit(
        model,
        train_pair,
        complete_idx,
        missing_idx,
        valid_pair,
        {st: settings[st]["valid"] for st in settings},
        config.train,
        generator=generator,
        log=emit,
        on_improve=on_improve,
        on_epoch_end=lambda snap: save_checkpoint(run_dir / "resume.pt", {}, snap),
        resume=state,
        progress=config.progress,
    )
    save_checkpoint(
        run_dir / "checkpoint.pt", result.best_states, {**meta, "best_epochs": result.best_epochs}
    )
    metrics: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    test_split = dataset.splits["test"]
    for setting, present in settings.items():
        model.load_state_dict(result.best_states[setting])
        outputs = predict_outputs(
            model, test_pair, present["test"], config.train.eval_batch_size
        ).numpy()
        metrics[setting] = {
            "valid": result.best_valid[setting],
            "test": compute_metrics(outputs, test_split.labels, dataset.task),
            "best_epoch": result.best_epochs[setting],
        }
        rows += _prediction_rows(
            setting, test_split.ids, test_split.labels, present["test"], outputs, dataset.task
        )
    if method.complete_data:  # the upper bound reports the same numbers under both settings
        metrics["A"] = metrics["B"] = metrics.pop("complete")
    metrics["floor"] = _sanity_floor(dataset, source, victim, split, method.complete_data)
    metrics["meta"] = {
        **meta,
        "n_complete": int(len(complete_idx)),
        "n_missing": int(len(missing_idx)),
        "epochs_run": len(result.history),
        "wall_s": time.perf_counter() - started,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
    }
    _write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2, default=float))
    _write_text(run_dir / "predictions.csv", _predictions_csv(rows))
    _write_text(run_dir / "history.json", json.dumps(result.history, indent=1, default=float))
    _write_text(run_dir / "train.log", "\n".join(lines) + "\n")
    return RunResult(run_dir, metrics, config)


IDENTITY_KEYS = ("data", "format", "pair", "p", "seed", "method")


def _load_resume_state(run_dir: Path, config: RunConfig) -> dict[str, Any]:
    """Load the training state saved in ``run_dir/resume.pt``, checked against ``config``."""
    path = run_dir / "resume.pt"
    if not path.is_file():
        raise ConfigError(f"`resume` needs {path}, written after every epoch; it does not exist.")
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    for key in IDENTITY_KEYS:
        if saved.get(key) != getattr(config, key):
            raise ConfigError(
                f"`{key}` must match the run being resumed ({saved.get(key)!r}); "
                f"got {getattr(config, key)!r}."
            )
    _, state = load_checkpoint(path)
    return state


def _sanity_floor(
    dataset: MultimodalDataset, source: str, victim: str, split: MissingSplit, complete: bool
) -> dict[str, Any]:
    """Ridge/logistic floor on time-pooled features of the modalities the method may use.

    ``source_only`` is the floor of the lower bound; ``pair_A`` / ``pair_B`` use the victim
    where the run's split has it (complete training rows; the setting's valid/test masks);
    the upper bound gets ``both`` (victim everywhere). The ridge strength is chosen on
    validation from a small grid.
    """
    from mmalign.evaluate.floor import sanity_floor

    alphas = (0.1, 1.0, 10.0, 100.0)
    try:
        floor = {"source_only": sanity_floor(dataset, [source], alpha=alphas)}
        if complete:
            floor["both"] = sanity_floor(dataset, [source, victim], alpha=alphas)
            return floor
        for setting in ("A", "B"):
            present = {victim: {s: split.present(s, setting) for s in ("train", "valid", "test")}}
            floor[f"pair_{setting}"] = sanity_floor(
                dataset, [source, victim], present=present, alpha=alphas
            )
        return floor
    except Exception as err:  # the floor is a diagnostic: never lose a finished run to it
        return {"error": f"{type(err).__name__}: {err}"}


def run_spec(spec: Any, run_dir: Path) -> dict[str, Any]:
    """Grid entry point: run one :class:`~mmalign.experiments.spec.RunSpec` into ``run_dir``."""
    config = config_from_dict(dict(spec.config or {}))
    config = apply_overrides(
        config,
        {
            "data": spec.data,
            "method": spec.method,
            "pair": f"{spec.source}:{spec.victim}",
            "p": spec.p,
            "seed": spec.seed,
            "progress": False,
        },
    )
    threads = os.environ.get("MMALIGN_THREADS")
    if threads and config.threads == 0:
        config = apply_overrides(config, {"threads": int(threads)})
    return run_experiment(config, run_dir, log=lambda s: None).metrics
