"""Training: the one loop (Algorithm 1), its resumable state, and checkpoints."""

from mmalign.train.checkpoint import atomic_write_bytes, load_checkpoint, save_checkpoint
from mmalign.train.loop import (
    TrainData,
    TrainingError,
    build_optimizers,
    fit,
    predict_outputs,
    resolve_selection,
    selection_score,
    train_step,
    validation_metrics,
)
from mmalign.train.state import TrainState, cpu_state

__all__ = [
    "atomic_write_bytes",
    "load_checkpoint",
    "save_checkpoint",
    "TrainData",
    "TrainingError",
    "build_optimizers",
    "fit",
    "predict_outputs",
    "resolve_selection",
    "selection_score",
    "validation_metrics",
    "train_step",
    "TrainState",
    "cpu_state",
]
