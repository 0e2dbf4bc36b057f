import csv
import io

import pytest

from mmalign.evaluate.tables import Table, build_table, build_tables, format_value, render
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


# stored floors -> metric -> values over seeds 0, 1, 2 (the same in every run of a seed, as the
# runner stores them: source_only in every run, pair_A/pair_B of the run's p, both for ub)
FLOORS = {
    "source_only": {"mae": [1.25, 1.27, 1.26], "acc2_nonzero": [0.62, 0.63, 0.64]},
    ("pair_A", 0.1): {"mae": [1.05, 1.06, 1.07], "acc2_nonzero": [0.70, 0.70, 0.70]},
    ("pair_B", 0.1): {"mae": [1.02, 1.03, 1.04], "acc2_nonzero": [0.68, 0.69, 0.70]},
    ("pair_A", 0.5): {"mae": [0.90, 0.92, 0.94], "acc2_nonzero": [0.65, 0.65, 0.65]},
    ("pair_B", 0.5): {"mae": [0.91, 0.91, 0.91], "acc2_nonzero": [0.66, 0.66, 0.66]},
    "both": {"mae": [0.95, 0.95, 0.95], "acc2_nonzero": [0.78, 0.79, 0.80]},
}


def floor_of(method, p, seed, shift=0.0):
    """The ``floor`` entry a run of ``method`` at ``p`` stores for ``seed``."""

    def block(values):
        test = {m: v[seed] + shift for m, v in values.items()}
        return {"valid": {"mae": 9.0}, "test": test, "fit": {"alpha": 1.0, "n_train": 8}}

    floor = {"source_only": block(FLOORS["source_only"])}
    if method == "ub":
        floor["both"] = block(FLOORS["both"])
    else:
        for setting in ("A", "B"):
            floor[f"pair_{setting}"] = block(FLOORS[(f"pair_{setting}", p)])
    return floor


def fill(store, data="synthetic:n_train=8", config=None, runs=HAND, floors=False, shift=0.0):
    for (method, p), settings in runs.items():
        for seed in range(3):
            result = {
                s: {"test": {m: v[seed] for m, v in metrics.items()}, "valid": {"mae": 9.0}}
                for s, metrics in settings.items()
            }
            if floors:
                result["floor"] = floor_of(method, p, seed, shift)
            spec = RunSpec(data, method, "text", "vision", p, seed, config or {})
            store.put(spec, result, 1.0)


@pytest.fixture
def records(tmp_path):
    store = ResultStore(tmp_path / "runs.sqlite")
    fill(store)
    return store.to_records()


@pytest.fixture
def floored(tmp_path):
    """(records, floor records) of HAND with every run's stored floor."""
    store = ResultStore(tmp_path / "floored.sqlite")
    fill(store, floors=True)
    return store.to_records(), store.floor_records()


def cell(table, method, source, group, metric):
    for j, col in enumerate(table.columns):
        if (col.source, col.group, col.metric) == (source, group, metric):
            return table.cells.get((method, j))
    raise KeyError((source, group, metric))


def floor_cell(table, row, group, metric):
    for j, col in enumerate(table.columns):
        if (col.group, col.metric) == (group, metric):
            return table.floor_cells.get((row, j))
    raise KeyError((group, metric))


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


# -- floor rows ---------------------------------------------------------------------------------
def test_floor_rows_hand_computed(floored):
    records, floors = floored
    table = build_table(records, floors=floors)  # p = 10%
    assert table.floor_rows == ("source_only", "pair", "both")
    # source only: the same in A and B; 3 seeds once each, though 4 methods store it
    for group in ("A", "B"):
        src = floor_cell(table, "source_only", group, "mae")
        assert (src.mean, src.std, src.n) == (pytest.approx(1.26), pytest.approx(0.01), 3)
        assert floor_cell(table, "source_only", group, "acc2_nonzero").mean == pytest.approx(0.63)
        both = floor_cell(table, "both", group, "mae")
        assert (both.mean, both.std, both.n) == (pytest.approx(0.95), pytest.approx(0.0), 3)
    # pair: the column's setting, of the runs at the table's p (not p = 50%)
    pair_a = floor_cell(table, "pair", "A", "mae")
    assert (pair_a.mean, pair_a.std, pair_a.n) == (pytest.approx(1.06), pytest.approx(0.01), 3)
    assert floor_cell(table, "pair", "B", "mae").mean == pytest.approx(1.03)
    assert floor_cell(table, "pair", "B", "acc2_nonzero").mean == pytest.approx(0.69)
    assert not any(c.best or c.significant for c in table.floor_cells.values())
    # the floors change no mark: floor (both) has the lowest MAE, MM-Align stays best
    plain = build_table(records)
    assert table.cells == plain.cells
    assert plain.floor_rows == () and plain.warnings == ()
    # at p = 50% the pair floor is that p's
    half = build_table(records, floors=floors, p=0.5)
    assert floor_cell(half, "pair", "A", "mae").mean == pytest.approx(0.92)
    assert floor_cell(half, "pair", "B", "mae").mean == pytest.approx(0.91)
    assert half.floor_rows == ("source_only", "pair", "both")  # ub is in every p table


def test_floor_source_only_taken_once_per_seed(tmp_path):
    # mm-align's copy of the floors differs from lb's by +1 (it should not; the check is that
    # one run's value counts per seed, never an average of copies): the source-only row takes
    # LB's values, the pair row MM-Align's
    store = ResultStore(tmp_path / "runs.sqlite")
    fill(store, runs={("lb", 0.1): HAND[("lb", 0.1)]}, floors=True)
    fill(store, runs={("mm-align", 0.1): HAND[("mm-align", 0.1)]}, floors=True, shift=1.0)
    table = build_table(store.to_records(), floors=store.floor_records())
    src = floor_cell(table, "source_only", "A", "mae")
    assert (src.mean, src.std, src.n) == (pytest.approx(1.26), pytest.approx(0.01), 3)
    pair = floor_cell(table, "pair", "A", "mae")
    assert (pair.mean, pair.std, pair.n) == (pytest.approx(2.06), pytest.approx(0.01), 3)
    assert table.floor_rows == ("source_only", "pair")  # no ub row: no floor (both)


def test_floor_p_table(floored):
    records, floors = floored
    table = build_table(records, by="p", setting="A", metrics=["mae"], floors=floors)
    assert [c.group for c in table.columns] == [0.1, 0.5]
    assert floor_cell(table, "pair", 0.1, "mae").mean == pytest.approx(1.06)
    assert floor_cell(table, "pair", 0.5, "mae").mean == pytest.approx(0.92)
    assert floor_cell(table, "source_only", 0.5, "mae").mean == pytest.approx(1.26)
    assert floor_cell(table, "both", 0.5, "mae").mean == pytest.approx(0.95)  # every p column
    text = render(table)
    assert "| floor (pair, setting A) | 1.060 ± 0.010 | 0.920 ± 0.020 |" in text
    b = build_table(records, by="p", setting="B", metrics=["mae"], floors=floors)
    assert floor_cell(b, "pair", 0.1, "mae").mean == pytest.approx(1.03)
    assert "| floor (pair, setting B) | 1.030 ± 0.010 | 0.910 ± 0.000 |" in render(b)
    assert (
        "warning: LB is worse than its linear floor in T→V setting A, p = 10% (MAE 1.300 vs 1.260)"
    ) in table.warnings


def test_floor_warnings_exactly_when_worse(floored):
    records, floors = floored
    # primary metric MAE (lower is better): LB 1.300 vs 1.260 (A, B), Modal-Trans 1.110 vs
    # 1.060 (A), MM-Align 1.050 vs 1.030 (B) are worse; UB 0.900 vs 0.950 and the rest are not
    table = build_table(records, floors=floors)
    assert table.warnings == (
        "warning: LB is worse than its linear floor in T→V setting A (MAE 1.300 vs 1.260)",
        "warning: LB is worse than its linear floor in T→V setting B (MAE 1.300 vs 1.260)",
        "warning: Modal-Trans is worse than its linear floor in T→V setting A (MAE 1.110 vs 1.060)",
        "warning: MM-Align is worse than its linear floor in T→V setting B (MAE 1.050 vs 1.030)",
    )
    # primary metric Acc-2 (higher is better): LB 61.0 vs 63.0 (A), Modal-Trans 66.0 vs
    # 69.0 (B); MAE, now second, warns about nothing
    acc = build_table(records, floors=floors, metrics=["acc2_nonzero", "mae"])
    assert acc.warnings == (
        "warning: LB is worse than its linear floor in T→V setting A (Acc-2 61.0 vs 63.0)",
        "warning: Modal-Trans is worse than its linear floor in T→V setting B (Acc-2 66.0 vs 69.0)",
    )


def _class_records(method_values, floor_values):
    """Classification records of pair t->a (2 seeds) and their floors: (records, floors)."""
    base = {"source": "text", "victim": "audio", "p": 0.5, "split": "test", "data_id": "meld"}
    records = [
        {**base, "method": m, "seed": s, "setting": st, "metric": "f1_weighted", "value": v}
        for m, v in method_values.items()
        for s in range(2)
        for st in ("A", "B")
    ]
    floors = [
        {**base, "method": m, "seed": s, "floor": kind, "metric": "f1_weighted", "value": v}
        for m in method_values
        for s in range(2)
        for kind, v in floor_values.items()
    ]
    return records, floors


def test_floor_warning_ties_and_decimals():
    # equal to its floor is not worse; a gap hidden by 1 decimal is shown with more
    records, floors = _class_records(
        {"lb": 0.5, "mm-align": 0.55},
        {"source_only": 0.5, "pair_A": 0.5504, "pair_B": 0.54},
    )
    table = build_table(records, floors=floors)
    assert table.floor_rows == ("source_only", "pair")  # no ub row, no floor (both)
    assert table.warnings == (
        "warning: MM-Align is worse than its linear floor in T→A setting A (F1 55.00 vs 55.04)",
    )
    records, floors = _class_records({"lb": 0.5}, {"source_only": 0.5, "pair_A": 0.9})
    assert build_table(records, floors=floors).warnings == ()


def test_floor_markdown(floored):
    records, floors = floored
    text = render(build_table(records, floors=floors), "markdown")
    lines = text.splitlines()
    assert "| floor (source only) | 1.260 ± 0.010 | 63.0 ± 1.0 | 1.260 ± 0.010 | 63.0 ± 1.0 |" in (
        lines
    )
    assert "| floor (pair) | 1.060 ± 0.010 | 70.0 ± 0.0 | 1.030 ± 0.010 | 69.0 ± 1.0 |" in lines
    assert "| floor (both) | 0.950 ± 0.000 | 79.0 ± 1.0 | 0.950 ± 0.000 | 79.0 ± 1.0 |" in lines
    # floor rows follow the method rows, unmarked; the method rows are as without floors
    floor_lines = [line for line in lines if line.startswith("| floor")]
    assert len(floor_lines) == 3 and not any("**" in x or "†" in x for x in floor_lines)
    assert lines.index(floor_lines[0]) == lines.index(next(x for x in lines if "MM-Align" in x)) + 1
    assert (
        "| MM-Align | **1.013 ± 0.015†** | **72.3 ± 3.8** | 1.050 ± 0.010 | **73.2 ± 1.0†** |"
    ) in lines
    # the warnings come last, below the table
    assert lines[-4:] == list(build_table(records, floors=floors).warnings)
    assert "Floor rows: ridge regression" in text


def test_floor_csv_and_latex(floored):
    records, floors = floored
    table = build_table(records, floors=floors)
    rows = list(csv.DictReader(io.StringIO(render(table, "csv"))))
    assert len(rows) == 4 * 4 + 3 * 4
    floor_rows = [r for r in rows if r["method"].startswith("floor:")]
    assert [r["method"] for r in floor_rows] == [
        *["floor:source_only"] * 4,
        "floor:pair_A",
        "floor:pair_A",
        "floor:pair_B",
        "floor:pair_B",
        *["floor:both"] * 4,
    ]
    assert all((r["best"], r["significant"], r["n"]) == ("False", "False", "3") for r in floor_rows)
    pair_b = next(r for r in floor_rows if r["method"] == "floor:pair_B" and r["metric"] == "mae")
    assert float(pair_b["mean"]) == pytest.approx(1.03) and pair_b["setting"] == "B"
    assert sum(r["best"] == "True" for r in rows) == 4  # as without floors
    latex = render(table, "latex")
    assert (
        r"\midrule" + "\n" + r"floor (source only) & 1.260 $\pm$ 0.010 & 63.0 $\pm$ 1.0 & "
        r"1.260 $\pm$ 0.010 & 63.0 $\pm$ 1.0 \\"
    ) in latex
    assert r"floor (pair) & 1.060 $\pm$ 0.010 & 70.0 $\pm$ 0.0 & " in latex
    assert r"floor (both) & 0.950 $\pm$ 0.000" in latex
    floor_part = latex.split("floor (source only)", 1)[1]
    assert r"\textbf" not in floor_part and r"\dagger" not in floor_part
    assert latex.rstrip().endswith(
        "% warning: MM-Align is worse than its linear floor in T→V setting B (MAE 1.050 vs 1.030)"
    )


def test_floor_per_data_set_and_failed_floors(tmp_path):
    store = ResultStore(tmp_path / "runs.sqlite")
    fill(store, floors=True)
    fill(store, data="synthetic:n_train=16", floors=True, shift=0.5)
    # a run whose floor could not be fitted stores {"error": ...}: no record, no crash
    block = {"test": {"mae": 1.0, "acc2_nonzero": 0.5}}
    spec = RunSpec("synthetic:n_train=8", "lb", "text", "vision", 0.1, 7)
    store.put(spec, {"A": block, "B": block, "floor": {"error": "ValueError: x"}}, 1.0)
    floors = store.floor_records()
    assert not any(f["seed"] == 7 for f in floors)
    tables = build_tables(store.to_records(), floors=floors, p=0.1)
    by_name = {t.title.split(":")[0] + ":" + t.title.split(":")[1]: t for t in tables}
    small, large = by_name["synthetic:n_train=8"], by_name["synthetic:n_train=16"]
    assert floor_cell(small, "source_only", "A", "mae").mean == pytest.approx(1.26)
    assert floor_cell(large, "source_only", "A", "mae").mean == pytest.approx(1.76)
    assert isinstance(small, Table) and small.title.startswith("synthetic:n_train=8: test")
