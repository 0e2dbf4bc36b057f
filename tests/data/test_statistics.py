import numpy as np
import pytest

from mmalign.data.dataset import Split
from mmalign.data.statistics import step_statistics

# three samples of one modality, L=4, D=2 (feature 1 is ten times feature 0)
X = np.array(
    [
        [[1, 10], [np.nan, np.nan], [3, 30], [0, 0]],  # length 3; step 1 is never valid
        [[4, 40], [5, 50], [0, 0], [0, 0]],  # length 2
        [[6, 60], [7, 70], [8, 80], [9, 90]],  # length 4
    ],
    np.float32,
)
VALID = np.array(
    [[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0]],
    bool,
)


def _split():
    return Split(
        features={"audio": X.copy()},
        lengths={"audio": np.array([3, 2, 4], np.int64)},
        labels=np.zeros(3, np.float32),
        ids=np.array(["a", "b", "c"], dtype=object),
    )


def test_valid_mask_selects_exactly_its_steps():
    # feature 0 over the valid steps: 1, 3, 5, 6, 7 -> mean 4.4, variance 23.2 / 5
    mean, std = step_statistics(_split(), "audio", valid=VALID)
    assert mean.dtype == np.float32 and std.dtype == np.float32
    np.testing.assert_allclose(mean, [4.4, 44.0], rtol=1e-6)
    np.testing.assert_allclose(std, np.sqrt(4.64) * np.array([1.0, 10.0]), rtol=1e-6)


def test_valid_mask_combined_with_rows():
    # rows 0 and 2: 1, 3, 6, 7 -> mean 4.25, variance 22.75 / 4
    mean, std = step_statistics(_split(), "audio", rows=np.array([0, 2]), valid=VALID)
    np.testing.assert_allclose(mean, [4.25, 42.5], rtol=1e-6)
    np.testing.assert_allclose(std, np.sqrt(5.6875) * np.array([1.0, 10.0]), rtol=1e-6)


def test_one_valid_step_gives_unit_std_and_none_gives_zero_mean():
    mean, std = step_statistics(_split(), "audio", rows=np.array([1]), valid=VALID)
    np.testing.assert_allclose(mean, [5.0, 50.0])
    np.testing.assert_allclose(std, [1.0, 1.0])  # constant feature
    none = np.zeros_like(VALID)
    mean, std = step_statistics(_split(), "audio", valid=none)
    np.testing.assert_array_equal(mean, [0.0, 0.0])
    np.testing.assert_array_equal(std, [1.0, 1.0])


def test_without_a_mask_the_lengths_decide():
    split = _split()
    split.features["audio"][0, 1] = 2.0  # inside the length: read when no mask is given
    mean, _ = step_statistics(split, "audio", rows=np.array([0, 1]))
    assert mean[0] == pytest.approx((1 + 2 + 3 + 4 + 5) / 5)
