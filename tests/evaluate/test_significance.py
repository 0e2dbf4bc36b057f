import math

import numpy as np
import pytest
from scipy import stats

from mmalign.evaluate.significance import mark_significant, paired_ttest
from mmalign.validation import ConfigError


def hand_ttest(a, b):
    d = np.asarray(a, float) - np.asarray(b, float)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(d.size))
    return t, 2 * stats.t.sf(abs(t), d.size - 1)


def test_matches_the_formula():
    a, b = [0.75, 0.68, 0.74, 0.70], [0.70, 0.72, 0.71, 0.65]
    t, p = paired_ttest(a, b)
    t_hand, p_hand = hand_ttest(a, b)
    assert t == pytest.approx(t_hand) and p == pytest.approx(p_hand)
    t2, p2 = paired_ttest(b, a)
    assert t2 == pytest.approx(-t) and p2 == pytest.approx(p)


def test_degenerate_inputs():
    assert paired_ttest([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == (0.0, 1.0)
    # constant difference up to rounding: zero variance, infinitely significant
    t, p = paired_ttest([1.1, 1.2, 1.3], [1.0, 1.1, 1.2])
    assert t == math.inf and p == 0.0
    t, p = paired_ttest([1.0, 1.1], [1.1, 1.2])
    assert t == -math.inf and p == 0.0


@pytest.mark.parametrize(
    "a, b, match",
    [
        ([1.0], [1.0], "at least 2"),
        ([1.0, 2.0], [1.0], "same length"),
        ([1.0, float("nan")], [1.0, 2.0], "must be finite"),
    ],
)
def test_errors(a, b, match):
    with pytest.raises(ConfigError, match=match):
        paired_ttest(a, b)


def test_mark_picks_best_baseline_by_mean_excluding_ub():
    column = {
        "lb": {0: 0.70, 1: 0.71, 2: 0.72},
        "modal-trans": {0: 0.65, 1: 0.66, 2: 0.67},
        "ub": {0: 0.90, 1: 0.90, 2: 0.91},
        "mm-align": {0: 0.72, 1: 0.735, 2: 0.74},
    }
    mark = mark_significant(column, "max")
    assert mark.baseline == "lb" and mark.n_pairs == 3
    t_hand, p_hand = hand_ttest([0.72, 0.735, 0.74], [0.70, 0.71, 0.72])
    assert mark.t == pytest.approx(t_hand) and mark.pvalue == pytest.approx(p_hand)
    assert p_hand < 0.05 and mark.significant


def test_better_mean_but_not_significant():
    column = {"smil": {0: 0.70, 1: 0.72, 2: 0.71}, "mm-align": {0: 0.75, 1: 0.68, 2: 0.74}}
    mark = mark_significant(column, "max")
    assert mark.baseline == "smil" and mark.pvalue > 0.05 and not mark.significant


def test_significant_but_worse_is_not_marked():
    # MAE: lower is better; mm-align is consistently *higher*
    column = {"mfm": {0: 1.00, 1: 1.01, 2: 1.02}, "mm-align": {0: 1.05, 1: 1.07, 2: 1.06}}
    mark = mark_significant(column, "min")
    assert mark.pvalue < 0.05 and not mark.significant
    flipped = mark_significant(column, "max")  # the same numbers where higher is better
    assert flipped.significant


def test_pairs_by_seed_and_skips_nan():
    column = {
        "lb": {0: 1.0, 1: 1.1, 2: 1.2, 3: float("nan")},
        "mm-align": {1: 0.9, 2: 1.05, 3: 0.5, 4: 0.1},
    }
    mark = mark_significant(column, "min")
    assert mark.n_pairs == 2  # seeds 1 and 2 only
    t_hand, _ = hand_ttest([0.9, 1.05], [1.1, 1.2])
    assert mark.t == pytest.approx(t_hand)


def test_too_few_seeds_or_no_baseline():
    assert not mark_significant({"lb": {0: 1.0}, "mm-align": {0: 2.0}}).significant
    none = mark_significant({"ub": {0: 1.0, 1: 1.0}, "mm-align": {0: 2.0, 1: 2.1}})
    assert none.baseline is None and not none.significant
    with pytest.raises(ConfigError, match="`direction` must be one of"):
        mark_significant({}, "up")
