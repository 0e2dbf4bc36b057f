import math

import pytest

from mmalign.analyses.timing import PHASES, format_timing, time_imputation, timing_stats
from mmalign.data.synthetic import SyntheticConfig, make_synthetic
from mmalign.validation import ConfigError

TINY = {"d_model": 8, "n_heads": 2, "window": 2}


@pytest.fixture(scope="module")
def dataset():
    return make_synthetic(
        SyntheticConfig(n_train=40, n_valid=8, n_test=8, min_length=4, max_length=8)
    )


def test_timing_stats_hand_computed():
    stats = timing_stats([0.4, 0.1, 0.2, 0.3])
    assert stats["median"] == pytest.approx(0.25) and stats["min"] == 0.1
    assert stats["mean"] == pytest.approx(0.25) and stats["max"] == 0.4
    assert stats["std"] == pytest.approx(math.sqrt(1 / 60)) and stats["n"] == 4
    assert timing_stats([0.5])["std"] == 0.0
    with pytest.raises(ConfigError, match="at least one time"):
        timing_stats([])


def test_time_imputation_structure(dataset):
    report = time_imputation(
        dataset, "t", "v", n_batches=3, batch_size=4, config=TINY, warmup_batches=1
    )
    assert list(report["methods"]) == ["mm-align", "modal-trans"]
    assert (report["source"], report["victim"], report["window"]) == ("text", "vision", 2)
    assert report["threads"] >= 1 and report["device"] == "cpu"
    for method in ("mm-align", "modal-trans"):
        for phase in PHASES:
            times = report["seconds"][method][phase]
            assert len(times) == 3 and all(t > 0 for t in times)  # warm-up step not kept
            stats = report["methods"][method][phase]
            assert stats["n"] == 3 and 0 < stats["min"] <= stats["median"] <= stats["max"]
    assert report["ratio"]["missing"]["mm-align"] == 1.0
    expected = (
        report["methods"]["modal-trans"]["missing"]["mean"]
        / report["methods"]["mm-align"]["missing"]["mean"]
    )
    assert report["ratio"]["missing"]["modal-trans"] == pytest.approx(expected)
    text = format_timing(report)
    assert "torch threads" in text and "modal-trans    missing" in text


def test_time_imputation_cycles_a_short_split(dataset):
    # 36 missing samples, 10 batches of 8 = 80 samples: the split is visited more than once
    report = time_imputation(
        dataset,
        "text",
        "audio",
        methods=("mm-align",),
        n_batches=10,
        batch_size=8,
        config=TINY,
        warmup_batches=0,
    )
    assert report["methods"]["mm-align"]["missing"]["n"] == 10


def test_time_imputation_errors(dataset):
    with pytest.raises(ConfigError, match="`n_batches` must be an integer >= 1; got 0"):
        time_imputation(dataset, "t", "v", n_batches=0, config=TINY)
    with pytest.raises(ConfigError, match=r"must impute a missing victim; got \['ub'\]"):
        time_imputation(dataset, "t", "v", methods=("ub",), config=TINY)
    with pytest.raises(ConfigError, match="`method` must be one of"):
        time_imputation(dataset, "t", "v", methods=("mfn",), config=TINY)
    with pytest.raises(ConfigError, match="complete and a missing training split"):
        time_imputation(dataset, "t", "v", p=1.0, config=TINY)
