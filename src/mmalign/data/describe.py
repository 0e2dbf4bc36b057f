"""Human-readable summary of a :class:`MultimodalDataset` (``mmalign data describe``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mmalign.data.dataset import MultimodalDataset, Split
from mmalign.data.missingness import true_runs
from mmalign.validation import ConfigError

if TYPE_CHECKING:
    from mmalign.data.synthetic import InformationBudget

__all__ = [
    "Missingness",
    "budget_note",
    "describe",
    "describe_missingness",
    "label_summary",
    "length_summary",
    "missingness_table",
    "modality_missingness",
    "synthetic_budget",
    "zero_runs",
    "zero_steps",
]


def length_summary(lengths: np.ndarray) -> str:
    """``min/mean/max`` of sequence lengths.

    >>> length_summary(np.array([1, 2, 6]))
    'len min 1 / mean 3.0 / max 6'
    """
    if lengths.size == 0:
        return "len -"
    return f"len min {lengths.min()} / mean {lengths.mean():.1f} / max {lengths.max()}"


def label_summary(labels: np.ndarray, task: str, n_classes: int | None = None) -> str:
    """Regression: min/mean/max/std and share of zeros; classification: counts per class.

    >>> label_summary(np.array([0.0, 1.0, -1.0, 0.0], np.float32), "regression")
    'labels min -1.000 / mean 0.000 / max 1.000 / std 0.707, zeros 50.0%'
    >>> label_summary(np.array([0, 2, 2]), "classification", 3)
    'classes {0: 1, 1: 0, 2: 2}'
    """
    if labels.size == 0:
        return "labels -"
    if task == "classification":
        counts = np.bincount(labels.astype(np.int64), minlength=n_classes or 0)
        return "classes " + str({i: int(c) for i, c in enumerate(counts)})
    zeros = float(np.mean(labels == 0)) * 100
    return (
        f"labels min {labels.min():.3f} / mean {labels.mean():.3f} / max {labels.max():.3f} "
        f"/ std {labels.std():.3f}, zeros {zeros:.1f}%"
    )


def _split_lines(name: str, split: Split, task: str, n_classes: int | None) -> list[str]:
    lines = [f"  {name}: {len(split)} samples"]
    for m, x in split.features.items():
        lines.append(
            f"    {m:<8} D={x.shape[2]:<5} L={x.shape[1]:<5} {length_summary(split.lengths[m])}"
        )
    lines.append(f"    {label_summary(split.labels, task, n_classes)}")
    if split.spans:
        lines.append("    truth spans: " + ", ".join(split.spans))
    return lines


@dataclass(frozen=True)
class Missingness:
    """Missingness already in the file for one modality of one split.

    The three kinds are disjoint per sample: a zero-length sample is not all-zero, and zero
    runs are searched only in samples that are neither.

    Attributes
    ----------
    split, modality : str
    n_samples : int
        ``N``, samples in the split.
    n_zero_length : int
        Samples with length 0.
    n_all_zero : int
        Samples with length > 0 whose valid steps are all exactly zero.
    n_with_zero_run : int
        Other samples with at least one run of ``>= min_run`` consecutive all-zero valid steps.
    n_run_steps : int
        Valid steps that lie in such runs.
    n_searched_steps : int
        Valid steps of the samples searched for runs (neither zero-length nor all-zero).
    longest_run : int
        Longest such run in steps; 0 when there is none.
    min_run : int
        Shortest run counted.
    """

    split: str
    modality: str
    n_samples: int
    n_zero_length: int
    n_all_zero: int
    n_with_zero_run: int
    n_run_steps: int
    n_searched_steps: int
    longest_run: int
    min_run: int

    @property
    def share_zero_length(self) -> float:
        """Share of samples with length 0."""
        return _share(self.n_zero_length, self.n_samples)

    @property
    def share_all_zero(self) -> float:
        """Share of samples whose valid steps are all zero."""
        return _share(self.n_all_zero, self.n_samples)

    @property
    def share_with_zero_run(self) -> float:
        """Share of samples with at least one zero run."""
        return _share(self.n_with_zero_run, self.n_samples)

    @property
    def share_run_steps(self) -> float:
        """Share of the searched valid steps that lie in zero runs."""
        return _share(self.n_run_steps, self.n_searched_steps)


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


def zero_steps(features: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Mark the valid steps whose every feature is exactly 0 (padding is never marked).

    Parameters
    ----------
    features : ndarray, shape (N, L, D)
        Valid steps first; NaN and inf count as non-zero.
    lengths : ndarray, shape (N,)

    Returns
    -------
    ndarray of bool, shape (N, L)

    >>> x = np.array([[[0.0], [1.0], [0.0], [0.0]]], np.float32)
    >>> zero_steps(x, np.array([3])).astype(int).tolist()
    [[1, 0, 1, 0]]
    """
    valid = np.arange(features.shape[1]) < lengths[:, None]  # (N, L)
    # np.any reduces in buffered chunks: no (N, L, D) temporary, unlike `features != 0`
    return valid & ~np.any(features, axis=2)  # (N, L)


def zero_runs(zero: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Find the maximal runs of ``True`` along each row.

    Parameters
    ----------
    zero : ndarray of bool, shape (N, L)

    Returns
    -------
    rows : ndarray of int, shape (R,)
        The row of each run (``R`` runs in all, ordered by row then position).
    run_lengths : ndarray of int, shape (R,)

    >>> rows, run_lengths = zero_runs(np.array([[1, 1, 0, 1], [0, 0, 0, 0]], bool))
    >>> rows.tolist(), run_lengths.tolist()
    ([0, 0], [2, 1])
    """
    runs = true_runs(zero)  # (R, 3) rows [row, start, end)
    return runs[:, 0], runs[:, 2] - runs[:, 1]


def modality_missingness(
    split: str, modality: str, features: np.ndarray, lengths: np.ndarray, min_run: int = 3
) -> Missingness:
    """Count zero-length, all-zero samples and long zero runs of one modality.

    Parameters
    ----------
    split, modality : str
        Names recorded in the result.
    features : ndarray, shape (N, L, D)
    lengths : ndarray, shape (N,)
    min_run : int
        Shortest run of consecutive all-zero valid steps that counts.

    Returns
    -------
    Missingness
    """
    zero = zero_steps(features, lengths)  # (N, L)
    n_zero = zero.sum(axis=1)  # (N,)
    empty = lengths == 0
    all_zero = ~empty & (n_zero == lengths)
    searched = ~empty & ~all_zero
    rows, run_lengths = zero_runs(zero & searched[:, None])  # (R,), (R,)
    long = run_lengths >= min_run
    return Missingness(
        split=split,
        modality=modality,
        n_samples=int(lengths.shape[0]),
        n_zero_length=int(empty.sum()),
        n_all_zero=int(all_zero.sum()),
        n_with_zero_run=int(np.unique(rows[long]).size),
        n_run_steps=int(run_lengths[long].sum()),
        n_searched_steps=int(lengths[searched].sum()),
        longest_run=int(run_lengths[long].max(initial=0)),
        min_run=min_run,
    )


def describe_missingness(dataset: MultimodalDataset, min_run: int = 3) -> list[Missingness]:
    """Report the missingness already in the file, per split and modality.

    Real feature files mark missing data with zeros rather than lengths: COVAREP audio and
    Facet vision hold samples whose whole sequence is zero, samples of length 0, and long
    stretches of all-zero steps inside a sequence (a step is zero when all its features are).

    Parameters
    ----------
    dataset : MultimodalDataset
    min_run : int, default 3
        Shortest run of consecutive all-zero valid steps reported (shorter runs are
        ordinary silence or lost frames).

    Returns
    -------
    list of Missingness
        One per split and modality, in the dataset's order.

    Raises
    ------
    ConfigError
        ``min_run`` is not an integer >= 1.
    """
    if isinstance(min_run, bool) or not isinstance(min_run, (int, np.integer)) or min_run < 1:
        raise ConfigError(f"`min_run` must be an integer >= 1; got {min_run!r}.")
    return [
        modality_missingness(name, m, x, split.lengths[m], int(min_run))
        for name, split in dataset.splits.items()
        for m, x in split.features.items()
    ]


def missingness_table(rows: Sequence[Missingness]) -> str:
    """Format :func:`describe_missingness` as a compact text table.

    Parameters
    ----------
    rows : sequence of Missingness

    Returns
    -------
    str
        A title line and one line per row (no trailing newline).
    """
    min_run = rows[0].min_run if rows else 3
    title = (
        f"missingness in the file (zero run: >= {min_run} consecutive all-zero valid steps "
        "in a sequence not all zero)"
    )
    width_split = max([len("split"), *(len(r.split) for r in rows)])
    width_modality = max([len("modality"), *(len(r.modality) for r in rows)])
    head = ("split", "modality", "length 0", "all zero", "with run", "run steps", "longest")
    lines = [title, _table_line(head, width_split, width_modality)]
    for r in rows:
        cells = (
            r.split,
            r.modality,
            _count(r.n_zero_length, r.share_zero_length),
            _count(r.n_all_zero, r.share_all_zero),
            _count(r.n_with_zero_run, r.share_with_zero_run),
            f"{r.share_run_steps * 100:.1f}%",
            str(r.longest_run),
        )
        lines.append(_table_line(cells, width_split, width_modality))
    return "\n".join(lines)


def _count(count: int, share: float) -> str:
    return f"{count} ({share * 100:.1f}%)"


def _table_line(cells: Sequence[str], width_split: int, width_modality: int) -> str:
    split, modality, *rest = cells
    counts = "".join(f"{c:<14}" for c in rest[:3])
    return f"  {split:<{width_split}}  {modality:<{width_modality}}  {counts}{rest[3]:<11}{rest[4]}"


def synthetic_budget(data: str, task: str | None = None) -> InformationBudget | None:
    """Return the information budget of a ``"synthetic[:knobs]"`` data option, else ``None``.

    Parameters
    ----------
    data : str
        A run's ``data`` option (a path or ``"synthetic[:knob=value,...]"``).
    task : str, optional
        Overrides the knobs' ``task``, as ``--task`` does when the data is loaded.

    Returns
    -------
    InformationBudget or None
        See :func:`mmalign.data.synthetic.information_budget`; ``None`` also for the
        unaligned variant, where the budget does not apply (:func:`budget_note` says so).
    """
    import dataclasses

    from mmalign.data.spec import DataSpec
    from mmalign.data.synthetic import information_budget

    spec = DataSpec.parse(data)
    if not spec.synthetic:
        return None
    config = spec.synthetic_config()
    if config.unaligned:
        return None
    if task and task != config.task:
        config = dataclasses.replace(config, task=task).validate()
    return information_budget(config)


def budget_note(data: str) -> str | None:
    """Say why a ``"synthetic[:knobs]"`` data option has no information budget, else ``None``.

    >>> budget_note("synthetic:unaligned=1")[:40]
    'information budget: does not apply to th'
    >>> budget_note("synthetic") is None
    True
    """
    from mmalign.data.spec import DataSpec

    spec = DataSpec.parse(data)
    if spec.synthetic and spec.synthetic_config().unaligned:
        return (
            "information budget: does not apply to the unaligned variant (unaligned=1); its "
            "frame-level parts break the budget's formula"
        )
    return None


def describe(
    dataset: MultimodalDataset,
    budget: InformationBudget | None = None,
    notes: Sequence[str] = (),
    min_run: int = 3,
) -> str:
    """Summarise a dataset: counts, modalities, lengths, labels, spans, cleaning, missingness.

    Parameters
    ----------
    dataset : MultimodalDataset
    budget : InformationBudget, optional
        For a synthetic dataset (see :func:`synthetic_budget`): appended as a table of the
        label share each modality subset can reach.
    notes : sequence of str
        Lines appended at the end (e.g. :func:`budget_note`).
    min_run : int, default 3
        Shortest zero run in the missingness table (see :func:`describe_missingness`).

    Returns
    -------
    str
        Multi-line text (no trailing newline).
    """
    task = dataset.task + (f" ({dataset.n_classes} classes)" if dataset.n_classes else "")
    lines = [
        f"dataset {dataset.name}  ({dataset.source or 'in memory'})",
        f"task: {task}",
        "modalities: " + ", ".join(f"{m} (D={d})" for m, d in dataset.feature_dims.items()),
    ]
    for name, split in dataset.splits.items():
        lines.extend(_split_lines(name, split, dataset.task, dataset.n_classes))
    replaced = {m: n for m, n in dataset.cleaning.items() if n}
    if replaced:
        detail = ", ".join(f"{m} {n}" for m, n in replaced.items())
        lines.append(f"non-finite values (NaN/inf) replaced by 0 at load: {detail}")
    else:
        lines.append("non-finite values (NaN/inf): none")
    lines.append(missingness_table(describe_missingness(dataset, min_run=min_run)))
    if budget is not None:
        lines.append(budget.table())
    lines.extend(notes)
    return "\n".join(lines)
