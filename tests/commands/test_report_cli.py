import csv
import io

import pytest

from mmalign.cli import main
from mmalign.experiments.spec import RunSpec
from mmalign.experiments.store import ResultStore

# seeds 0..2 of pair audio->text; mm-align beats modal-trans significantly on MAE (setting A)
RUNS = {
    ("lb", 0.1): [1.40, 1.42, 1.41],
    ("ub", 1.0): [1.00, 1.01, 1.02],
    ("modal-trans", 0.1): [1.30, 1.31, 1.32],
    ("mm-align", 0.1): [1.20, 1.22, 1.21],
    ("mm-align", 0.5): [1.10, 1.12, 1.11],
}


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "runs.sqlite"
    store = ResultStore(path)
    for (method, p), maes in RUNS.items():
        for seed, mae in enumerate(maes):
            block = {"test": {"mae": mae, "acc2_nonzero": 0.5}}
            spec = RunSpec("synthetic:n=8", method, "audio", "text", p, seed)
            store.put(spec, {"A": block, "B": block}, 1.0)
    return path


def test_markdown_default(store_path, capsys):
    assert main(["report", "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert "synthetic:n=8: test results, p = 10%" in out and "p = 50%" in out  # one table per p
    assert "| Method | A→T Setting A MAE↓ |" in out
    assert "| MM-Align | **1.210 ± 0.010†** |" in out
    assert "| UB | 1.010 ± 0.010 |" in out


def test_latex_to_file(store_path, tmp_path):
    out = tmp_path / "tables" / "mosi.tex"
    code = main(
        [
            "report",
            "--store",
            str(store_path),
            "--format",
            "latex",
            "--metrics",
            "mae",
            "--p",
            "0.1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    text = out.read_text()
    assert text.count(r"\begin{tabular}") == 1
    assert r"\textbf{1.210 $\pm$ 0.010}$^{\dagger}$" in text


def test_by_p_csv(store_path, capsys):
    assert (
        main(
            [
                "report",
                "--store",
                str(store_path),
                "--by",
                "p",
                "--format",
                "csv",
                "--metrics",
                "mae",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("# synthetic:n=8: test results in setting A")
    rows = list(csv.DictReader(io.StringIO(out.split("\n", 1)[1])))
    ub = [r for r in rows if r["method"] == "ub"]
    assert [r["p"] for r in ub] == ["0.1", "0.5"]  # the upper bound in every p column
    best = [(r["method"], r["p"]) for r in rows if r["best"] == "True"]
    assert best == [("mm-align", "0.1"), ("mm-align", "0.5")]


def test_errors(store_path, tmp_path, capsys):
    assert main(["report", "--store", str(tmp_path / "none.sqlite")]) == 2
    assert "no such results store" in capsys.readouterr().err
    assert main(["report", "--store", str(store_path), "--metrics", "acc7"]) == 2
    assert "`metric` must be one of ['acc2_nonzero', 'mae']" in capsys.readouterr().err
    assert main(["report", "--store", str(store_path), "--data", "other"]) == 2
    assert "holds no runs" in capsys.readouterr().err


def test_pairs_filter(store_path, capsys):
    assert main(["report", "--store", str(store_path), "--pairs", "a:t"]) == 0
    assert "A→T Setting A" in capsys.readouterr().out
    assert main(["report", "--store", str(store_path), "--pairs", "t:v"]) == 2
    assert "holds no runs" in capsys.readouterr().err
