import pytest

from mmalign.validation import (
    ConfigError,
    DataError,
    MMAlignError,
    check_in,
    check_non_negative,
    check_positive,
    check_probability,
    check_shape,
)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: check_positive("reg", 0), r"^`reg` must be a number > 0; got 0\.$"),
        (lambda: check_positive("reg", True), r"`reg` must be a number > 0; got True\."),
        (lambda: check_positive("reg", "1"), r"`reg` must be a number > 0; got '1'\."),
        (lambda: check_non_negative("window", -1), r"`window` must be a number >= 0; got -1\."),
        (lambda: check_probability("p", 0.0), r"`p` must be in \(0, 1\]; got 0\.0\."),
        (
            lambda: check_probability("p", 1.5, open_low=False),
            r"`p` must be in \[0, 1\]; got 1\.5\.",
        ),
        (
            lambda: check_in("task", "x", ["regression", "classification"]),
            r"`task` must be one of \['regression', 'classification'\]; got 'x'\.",
        ),
        (
            lambda: check_shape("x", (2, 4), (None, 3)),
            r"`x` must have shape \(\*, 3\); got \(2, 4\)\.",
        ),
        (lambda: check_shape("x", (2,), (None, 3)), r"`x` must have shape \(\*, 3\); got \(2,\)\."),
    ],
)
def test_helpers_raise_config_errors_in_the_house_format(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


def test_helpers_return_valid_values_and_errors_share_one_base():
    assert check_positive("reg", 0.5) == 0.5
    assert check_probability("p", 1) == 1.0
    assert check_probability("p", 0, open_low=False) == 0.0
    check_shape("x", (5, 3), (None, 3))
    assert issubclass(DataError, MMAlignError) and issubclass(ConfigError, MMAlignError)
    assert issubclass(DataError, ValueError)
