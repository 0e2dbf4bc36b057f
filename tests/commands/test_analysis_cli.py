import csv
import json

import matplotlib.image
import pytest

from mmalign.cli import main
from mmalign.config import config_from_dict
from mmalign.experiments.store import ResultStore
from mmalign.runs import run

DATA = "synthetic:n_train=64,n_valid=32,n_test=32,min_length=5,max_length=12"
TINY = ["--set", "epochs=1", "--set", "d_model=8", "--set", "n_heads=2"]
GRID = [
    "--data",
    DATA,
    "--pairs",
    "t:v",
    "--ps",
    "0.1",
    "--seeds",
    "1",
    "--engine",
    "serial",
    "--no-progress",
    *TINY,
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for method in ("mm-align", "lb"):
        config = config_from_dict(
            {
                "data": DATA,
                "method": method,
                "epochs": 1,
                "d_model": 8,
                "n_heads": 2,
                "window": 2,
                "progress": False,
            }
        )
        out[method] = run(config, root / method, log=lambda s: None).run_dir
    return out


def test_sweep_window_writes_csv_and_png(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep-window", *GRID, "--windows", "2,1", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "text->vision" in captured.out and "2 runs done" in captured.err
    with open(out / "window_sweep.csv") as handle:
        rows = list(csv.DictReader(handle))
    mae = [r for r in rows if r["metric"] == "mae" and r["setting"] == "A"]
    assert [r["window"] for r in mae] == ["1", "2"] and all(r["n"] == "1" for r in mae)
    image = matplotlib.image.imread(out / "fig4_window_sweep.png")
    assert image.shape[:2] == (400, 600)
    store = ResultStore(out / "window_sweep.sqlite")
    assert sorted(r["config"]["window"] for r in store.rows()) == [1, 2]
    # resumable: the second call trains nothing
    assert main(["sweep-window", *GRID, "--windows", "1,2", "--out", str(out)]) == 0
    assert "0 runs done, 2 already in the store" in capsys.readouterr().err


@pytest.mark.parametrize("windows", ["1,two", "-1", ","])
def test_sweep_window_bad_windows(tmp_path, capsys, windows):
    code = main(["sweep-window", *GRID, "--windows", windows, "--out", str(tmp_path)])
    assert code == 2
    assert "`windows` must" in capsys.readouterr().err


def test_sweep_window_refuses_window_override(tmp_path, capsys):
    argv = ["sweep-window", *GRID, "--set", "window=3", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "must not set window" in capsys.readouterr().err


def test_ablate_prints_variant_rows(tmp_path, capsys):
    store = tmp_path / "abl.sqlite"
    argv = ["ablate", *GRID, "--variants", "full,no-fit", "--store", str(store)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| MM-Align |" in out and "| w/o L_fit |" in out and "w/o SI" not in out
    assert "T→V Setting A MAE↓" in out
    configs = [r["config"] for r in ResultStore(store).rows()]
    assert sorted(c.get("train_fitter", True) for c in configs) == [False, True]
    assert (tmp_path / "ablation-grid" / "mm-align" / "t-v").is_dir()


def test_ablate_errors(tmp_path, capsys):
    argv = ["ablate", *GRID, "--store", str(tmp_path / "s.sqlite")]
    assert main([*argv, "--variants", "full,no-gru"]) == 2
    assert "`variant` must be one of ['full', 'no-contrastive', 'no-fit', 'no-si']" in (
        capsys.readouterr().err
    )
    assert main([*argv, "--set", "lambda_con=0"]) == 2
    assert "must not ablate MM-Align itself" in capsys.readouterr().err


def test_plot_alignment(runs, tmp_path, capsys):
    out = tmp_path / "fig5.png"
    npz = tmp_path / "fig5.npz"
    argv = [
        "plot-alignment",
        str(runs["mm-align"]),
        "--min-length",
        "6",
        "--out",
        str(out),
        "--npz",
        str(npz),
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "window K=2" in captured.out and "fig5_samples.png" in captured.err
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (400, 900)
    samples = matplotlib.image.imread(tmp_path / "fig5_samples.png")
    assert samples.shape[:2] == (900, 1000)  # three samples of two panels: 10 x 9 inches
    import numpy as np

    saved = np.load(npz)
    assert saved["predicted"].shape == (6, 6) and int(saved["n_samples"]) > 0
    outside = np.abs(np.arange(6)[:, None] - np.arange(6)[None, :]) > 2
    assert np.all(saved["predicted"][outside] == 0) and np.all(saved["ot"][outside] == 0)
    # the fitter's rows sum to 1 over the window: each column of the dense matrix sums to 1
    # for victim steps whose window lies inside the block
    np.testing.assert_allclose(saved["predicted"][:, 2:4].sum(0), 1.0, rtol=1e-5)


def test_plot_alignment_errors(runs, tmp_path, capsys):
    assert main(["plot-alignment", str(runs["lb"]), "--out", str(tmp_path / "x.png")]) == 2
    assert "must be an mm-align run" in capsys.readouterr().err
    assert main(["plot-alignment", str(runs["mm-align"]), "--min-length", "40"]) == 2
    assert "longest complete sample (12 steps); got 40" in capsys.readouterr().err


def test_time_command(tmp_path, capsys):
    report = tmp_path / "t.json"
    argv = [
        "time",
        "--data",
        DATA,
        "--pair",
        "t:v",
        "--batches",
        "2",
        "--batch-size",
        "4",
        "--warmup",
        "0",
        "--threads",
        "1",
        "--set",
        "d_model=8",
        "--set",
        "n_heads=2",
        "--json",
        str(report),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "torch threads 1" in out and "modal-trans" in out and "ratio" in out
    saved = json.loads(report.read_text())
    assert saved["threads"] == 1 and saved["n_batches"] == 2
    assert saved["methods"]["modal-trans"]["missing"]["mean"] > 0
    assert main([*argv[:-2], "--pair", "t:v,a:t"]) == 2
    assert "must name one pair" in capsys.readouterr().err


UNALIGNED = "synthetic:unaligned=1,n_train=64,n_valid=32,n_test=32,min_length=5,max_length=12"


def test_score_alignment_on_unaligned_data(tmp_path, capsys):

    from mmalign.data.spec import DataSpec

    config = config_from_dict(
        {"data": UNALIGNED, "pair": "t:a", "p": 0.5, "method": "mm-align", "epochs": 1,
         "d_model": 8, "n_heads": 2, "window": 3, "progress": False}
    )  # fmt: skip
    run_dir = run(config, tmp_path / "u", log=lambda s: None).run_dir
    report = tmp_path / "score.json"
    assert main(["score-alignment", "--run", str(run_dir), "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "audio steps to text steps on 32 complete test samples" in out
    scores = json.loads(report.read_text())
    assert set(scores) == {"fitter", "ot", "uniform", "diagonal"}
    assert all(
        set(v) == {"mass_on_truth", "argmax_accuracy", "offset_error"} for v in scores.values()
    )
    # the diagonal guess, recomputed from the data's own spans and lengths
    test = DataSpec.parse(UNALIGNED).load().splits["test"]
    n, m = test.lengths["text"], test.lengths["audio"]
    spans = test.spans["audio_text"]
    hits = total = 0
    for i in range(len(n)):
        for j in range(m[i]):
            start, end = spans[i, j]
            if start < 0:
                continue
            centre = min((2 * j + 1) * n[i] // (2 * m[i]), n[i] - 1)
            hits += start <= centre < end
            total += 1
    assert scores["diagonal"]["argmax_accuracy"] == pytest.approx(hits / total)
    assert scores["diagonal"]["mass_on_truth"] == pytest.approx(hits / total)
    assert 0 < scores["uniform"]["mass_on_truth"] < scores["diagonal"]["mass_on_truth"]


def test_score_alignment_errors(runs, tmp_path, capsys):
    assert main(["score-alignment", "--run", str(runs["lb"])]) == 2
    assert "must be an mm-align run" in capsys.readouterr().err
    folder = tmp_path / "nospans"
    from mmalign.data.formats.native import save_native
    from mmalign.data.spec import DataSpec

    data = DataSpec.parse(DATA).load()
    for split in data.splits.values():
        split.spans.clear()
    save_native(data, folder)
    assert main(["score-alignment", "--run", str(runs["mm-align"]), "--data", str(folder)]) == 2
    assert "no ground-truth alignment for vision->text" in capsys.readouterr().err
