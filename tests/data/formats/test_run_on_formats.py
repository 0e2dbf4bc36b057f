"""`mmalign run` end to end on files in each real on-disk layout (issue #3: any format)."""

import json

import numpy as np
import pytest

from mmalign.cli import main
from mmalign.data.formats import save_native
from mmalign.data.synthetic import SyntheticConfig, make_synthetic

TINY = [
    "--epochs",
    "1",
    "--d-model",
    "8",
    "--n-heads",
    "2",
    "--p",
    "0.5",
    "--no-progress",
    "--batch-size",
    "4",
]


def run_cli(data, out, pair="t:v", method="mm-align", extra=()):
    code = main(
        [
            "run",
            "--data",
            str(data),
            "--pair",
            pair,
            "--method",
            method,
            "--out",
            str(out),
            *TINY,
            *(["--window", "2"] if method == "mm-align" else []),  # --window is MM-Align's
            *extra,
        ]
    )
    assert code == 0
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.parametrize(
    "writer, kwargs, pair",
    [
        ("write_mmsa", {"aligned": True}, "t:v"),
        ("write_mmsa", {"aligned": False}, "a:t"),  # unaligned: the victim keeps its own axis
        ("write_mmsa", {"aligned": False}, "t:a"),  # a victim of up to 375 steps, not resampled
        ("write_mult", {"aligned": True}, "t:a"),
        ("write_mult", {"aligned": False}, "v:t"),
        ("write_misa", {}, "t:v"),
    ],
)
def test_run_on_regression_formats(tmp_path, fmt, quiet, writer, kwargs, pair):
    written = (
        getattr(fmt, writer)(tmp_path / "data", **kwargs)
        if writer == "write_misa"
        else getattr(fmt, writer)(_mkdir(tmp_path / "data"), **kwargs)[0]
    )
    data = tmp_path / "data" if writer == "write_misa" else written
    metrics = run_cli(data, tmp_path / "run", pair=pair)
    for setting in ("A", "B"):
        assert np.isfinite(metrics[setting]["test"]["mae"])
    # MM-Align aligns unequal lengths itself: nothing is resampled, nothing warned about it
    assert "resampl" not in (tmp_path / "run" / "train.log").read_text()


def test_methods_without_their_own_axis_still_resample_and_say_so(tmp_path, fmt, quiet):
    written = fmt.write_mmsa(_mkdir(tmp_path / "data"), aligned=False)[0]
    run_cli(written, tmp_path / "run", pair="t:a", method="mfm")
    assert "resampled onto the time axis" in (tmp_path / "run" / "train.log").read_text()


def test_run_on_meld_classification(tmp_path, fmt, quiet):
    fmt.write_meld(tmp_path / "meld")
    metrics = run_cli(tmp_path / "meld", tmp_path / "run", pair="t:a")
    assert set(metrics["A"]["test"]) >= {"acc", "f1_weighted", "f1_macro"}
    metrics = run_cli(tmp_path / "meld", tmp_path / "run_lb", pair="t:a", method="lb")
    assert 0.0 <= metrics["B"]["test"]["acc"] <= 1.0


def test_run_on_native_format_with_custom_modality_names(tmp_path):
    ds = make_synthetic(
        SyntheticConfig(n_train=16, n_valid=8, n_test=8, min_length=4, max_length=8)
    )
    names = {"text": "words", "vision": "imu", "audio": "gps"}
    for split in ds.splits.values():  # rename to show any modality names work
        split.features = {names[k]: v for k, v in split.features.items()}
        split.lengths = {names[k]: v for k, v in split.lengths.items()}
        split.spans = {"_".join(names[m] for m in k.split("_")): v for k, v in split.spans.items()}
    save_native(ds, tmp_path / "native")
    metrics = run_cli(tmp_path / "native", tmp_path / "run", pair="imu:gps")
    assert metrics["meta"]["source"] == "imu" and metrics["meta"]["victim"] == "gps"


def _mkdir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize(
    "writer, kwargs",
    [
        ("write_mmsa", {"aligned": False}),  # modalities on their own axes (up to 375 steps)
        ("write_mult", {"aligned": True}),
        ("write_misa", {}),  # has zero-length sequences in the file
        ("write_meld", {}),  # classification
    ],
)
def test_random_missing_protocol_runs_on_each_layout(tmp_path, fmt, quiet, writer, kwargs):
    if writer in ("write_misa", "write_meld"):
        getattr(fmt, writer)(tmp_path / "data", **kwargs)
        data = tmp_path / "data"
    else:
        data = getattr(fmt, writer)(_mkdir(tmp_path / "data"), **kwargs)[0]
    extra = ["--missing-rate", "0.3", "--frame-drop", "0.2", "--window", "2"]
    code = main(
        ["run", "--data", str(data), "--method", "mm-align", "--out", str(tmp_path / "run"),
         *[a for a in TINY if a not in ("--p", "0.5")], *extra]
    )  # fmt: skip
    assert code == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    overall = metrics["test"]["overall"]
    assert overall["n"] == sum(p["n"] for p in metrics["test"]["patterns"].values())
    primary = "mae" if "mae" in overall else "acc"
    assert all(np.isfinite(p[primary]) for p in metrics["test"]["patterns"].values())
