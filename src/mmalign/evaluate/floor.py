"""The sanity floor: a linear model on time-pooled features, reported beside every table.

Each modality a method may use is summarised per sample by the mean and the mean of squares
of its features over the *valid* time steps; a ridge regression (regression tasks) or an
L2-regularised logistic regression (classification) is fitted on the given training samples
and scored with :func:`mmalign.evaluate.metrics.compute_metrics` on the validation and test
splits. A deep method that loses to this floor is a finding to report (``DESIGN.md``,
"Evaluation protocol"); the floor also says how hard a data set is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from threadpoolctl import threadpool_limits

from mmalign.data.dataset import SPLIT_NAMES, MultimodalDataset, Split, canonical_modality
from mmalign.evaluate.metrics import PRIMARY_METRIC, compute_metrics
from mmalign.validation import ConfigError, check_positive

__all__ = ["pooled_features", "sanity_floor"]


def _canonical_modalities(modalities: Sequence[str], available: Sequence[str]) -> list[str]:
    if isinstance(modalities, str) or len(modalities) == 0:
        raise ConfigError(
            f"`modalities` must be a non-empty list of modality names; got {modalities!r}."
        )
    names: list[str] = []
    for name in modalities:
        full = canonical_modality(name, tuple(available))
        if full not in names:
            names.append(full)
    return names


def pooled_features(split: Split, modalities: Sequence[str]) -> np.ndarray:
    """Time-pooled features: per modality, the mean and the mean of squares over valid steps.

    Parameters
    ----------
    split : Split
        Features ``(N, L_m, D_m)`` with valid steps first and lengths ``(N,)``.
    modalities : sequence of str
        Modalities to pool, in column order (short names ``t``/``v``/``a`` accepted).

    Returns
    -------
    ndarray, shape (N, F), float64
        ``F = sum_m 2 * D_m``: for each modality ``[mean (D_m), mean of squares (D_m)]``.
        Padded steps are never read (any value there, even NaN, changes nothing); a sample of
        length 0 gets zeros.

    Examples
    --------
    >>> x = np.array([[[1.0], [3.0], [99.0]]], dtype=np.float32)
    >>> labels, ids = np.zeros(1, np.float32), np.array(["s"])
    >>> split = Split({"audio": x}, {"audio": np.array([2])}, labels, ids)
    >>> pooled_features(split, ["a"])
    array([[2., 5.]])
    """
    columns = []
    for name in _canonical_modalities(modalities, split.modalities):
        x = split.features[name]  # (N, L, D)
        lengths = np.asarray(split.lengths[name])  # (N,)
        valid = np.arange(x.shape[1])[None, :] < lengths[:, None]  # (N, L)
        # np.where, not a product: padding may hold NaN or inf and 0 * inf is NaN
        x = np.where(valid[:, :, None], x.astype(np.float64), 0.0)  # (N, L, D)
        count = np.maximum(lengths, 1).astype(np.float64)[:, None]  # (N, 1)
        columns.append(x.sum(axis=1) / count)  # (N, D)
        columns.append(np.square(x).sum(axis=1) / count)  # (N, D)
    return np.concatenate(columns, axis=1)  # (N, F)


def _presence(
    present: Mapping[str, Mapping[str, Any]] | None,
    modalities: list[str],
    sizes: dict[str, int],
    available: Sequence[str],
) -> dict[str, dict[str, np.ndarray]]:
    """Return modality -> split -> (N,) bool for the modalities listed in ``present``."""
    if present is None:
        return {}
    result: dict[str, dict[str, np.ndarray]] = {}
    for raw_name, per_split in present.items():
        name = canonical_modality(raw_name, tuple(available))
        if name not in modalities:
            raise ConfigError(
                f"`present` must name modalities among {modalities}; got {raw_name!r}."
            )
        masks = {}
        for split_name in SPLIT_NAMES:
            n = sizes[split_name]
            if split_name not in per_split or per_split[split_name] is None:
                masks[split_name] = np.ones(n, dtype=bool)
                continue
            mask = np.asarray(per_split[split_name])
            if mask.shape != (n,) or mask.dtype != bool:
                raise ConfigError(
                    f"`present[{raw_name!r}][{split_name!r}]` must be a bool array of shape "
                    f"({n},); got {mask.dtype} {mask.shape!r}."
                )
            masks[split_name] = mask
        unknown = sorted(set(per_split) - set(SPLIT_NAMES))
        if unknown:
            raise ConfigError(
                f"`present[{raw_name!r}]` keys must be among {list(SPLIT_NAMES)}; got {unknown}."
            )
        result[name] = masks
    return result


def _design_matrices(
    dataset: MultimodalDataset,
    modalities: list[str],
    train_rows: np.ndarray,
    presence: dict[str, dict[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Standardised pooled features of every split, absent modalities at 0 plus indicators."""
    blocks: dict[str, list[np.ndarray]] = {s: [] for s in SPLIT_NAMES}
    for name in modalities:
        raw = {s: pooled_features(dataset.splits[s], [name]) for s in SPLIT_NAMES}  # (N, 2D)
        masks = presence.get(name)
        fit_rows = raw["train"][train_rows]  # (N_fit, 2D)
        if masks is not None:
            fit_rows = fit_rows[masks["train"][train_rows]]  # (N_fit_present, 2D)
        if fit_rows.shape[0] > 0:
            mean, std = fit_rows.mean(axis=0), fit_rows.std(axis=0)  # (2D,)
        else:
            mean, std = np.zeros(raw["train"].shape[1]), np.ones(raw["train"].shape[1])
        std = np.where(std > 1e-12, std, 1.0)  # a constant column stays at 0
        for s in SPLIT_NAMES:
            z = (raw[s] - mean) / std  # (N, 2D)
            if masks is not None:
                # 0 after standardising = the training mean: the floor imputes the mean
                z = np.where(masks[s][:, None], z, 0.0)  # (N, 2D)
                blocks[s].append(masks[s][:, None].astype(np.float64))  # (N, 1) indicator
            blocks[s].append(z)
    return {s: np.concatenate(blocks[s], axis=1) for s in SPLIT_NAMES}  # (N, F)


def _train_rows(train_index: Any, n_train: int) -> np.ndarray:
    if train_index is None:
        return np.arange(n_train)
    index = np.asarray(train_index)
    if index.dtype == bool:
        if index.shape != (n_train,):
            raise ConfigError(
                f"`train_index` as a mask must have shape ({n_train},); got {index.shape!r}."
            )
        index = np.flatnonzero(index)
    elif not np.issubdtype(index.dtype, np.integer) or index.ndim != 1:
        raise ConfigError(
            f"`train_index` must be 1-D int indices or a bool mask; got {index.dtype} "
            f"{index.shape!r}."
        )
    if index.size == 0:
        raise ConfigError("`train_index` must select at least one training sample; got none.")
    if index.min() < 0 or index.max() >= n_train:
        raise ConfigError(
            f"`train_index` must lie in [0, {n_train}); got range [{index.min()}, {index.max()}]."
        )
    return index


def _fit_predict(
    task: str, alpha: float, x_train: np.ndarray, y_train: np.ndarray, xs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    # one BLAS thread: these fits are small, and on a busy machine extra threads only
    # contend (a 7-class logistic fit measured 20x slower with 2 threads on 2 loaded cores)
    with threadpool_limits(limits=1):
        if task == "regression":
            model: Any = Ridge(alpha=alpha)
            model.fit(x_train, y_train.astype(np.float64))
        else:
            # C is sklearn's inverse strength: the same alpha means the same L2 penalty scale
            model = LogisticRegression(C=1.0 / alpha, max_iter=2000)
            model.fit(x_train, y_train)
        # class predictions (N,), not probabilities: classes absent from training would
        # shift the columns of predict_proba
        return {s: model.predict(x) for s, x in xs.items()}


def sanity_floor(
    dataset: MultimodalDataset,
    modalities: Sequence[str],
    train_index: Any = None,
    present: Mapping[str, Mapping[str, Any]] | None = None,
    alpha: float | Sequence[float] = 1.0,
) -> dict[str, dict[str, float]]:
    """Fit the linear sanity floor on training samples and score it on valid and test.

    Parameters
    ----------
    dataset : MultimodalDataset
        Regression labels give a ridge regression, class labels an L2 logistic regression.
    modalities : sequence of str
        The modalities the compared method may use (e.g. ``["text"]`` for a source-only lower
        bound, ``["text", "vision"]`` for a pair).
    train_index : ndarray of int or bool, shape (N_fit,) or (N_train,), optional
        Training rows to fit on (e.g. the complete split); all training rows by default.
    present : mapping, optional
        ``modality -> {split name -> (N,) bool}``: which samples hold that modality (splits
        left out: all). For each listed modality the pooled features of absent samples are
        set to 0 *after* standardisation (that is, to the training mean) and a 0/1 indicator
        column (1 = present) is added, in every split. Standardisation statistics of a
        modality use only the training rows where it is present.
    alpha : float or sequence of float
        L2 strength (ridge ``alpha``; logistic ``C = 1 / alpha``). With a sequence, each
        value is fitted and the one with the best validation primary metric
        (:data:`~mmalign.evaluate.metrics.PRIMARY_METRIC`; first on ties) is kept; the test
        metrics are then those of that single fit.

    Returns
    -------
    dict[str, dict[str, float]]
        ``"valid"`` and ``"test"``: the metrics of
        :func:`~mmalign.evaluate.metrics.compute_metrics`; ``"fit"``: ``alpha`` (the value
        used), ``n_train`` (rows fitted) and ``n_features`` (columns ``F``).

    Raises
    ------
    ConfigError
        Unknown modality, bad ``train_index`` / ``present`` / ``alpha``, or fewer than two
        classes among the training rows of a classification task.

    Examples
    --------
    >>> from mmalign.data.dataset import Split, MultimodalDataset
    >>> rng = np.random.default_rng(0)
    >>> def split(n):
    ...     x = rng.normal(size=(n, 4, 2)).astype(np.float32)
    ...     y = x.mean(axis=1) @ np.array([1.0, -2.0], np.float32)
    ...     ids = np.array([str(i) for i in range(n)], dtype=object)
    ...     return Split({"audio": x}, {"audio": np.full(n, 4)}, y, ids)
    >>> data = MultimodalDataset({"train": split(60), "valid": split(20), "test": split(20)},
    ...                          "regression")
    >>> floor = sanity_floor(data, ["audio"], alpha=1e-6)
    >>> floor["test"]["mae"] < 1e-4
    True
    """
    available = dataset.modalities
    names = _canonical_modalities(modalities, available)
    alphas = [alpha] if isinstance(alpha, (int, float)) else list(alpha)
    if not alphas:
        raise ConfigError(f"`alpha` must be a number > 0 or a non-empty list; got {alpha!r}.")
    for value in alphas:
        check_positive("alpha", value)
    sizes = {s: len(dataset.splits[s]) for s in SPLIT_NAMES}
    rows = _train_rows(train_index, sizes["train"])
    presence = _presence(present, names, sizes, available)
    design = _design_matrices(dataset, names, rows, presence)
    y_train = dataset.splits["train"].labels[rows]  # (N_fit,)
    if dataset.task == "classification" and np.unique(y_train).size < 2:
        raise ConfigError(
            "`train_index` must select samples of at least 2 classes; got only class "
            f"{int(y_train[0])}."
        )
    primary, direction = PRIMARY_METRIC[dataset.task]
    best: dict[str, dict[str, float]] | None = None
    for value in alphas:
        predicted = _fit_predict(
            dataset.task,
            float(value),
            design["train"][rows],
            y_train,
            {s: design[s] for s in ("valid", "test")},
        )
        scores = {
            s: compute_metrics(predicted[s], dataset.splits[s].labels, dataset.task)
            for s in ("valid", "test")
        }
        score = scores["valid"][primary]
        if best is not None:
            previous = best["valid"][primary]
            better = score < previous if direction == "min" else score > previous
            if not better:
                continue
        best = {
            **scores,
            "fit": {
                "alpha": float(value),
                "n_train": float(rows.size),
                "n_features": float(design["train"].shape[1]),
            },
        }
    return best  # type: ignore[return-value]
