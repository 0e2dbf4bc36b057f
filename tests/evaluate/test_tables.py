import csv
import io

import pytest

from mmalign.evaluate.tables import build_table, build_tables, format_value, render
from mmalign.experiments.spec import RunSpec
from mmalign.experiments.store import ResultStore
from mmalign.validation import ConfigError, DataError

# (method, p) -> setting -> metric -> values over seeds 0, 1, 2 (pair text->vision)
UB = {"mae": [0.90, 0.92, 0.88], "acc2_nonzero": [0.80, 0.80, 0.80]}
HAND = {
    ("lb", 0.1): {
        "A": {"mae": [1.30, 1.32, 1.28], "acc2_nonzero": [0.60, 0.61, 0.62]},
        "B": {"mae": [1.30, 1.32, 1.28], "acc2_nonzero": [0.70, 0.71, 0.72]},
    },
    ("ub", 1.0): {"A": UB, "B": UB},
    ("modal-trans", 0.1): {
        "A": {"mae": [1.10, 1.12, 1.11], "acc2_nonzero": [0.70, 0.72, 0.71]},
        "B": {"mae": [1.00, 1.01, 1.02], "acc2_nonzero": [0.65, 0.66, 0.67]},
    },
    ("mm-align", 0.1): {
        # A/MAE: beats modal-trans significantly (diffs -0.10, -0.09, -0.10)
        # A/Acc-2: better mean, not significant (diffs +0.05, -0.04, +0.03)
        "A": {"mae": [1.00, 1.03, 1.01], "acc2_nonzero": [0.75, 0.68, 0.74]},
        # B/MAE: worse than modal-trans; B/Acc-2: beats the best baseline lb significantly
        "B": {"mae": [1.05, 1.06, 1.04], "acc2_nonzero": [0.72, 0.735, 0.74]},
    },
    ("lb", 0.5): {
        "A": {"mae": [1.20, 1.21, 1.22], "acc2_nonzero": [0.60, 0.60, 0.60]},
        "B": {"mae": [1.20, 1.21, 1.22], "acc2_nonzero": [0.60, 0.60, 0.60]},
    },
    ("mm-align", 0.5): {
        "A": {"mae": [0.95, 0.96, 0.97], "acc2_nonzero": [0.70, 0.71, 0.72]},
        "B": {"mae": [0.95, 0.96, 0.97], "acc2_nonzero": [0.70, 0.71, 0.72]},
    },
}


def fill(store, data="synthetic:n_train=8", config=None, runs=HAND):
    for (method, p), settings in runs.items():
        for seed in range(3):
            result = {
                s: {"test": {m: v[seed] for m, v in metrics.items()}, "valid": {"mae": 9.0}}
                for s, metrics in settings.items()
            }
            spec = RunSpec(data, method, "text", "vision", p, seed, config or {})
            store.put(spec, result, 1.0)


@pytest.fixture
def records(tmp_path):
    store = ResultStore(tmp_path / "runs.sqlite")
    fill(store)
    return store.to_records()


def cell(table, method, source, group, metric):
    for j, col in enumerate(table.columns):
        if (col.source, col.group, col.metric) == (source, group, metric):
            return table.cells.get((method, j))
    raise KeyError((source, group, metric))


def test_setting_table_hand_computed(records):
    table = build_table(records, by="setting")  # smallest p: 0.1
    assert table.methods == ("lb", "ub", "modal-trans", "mm-align")
    assert [(c.group, c.metric) for c in table.columns] == [
        ("A", "mae"),
        ("A", "acc2_nonzero"),
        ("B", "mae"),
        ("B", "acc2_nonzero"),
    ]
    mm = cell(table, "mm-align", "text", "A", "mae")
    assert mm.mean == pytest.approx(3.04 / 3) and mm.std == pytest.approx(0.0152753, rel=1e-5)
    assert mm.n == 3 and mm.best and mm.significant
    ub = cell(table, "ub", "text", "A", "mae")
    assert ub.mean == pytest.approx(0.90) and ub.std == pytest.approx(0.02) and not ub.best
    lb = cell(table, "lb", "text", "A", "mae")
    assert (lb.mean, lb.best, lb.significant) == (pytest.approx(1.30), False, False)
    # better on mean, not significant
    acc = cell(table, "mm-align", "text", "A", "acc2_nonzero")
    assert acc.best and not acc.significant
    assert acc.std == pytest.approx(0.0378594, rel=1e-5)
    # worse than modal-trans: modal-trans is best, nothing marked significant
    b_mae = cell(table, "modal-trans", "text", "B", "mae")
    assert b_mae.best and not cell(table, "mm-align", "text", "B", "mae").best
    assert not any(c.significant for (m, j), c in table.cells.items() if j == 2)
    # significant against lb, the best baseline of that column
    b_acc = cell(table, "mm-align", "text", "B", "acc2_nonzero")
    assert b_acc.best and b_acc.significant


def test_markdown_marks(records):
    text = render(build_table(records), "markdown")
    assert "| Method | T→V Setting A MAE↓ | T→V Setting A Acc-2↑ |" in text
    assert "| LB | 1.300 ± 0.020 | 61.0 ± 1.0 | 1.300 ± 0.020 | 71.0 ± 1.0 |" in text
    assert "| UB | 0.900 ± 0.020 | 80.0 ± 0.0 | 0.900 ± 0.020 | 80.0 ± 0.0 |" in text
    assert (
        "| MM-Align | **1.013 ± 0.015†** | **72.3 ± 3.8** | 1.050 ± 0.010 | **73.2 ± 1.0†** |"
    ) in text
    assert "| Modal-Trans | 1.110 ± 0.010 | 71.0 ± 1.0 | **1.010 ± 0.010** | 66.0 ± 1.0 |" in text


def test_latex_marks(records):
    text = render(build_table(records), "latex")
    assert r"\begin{tabular}{lcccc}" in text and r"\end{tabular}" in text
    assert r"\multicolumn{4}{c}{T$\rightarrow$V}" in text
    assert r"\multicolumn{2}{c}{Setting A} & \multicolumn{2}{c}{Setting B}" in text
    assert r"MAE$\downarrow$ & Acc-2$\uparrow$" in text
    assert (
        r"MM-Align & \textbf{1.013 $\pm$ 0.015}$^{\dagger}$ & \textbf{72.3 $\pm$ 3.8} & "
        r"1.050 $\pm$ 0.010 & \textbf{73.2 $\pm$ 1.0}$^{\dagger}$ \\"
    ) in text


def test_csv_flags(records):
    rows = list(csv.DictReader(io.StringIO(render(build_table(records), "csv"))))
    assert len(rows) == 4 * 4
    row = next(
        r
        for r in rows
        if r["method"] == "mm-align" and r["setting"] == "B" and r["metric"] == "acc2_nonzero"
    )
    assert (row["best"], row["significant"], row["n"]) == ("True", "True", "3")
    assert float(row["mean"]) == pytest.approx(0.731667, rel=1e-5)
    assert sum(r["significant"] == "True" for r in rows) == 2
    assert sum(r["best"] == "True" for r in rows) == 4


def test_p_table_shows_ub_in_every_p_column(records):
    table = build_table(records, by="p", setting="A", metrics=["mae"])
    assert [c.group for c in table.columns] == [0.1, 0.5]
    assert cell(table, "ub", "text", 0.5, "mae").mean == pytest.approx(0.90)
    assert cell(table, "ub", "text", 0.1, "mae").mean == pytest.approx(0.90)
    assert cell(table, "modal-trans", "text", 0.5, "mae") is None
    assert cell(table, "mm-align", "text", 0.5, "mae").best
    lb_vs_mm = cell(table, "mm-align", "text", 0.5, "mae")
    assert lb_vs_mm.significant  # diffs vs lb: -0.25 each: constant, p = 0
    text = render(table, "markdown")
    assert "T→V 10% MAE↓" in text and "T→V 50% MAE↓" in text
    assert "| Modal-Trans | 1.110 ± 0.010 | – |" in text
    latex = render(table, "latex")
    assert r"\multicolumn{1}{c}{10\%}" in latex and "--" in latex


def test_build_tables_one_per_data_and_p(tmp_path):
    store = ResultStore(tmp_path / "runs.sqlite")
    fill(store)
    fill(store, data="synthetic:n_train=16")
    records = store.to_records()
    with pytest.raises(DataError, match="2 data sets"):
        build_table(records)
    tables = build_tables(records, by="setting")
    assert len(tables) == 4  # 2 data sets x 2 p
    assert tables[0].title.startswith("synthetic:n_train=16") or tables[0].title.startswith(
        "synthetic"
    )
    assert len(build_tables(records, by="p")) == 2


def test_errors(tmp_path, records):
    with pytest.raises(ConfigError, match="`metric` must be one of"):
        build_table(records, metrics=["acc7"])
    with pytest.raises(ConfigError, match="`by` must be one of"):
        build_table(records, by="pair")
    with pytest.raises(ConfigError, match=r"`p` must be one of \[0.1, 0.5\]"):
        build_table(records, p=0.3)
    with pytest.raises(ConfigError, match="`format` must be one of"):
        render(build_table(records), "html")
    store = ResultStore(tmp_path / "two_configs.sqlite")
    fill(store)
    fill(store, config={"epochs": 2})
    with pytest.raises(DataError, match="different configs"):
        build_table(store.to_records())


def test_classification_default_metric():
    records = [
        {
            "method": m,
            "source": "text",
            "victim": "audio",
            "p": 0.5,
            "seed": s,
            "setting": st,
            "split": "test",
            "metric": metric,
            "value": v + 0.01 * s,
            "data_id": "meld",
        }
        for m, v in (("lb", 0.5), ("mm-align", 0.55))
        for s in range(2)
        for st in ("A", "B")
        for metric in ("acc", "f1_weighted")
    ]
    table = build_table(records)
    assert {c.metric for c in table.columns} == {"f1_weighted"}
    assert "T→A Setting A F1↑" in render(table)
    assert format_value("f1_weighted", 0.5551) == "55.5"
