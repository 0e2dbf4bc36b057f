import os
import pickle

import numpy as np
import pytest

from mmalign.cli import main
from mmalign.data.dataset import MultimodalDataset, Split
from mmalign.data.formats import load_dataset, save_native


def _native(folder):
    splits = {}
    for s, n in (("train", 4), ("valid", 2), ("test", 2)):
        x = np.ones((n, 3, 2), np.float32)
        x[0, 0, 0] = np.nan
        splits[s] = Split(
            features={"text": x, "audio": np.ones((n, 5, 1), np.float32)},
            lengths={"text": np.full(n, 3, np.int64), "audio": np.full(n, 5, np.int64)},
            labels=np.linspace(-1, 1, n).astype(np.float32),
            ids=np.array([f"{s}{i}" for i in range(n)], dtype=object),
        )
    return save_native(MultimodalDataset(splits=splits, task="regression", name="toy"), folder)


def _one_error_line(capsys, name):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("mmalign: error: ") and name in err
    return err


def test_describe_prints_a_summary_and_the_cleaning_warning(tmp_path, capsys):
    folder = _native(tmp_path / "toy")
    folder_data = np.load(folder / "train.npz")
    assert np.isnan(folder_data["x_text"][0, 0, 0])  # save_native keeps what it is given
    assert main(["data", "describe", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert "train: 4 samples" in out and "audio    D=1" in out
    assert "replaced by 0 at load: text 3" in out  # one NaN per split
    assert "mmalign: warning:" in err and "(text: 3)" in err


def test_missing_path_exits_2_with_one_line(tmp_path, capsys):
    assert main(["data", "describe", str(tmp_path / "absent.pkl")]) == 2
    _one_error_line(capsys, "absent.pkl")


def test_truncated_pickle_exits_2(tmp_path, capsys):
    path = tmp_path / "aligned_50.pkl"
    path.write_bytes(pickle.dumps({"train": {"a": np.zeros(100)}})[:50])
    assert main(["data", "describe", str(path)]) == 2
    assert "not a readable pickle" in _one_error_line(capsys, "aligned_50.pkl")


def test_code_pickle_is_refused_unless_trusted(tmp_path, capsys):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "mosi_data.pkl"
    path.write_bytes(pickle.dumps(Evil()))
    assert main(["data", "describe", str(path)]) == 2
    assert "refused to unpickle global" in _one_error_line(capsys, "mosi_data.pkl")
    assert not marker.exists()
    # trusted: the code runs (then the data is rejected: not a split dict)
    assert main(["data", "describe", "--trust-pickle", str(path)]) == 2
    assert marker.exists()


def test_unknown_format_lists_valid_names(tmp_path, capsys):
    assert main(["data", "describe", "--format", "parquet", str(tmp_path)]) == 2
    err = _one_error_line(capsys, "parquet")
    assert "['csd', 'meld', 'misa', 'mmsa', 'mult', 'native']" in err


def test_inconsistent_file_names_the_file(tmp_path, capsys):
    folder = _native(tmp_path / "toy")
    with np.load(folder / "valid.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["len_text"] = np.array([3, 9])
    np.savez(folder / "valid.npz", **arrays)
    assert main(["data", "describe", str(folder)]) == 2
    err = _one_error_line(capsys, "valid.npz")
    assert "`len_text` of sample 1 is 9 but the padded array holds 3 steps" in err


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["--debug", "data", "describe", str(tmp_path / "absent")]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_synth_writes_a_native_folder_that_loads(tmp_path, capsys):
    pytest.importorskip("mmalign.data.synthetic")
    out = tmp_path / "syn"
    code = main(
        [
            "data",
            "synth",
            "--out",
            str(out),
            "--n-train",
            "12",
            "--n-valid",
            "4",
            "--n-test",
            "5",
            "--seed",
            "3",
        ]
    )
    assert code == 0
    assert str(out) in capsys.readouterr().out
    ds = load_dataset(out)
    assert [len(ds.splits[s]) for s in ("train", "valid", "test")] == [12, 4, 5]
    assert main(["data", "describe", str(out)]) == 0


def test_synth_flags_come_from_the_config_fields(capsys):
    synthetic = pytest.importorskip("mmalign.data.synthetic")
    import dataclasses

    with pytest.raises(SystemExit):
        main(["data", "synth", "--help"])
    text = capsys.readouterr().out
    for field in dataclasses.fields(synthetic.SyntheticConfig):
        default = field.default
        if isinstance(default, (bool, int, float, str, tuple)):
            assert "--" + field.name.replace("_", "-") in text


def test_synth_bad_value_is_a_config_error(tmp_path, capsys):
    pytest.importorskip("mmalign.data.synthetic")
    assert main(["data", "synth", "--out", str(tmp_path / "x"), "--n-train", "-5"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_describe_the_builtin_synthetic_set(capsys):
    from mmalign.cli import main

    assert main(["data", "describe", "synthetic:n_train=40,n_valid=20,n_test=20"]) == 0
    out = capsys.readouterr().out
    assert "train: 40 samples" in out and "text" in out and "vision" in out


def test_synth_writes_truth_spans_and_describe_lists_them(tmp_path, capsys):
    out = tmp_path / "syn"
    args = ["data", "synth", "--out", str(out), "--n-train", "6", "--n-valid", "3"]
    assert main([*args, "--n-test", "3", "--unaligned", "--max-frames", "120"]) == 0
    assert "truth spans of 6 modality pairs" in capsys.readouterr().out
    with np.load(out / "train.npz") as z:
        names = set(z.files)
        assert z["x_audio"].shape[1] <= 120 and z["span_audio_text"].shape[:2] == (
            6,
            z["x_audio"].shape[1],
        )
    assert {"span_text_audio", "span_audio_text", "span_vision_audio"} <= names
    ds = load_dataset(out)
    assert ds.splits["train"].spans["text_vision"].shape == (6, 50, 2)
    assert main(["data", "describe", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "truth spans: text_vision, text_audio, vision_text" in printed
    assert "information budget" not in printed  # a folder is no synthetic option


def test_describe_the_unaligned_synthetic_set_says_the_budget_does_not_apply(capsys):
    data = "synthetic:unaligned=1,n_train=20,n_valid=10,n_test=10,max_length=12"
    assert main(["data", "describe", data]) == 0
    out = capsys.readouterr().out
    assert "information budget: does not apply to the unaligned variant" in out
    assert "oracle" not in out
