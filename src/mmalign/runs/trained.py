"""A finished run restored from its folder: predict, impute the victim, evaluate.

This is ``mmalign.load_run``. Example (not run as a doctest: it needs a run folder)::

    import mmalign
    model = mmalign.load_run("runs/tv", setting="A")
    test = mmalign.load_dataset("/data/MOSI/aligned_50.pkl").splits["test"]
    scores = model.predict(test)                   # (N, C), victim absent
    z_victim, mask = model.impute(test.features["text"], test.lengths["text"])  # (N, L, d), (N, L)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mmalign.config import OLDER_RUN_OPTIONS, RunConfig
from mmalign.data.batching import Batch, PairData
from mmalign.data.dataset import Split
from mmalign.evaluate.metrics import compute_metrics
from mmalign.models.method import MissingModalityModel, PairDims
from mmalign.models.registry import get_method
from mmalign.runs.device import resolve_device
from mmalign.runs.execute import build_model
from mmalign.runs.folder import check_finished_run, read_finished_run
from mmalign.runs.predictions import softmax
from mmalign.runs.random_missing import SETTING
from mmalign.runs.result import RunMeta
from mmalign.runs.trained_patterns import TrainedPatternModel
from mmalign.train.loop import predict_outputs
from mmalign.validation import ConfigError, DataError, check_in

__all__ = ["TrainedModel", "load_run"]


def _widen_fitter(state: dict[str, Tensor], expected: dict[str, Tensor]) -> None:
    """Give an older fitter projection the two inputs it lacks (phase and log rate) as zeros.

    Both inputs are 0 on one shared time axis, the only case older runs handled, so the
    widened projection computes exactly what it did.
    """
    key = "fitter.proj.weight"
    if key in state and key in expected:
        old, new = state[key], expected[key]
        if old.shape[1] + 2 == new.shape[1]:
            state[key] = torch.cat([old, old.new_zeros(old.shape[0], 2)], dim=1)


class TrainedModel:
    """A trained method restored from its run folder (weights only).

    Attributes
    ----------
    config : RunConfig
    meta : RunMeta
        Method, pair, feature widths and task.
    model : MissingModalityModel
    setting : str
        Which best checkpoint was loaded (``"A"`` or ``"B"``).
    device : torch.device
    """

    def __init__(
        self,
        config: RunConfig,
        meta: RunMeta,
        model: MissingModalityModel,
        setting: str,
        device: torch.device,
    ) -> None:
        self.config, self.meta, self.model = config, meta, model
        self.setting, self.device = setting, device

    @property
    def source(self) -> str:
        """Source modality name."""
        return self.meta.source

    @property
    def victim(self) -> str:
        """Victim modality name."""
        return self.meta.victim

    @classmethod
    def load(cls, run_dir: str | Path, setting: str = "A", device: str = "cpu") -> "TrainedModel":
        """Restore the best checkpoint of ``setting`` from ``run_dir``."""
        # options older runs lack mean what those runs did
        config, states, meta = read_finished_run(run_dir, OLDER_RUN_OPTIONS)
        if "complete" in states:  # the upper bound keeps one state for both settings
            states = {"A": states["complete"], "B": states["complete"]}
        check_in("setting", setting, sorted(states))
        dims = PairDims(meta.source_dim, meta.victim_dim, meta.output_dim, meta.task)
        dev = resolve_device(device)
        model = build_model(config, dims)
        state = states[setting]
        # checkpoints from before input standardisation have no input statistics (identity)
        # and those from before unequal lengths no victim rate (1: one shared time axis)
        for key, value in model.state_dict().items():
            if key.endswith((".input_shift", ".input_scale")) or key == "victim_rate":
                state.setdefault(key, value)
        _widen_fitter(state, model.state_dict())
        model.load_state_dict(state)
        model.to(dev).eval()
        return cls(config, meta, model, setting, dev)

    def _pair(self, split: Split, present: np.ndarray) -> PairData:
        """Return the split's pair tensors, a zero placeholder where the victim is absent everywhere."""
        if present.shape != (len(split),):
            raise ConfigError(f"`present` must have shape ({len(split)},); got {present.shape}.")
        widths = {self.source: self.meta.source_dim, self.victim: self.meta.victim_dim}
        features, lengths = dict(split.features), dict(split.lengths)
        if self.victim not in features and not present.any():
            features[self.victim] = np.zeros((len(split), 1, self.meta.victim_dim), np.float32)
            lengths[self.victim] = np.zeros(len(split), np.int64)
        for m, width in widths.items():
            if m not in features:
                raise DataError(f"the data has no modality {m!r}; it has {list(split.features)}.")
            if features[m].shape[2] != width:
                raise DataError(
                    f"modality {m!r} has width {features[m].shape[2]} but the model was "
                    f"trained on {width}."
                )
        split = Split(features=features, lengths=lengths, labels=split.labels, ids=split.ids)
        resample = not get_method(self.meta.method).own_axis
        pair = PairData.from_split(split, self.source, self.victim, present, resample=resample)
        return pair.to(self.device)

    def predict(
        self, split: Split, present: np.ndarray | None = None, batch_size: int = 256
    ) -> np.ndarray:
        """Predict outputs (N, C) for ``split``, using the victim only where ``present`` (N,) is True.

        ``present`` defaults to all False (the victim missing for every sample, setting A).
        Regression outputs are scores in column 0; classification outputs are logits.
        """
        present = np.zeros(len(split), bool) if present is None else np.asarray(present, bool)
        return predict_outputs(self.model, self._pair(split, present), present, batch_size).numpy()

    def predict_proba(self, split: Split, present: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities (N, C) of a classification model (see :meth:`predict`)."""
        if self.meta.task != "classification":
            raise ConfigError(
                f"`predict_proba` needs a classification model; got {self.meta.task!r}."
            )
        return softmax(self.predict(split, present))

    def evaluate(self, split: Split, present: np.ndarray | None = None) -> dict[str, float]:
        """Metrics of :meth:`predict` against the split's labels (``docs/metrics.md``)."""
        return compute_metrics(self.predict(split, present), split.labels, self.meta.task)

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
        z_victim : Tensor, shape (B, M, d)
            The imputed victim steps (without the head token). ``M = L`` for aligned data;
            MM-Align trained on unaligned data gives ``round(Ls * victim_rate)`` steps
            (docs/method.md, "Alignment").
        mask : Tensor, shape (B, M), bool
        """
        x = torch.as_tensor(np.asarray(source, np.float32), device=self.device)
        n = torch.as_tensor(np.asarray(lengths), device=self.device)
        if x.ndim != 3 or x.shape[2] != self.meta.source_dim:
            raise ConfigError(
                f"`source` must have shape (B, L, {self.meta.source_dim}); got {tuple(x.shape)}."
            )
        if n.shape != (x.shape[0],) or bool((n < 0).any()) or bool((n > x.shape[1]).any()):
            raise ConfigError(
                f"`lengths` must have shape ({x.shape[0]},) with values in [0, {x.shape[1]}]."
            )
        mask = torch.arange(x.shape[1], device=self.device)[None] < n[:, None]  # (B, L)
        batch = Batch(
            source=x,
            source_mask=mask,
            victim=x.new_zeros(*x.shape[:2], self.meta.victim_dim),  # (B, L, D_v)
            victim_mask=torch.zeros_like(mask),
            has_victim=torch.zeros(x.shape[0], dtype=torch.bool, device=self.device),
            labels=x.new_zeros(x.shape[0]),
            index=torch.arange(x.shape[0], device=self.device),
        )
        z_source = self.model.backbone.encode_source(x, mask)
        z_victim, victim_mask = self.model.impute_victim(z_source, batch)
        return z_victim[:, 1:], victim_mask


def load_run(
    run_dir: str | Path, setting: str | None = None, device: str = "cpu"
) -> "TrainedModel | TrainedPatternModel":
    """Restore a finished run; see :meth:`TrainedModel.load`.

    ``setting`` picks the checkpoint of a pair-protocol run (default ``"A"``). A
    random-missing run has one checkpoint and gives a
    :class:`~mmalign.runs.trained_patterns.TrainedPatternModel` (``setting`` must then be
    None or ``"random"``).
    """
    run_dir = check_finished_run(run_dir)
    meta = RunMeta.from_dict(json.loads((run_dir / "model.json").read_text()))
    if meta.protocol == SETTING:
        if setting not in (None, SETTING):
            raise ConfigError(
                f"`setting` must be {SETTING!r} for a random-missing run; got {setting!r}."
            )
        return TrainedPatternModel.load(run_dir, device)
    return TrainedModel.load(run_dir, setting or "A", device)
