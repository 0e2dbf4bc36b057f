"""Training a run's model into its folder: live epoch log, resume snapshot, selected checkpoints.

Shared by the pair protocol (:mod:`mmalign.runs.execute`) and the random-missing protocol
(:mod:`mmalign.runs.random_missing`).
"""

from __future__ import annotations

from typing import Any

import torch

from mmalign.config import RunConfig
from mmalign.data.checks import DataWarning, check_epoch_cap
from mmalign.models.registry import MethodSpec
from mmalign.runs.folder import RunFolder
from mmalign.runs.log import RunLog
from mmalign.train.checkpoint import save_checkpoint
from mmalign.train.loop import TrainData, fit
from mmalign.train.state import TrainState

__all__ = ["cap_warnings", "fit_run"]


def fit_run(
    model: torch.nn.Module,
    data: TrainData,
    config: RunConfig,
    method: MethodSpec,
    folder: RunFolder,
    runlog: RunLog,
    saved: dict[str, Any] | None,
    meta: dict[str, Any],
) -> TrainState:
    """Fit ``model``; after each epoch log it and write ``resume.pt``; at the end ``checkpoint.pt``.

    ``saved`` is a resume snapshot (or None); ``meta`` goes into the checkpoint.
    """

    def on_epoch(state, snapshot) -> None:
        runlog.epoch(state.history[-1])
        save_checkpoint(folder / "resume.pt", {}, snapshot)

    state = fit(
        model, data, config.train, method.learning_rates(config),
        generator=torch.Generator().manual_seed(config.seed), log=runlog.line,
        on_epoch=on_epoch, resume=saved, progress=config.progress,
    )  # fmt: skip
    save_checkpoint(folder / "checkpoint.pt", state.best_states, meta)
    return state


def cap_warnings(state: TrainState, config: RunConfig) -> list[DataWarning]:
    """Return the ``epoch_cap`` warning of a finished fit, if any.

    See :func:`~mmalign.data.checks.check_epoch_cap`.
    """
    total = config.train.warmup_epochs + config.train.epochs
    return check_epoch_cap(
        state.best_epochs, len(state.history), total, stopped_early=state.stopped
    )
