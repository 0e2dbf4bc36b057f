"""Human-readable summary of a :class:`MultimodalDataset` (``mmalign data describe``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mmalign.data.dataset import MultimodalDataset, Split

if TYPE_CHECKING:
    from mmalign.data.synthetic import InformationBudget

__all__ = ["budget_note", "describe", "label_summary", "length_summary", "synthetic_budget"]


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
) -> str:
    """Summarise a dataset: per split counts, modalities, lengths, labels, spans, cleaning.

    Parameters
    ----------
    dataset : MultimodalDataset
    budget : InformationBudget, optional
        For a synthetic dataset (see :func:`synthetic_budget`): appended as a table of the
        label share each modality subset can reach.
    notes : sequence of str
        Lines appended at the end (e.g. :func:`budget_note`).

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
    if budget is not None:
        lines.append(budget.table())
    lines.extend(notes)
    return "\n".join(lines)
