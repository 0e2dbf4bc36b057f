"""Mean absolute alignment matrices of a trained MM-Align model (the paper's Fig. 5).

Han et al. (EMNLP 2022, appendix C.1) average the absolute entries of the alignment
matrices over the test samples whose length is at least 20 and draw the result as a heat
map: entries outside the window stay near 0. We do the same for both the fitter's predicted
matrices and the OT plans (the fitter's targets): each band is expanded into a dense matrix
with rows = source step ``i`` and columns = victim step ``j``, and the top-left ``S x S``
block is averaged over the samples of length ``>= S``. Only the proposed method of the
registry (:func:`~mmalign.models.registry.proposed_method`) learns alignments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mmalign.evaluate.alignment_score import AlignmentScore
from mmalign.ot.band import band_to_dense, band_transpose
from mmalign.ot.column_band import column_band_to_dense
from mmalign.validation import ConfigError, DataError, check_in

__all__ = [
    "AlignmentScores",
    "AlignmentSummary",
    "PREDICTORS",
    "run_alignment_scores",
    "score_alignments",
    "band_to_matrix",
    "block_abs_sum",
    "mean_abs_alignment",
    "run_alignment_summary",
]


@dataclass(frozen=True)
class AlignmentSummary:
    """Mean absolute alignment entries over the selected samples.

    Attributes
    ----------
    predicted : ndarray, shape (S, S)
        Fitter matrices, rows = source step ``i``, columns = victim step ``j``.
    ot : ndarray, shape (S, S)
        OT plans renormalised as the fitter's targets, same layout.
    n_samples : int
        Samples averaged (those of length ``>= S``).
    window : int
        Window radius ``K`` of the model.
    data : str
        The ``data`` option the alignments were computed on ("" when not from a run).
    """

    predicted: np.ndarray
    ot: np.ndarray
    n_samples: int
    window: int
    data: str = ""

    def _outside(self) -> np.ndarray:
        size = self.predicted.shape[0]
        steps = np.arange(size)
        return np.abs(steps[:, None] - steps[None, :]) > self.window  # (S, S)

    def outside_mass(self, which: str = "predicted") -> float:
        """Mean entry outside the window (``abs(i - j) > K``) of ``"predicted"`` or ``"ot"``.

        0.0 when the block lies inside the window entirely.
        """
        check_in("which", which, ("predicted", "ot"))
        outside = self._outside()
        if not outside.any():
            return 0.0
        return float(getattr(self, which)[outside].mean())

    def inside_gap(self) -> float:
        """Mean ``abs(predicted - ot)`` over the entries inside the window."""
        inside = ~self._outside()
        return float(np.abs(self.predicted - self.ot)[inside].mean())


def band_to_matrix(
    band: Tensor, window: int, convention: str = "column", centres: Tensor | None = None
) -> Tensor:
    """Expand alignment bands into dense matrices with rows = source, columns = victim.

    Parameters
    ----------
    band : Tensor, shape (B, L, W)
        A column band ``band[b, j, k]`` = weight of source step ``j + k - K`` for victim step
        ``j`` (``convention="column"``, what the fitter outputs and the default targets), or
        a row band ``band[b, i, k]`` between source step ``i`` and victim step ``i + k - K``
        (``convention="row"``). Source and victim share the time axis ``L``.
    window : int
        Window radius ``K``.
    convention : {"column", "row"}
    centres : Tensor, shape (B, M), optional
        Band centres of a column band on the rescaled diagonal (unequal lengths): victim
        step ``j`` weighs source step ``centres[b, j] + k - K``.

    Returns
    -------
    Tensor, shape (B, L, M)
        ``dense[b, i, j]``, zero outside the window (``M = L`` without ``centres``).

    Examples
    --------
    >>> col = torch.tensor([[[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]]])  # victim 1 <- sources 0, 1
    >>> band_to_matrix(col, 1).tolist()
    [[[1.0, 0.5], [0.0, 0.5]]]
    >>> band_to_matrix(col, 1, "row").tolist()
    [[[1.0, 0.0], [0.5, 0.5]]]
    """
    check_in("convention", convention, ("column", "row"))
    if centres is not None and convention == "column":
        n_source = int(centres.max()) + window + 1 if centres.numel() else 1
        return column_band_to_dense(band, centres, window, n_source)  # (B, L, M)
    dense = band_to_dense(band, window, band.shape[1])  # (B, L, L)
    if convention == "column":
        dense = dense.transpose(1, 2)  # (B, L, L): rows source i, columns victim j
    return dense


def block_abs_sum(
    band: Tensor,
    lengths: Tensor,
    window: int,
    size: int,
    convention: str = "column",
    centres: Tensor | None = None,
) -> tuple[Tensor, int]:
    """Sum of ``abs`` top-left ``S x S`` blocks over the samples of length ``>= S``.

    Parameters
    ----------
    band : Tensor, shape (B, L, W)
        Alignment bands (see :func:`band_to_matrix`).
    lengths : Tensor, shape (B,)
        Valid steps per sample.
    window : int
        ``K``.
    size : int
        ``S``, the block size and minimum length.
    convention : {"column", "row"}
    centres : Tensor, shape (B, M), optional
        See :func:`band_to_matrix`.

    Returns
    -------
    total : Tensor, shape (S, S)
        Sum over the kept samples (zeros when none is kept).
    count : int
        Number of kept samples.

    Examples
    --------
    >>> band = torch.ones(2, 3, 1)  # K = 0: identity-like plans of two samples
    >>> total, count = block_abs_sum(band, torch.tensor([3, 1]), 0, 2)
    >>> total.tolist(), count
    ([[1.0, 0.0], [0.0, 1.0]], 1)
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"`size` must be an integer >= 1; got {size!r}.")
    keep = lengths >= size  # (B,)
    count = int(keep.sum())
    if count == 0 or band.shape[1] < size:
        return band.new_zeros(size, size), 0
    kept = None if centres is None else centres[keep]
    dense = band_to_matrix(band[keep], window, convention, kept)  # (B', L, M)
    block = band.new_zeros(count, size, size)  # (B', S, S): a short source axis pads with 0
    rows, cols = min(size, dense.shape[1]), min(size, dense.shape[2])
    block[:, :rows, :cols] = dense[:, :rows, :cols]
    return block.abs().sum(0), count  # (S, S)


@torch.no_grad()
def mean_abs_alignment(model, pair, size: int = 20, batch_size: int = 64) -> AlignmentSummary:
    """Mean absolute predicted and OT alignment entries over complete samples of length >= S.

    Parameters
    ----------
    model : MMAlign
        A trained model (``alignments``, ``window`` and ``convention`` are used).
    pair : PairData
        A split's tensors with the victim present (complete batches).
    size : int, default 20
        ``S``: samples of length ``>= S`` are kept and their top-left ``S x S`` block
        averaged (the paper uses 20).
    batch_size : int, default 64

    Returns
    -------
    AlignmentSummary

    Raises
    ------
    ConfigError
        No sample with the victim present has length ``>= S``.
    """
    from mmalign.data.batching import iterate_batches

    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"`min_length` must be an integer >= 1; got {size!r}.")
    lengths = pair.source_lengths.cpu().numpy()
    usable = (lengths >= size) & (pair.victim_lengths.cpu().numpy() >= size)  # (N,)
    rows = np.flatnonzero(usable)
    if rows.size == 0:
        longest = int(lengths.max()) if lengths.size else 0
        raise ConfigError(
            f"`min_length` must be <= the longest complete sample ({longest} steps); got {size}."
        )
    model.eval()
    totals = {"predicted": 0.0, "ot": 0.0}
    count = 0
    for batch in iterate_batches(pair, rows, batch_size, shuffle=False):
        predicted, target, centres = model.alignments(batch)  # (B, M, W), (B, M)
        batch_lengths = batch.source_mask.sum(1)  # (B,)
        for name, band, convention in (
            ("predicted", predicted, "column"),
            ("ot", target, model.adl.convention),
        ):
            total, kept = block_abs_sum(
                band.float(), batch_lengths, model.adl.window, size, convention, centres
            )
            totals[name] = totals[name] + total.cpu().double().numpy()
        count += kept
    return AlignmentSummary(
        predicted=totals["predicted"] / count,
        ot=totals["ot"] / count,
        n_samples=count,
        window=int(model.adl.window),
    )


def _load_alignment_run(run_dir: str | Path, data_options, setting: str, split: str):
    """Load a run of the proposed method and the data split it is analysed on."""
    from mmalign.config import apply_overrides
    from mmalign.models.mm_align import MMAlign
    from mmalign.models.registry import get_method, proposed_method
    from mmalign.runs import load_data, load_run

    check_in("split", split, ("train", "valid", "test"))
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run folder.")
    name = proposed_method()
    wrong = f"`run` must be an {name} run (only {get_method(name).label} learns alignments); got"
    meta_path = run_dir / "model.json"
    if meta_path.is_file():
        import json

        meta = json.loads(meta_path.read_text())
        method = meta.get("method")
        if method != name:
            raise ConfigError(f"{wrong} method {method!r} in {run_dir}.")
        if meta.get("protocol", "pair") != "pair":
            raise ConfigError(
                f"`run` must be a run of the pair protocol (--pair); {run_dir} is a "
                "random-missing run (--missing-rate): `mmalign score-alignment` scores each of "
                "its pairs, the other alignment analyses take pair runs."
            )
    run = load_run(run_dir, setting=setting)
    if not isinstance(run.model, MMAlign):
        raise ConfigError(f"{wrong} {type(run.model).__name__} in {run_dir}.")
    config = apply_overrides(run.config, data_options or {}).validate()
    dataset = load_data(config)
    part = dataset.splits[split]
    for modality in (run.source, run.victim):
        if modality not in part.features:
            raise DataError(
                f"{config.data}: the run needs modality {modality!r}; the data has "
                f"{sorted(part.features)}."
            )
    return run, config, part


def run_alignment_summary(
    run_dir: str | Path,
    *,
    data_options: Mapping[str, Any] | None = None,
    min_length: int = 20,
    setting: str = "A",
    batch_size: int = 64,
    split: str = "test",
) -> AlignmentSummary:
    """Load a run folder of the proposed method and summarise its alignments on a data split.

    Parameters
    ----------
    run_dir : str or Path
        A finished run folder (``config.yaml``, ``model.json``, ``checkpoint.pt``).
    data_options : dict, optional
        Data options by flat name (``data``, ``format``, ``trust_pickle``, ``task``,
        ``label_key``) that replace the run's own; default the run's own data.
    min_length : int, default 20
        ``S`` of :func:`mean_abs_alignment`.
    setting : {"A", "B"}, default "A"
        Which best checkpoint to load.
    batch_size : int, default 64
    split : {"test", "valid", "train"}, default "test"

    Returns
    -------
    AlignmentSummary

    Raises
    ------
    ConfigError
        The run is not a run of the proposed method, or no sample is long enough.
    DataError
        Not a run folder, or the data lacks the run's modalities.
    """
    from mmalign.data.batching import PairData

    run, config, part = _load_alignment_run(run_dir, data_options, setting, split)
    pair = PairData.from_split(part, run.source, run.victim, resample=False).to(run.device)
    summary = mean_abs_alignment(run.model, pair, min_length, batch_size)
    return replace(summary, data=config.data)


@dataclass(frozen=True)
class AlignmentScores:
    """Scores of four alignment predictors against the true spans (``score-alignment``).

    Attributes
    ----------
    fitter : AlignmentScore
        The fitter's predicted weights (what the imputation uses).
    ot : AlignmentScore
        The alignment plan, its columns renormalised (the fitter's targets): the OT plan,
        or the monotone posterior with ``alignment_solver="monotone"``.
    uniform : AlignmentScore
        Equal weight over the window.
    diagonal : AlignmentScore
        All weight on the rescaled diagonal ``floor((j + 1/2) * Ls / Lv)``.
    n_samples : int
        Complete samples scored.
    source, victim : str
    solver : str
        The model's ``alignment_solver`` (``"sinkhorn"`` or ``"monotone"``).
    """

    fitter: AlignmentScore
    ot: AlignmentScore
    uniform: AlignmentScore
    diagonal: AlignmentScore
    n_samples: int
    source: str
    victim: str
    solver: str = "sinkhorn"

    def to_dict(self) -> dict[str, dict[str, float]]:
        """JSON layout: ``{"fitter": {...}, "ot": ..., "uniform": ..., "diagonal": ...}``."""
        return {name: getattr(self, name).to_dict() for name in PREDICTORS}

    def table(self) -> str:
        """Format the scores as a plain-text table, one row per predictor."""
        lines = [f"{'predictor':<10} {'mass_on_truth':>13} {'argmax_acc':>10} {'offset_err':>10}"]
        for name in PREDICTORS:
            s = getattr(self, name)
            lines.append(
                f"{name:<10} {s.mass_on_truth:>13.3f} {s.argmax_accuracy:>10.3f} "
                f"{s.offset_error:>10.3f}"
            )
        if self.solver != "sinkhorn":
            lines.append(f"(ot: the {self.solver} alignment the fitter learns from)")
        return "\n".join(lines)


#: Predictors in the order of the table and of the JSON.
PREDICTORS = ("fitter", "ot", "uniform", "diagonal")


def _column_alignments(model, batch) -> tuple[Tensor, Tensor, Tensor]:
    """``model.alignments(batch)`` with the OT targets as column bands whatever the convention.

    Targets of the ``"row"`` convention are row bands on one time axis; scores and single
    sample plots read victim rows, so they are transposed.
    """
    predicted, target, centres = model.alignments(batch)  # (B, M, W), (B, M)
    if model.adl.convention == "row":
        target = band_transpose(target, model.adl.window, batch.victim_mask.shape[1])
    return predicted, target, centres


def _add_predictors(acc, predicted, target, centres, valid, window, truth, victim_mask) -> None:
    """Add one batch of the four predictors (column bands (B, M, W)) to their accumulators."""
    from mmalign.evaluate.alignment_score import diagonal_band, uniform_band

    bands = {
        "fitter": predicted,
        "ot": target * valid,
        "uniform": uniform_band(valid),
        "diagonal": diagonal_band(valid, window),
    }
    for name, band in bands.items():
        acc[name].add(band, centres, window, truth, victim_mask)


@torch.no_grad()
def score_alignments(model, pair, spans: np.ndarray, batch_size: int = 64) -> AlignmentScores:
    """Score the model's alignments on the complete samples of ``pair`` against ``spans``.

    Parameters
    ----------
    model : MMAlign
        A trained model.
    pair : PairData
        A split's tensors, the victim on its own time axis (``resample=False``).
    spans : ndarray, shape (N, L_victim, 2)
        int64 true source steps ``[start, end)`` of each victim step (``span_<victim>_<source>``).
    batch_size : int, default 64

    Returns
    -------
    AlignmentScores

    Raises
    ------
    ConfigError
        No sample of the split has both modalities.
    """
    from mmalign.data.batching import iterate_batches
    from mmalign.evaluate.alignment_score import ScoreAccumulator
    from mmalign.ot.column_band import column_band_valid_mask

    rows = np.flatnonzero(
        (pair.source_lengths.cpu().numpy() > 0) & (pair.victim_lengths.cpu().numpy() > 0)
    )
    if rows.size == 0:
        raise ConfigError("no sample of the split has both modalities: nothing to score.")
    window = int(model.adl.window)
    acc = {name: ScoreAccumulator() for name in PREDICTORS}
    model.eval()
    all_spans = torch.as_tensor(np.asarray(spans, dtype=np.int64))
    for batch in iterate_batches(pair, rows, batch_size, shuffle=False):
        predicted, target, centres = _column_alignments(model, batch)  # (B, M, W), (B, M)
        n_victim = batch.victim_mask.shape[1]
        valid = column_band_valid_mask(batch.source_mask, batch.victim_mask, centres, window)
        truth = all_spans[batch.index.cpu(), :n_victim].to(centres.device)  # (B, M, 2)
        _add_predictors(acc, predicted, target, centres, valid, window, truth, batch.victim_mask)
    scores = {name: a.result() for name, a in acc.items()}
    return AlignmentScores(
        **scores, n_samples=int(rows.size), source=pair.source_name, victim=pair.victim_name,
        solver=model.adl.alignment_solver,
    )  # fmt: skip


@torch.no_grad()
def score_pattern_alignments(
    model, data, spans: Mapping[str, np.ndarray], batch_size: int = 64
) -> dict[str, AlignmentScores]:
    """Score a random-missing MM-Align's alignment of every ordered pair against ``spans``.

    Parameters
    ----------
    model : MMAlignPatterns
    data : PatternData
        A split with every modality present and no step dropped
        (:meth:`~mmalign.data.missingness.SplitMissingness.complete`).
    spans : dict[str, ndarray]
        ``"<victim>_<source>"`` -> (N, L_victim, 2) true spans; pairs without one are skipped.
    batch_size : int, default 64

    Returns
    -------
    dict[str, AlignmentScores]
        ``"<source>><victim>"`` -> the scores of that pair, in the model's pair order.
    """
    from mmalign.data.batching import iterate_batches
    from mmalign.evaluate.alignment_score import ScoreAccumulator
    from mmalign.ot.column_band import column_band_valid_mask

    model.eval()
    window = int(model.adl.window)
    out = {}
    for source, victim in model.pairs:
        key = f"{victim}_{source}"
        if key not in spans:
            continue
        i, j = data.modalities.index(source), data.modalities.index(victim)
        both = data.present[:, i] & data.present[:, j]
        both &= (data.lengths[source] > 0) & (data.lengths[victim] > 0)
        rows = np.flatnonzero(both.cpu().numpy())
        if rows.size == 0:
            continue
        acc = {name: ScoreAccumulator() for name in PREDICTORS}
        truth_all = torch.as_tensor(np.asarray(spans[key], dtype=np.int64))
        for batch in iterate_batches(data, rows, batch_size, shuffle=False):
            predicted, target, centres = model.alignments(batch, source, victim)
            victim_mask = batch.masks[victim]
            valid = column_band_valid_mask(batch.masks[source], victim_mask, centres, window)
            truth = truth_all[batch.index.cpu(), : victim_mask.shape[1]].to(centres.device)
            _add_predictors(acc, predicted, target, centres, valid, window, truth, victim_mask)
        scores = {name: a.result() for name, a in acc.items()}
        out[f"{source}>{victim}"] = AlignmentScores(
            **scores, n_samples=int(rows.size), source=source, victim=victim,
            solver=model.adl.alignment_solver,
        )  # fmt: skip
    return out


def run_pattern_alignment_scores(
    run_dir: str | Path,
    *,
    data_options: Mapping[str, Any] | None = None,
    batch_size: int = 64,
    split: str = "test",
) -> dict[str, AlignmentScores]:
    """Load a random-missing MM-Align run and score every pair's alignment (complete samples).

    Raises
    ------
    ConfigError
        The run is not a random-missing MM-Align run.
    DataError
        The data holds no truth spans for any pair.
    """
    from mmalign.config import apply_overrides
    from mmalign.data.missingness import SplitMissingness
    from mmalign.data.pattern_batching import PatternData
    from mmalign.models.mm_align_patterns import MMAlignPatterns
    from mmalign.runs import load_data, load_run

    check_in("split", split, ("train", "valid", "test"))
    run = load_run(run_dir)
    if not isinstance(run.model, MMAlignPatterns):
        raise ConfigError(
            f"`run` must be an mm-align run to score alignments; got {run.meta.method!r} in "
            f"{run_dir}."
        )
    config = apply_overrides(run.config, data_options or {}).validate()
    part = load_data(config).splits[split]
    if not part.spans:
        raise DataError(
            f"{config.data}: no ground-truth alignment (span_<victim>_<source> arrays) in the "
            f"{split} split; `mmalign data synth` writes them for the synthetic data."
        )
    data = PatternData.from_split(part, SplitMissingness.complete(part)).to(run.device)
    return score_pattern_alignments(run.model, data, part.spans, batch_size)


def run_alignment_scores(
    run_dir: str | Path,
    *,
    data_options: Mapping[str, Any] | None = None,
    setting: str = "A",
    batch_size: int = 64,
    split: str = "test",
) -> AlignmentScores:
    """Load a run of the proposed method and score its alignments against the data's truth.

    The data must carry ``span_<victim>_<source>`` (``docs/data.md``): for each victim step,
    the source steps it truly corresponds to. Arguments as in :func:`run_alignment_summary`.

    Raises
    ------
    DataError
        The data has no truth spans for the run's pair.
    """
    from mmalign.data.batching import PairData

    run, config, part = _load_alignment_run(run_dir, data_options, setting, split)
    key = f"{run.victim}_{run.source}"
    if key not in part.spans:
        raise DataError(
            f"{config.data}: no ground-truth alignment for {run.victim}->{run.source} "
            f"(array span_{key} in the {split} split); the data has "
            f"{sorted(part.spans) or 'none'}. `mmalign data synth` writes them for the "
            "synthetic data; see docs/data.md for the layout."
        )
    pair = PairData.from_split(part, run.source, run.victim, resample=False).to(run.device)
    return score_alignments(run.model, pair, part.spans[key], batch_size)


@torch.no_grad()
def sample_alignments(
    model, pair, rows: np.ndarray, spans: np.ndarray | None = None
) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]:
    """Dense fitter and OT alignments of single complete samples, with their truth.

    Parameters
    ----------
    model : MMAlign
    pair : PairData
        The victim on its own axis (``resample=False``).
    rows : ndarray of int
        Samples of ``pair`` to draw (each must have both modalities).
    spans : ndarray, shape (N, L_victim, 2), optional
        True source spans of each victim step.

    Returns
    -------
    list of (label, predicted (n, m), ot (n, m), truth (m, 2) or None)
        What :func:`mmalign.evaluate.plots.plot_sample_alignments` draws.
    """
    from mmalign.data.batching import iterate_batches

    model.eval()
    out = []
    for batch in iterate_batches(pair, np.asarray(rows), len(rows) or 1, shuffle=False):
        predicted, target, centres = _column_alignments(model, batch)
        n_source = batch.source_mask.shape[1]
        dense_p = column_band_to_dense(predicted, centres, model.adl.window, n_source)
        dense_o = column_band_to_dense(target, centres, model.adl.window, n_source)
        for b, row in enumerate(batch.index.tolist()):
            n, m = int(batch.source_mask[b].sum()), int(batch.victim_mask[b].sum())
            truth = None if spans is None else np.asarray(spans[row, :m])
            out.append(
                (
                    f"sample {row} ({n} source, {m} victim steps)",
                    dense_p[b, :n, :m].cpu().numpy(),
                    dense_o[b, :n, :m].cpu().numpy(),
                    truth,
                )
            )
    return out


def run_sample_alignments(
    run_dir: str | Path,
    *,
    data_options: Mapping[str, Any] | None = None,
    n_samples: int = 3,
    setting: str = "A",
    split: str = "test",
    seed: int = 0,
):
    """Load a run of the proposed method and return :func:`sample_alignments` of ``n_samples``.

    The samples are drawn (seeded) among the complete samples of the split; the truth is
    included when the data has ``span_<victim>_<source>``.
    """
    from mmalign.data.batching import PairData

    run, _, part = _load_alignment_run(run_dir, data_options, setting, split)
    pair = PairData.from_split(part, run.source, run.victim, resample=False).to(run.device)
    both = (pair.source_lengths.cpu().numpy() > 0) & (pair.victim_lengths.cpu().numpy() > 0)
    candidates = np.flatnonzero(both)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(candidates, size=min(n_samples, candidates.size), replace=False))
    spans = part.spans.get(f"{run.victim}_{run.source}")
    return sample_alignments(run.model, pair, rows, spans)
