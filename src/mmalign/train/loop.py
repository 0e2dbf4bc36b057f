"""The one training loop: epochs of passes over the training splits, selection per setting.

Implements Algorithm 1 (denoising training) of MM-Align (Han et al., EMNLP 2022) for every
method. The loop knows no method: a method says which passes an epoch makes
(:meth:`~mmalign.models.method.MissingModalityModel.epoch_passes`), what its losses are
(``compute_losses``) and what its log line shows (``epoch_summary``). Model selection and
early stopping use the *validation* set under each test setting (the official code selected
on the test set; we never do), so settings A and B share one training run and each keeps its
own best checkpoint.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from mmalign.config import TrainConfig
from mmalign.data.batching import PairData, iterate_batches
from mmalign.data.pattern_batching import PatternData
from mmalign.evaluate.metrics import PRIMARY_METRIC, compute_metrics
from mmalign.models.losses import task_loss
from mmalign.models.method import Losses, MissingModalityModel, Pass
from mmalign.models.pattern_method import PatternModel
from mmalign.train.state import TrainState
from mmalign.validation import MMAlignError

__all__ = [
    "TrainingError",
    "TrainData",
    "build_optimizers",
    "train_step",
    "predict_outputs",
    "predict_settings",
    "resolve_selection",
    "selection_score",
    "validation_metrics",
    "fit",
]


class TrainingError(MMAlignError):
    """Training cannot go on (for example the loss became NaN)."""


@dataclass
class TrainData:
    """The tensors one training run iterates.

    Attributes
    ----------
    train : PairData or PatternData
        Training split (victim zeroed where absent; for the random-missing protocol every
        modality, each sample with its own pattern).
    complete_index, missing_index : ndarray of int
        Rows of the complete and the missing training split (random-missing protocol: every
        training row is "complete", the ``mixed`` passes visit them, none is "missing").
    valid : PairData or PatternData
    valid_present : dict[str, ndarray]
        Setting -> (N_valid,) bool, where the victim is present under that setting (the
        random-missing protocol's one setting: the samples carry their own presence).
    """

    train: PairData | PatternData
    complete_index: np.ndarray
    missing_index: np.ndarray
    valid: PairData | PatternData
    valid_present: dict[str, np.ndarray]

    def rows(self, p: Pass) -> np.ndarray:
        """Training rows a pass iterates."""
        return self.missing_index if p.phase == "missing" else self.complete_index


def build_optimizers(
    model: MissingModalityModel | PatternModel,
    learning_rates: Mapping[str, float],
    weight_decay: float = 0.0,
    log: Callable[[str], None] = print,
) -> dict[str, torch.optim.Optimizer]:
    """One AdamW per parameter group of the model.

    Rule: the model names its groups (:meth:`parameter_groups`, selected by module, never by
    position in ``parameters()``); ``learning_rates`` maps a group to its rate, ``"*"`` to
    the rate of every other group (see :meth:`MethodSpec.learning_rates`).
    """
    optimizers = {}
    for name, params in model.parameter_groups().items():
        if params:
            lr = learning_rates.get(name, learning_rates["*"])
            optimizers[name] = torch.optim.AdamW(
                params, lr=lr, weight_decay=weight_decay, foreach=True
            )
            log(f"optimiser {name!r}: {sum(p.numel() for p in params):,} parameters, lr {lr:g}")
    return optimizers


def train_step(
    model: MissingModalityModel | PatternModel,
    losses: Losses,
    optimizers: dict[str, torch.optim.Optimizer],
    groups: tuple[str, ...] | None,
    grad_clip: float,
) -> None:
    """Step each group of ``model.group_order`` that has a loss (and is in ``groups``).

    Each group's loss is differentiated with respect to that group's parameters only, and
    every gradient is taken before any optimiser steps. So a loss may read another group's
    parameters (MM-Align's imputed path reads the fitter's) without giving them gradients,
    and without an in-place step invalidating its graph; no work is spent on gradients that
    no optimiser uses.
    """
    todo = [
        g
        for g in model.group_order
        if g in losses.step and g in optimizers and (groups is None or g in groups)
    ]
    model.zero_grad(set_to_none=True)
    for i, group in enumerate(todo):
        params = [p for pg in optimizers[group].param_groups for p in pg["params"]]
        grads = torch.autograd.grad(
            losses.step[group], params, retain_graph=i < len(todo) - 1, allow_unused=True
        )
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
    for group in todo:
        optimizers[group].step()


@torch.no_grad()
def predict_outputs(
    model: MissingModalityModel | PatternModel, pair: PairData, present: np.ndarray, batch_size: int
) -> Tensor:
    """Model outputs (N, C) for a whole split, the victim present where ``present`` (N,) is True."""
    return predict_settings(model, pair, {"": present}, batch_size)[""]


@torch.no_grad()
def predict_settings(
    model: MissingModalityModel | PatternModel,
    pair: PairData | PatternData,
    present: Mapping[str, np.ndarray],
    batch_size: int,
) -> dict[str, Tensor]:
    """Return outputs (N, C) per setting; the settings differ only in where the victim is present.

    One pass over the split: each batch is encoded and imputed once
    (:meth:`~mmalign.models.method.MissingModalityModel.predict_settings`).
    """
    model.eval()
    has = {s: torch.as_tensor(p, dtype=torch.bool, device=pair.device) for s, p in present.items()}
    anywhere = torch.stack(list(has.values())).any(0)  # (N,)
    outputs: dict[str, list[Tensor]] = {s: [] for s in has}
    for start in range(0, len(pair), batch_size):
        index = torch.arange(start, min(start + batch_size, len(pair)), device=pair.device)
        batch = pair.batch(index, anywhere[index])
        for s, out in model.predict_settings(batch, {s: h[index] for s, h in has.items()}).items():
            outputs[s].append(out.float())
    return {s: torch.cat(o).cpu() for s, o in outputs.items()}


def resolve_selection(selection: str, task: str) -> str:
    """Return ``"metric"`` or ``"loss"`` for :attr:`~mmalign.config.TrainConfig.selection`.

    ``"auto"`` is ``"loss"`` for classification and ``"metric"`` (MAE) for regression.

    >>> resolve_selection("auto", "classification"), resolve_selection("auto", "regression")
    ('loss', 'metric')
    """
    if selection == "auto":
        return "loss" if task == "classification" else "metric"
    return selection


def selection_score(metrics: dict[str, float], task: str, selection: str = "auto") -> float:
    """Return the selection score (lower is better) of a metrics dict; ``inf`` when not finite.

    ``selection`` is :attr:`~mmalign.config.TrainConfig.selection`: ``"metric"`` scores the
    task's primary metric (:data:`~mmalign.evaluate.metrics.PRIMARY_METRIC`), ``"loss"`` the
    validation task loss that :func:`fit` stores under ``"loss"``, ``"auto"`` the loss for
    classification and the metric for regression.

    >>> selection_score({"f1_weighted": 0.6, "loss": 1.2}, "classification", "metric")
    -0.6
    >>> selection_score({"f1_weighted": 0.6, "loss": 1.2}, "classification")
    1.2
    """
    if resolve_selection(selection, task) == "loss":
        name, direction = "loss", "min"
    else:
        name, direction = PRIMARY_METRIC[task]
    value = metrics[name]
    if not math.isfinite(value):
        return math.inf
    return value if direction == "min" else -value


def validation_metrics(outputs: Tensor, labels: Tensor, task: str) -> dict[str, float]:
    """Return the task's metrics of validation ``outputs`` plus ``"loss"``, the task loss.

    ``outputs`` are (N, 1) predictions or (N, C) logits, ``labels`` (N,); the loss is
    :func:`~mmalign.models.losses.task_loss` (MSE, or cross-entropy for classes).
    """
    metrics = compute_metrics(outputs.numpy(), labels.numpy(), task)
    metrics["loss"] = float(task_loss(outputs, labels, task))
    return metrics


def _run_epoch(model, data, passes, optimizers, config, generator, bar) -> dict[str, float]:
    """Train one epoch; return the mean of every stepped and logged loss by ``phase/name``."""
    model.train()
    sums: dict[str, Tensor] = {}
    counts: dict[str, int] = {}
    for p in passes:
        has_victim = False if p.phase == "missing" else None
        rows = data.rows(p)
        for batch in iterate_batches(
            data.train,
            rows,
            config.batch_size,
            shuffle=True,
            generator=generator,
            has_victim=has_victim,
        ):
            losses = model.compute_losses(batch, p.phase)
            train_step(model, losses, optimizers, p.groups, config.grad_clip)
            for key, value in {**losses.step, **losses.logged}.items():
                name = f"{p.phase}/{key}"
                sums[name] = sums.get(name, 0.0) + value.detach().float()
                counts[name] = counts.get(name, 0) + 1
            bar.update(1)
    means = {k: float(v) / counts[k] for k, v in sums.items()}
    bad = [k for k, v in means.items() if not math.isfinite(v)]
    if bad:
        raise TrainingError(
            f"the training loss became non-finite ({', '.join(bad)}); try a lower learning "
            "rate (--lr-main / --lr-fit) or stronger gradient clipping (--grad-clip)."
        )
    return means


def fit(
    model: MissingModalityModel | PatternModel,
    data: TrainData,
    config: TrainConfig,
    learning_rates: Mapping[str, float],
    *,
    generator: torch.Generator,
    log: Callable[[str], None] = print,
    on_epoch: Callable[[TrainState, dict[str, Any]], None] | None = None,
    resume: dict[str, Any] | None = None,
    progress: bool = True,
) -> TrainState:
    """Train ``model`` by Algorithm 1 and keep the best validation state per setting.

    ``on_epoch(state, snapshot)`` runs after every epoch with the :class:`TrainState` and its
    :meth:`~TrainState.snapshot` (save it to resume after a crash); ``resume`` is such a
    snapshot: training continues after its epoch exactly as if it had not stopped.
    ``generator`` drives the batch order.
    """
    optimizers = build_optimizers(model, learning_rates, config.weight_decay, log)
    schedulers = {
        name: torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=config.lr_decay, patience=config.lr_patience
        )
        for name, opt in optimizers.items()
    }
    state = TrainState(tuple(data.valid_present))
    if resume is not None:
        state = TrainState.restore(resume, model, optimizers, schedulers, generator)
        log(f"resumed after epoch {state.epoch}")
    total = config.warmup_epochs + config.epochs
    selection = resolve_selection(config.selection, model.task)
    shown = [PRIMARY_METRIC[model.task][0]] + (["loss"] if selection == "loss" else [])
    while state.epoch < total and not state.stopped:
        warm = state.epoch < config.warmup_epochs
        start, passes = time.perf_counter(), model.epoch_passes(warm)
        n_batches = sum(math.ceil(len(data.rows(p)) / config.batch_size) for p in passes)
        title = f"epoch {state.epoch + 1}/{total}" + (" (warm-up)" if warm else "")
        with tqdm(
            total=n_batches, desc=title, disable=None if progress else True, leave=False
        ) as bar:
            record = {"epoch": state.epoch + 1, "warmup": warm}
            record.update(_run_epoch(model, data, passes, optimizers, config, generator, bar))
        state.epoch += 1
        scores, improved = [], False
        valid_outputs = predict_settings(
            model, data.valid, data.valid_present, config.eval_batch_size
        )
        for setting, outputs in valid_outputs.items():
            metrics = validation_metrics(outputs, data.valid.labels.cpu(), model.task)
            record[f"valid_{setting}"] = metrics
            scores.append(selection_score(metrics, model.task, selection))
            improved |= not warm and state.improve(setting, scores[-1], model, metrics)
        record["lr"] = {n: o.param_groups[0]["lr"] for n, o in optimizers.items()}
        record["seconds"] = time.perf_counter() - start
        state.history.append(record)
        valid = "  ".join(
            f"valid {s} {name} {record[f'valid_{s}'][name]:.4f}"
            for s in data.valid_present
            for name in shown
        )
        log(f"{title}  {model.epoch_summary(record)}  {valid}  {record['seconds']:.1f}s")
        if not warm:
            finite = [s for s in scores if math.isfinite(s)]
            for scheduler in schedulers.values():
                scheduler.step(float(np.mean(finite)) if finite else 0.0)
            state.stale = 0 if improved else state.stale + 1
            state.stopped = state.stale >= config.patience
            if state.stopped:
                log(f"early stop: no validation improvement for {config.patience} epochs")
        if on_epoch is not None:
            on_epoch(state, state.snapshot(model, optimizers, schedulers, generator))
    if not state.best_states:
        state.keep_final(model)
    return state
