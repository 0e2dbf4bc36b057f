"""The training state that model selection keeps and that resuming restores.

:class:`TrainState` is what :func:`~mmalign.train.loop.fit` returns: the best weights,
epoch and validation metrics per setting, the epoch history and the early-stopping counter.
:meth:`TrainState.snapshot` adds everything else a resumed run needs (weights, optimisers,
schedulers, random generators) in a form ``torch.save`` can write, and
:meth:`TrainState.restore` puts it back, so an interrupted run continues exactly as if it had
not stopped. Introduced for this toolkit (2026).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["TrainState", "cpu_state"]


def cpu_state(model: nn.Module) -> dict[str, Any]:
    """Copy ``model`` state dict to the CPU, detached (extra state, such as a counter, copied)."""
    return {
        k: v.detach().cpu().clone() if isinstance(v, Tensor) else copy.deepcopy(v)
        for k, v in model.state_dict().items()
    }


@dataclass
class TrainState:
    """Model selection and progress of one training run.

    Attributes
    ----------
    settings : tuple of str
        Validation settings with their own best checkpoint (``("A", "B")`` or ``("complete",)``).
    epoch : int
        Epochs finished.
    stopped : bool
        Early stopping has ended training.
    stale : int
        Epochs since any setting last improved.
    best_score : dict[str, float]
        Setting -> best selection score so far (lower is better).
    best_states : dict[str, dict[str, Tensor]]
        Setting -> CPU state dict of the best epoch.
    best_epochs : dict[str, int]
    best_valid : dict[str, dict[str, float]]
        Setting -> validation metrics at the best epoch.
    history : list of dict
        One record per epoch (mean losses, validation metrics, learning rates, seconds).
    """

    settings: tuple[str, ...]
    epoch: int = 0
    stopped: bool = False
    stale: int = 0
    best_score: dict[str, float] = field(default_factory=dict)
    best_states: dict[str, dict[str, Tensor]] = field(default_factory=dict)
    best_epochs: dict[str, int] = field(default_factory=dict)
    best_valid: dict[str, dict[str, float]] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)

    def improve(self, setting: str, score: float, model: nn.Module, metrics: dict) -> bool:
        """Keep ``model`` as the best of ``setting`` if ``score`` beats it; return whether it did."""
        if not score < self.best_score.get(setting, math.inf):
            return False
        self.best_score[setting] = score
        self.best_states[setting] = cpu_state(model)
        self.best_epochs[setting] = self.epoch
        self.best_valid[setting] = metrics
        return True

    def keep_final(self, model: nn.Module) -> None:
        """Only warm-up epochs ran: the final weights stand in for every setting's best."""
        state = cpu_state(model)
        for setting in self.settings:
            self.best_states.setdefault(setting, state)
            self.best_epochs.setdefault(setting, self.epoch)
            self.best_valid.setdefault(setting, self.history[-1][f"valid_{setting}"])

    def snapshot(
        self,
        model: nn.Module,
        optimizers: dict[str, torch.optim.Optimizer],
        schedulers: dict[str, Any],
        generator: torch.Generator,
    ) -> dict[str, Any]:
        """Everything needed to resume, as tensors, numbers and strings (for ``torch.save``)."""
        return {
            **{k: v for k, v in vars(self).items()},
            "model": cpu_state(model),
            "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in schedulers.items()},
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    @classmethod
    def restore(
        cls,
        saved: dict[str, Any],
        model: nn.Module,
        optimizers: dict[str, torch.optim.Optimizer],
        schedulers: dict[str, Any],
        generator: torch.Generator,
    ) -> "TrainState":
        """Load a :meth:`snapshot` into the model, optimisers and generators; return the state."""
        model.load_state_dict(saved["model"])
        for name, opt in optimizers.items():
            opt.load_state_dict(saved["optimizers"][name])
            schedulers[name].load_state_dict(saved["schedulers"][name])
        generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        if saved.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in saved.items() if k in names})
