"""Python API over a finished run: load it, predict, and impute the victim representation.

Example (not run as a doctest: it needs a run folder)::

    from mmalign.api import load_run
    run = load_run("runs/mm-align_t-v_p0.1_s0_...")
    outputs = run.predict(dataset.splits["test"])          # victim absent (setting A)
    z_victim, mask = run.impute(source_features, lengths)   # (B, L, d), (B, L)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mmalign.data.batching import PairData
from mmalign.data.dataset import Split
from mmalign.models.method import MissingModalityModel, PairDims
from mmalign.train.checkpoint import load_checkpoint
from mmalign.train.config import RunConfig, config_from_dict
from mmalign.train.loop import predict_outputs
from mmalign.train.run import build_model, resolve_device
from mmalign.validation import ConfigError, DataError, check_in

__all__ = ["TrainedModel", "load_run"]


class TrainedModel:
    """A trained method restored from its run folder (weights only).

    Attributes
    ----------
    config : RunConfig
    meta : dict
        Method, pair, feature widths and task.
    model : MissingModalityModel
    setting : str
        Which best checkpoint was loaded (``"A"`` or ``"B"``).
    """

    def __init__(
        self,
        config: RunConfig,
        meta: dict,
        model: MissingModalityModel,
        setting: str,
        device: torch.device,
    ) -> None:
        self.config, self.meta, self.model, self.setting, self.device = (
            config,
            meta,
            model,
            setting,
            device,
        )

    @property
    def source(self) -> str:
        """Source modality name."""
        return self.meta["source"]

    @property
    def victim(self) -> str:
        """Victim modality name."""
        return self.meta["victim"]

    @classmethod
    def load(cls, run_dir: str | Path, setting: str = "A", device: str = "cpu") -> "TrainedModel":
        """Restore the best checkpoint of ``setting`` from ``run_dir``."""
        import yaml

        run_dir = Path(run_dir)
        for name in ("config.yaml", "model.json", "checkpoint.pt"):
            if not (run_dir / name).is_file():
                raise DataError(f"{run_dir}: not a finished run folder ({name} is missing).")
        config = config_from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))
        meta = json.loads((run_dir / "model.json").read_text())
        states, _ = load_checkpoint(run_dir / "checkpoint.pt")
        check_in("setting", setting, sorted(states))
        dims = PairDims(**meta["dims"])
        dev = resolve_device(device)
        model = build_model(config, dims)
        model.load_state_dict(states[setting])
        model.to(dev).eval()
        return cls(config, meta, model, setting, dev)

    def _pair(self, split: Split, present: np.ndarray) -> PairData:
        for m in (self.source, self.victim):
            if m not in split.features:
                if m == self.victim and not present.any():
                    continue
                raise DataError(f"the data has no modality {m!r}; it has {list(split.features)}.")
        if self.victim not in split.features:  # victim absent everywhere: a zero placeholder
            split = Split(
                features={
                    **split.features,
                    self.victim: np.zeros(
                        (len(split), 1, self.meta["dims"]["victim_dim"]), np.float32
                    ),
                },
                lengths={**split.lengths, self.victim: np.zeros(len(split), np.int64)},
                labels=split.labels,
                ids=split.ids,
            )
        for m, key in ((self.source, "source_dim"), (self.victim, "victim_dim")):
            width = split.features[m].shape[2]
            if width != self.meta["dims"][key]:
                raise DataError(
                    f"modality {m!r} has width {width} but the model was trained on {self.meta['dims'][key]}."
                )
        return PairData.from_split(split, self.source, self.victim, present=present).to(self.device)

    def predict(
        self, split: Split, present: np.ndarray | None = None, batch_size: int = 256
    ) -> np.ndarray:
        """Predict outputs (N, C) for ``split``, using the victim only where ``present`` (N,).

        ``present`` defaults to all False (the victim is missing for every sample, setting A).
        Regression outputs are scores in column 0; classification outputs are logits.
        """
        present = np.zeros(len(split), bool) if present is None else np.asarray(present, bool)
        if present.shape != (len(split),):
            raise ConfigError(f"`present` must have shape ({len(split)},); got {present.shape}.")
        return predict_outputs(self.model, self._pair(split, present), present, batch_size).numpy()

    @torch.no_grad()
    def impute(
        self, source: np.ndarray | Tensor, lengths: np.ndarray | Tensor
    ) -> tuple[Tensor, Tensor]:
        """Imputed victim representation sequence from source features.

        Parameters
        ----------
        source : array, shape (B, L, D_s)
            Source features, valid steps first.
        lengths : array, shape (B,)

        Returns
        -------
        z_victim : Tensor, shape (B, L, d)
            The imputed victim steps (without the head token).
        mask : Tensor, shape (B, L), bool
        """
        x = torch.as_tensor(np.asarray(source, np.float32), device=self.device)
        n = torch.as_tensor(np.asarray(lengths), device=self.device)
        if x.ndim != 3 or x.shape[2] != self.meta["dims"]["source_dim"]:
            raise ConfigError(
                f"`source` must have shape (B, L, {self.meta['dims']['source_dim']}); got {tuple(x.shape)}."
            )
        if n.shape != (x.shape[0],) or bool((n < 0).any()) or bool((n > x.shape[1]).any()):
            raise ConfigError(
                f"`lengths` must have shape ({x.shape[0]},) with values in [0, {x.shape[1]}]."
            )
        mask = torch.arange(x.shape[1], device=self.device)[None] < n[:, None]  # (B, L)
        from mmalign.data.batching import Batch

        batch = Batch(
            source=x,
            source_mask=mask,
            victim=x.new_zeros(*x.shape[:2], self.meta["dims"]["victim_dim"]),
            victim_mask=torch.zeros_like(mask),
            has_victim=torch.zeros(x.shape[0], dtype=torch.bool, device=self.device),
            labels=x.new_zeros(x.shape[0]),
            index=torch.arange(x.shape[0], device=self.device),
        )
        z_source = self.model.backbone.encode_source(x, mask)
        z_victim, victim_mask = self.model.impute_victim(z_source, batch)
        return z_victim[:, 1:], victim_mask


def load_run(run_dir: str | Path, setting: str = "A", device: str = "cpu") -> TrainedModel:
    """Shorthand for :meth:`TrainedModel.load`."""
    return TrainedModel.load(run_dir, setting, device)
