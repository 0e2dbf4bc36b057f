"""Paired significance tests over split seeds, and the paper's significance mark.

The paper (Han et al., EMNLP 2022, Tables 2-4) marks MM-Align's result when it is
"significantly better than the highest baselines with p-value < 0.05 based on the paired
t-test". We make that rule precise (``docs/experiments.md``):

- the *best baseline* of a table column is the method other than MM-Align with the best mean
  over seeds, the upper bound ``ub`` excluded (it sees the victim modality at test time);
- runs are paired by split seed (both methods trained on the same complete/missing split);
- MM-Align is marked when the two-sided paired t-test over the common seeds gives
  ``pvalue < alpha`` (default 0.05) *and* MM-Align's mean over those seeds is better
  (lower for ``min`` metrics such as MAE, higher otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from mmalign.models.registry import proposed_method, upper_bound
from mmalign.validation import ConfigError, check_in, check_probability

__all__ = ["Significance", "paired_ttest", "mark_significant"]


@dataclass(frozen=True)
class Significance:
    """Outcome of :func:`mark_significant` for one table column.

    Attributes
    ----------
    significant : bool
        Whether the mark is set.
    baseline : str or None
        The best baseline on the column (``None`` when there is none).
    t : float
        Paired t statistic of ours minus the baseline (NaN when not computed).
    pvalue : float
        Two-sided p-value (NaN when fewer than two common seeds).
    n_pairs : int
        Seeds both methods have a finite value for.
    """

    significant: bool
    baseline: str | None
    t: float = math.nan
    pvalue: float = math.nan
    n_pairs: int = 0


def paired_ttest(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sided paired t-test of ``a`` against ``b`` (``scipy.stats.ttest_rel``).

    Tests whether the mean of ``a - b`` is zero. Degenerate cases that make scipy return
    NaN or warn are answered directly: identical arrays give ``(0.0, 1.0)``; a constant,
    non-zero difference gives ``(+-inf, 0.0)``.

    Parameters
    ----------
    a, b : sequence of float, shape (N,)
        Paired values (same seed at the same index), ``N >= 2``, finite.

    Returns
    -------
    t : float
        The t statistic (positive when ``a`` is larger on average).
    pvalue : float
        The two-sided p-value.

    Raises
    ------
    ConfigError
        Different lengths, fewer than two pairs, or a NaN / inf value.

    Examples
    --------
    >>> t, p = paired_ttest([1.0, 2.1, 3.3, 4.0, 5.2], [0.9, 2.0, 3.0, 3.9, 5.0])
    >>> round(t, 6), round(p, 4)
    (4.0, 0.0161)
    >>> paired_ttest([0.5, 0.7], [0.5, 0.7])
    (0.0, 1.0)
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ConfigError(
            f"`a` and `b` must be 1-d with the same length; got shapes {x.shape} and {y.shape}."
        )
    if x.size < 2:
        raise ConfigError(f"`a` must hold at least 2 paired values; got {x.size}.")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ConfigError(f"`a` and `b` must be finite; got {x.tolist()!r} and {y.tolist()!r}.")
    diff = x - y  # (N,)
    scale = max(1.0, float(np.abs(x).max()), float(np.abs(y).max()))
    # a difference constant up to rounding has zero variance: scipy would warn and divide by 0
    if float(np.ptp(diff)) <= 1e-12 * scale:
        mean = float(diff.mean())
        if abs(mean) <= 1e-12 * scale:
            return 0.0, 1.0
        return math.copysign(math.inf, mean), 0.0
    result = stats.ttest_rel(x, y)
    return float(result.statistic), float(result.pvalue)


def _finite_by_seed(values: Mapping[int, float]) -> dict[int, float]:
    return {int(s): float(v) for s, v in values.items() if v is not None and math.isfinite(v)}


def mark_significant(
    values: Mapping[str, Mapping[int, float]],
    direction: str = "max",
    *,
    ours: str | None = None,
    exclude: Iterable[str] | None = None,
    alpha: float = 0.05,
) -> Significance:
    """Decide the significance mark of ``ours`` on one table column.

    Parameters
    ----------
    values : mapping
        Method -> {seed: value} for one column (pair, setting, p, metric). NaN values are
        ignored (seeds where either method is NaN are not paired).
    direction : {"max", "min"}, default "max"
        Whether higher or lower values are better.
    ours : str, optional
        The method that may be marked (default: the registry's proposed method, MM-Align).
    exclude : iterable of str, optional
        Methods that are never the best baseline (default: the registry's upper bound,
        which sees both modalities).
    alpha : float, default 0.05
        Significance level.

    Returns
    -------
    Significance
        ``significant`` is True when ``ours`` beats the best baseline (best mean over seeds
        among the other methods) by a paired t-test over common seeds at ``pvalue < alpha``
        and has the better mean over those seeds.

    Examples
    --------
    >>> column = {
    ...     "mm-align": {0: 0.80, 1: 0.82, 2: 0.81},
    ...     "modal-trans": {0: 0.75, 1: 0.76, 2: 0.77},
    ...     "lb": {0: 0.70, 1: 0.71, 2: 0.69},
    ...     "ub": {0: 0.90, 1: 0.91, 2: 0.92},
    ... }
    >>> mark = mark_significant(column, "max")
    >>> mark.significant, mark.baseline, mark.n_pairs
    (True, 'modal-trans', 3)
    """
    check_in("direction", direction, ("max", "min"))
    check_probability("alpha", alpha)
    ours = proposed_method() if ours is None else ours
    excluded = set((upper_bound(),) if exclude is None else exclude) | {ours}
    sign = 1.0 if direction == "max" else -1.0
    means = {}
    for method, by_seed in values.items():
        finite = _finite_by_seed(by_seed)
        if method not in excluded and finite:
            means[method] = float(np.mean(list(finite.values())))
    if not means:
        return Significance(False, None)
    # first best in the mapping's order on a tie
    baseline = max(means, key=lambda m: sign * means[m])
    ours_values = _finite_by_seed(values.get(ours, {}))
    base_values = _finite_by_seed(values[baseline])
    seeds = sorted(set(ours_values) & set(base_values))
    if len(seeds) < 2:
        return Significance(False, baseline, n_pairs=len(seeds))
    a = [ours_values[s] for s in seeds]
    b = [base_values[s] for s in seeds]
    t, pvalue = paired_ttest(a, b)
    better = sign * (np.mean(a) - np.mean(b)) > 0
    return Significance(bool(better and pvalue < alpha), baseline, t, pvalue, len(seeds))
