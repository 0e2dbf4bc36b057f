"""A finished random-missing run restored from its folder: predict and evaluate per pattern.

What :func:`mmalign.load_run` returns for a run of the random-missing protocol
(``docs/protocols.md``). Example (not run as a doctest: it needs a run folder)::

    import mmalign
    model = mmalign.load_run("runs/random")
    test = mmalign.load_dataset("/data/MOSI/aligned_50.pkl").splits["test"]
    scores = model.predict(test)        # (N, C); a modality of length 0 counts as absent
    per_pattern = model.evaluate_patterns(test)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mmalign.config import LATER_OPTIONS, RunConfig
from mmalign.data.dataset import Split
from mmalign.data.missingness import SplitMissingness, ordered_patterns
from mmalign.data.pattern_batching import PatternData
from mmalign.evaluate.metrics import compute_metrics
from mmalign.models.pattern_method import PatternDims, PatternModel
from mmalign.models.registry import get_method
from mmalign.runs.device import resolve_device
from mmalign.runs.folder import read_finished_run
from mmalign.runs.random_missing import SETTING, pattern_results
from mmalign.runs.result import PatternResult, RunMeta
from mmalign.train.loop import predict_outputs
from mmalign.validation import DataError

__all__ = ["TrainedPatternModel"]


class TrainedPatternModel:
    """A trained random-missing method restored from its run folder (weights only).

    Attributes
    ----------
    config : RunConfig
    meta : RunMeta
        Method, modalities, feature widths and task.
    model : PatternModel
    setting : str
        ``"random"``: the checkpoint selected on validation.
    device : torch.device
    """

    setting = SETTING

    def __init__(
        self, config: RunConfig, meta: RunMeta, model: PatternModel, device: torch.device
    ) -> None:
        self.config, self.meta, self.model, self.device = config, meta, model, device

    @classmethod
    def load(cls, run_dir: str | Path, device: str = "cpu") -> "TrainedPatternModel":
        """Restore the selected checkpoint of the random-missing run in ``run_dir``."""
        # random-missing runs postdate the step space: only the later options can be missing
        config, states, meta = read_finished_run(run_dir, LATER_OPTIONS)
        if SETTING not in states:
            raise DataError(f"{run_dir}: the run did not finish (no selected checkpoint).")
        dims = PatternDims(dict(zip(meta.modalities, meta.input_dims)), meta.output_dim, meta.task)
        torch.manual_seed(meta.seed)
        model = get_method(meta.method).build_patterns(dims, config)
        model.load_state_dict(states[SETTING])
        dev = resolve_device(device)
        model.to(dev).eval()
        return cls(config, meta, model, dev)

    def _data(self, split: Split, missingness: SplitMissingness | None) -> PatternData:
        widths = dict(zip(self.meta.modalities, self.meta.input_dims))
        if tuple(split.modalities) != tuple(widths):
            raise DataError(
                f"the data has modalities {list(split.modalities)}; the model was trained on "
                f"{list(widths)} (absent ones come as zero-length sequences)."
            )
        for m, width in widths.items():
            if split.features[m].shape[2] != width:
                raise DataError(
                    f"modality {m!r} has width {split.features[m].shape[2]} but the model was "
                    f"trained on {width}."
                )
        seen = SplitMissingness.observed(split) if missingness is None else missingness
        return PatternData.from_split(split, seen).to(self.device)

    def predict(
        self, split: Split, missingness: SplitMissingness | None = None, batch_size: int = 256
    ) -> np.ndarray:
        """Predict outputs (N, C) from what each sample holds.

        ``missingness`` says which modalities and steps each sample holds; by default a
        modality is absent where its length is 0 (:meth:`SplitMissingness.observed`).
        """
        data = self._data(split, missingness)
        everyone = np.ones(len(split), dtype=bool)
        return predict_outputs(self.model, data, everyone, batch_size).numpy()

    def evaluate(
        self, split: Split, missingness: SplitMissingness | None = None
    ) -> dict[str, float]:
        """Metrics of :meth:`predict` against the split's labels."""
        return compute_metrics(self.predict(split, missingness), split.labels, self.meta.task)

    def evaluate_patterns(
        self, split: Split, missingness: SplitMissingness | None = None
    ) -> dict[str, PatternResult]:
        """Metrics overall and per pattern of present modalities (see :func:`pattern_results`)."""
        seen = SplitMissingness.observed(split) if missingness is None else missingness
        outputs = self.predict(split, seen)
        order = ordered_patterns(seen.modalities)
        return pattern_results(
            outputs, np.asarray(split.labels), seen.patterns(), self.meta.task, order
        )
