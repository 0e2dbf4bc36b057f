"""The one training loop: warm-up, complete then missing batches, selection per setting.

Implements Algorithm 1 (denoising training) of MM-Align (Han et al., EMNLP 2022) for every
method: methods differ only through :meth:`MissingModalityModel.compute_losses`. Model
selection and early stopping use the *validation* set under each test setting (the official
code selected on the test set; we never do), so settings A and B share one training run and
each keeps its own best checkpoint.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from mmalign.data.batching import Batch, PairData, iterate_batches
from mmalign.evaluate.metrics import PRIMARY_METRIC, compute_metrics
from mmalign.models.method import MissingModalityModel, Phase
from mmalign.train.config import TrainConfig
from mmalign.validation import MMAlignError

__all__ = ["TrainingError", "FitResult", "build_optimizers", "train_step", "predict_outputs", "fit"]


class TrainingError(MMAlignError):
    """Training cannot go on (for example the loss became NaN)."""


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    best_states : dict[str, dict[str, Tensor]]
        Setting -> state dict (on CPU) of the epoch with the best validation metric.
    best_epochs : dict[str, int]
    best_valid : dict[str, dict[str, float]]
        Setting -> validation metrics at the best epoch.
    history : list[dict]
        One record per epoch (losses, validation metrics, learning rates, seconds).
    """

    best_states: dict[str, dict[str, Tensor]]
    best_epochs: dict[str, int]
    best_valid: dict[str, dict[str, float]]
    history: list[dict] = field(default_factory=list)


def build_optimizers(
    model: MissingModalityModel, config: TrainConfig, log: Callable[[str], None] = print
) -> dict[str, torch.optim.Optimizer]:
    """One AdamW per parameter group of the model.

    Rule: the model names its groups (:meth:`parameter_groups`, e.g. MM-Align's ``fitter``
    = the ADL's GRU + projection and ``backbone`` = everything else); ``fitter`` gets
    ``lr_fit`` and every other group ``lr_main``. Groups are selected by module, never by
    position in ``parameters()``.
    """
    optimizers = {}
    for name, params in model.parameter_groups().items():
        if not params:
            continue
        lr = config.lr_fit if name == "fitter" else config.lr_main
        optimizers[name] = torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)
        log(f"optimiser {name!r}: {sum(p.numel() for p in params):,} parameters, lr {lr:g}")
    return optimizers


@torch.no_grad()
def predict_outputs(
    model: MissingModalityModel, pair: PairData, present: np.ndarray, batch_size: int
) -> Tensor:
    """Model outputs (N, C) for a whole split, the victim present where ``present`` (N,) is True."""
    model.eval()
    has = torch.as_tensor(present, dtype=torch.bool, device=pair.device)
    outputs = []
    for start in range(0, len(pair), batch_size):
        index = torch.arange(start, min(start + batch_size, len(pair)), device=pair.device)
        outputs.append(model.predict(pair.batch(index, has[index])).float())
    return torch.cat(outputs).cpu()


def _score(metrics: dict[str, float], task: str) -> float:
    """Return the selection score (lower is better) of a metrics dict."""
    name, direction = PRIMARY_METRIC[task]
    value = metrics[name]
    if not math.isfinite(value):
        return math.inf
    return value if direction == "min" else -value


def train_step(
    model: MissingModalityModel,
    losses: dict[str, Tensor],
    optimizers: dict[str, torch.optim.Optimizer],
    groups: tuple[str, ...],
    grad_clip: float,
) -> None:
    """Backward and step each group in ``model.group_order`` that has a loss and is in ``groups``."""
    todo = [g for g in model.group_order if g in losses and g in optimizers and g in groups]
    for i, group in enumerate(todo):
        model.zero_grad(set_to_none=True)
        losses[group].backward(retain_graph=i < len(todo) - 1)
        params = [p for pg in optimizers[group].param_groups for p in pg["params"]]
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(params, grad_clip)
        optimizers[group].step()


def fit(
    model: MissingModalityModel,
    train: PairData,
    complete_index: np.ndarray,
    missing_index: np.ndarray,
    valid: PairData,
    valid_present: dict[str, np.ndarray],
    config: TrainConfig,
    *,
    generator: torch.Generator,
    log: Callable[[str], None] = print,
    on_improve: Callable[[str, int, dict[str, Tensor]], None] | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    resume: dict[str, Any] | None = None,
    progress: bool = True,
) -> FitResult:
    """Train ``model`` by Algorithm 1 and keep the best validation state per setting.

    Parameters
    ----------
    model : MissingModalityModel
    train : PairData
        Training split tensors (victim zeroed where absent).
    complete_index, missing_index : ndarray of int
        Rows of the complete and the missing training split.
    valid : PairData
    valid_present : dict[str, ndarray]
        Setting name -> (N_valid,) bool, where the victim is present under that setting.
    config : TrainConfig
    generator : torch.Generator
        Drives batch order (determinism under a seed).
    log : callable
        Receives one line per event (optimisers, epochs, early stop).
    on_improve : callable, optional
        ``on_improve(setting, epoch, state)`` when a setting's validation score improves.
    on_epoch_end : callable, optional
        Receives the full training state (a dict of tensors, numbers and strings) after every
        epoch; save it to resume after a crash.
    resume : dict, optional
        A state from ``on_epoch_end``: training continues after its epoch exactly as if it
        had not stopped (weights, optimisers, schedulers, early-stopping counters, random
        generators and history are restored).
    progress : bool
        Show a tqdm bar per epoch (only on a terminal).
    """
    task = model.task
    optimizers = build_optimizers(model, config, log)
    schedulers = {
        name: torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=config.lr_decay, patience=config.lr_patience
        )
        for name, opt in optimizers.items()
    }
    all_groups = tuple(optimizers)
    best_score = {s: math.inf for s in valid_present}
    result = FitResult({}, {}, {}, [])
    stale = 0
    total_epochs = config.warmup_epochs + config.epochs
    first_epoch = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        for name, opt in optimizers.items():
            opt.load_state_dict(resume["optimizers"][name])
            schedulers[name].load_state_dict(resume["schedulers"][name])
        best_score = dict(resume["best_score"])
        result = FitResult(
            dict(resume["best_states"]),
            dict(resume["best_epochs"]),
            dict(resume["best_valid"]),
            list(resume["history"]),
        )
        stale, first_epoch = int(resume["stale"]), int(resume["epoch"])
        generator.set_state(resume["generator"])
        torch.set_rng_state(resume["torch_rng"])
        if resume.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(resume["cuda_rng"])
        log(f"resumed after epoch {first_epoch}")
        if resume.get("stopped"):
            first_epoch = total_epochs  # early stopping had already ended training

    def snapshot(epoch: int, stopped: bool) -> None:
        if on_epoch_end is None:
            return
        on_epoch_end(
            {
                "epoch": epoch,
                "stopped": stopped,
                "stale": stale,
                "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
                "schedulers": {n: sch.state_dict() for n, sch in schedulers.items()},
                "best_score": dict(best_score),
                "best_states": dict(result.best_states),
                "best_epochs": dict(result.best_epochs),
                "best_valid": dict(result.best_valid),
                "history": list(result.history),
                "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            }
        )

    def batches(index: np.ndarray, has_victim: bool | None) -> Iterator[Batch]:
        return iterate_batches(
            train,
            index,
            config.batch_size,
            shuffle=True,
            generator=generator,
            has_victim=has_victim,
        )

    for epoch in range(first_epoch, total_epochs):
        warm = epoch < config.warmup_epochs
        start = time.perf_counter()
        model.train()
        plan: list[tuple[Phase, np.ndarray, tuple[str, ...]]]
        if warm:
            plan = [("warmup", complete_index, all_groups)]
        elif config.single_iteration:
            plan = [
                ("complete", complete_index, all_groups),
                ("missing", missing_index, all_groups),
            ]
        else:  # "w/o SI" ablation: fitter and backbone in separate passes over the complete split
            plan = [
                ("complete", complete_index, ("fitter",)),
                ("complete", complete_index, tuple(g for g in all_groups if g != "fitter")),
                ("missing", missing_index, all_groups),
            ]
        n_batches = sum(math.ceil(len(idx) / config.batch_size) for _, idx, _ in plan)
        bar = tqdm(
            total=n_batches,
            desc=f"epoch {epoch + 1}/{total_epochs}" + (" (warm-up)" if warm else ""),
            disable=None if progress else True,
            leave=False,
            unit="batch",
        )
        sums: dict[str, Tensor] = {}
        counts: dict[str, int] = {}
        for phase, index, groups in plan:
            if len(index) == 0:
                continue
            for batch in batches(index, None if phase != "missing" else False):
                losses = model.compute_losses(batch, phase)
                train_step(model, losses, optimizers, groups, config.grad_clip)
                for key, value in losses.items():
                    name = f"{phase}/{key}"
                    sums[name] = sums.get(name, 0.0) + value.detach().float()
                    counts[name] = counts.get(name, 0) + 1
                bar.update(1)
        bar.close()
        record: dict = {"epoch": epoch + 1, "warmup": warm}
        record.update({k: float(v) / counts[k] for k, v in sums.items()})
        bad = [k for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            raise TrainingError(
                f"the training loss became non-finite at epoch {epoch + 1} ({', '.join(bad)}); "
                "try a lower learning rate (--lr-main / --lr-fit) or stronger gradient clipping."
            )
        improved_any = False
        scores = []
        for setting, present in valid_present.items():
            outputs = predict_outputs(model, valid, present, config.eval_batch_size)
            metrics = compute_metrics(outputs.numpy(), valid.labels.cpu().numpy(), task)
            record[f"valid_{setting}"] = metrics
            score = _score(metrics, task)
            scores.append(score)
            if score < best_score[setting] and not warm:
                best_score[setting] = score
                state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                result.best_states[setting] = state
                result.best_epochs[setting] = epoch + 1
                result.best_valid[setting] = metrics
                improved_any = True
                if on_improve is not None:
                    on_improve(setting, epoch + 1, state)
        record["lr"] = {n: o.param_groups[0]["lr"] for n, o in optimizers.items()}
        record["seconds"] = time.perf_counter() - start
        result.history.append(record)
        primary = PRIMARY_METRIC[task][0]
        summary = "  ".join(
            f"valid {s} {primary} {record[f'valid_{s}'][primary]:.4f}" for s in valid_present
        )
        main_key = next(
            (
                k
                for k in ("complete/main", "warmup/main", "complete/backbone", "warmup/backbone")
                if k in record
            ),
            None,
        )
        loss_txt = f"loss {record[main_key]:.4f}  " if main_key else ""
        if "complete/fitter" in record:
            loss_txt += f"fit {record['complete/fitter']:.4f}  "
        if record.get("complete/ot_unconverged", 0.0) > 0:
            loss_txt += f"OT unconverged {100 * record['complete/ot_unconverged']:.0f}%  "
        log(
            f"epoch {epoch + 1}/{total_epochs}{' (warm-up)' if warm else ''}  {loss_txt}{summary}  {record['seconds']:.1f}s"
        )
        if warm:
            snapshot(epoch + 1, False)
            continue
        mean_score = float(np.mean([s for s in scores if math.isfinite(s)] or [0.0]))
        for sched in schedulers.values():
            sched.step(mean_score)
        stale = 0 if improved_any else stale + 1
        stop = stale >= config.patience
        snapshot(epoch + 1, stop)
        if stop:
            log(f"early stop: no validation improvement for {config.patience} epochs")
            break
    if not result.best_states:  # only warm-up epochs ran: keep the final weights
        state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        for setting in valid_present:
            result.best_states[setting] = state
            result.best_epochs[setting] = len(result.history)
            result.best_valid[setting] = result.history[-1][f"valid_{setting}"]
    return result
