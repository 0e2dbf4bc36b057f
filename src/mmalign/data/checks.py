"""Data-quality checks: situations a run completes in, but whose numbers a user must not trust blindly.

Each check is a pure function (numpy only) that returns a list of :class:`DataWarning`
records, empty when all is well; none of them warns or logs. The caller (the run layer)
logs each record and issues it with ``warnings.warn(w.message, DataQualityWarning)``.
Every message says what is wrong, with the numbers, and what to do. The table of codes,
thresholds and remedies is ``docs/warnings.md``.

Thresholds (module constants, justified in ``docs/warnings.md``):

========================  =====================================================================
``EMPTY_SHARE``           0.5: a modality is "mostly empty" when more than half of the
                          training samples have length 0.
``CONSTANT_RTOL``         1e-6: a modality is constant when every feature's std over the valid
                          training steps is at most ``1e-6 * mean |x|`` (float32 rounding level).
``MIN_COMPLETE``          32: a complete split below ``max(32, batch_size)`` samples.
``RESAMPLE_DROP_SHARE``   0.5: resampling discards more than half of the victim's valid steps.
``OT_UNCONVERGED_SHARE``  0.5: Sinkhorn hit ``max_iter`` for more than half of the samples.
``WINDOW_SPAN``           2: the alignment window reaches fewer source steps either side of
                          the diagonal than two victim steps span.
``CAP_LAST_EPOCHS``       3: a run that reached its epoch cap had its best validation epoch
                          among its last three.
========================  =====================================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmalign.data.dataset import MultimodalDataset, canonical_modality
from mmalign.validation import ConfigError, check_in, check_probability

__all__ = [
    "DataQualityWarning",
    "DataWarning",
    "EMPTY_SHARE",
    "CONSTANT_RTOL",
    "MIN_COMPLETE",
    "RESAMPLE_DROP_SHARE",
    "OT_UNCONVERGED_SHARE",
    "WINDOW_SPAN",
    "check_modalities",
    "check_split_sizes",
    "check_resampling",
    "check_window",
    "check_ot_convergence",
    "check_floor",
    "check_epoch_cap",
]

#: Share of training samples with length 0 above which a modality is reported as empty.
EMPTY_SHARE = 0.5
#: Relative std (to the mean magnitude) at or below which a modality counts as constant.
CONSTANT_RTOL = 1e-6
#: Smallest complete split that is not reported (also never below one full batch).
MIN_COMPLETE = 32
#: Share of the victim's valid steps discarded by resampling above which it is reported.
RESAMPLE_DROP_SHARE = 0.5
#: Share of samples with an unconverged Sinkhorn above which it is reported.
OT_UNCONVERGED_SHARE = 0.5
#: Victim steps the window must reach either side of the diagonal, in the victim's own steps.
WINDOW_SPAN = 2.0
#: A run that reached the epoch cap with a best epoch among its last this many was improving.
CAP_LAST_EPOCHS = 3


class DataQualityWarning(UserWarning):
    """The data or a run's outcome makes its results doubtful (see ``docs/warnings.md``)."""


@dataclass(frozen=True)
class DataWarning:
    """One detected problem.

    Attributes
    ----------
    code : str
        Stable identifier (e.g. ``"modality_constant"``), listed in ``docs/warnings.md``.
    message : str
        What is wrong, with the numbers, and what to do.
    """

    code: str
    message: str

    def __str__(self) -> str:
        return self.message


def _pct(share: float) -> str:
    """Format a share in [0, 1] as a percentage; never rounds a non-zero share to 0 or 100.

    >>> _pct(0.9), _pct(0.0004), _pct(0.9996), _pct(1.0)
    ('90%', '<1%', '>99%', '100%')
    """
    if 0 < share < 0.005:
        return "<1%"
    if 0.995 < share < 1:
        return ">99%"
    return f"{100 * share:.0f}%"


def check_modalities(dataset: MultimodalDataset, modalities: Sequence[str]) -> list[DataWarning]:
    """Report modalities of the training split that carry no usable signal.

    Per modality, in this order (at most one record each): ``modality_empty`` when more
    than :data:`EMPTY_SHARE` of the training samples have length 0; ``modality_all_zero``
    when every valid step is 0; ``modality_constant`` when all valid steps are equal, that
    is every feature's std over the valid steps is at most :data:`CONSTANT_RTOL` times the
    mean absolute value of the modality.

    Parameters
    ----------
    dataset : MultimodalDataset
        Its ``train`` split is checked: features ``(N, L_m, D_m)``, lengths ``(N,)``.
    modalities : sequence of str
        Modalities to check, full or short names (``t``/``v``/``a``), e.g. the run's pair.

    Returns
    -------
    list of DataWarning

    Raises
    ------
    ConfigError
        A name that is not a modality of the dataset.

    Examples
    --------
    >>> from mmalign.data.dataset import Split
    >>> x = np.ones((4, 3, 2), np.float32)
    >>> split = Split({"vision": x}, {"vision": np.full(4, 3)}, np.zeros(4, np.float32),
    ...               np.array(list("abcd"), dtype=object))
    >>> ds = MultimodalDataset({"train": split, "valid": split, "test": split}, "regression")
    >>> [w.code for w in check_modalities(ds, ["v"])]
    ['modality_constant']
    """
    train = dataset.splits["train"]
    available = train.modalities
    out: list[DataWarning] = []
    for name in dict.fromkeys(canonical_modality(m, available) for m in modalities):
        x = train.features[name]  # (N, L, D)
        lengths = np.asarray(train.lengths[name], dtype=np.int64)  # (N,)
        n = int(lengths.shape[0])
        n_empty = int(np.sum(lengths <= 0))
        if n and n_empty / n > EMPTY_SHARE:
            out.append(
                DataWarning(
                    "modality_empty",
                    f"modality {name!r} has no steps (length 0) in {n_empty} of {n} training "
                    f"samples ({_pct(n_empty / n)}): the model learns nothing from it for "
                    "those samples; check the feature file (its lengths or padding) or "
                    "choose another pair.",
                )
            )
            continue
        valid = np.arange(x.shape[1])[None, :] < lengths[:, None]  # (N, L)
        steps = x[valid]  # (S, D) valid steps of all samples
        if steps.size == 0:
            continue
        magnitude = float(np.mean(np.abs(steps), dtype=np.float64))
        if magnitude == 0.0:
            out.append(
                DataWarning(
                    "modality_all_zero",
                    f"modality {name!r} is all zero in the training split ({steps.shape[0]} "
                    "valid steps): the model cannot learn from it; check the feature file "
                    "(or the loader's format) or choose another pair.",
                )
            )
            continue
        spread = float(np.max(np.std(steps, axis=0, dtype=np.float64)))  # largest feature std
        if spread <= CONSTANT_RTOL * magnitude:
            out.append(
                DataWarning(
                    "modality_constant",
                    f"modality {name!r} is constant (all valid steps equal) in the training "
                    f"split (largest feature std {spread:.3g} over {steps.shape[0]} valid "
                    f"steps, mean |x| {magnitude:.3g}): the model cannot learn from it; "
                    "check the feature file or choose another pair.",
                )
            )
    return out


def _check_count(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"`{name}` must be an integer >= {low}; got {value!r}.")
    return int(value)


def check_split_sizes(n_complete: int, n_missing: int, batch_size: int) -> list[DataWarning]:
    """Report a complete split too small to train the alignment and the complete-split losses.

    Fires (code ``small_complete_split``) when ``n_complete < max(MIN_COMPLETE, batch_size)``:
    below one full batch every epoch makes a single, partial step on the complete-split
    losses (and the in-batch InfoNCE has fewer negatives than configured); below 32 (the
    paper's batch size, Table 7) the OT targets and the fitter are learnt from a handful of
    samples whatever the batch size. The message suggests the survival rate ``p`` that
    would reach the threshold.

    Parameters
    ----------
    n_complete, n_missing : int
        Training samples with and without the victim (``MissingSplit.train_complete`` and
        ``train_missing`` sizes).
    batch_size : int
        Training batch size (>= 1).

    Returns
    -------
    list of DataWarning

    Examples
    --------
    >>> [w.code for w in check_split_sizes(12, 108, 32)], check_split_sizes(128, 1156, 32)
    (['small_complete_split'], [])
    """
    n_complete = _check_count("n_complete", n_complete, 0)
    n_missing = _check_count("n_missing", n_missing, 0)
    batch_size = _check_count("batch_size", batch_size, 1)
    need = max(MIN_COMPLETE, batch_size)
    if n_complete >= need:
        return []
    n_train = n_complete + n_missing
    p_now = n_complete / n_train if n_train else 0.0
    p_need = math.ceil(100 * need / n_train) / 100 if n_train else math.inf
    if p_need <= 1:
        advice = (
            f"raise the survival rate (--p {p_need:g} gives {need} complete samples) or use a "
            "larger data set"
        )
    elif n_train >= MIN_COMPLETE:
        advice = (
            f"even p = 1 gives only {n_train} complete samples: lower --batch-size to at most "
            f"{n_train} or use a larger data set"
        )
    else:
        advice = f"the training split has only {n_train} samples in all: use a larger data set"
    return [
        DataWarning(
            "small_complete_split",
            f"the complete split holds only {n_complete} of {n_train} training samples "
            f"(p = {p_now:.3g}), fewer than {need} (at least {MIN_COMPLETE} and one full batch "
            f"of {batch_size}): the alignment and the complete-split losses are trained on only "
            f"{n_complete} samples, so results will be noisy; {advice}.",
        )
    ]


def _length_pair(
    source_lengths: np.ndarray, victim_lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Check and return two (N,) int64 length arrays of the same samples."""
    ls, lv = np.asarray(source_lengths), np.asarray(victim_lengths)
    if ls.ndim != 1 or ls.shape != lv.shape:
        raise ConfigError(
            "`source_lengths` and `victim_lengths` must have the same shape (N,); got "
            f"{ls.shape} and {lv.shape}."
        )
    if ls.size and (ls.min() < 0 or lv.min() < 0):
        raise ConfigError("`source_lengths` and `victim_lengths` must be >= 0; got a negative.")
    return ls.astype(np.int64), lv.astype(np.int64)


def check_resampling(
    source_lengths: np.ndarray,
    victim_lengths: np.ndarray,
    *,
    source: str = "source",
    victim: str = "victim",
) -> list[DataWarning]:
    """Report victim steps discarded when an unaligned victim is resampled onto the source axis.

    :class:`~mmalign.data.batching.PairData` gives the victim the source's length: source
    step ``j`` reads victim step ``floor((j + 0.5) * Lv / Ls)``. A sample therefore keeps
    ``min(Ls, Lv)`` distinct victim steps (all of them when ``Lv <= Ls``, one per source
    step otherwise; none when ``Ls = 0``). Fires (code ``resampling_drops_steps``) when
    the pooled share of discarded victim steps exceeds :data:`RESAMPLE_DROP_SHARE`.

    Parameters
    ----------
    source_lengths, victim_lengths : ndarray, shape (N,)
        int lengths of the samples that hold the victim (e.g. the complete split).
    source, victim : str
        Modality names used in the message.

    Returns
    -------
    list of DataWarning

    Raises
    ------
    ConfigError
        Shapes differ or are not 1-D, or a length is negative.

    Examples
    --------
    >>> w = check_resampling(np.array([10, 10]), np.array([100, 100]), source="text",
    ...                      victim="audio")
    >>> w[0].code, "180 of 200" in w[0].message
    ('resampling_drops_steps', True)
    >>> check_resampling(np.array([10, 20]), np.array([10, 15]))
    []
    """
    ls, lv = _length_pair(source_lengths, victim_lengths)
    total = int(lv.sum())
    if total == 0:
        return []
    kept = int(np.minimum(ls, lv).sum())
    dropped = total - kept
    share = dropped / total
    if share <= RESAMPLE_DROP_SHARE:
        return []
    n = int(np.sum(lv > 0))
    return [
        DataWarning(
            "resampling_drops_steps",
            f"the pair is unaligned: {victim!r} is resampled onto the time axis of {source!r} "
            f"(nearest step), which discards {dropped} of {total} valid {victim} steps "
            f"({_pct(share)}) in the {n} samples that hold it (mean length "
            f"{lv[lv > 0].mean():.1f} -> {ls[lv > 0].mean():.1f} steps); the model never sees "
            "the discarded steps. Use aligned features of the data set (e.g. MMSA aligned_50) "
            "if it has them; otherwise note in the results that this version resamples the "
            "victim by nearest step and does not pool the skipped steps.",
        )
    ]


def check_window(
    source_lengths: np.ndarray,
    victim_lengths: np.ndarray,
    window: int,
    *,
    source: str = "source",
    victim: str = "victim",
) -> list[DataWarning]:
    """Report an alignment window narrower than the victim's steps, counted in source steps.

    Victim step ``j`` may align only with source steps ``i`` where ``|i - j * Ls / Lv| <=
    window``. When the source is the finer axis (audio frames as the source of text words),
    one victim step spans ``R = Ls / Lv`` source steps, and its true place drifts from the
    rescaled diagonal by a victim step or more. Fires (code ``window_narrow``) when the
    median ``R`` over the given samples exceeds 1 and ``window < WINDOW_SPAN * R``.

    Parameters
    ----------
    source_lengths, victim_lengths : ndarray, shape (N,)
        int lengths of the samples that hold both (e.g. the complete training split).
    window : int
        The window radius ``K`` (``--window``).
    source, victim : str
        Modality names used in the message.

    Returns
    -------
    list of DataWarning

    Raises
    ------
    ConfigError
        Shapes differ or are not 1-D, or a length or the window is negative.

    Examples
    --------
    >>> w = check_window(np.array([110, 90]), np.array([10, 10]), 8, source="audio",
    ...                  victim="text")
    >>> w[0].code, "--window 20" in w[0].message
    ('window_narrow', True)
    >>> check_window(np.array([10, 20]), np.array([110, 90]), 8)
    []
    """
    ls, lv = _length_pair(source_lengths, victim_lengths)
    if window < 0:
        raise ConfigError(f"`window` must be >= 0; got {window!r}.")
    both = (ls > 0) & (lv > 0)
    if not both.any():
        return []
    span = float(np.median(ls[both] / lv[both]))
    if span <= 1 or window >= WINDOW_SPAN * span:
        return []
    wanted = math.ceil(WINDOW_SPAN * span)
    return [
        DataWarning(
            "window_narrow",
            f"one {victim} step spans about {span:.1f} {source} steps (median over "
            f"{int(both.sum())} samples), but the alignment window reaches only K={window} "
            f"{source} steps either side of the rescaled diagonal, less than "
            f"{WINDOW_SPAN:g} {victim} steps: a {victim} step whose true place drifts further "
            "from the diagonal cannot be aligned to it, and the alignment is then mostly the "
            f"diagonal. Set --window {wanted} or more (the band holds 2K+1 {source} steps per "
            f"{victim} step; time and memory grow linearly with K).",
        )
    ]


def check_ot_convergence(
    unconverged_share: float, reg: float, max_iter: int, *, tol: float | None = None
) -> list[DataWarning]:
    """Report a Sinkhorn solver that mostly stops at ``max_iter`` before reaching ``tol``.

    Call it once per run (e.g. with the share of the last, or of the worst, epoch: the
    ``complete/ot_unconverged`` entry of the training history); the epoch log line shows
    every non-zero share as ``OT unconverged N%``. Fires (code ``ot_unconverged``) when
    the share exceeds :data:`OT_UNCONVERGED_SHARE`.

    Parameters
    ----------
    unconverged_share : float
        Share in [0, 1] of complete-split samples whose Sinkhorn hit ``max_iter``.
    reg : float
        Entropic regularisation ``mu`` (``--reg``).
    max_iter : int
        Sinkhorn iteration cap (``--max-iter``).
    tol : float, optional
        Sinkhorn tolerance (``--tol``), quoted in the message when given.

    Returns
    -------
    list of DataWarning

    Examples
    --------
    >>> [w.code for w in check_ot_convergence(0.8, 0.1, 100)], check_ot_convergence(0.1, 0.1, 100)
    (['ot_unconverged'], [])
    """
    share = check_probability("unconverged_share", unconverged_share, open_low=False)
    if share <= OT_UNCONVERGED_SHARE:
        return []
    tol_txt = f", tol={tol:g}" if tol is not None else ""
    tol_advice = f"--tol {10 * tol:g}" if tol is not None else "a larger --tol"
    return [
        DataWarning(
            "ot_unconverged",
            f"the Sinkhorn solver stopped at max_iter={max_iter} before reaching its tolerance "
            f"for {_pct(share)} of the complete-split samples (reg={reg:g}{tol_txt}): the OT "
            "plans, and so the alignment targets the fitter learns, are then approximate. "
            f"Raise --max-iter (e.g. {4 * max_iter}), raise --reg (e.g. {2 * reg:g}: smoother "
            f"plans converge faster) or accept a looser tolerance ({tol_advice}).",
        )
    ]


_FLOOR_MODEL = {
    "regression": ("MAE", "lower", "ridge regression"),
    "classification": ("accuracy", "higher", "logistic regression"),
}


def check_floor(
    test_metric: float, floor_metric: float, task: str, *, metric: str | None = None
) -> list[DataWarning]:
    """Report a deep model that scores worse than the linear sanity floor on the test set.

    The floor (:func:`~mmalign.evaluate.floor.sanity_floor`) is a ridge (regression) or
    logistic (classification) model on time-pooled features. Regression metrics are taken
    as lower-is-better (MAE), classification metrics as higher-is-better (accuracy, F1).
    Fires (code ``below_floor``) when the model is strictly worse; silent when either
    number is not finite.

    Parameters
    ----------
    test_metric, floor_metric : float
        The model's and the floor's test value of the same metric.
    task : {"regression", "classification"}
    metric : str, optional
        Name of the metric in the message; default ``"MAE"`` or ``"accuracy"``.

    Returns
    -------
    list of DataWarning

    Examples
    --------
    >>> [w.code for w in check_floor(1.3, 1.1, "regression")], check_floor(0.7, 0.6, "classification")
    (['below_floor'], [])
    """
    check_in("task", task, list(_FLOOR_MODEL))
    default_name, direction, floor_model = _FLOOR_MODEL[task]
    name = metric or default_name
    model, floor = float(test_metric), float(floor_metric)
    if not (math.isfinite(model) and math.isfinite(floor)):
        return []
    worse = model > floor if direction == "lower" else model < floor
    if not worse:
        return []
    return [
        DataWarning(
            "below_floor",
            f"the model's test {name} {model:.4f} is worse than the sanity floor's {floor:.4f} "
            f"({floor_model} on time-pooled features; {direction} is better): the deep model "
            "does not beat a linear model on averaged features. Check the other warnings of "
            "this run, train longer or tune the learning rates (--epochs, --patience, "
            "--lr-main), try other seeds; if it persists, report it as a finding.",
        )
    ]


def check_epoch_cap(
    best_epochs: dict[str, int], epochs_run: int, max_epochs: int, *, stopped_early: bool
) -> list[DataWarning]:
    """Report a run that reached its epoch cap while its validation score was still improving.

    Fires (code ``epoch_cap``) when training was not stopped early, ran all ``max_epochs``
    epochs, and some setting's best validation epoch is one of the last
    :data:`CAP_LAST_EPOCHS`: the kept checkpoint is then close to the last epoch, and more
    epochs would likely have found a better one.

    Parameters
    ----------
    best_epochs : dict[str, int]
        Setting -> epoch (1-based, warm-up epochs counted) of its best validation score.
    epochs_run : int
        Epochs trained, warm-up included.
    max_epochs : int
        The cap, warm-up included (``warmup_epochs + epochs``).
    stopped_early : bool
        Early stopping ended training.

    Returns
    -------
    list of DataWarning

    Examples
    --------
    >>> [w.code for w in check_epoch_cap({"A": 30}, 31, 31, stopped_early=False)]
    ['epoch_cap']
    >>> check_epoch_cap({"A": 25}, 31, 31, stopped_early=False)
    []
    """
    if stopped_early or epochs_run < max_epochs or not best_epochs:
        return []
    late = {s: e for s, e in best_epochs.items() if e > epochs_run - CAP_LAST_EPOCHS}
    if not late:
        return []
    where = ", ".join(f"setting {s} at epoch {e}" for s, e in late.items())
    return [
        DataWarning(
            "epoch_cap",
            f"training reached its epoch cap ({epochs_run} epochs, warm-up included) while the "
            f"validation score was still improving ({where}, among the last "
            f"{CAP_LAST_EPOCHS}): the model is probably under-trained. Continue this run with "
            f"`mmalign run --resume RUN_DIR --epochs N` (N above this run's --epochs), or train "
            "with a larger --epochs.",
        )
    ]
