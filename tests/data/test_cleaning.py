import warnings

import numpy as np
import pytest

from mmalign.data.cleaning import CLEANING_RULE, clean_nonfinite, merge_counts, warn_cleaning


def test_clean_nonfinite_replaces_nan_and_both_infinities_by_zero():
    x = np.array([[[1.0, np.nan], [np.inf, -np.inf]], [[2.0, 3.0], [-4.0, 0.0]]], np.float32)
    assert clean_nonfinite(x) == 3
    np.testing.assert_array_equal(x, [[[1, 0], [0, 0]], [[2, 3], [-4, 0]]])
    assert clean_nonfinite(x) == 0


def test_merge_counts_adds_per_modality():
    assert merge_counts({"audio": 1}, {"audio": 2, "vision": 0}) == {"audio": 3, "vision": 0}


def test_warn_cleaning_emits_one_warning_naming_the_rule_and_counts():
    with pytest.warns(UserWarning, match=r"f\.pkl: NaN, \+inf and -inf .* by 0 \(audio: 4\)"):
        warn_cleaning({"audio": 4, "text": 0}, "f.pkl")
    assert "replaced by 0" in CLEANING_RULE


def test_warn_cleaning_is_silent_without_replacements():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_cleaning({"audio": 0}, "f.pkl")
