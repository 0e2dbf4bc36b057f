import csv
import io
import math

import pytest

from mmalign.evaluate.pattern_table import (
    build_pattern_table,
    build_pattern_tables,
    pattern_order,
)
from mmalign.evaluate.tables import render
from mmalign.validation import ConfigError, DataError

# test MAE per (method, pattern) over seeds 0, 1, 2; LB has no "va" result for seed 2 and
# MM-Align none at all, no run has pattern "v"
MAE = {
    ("lb", "t"): [1.0, 1.2, 1.4],  # 1.200 ± 0.200
    ("lb", "va"): [1.3, 1.5],  # 1.400 ± 0.141
    ("lb", "tva"): [0.8, 0.8, 0.8],  # 0.800 ± 0.000
    ("lb", "overall"): [1.0, 1.1, 1.2],  # 1.100 ± 0.100
    ("ub", "t"): [0.5, 0.6, 0.7],
    ("ub", "va"): [0.5, 0.5, 0.5],
    ("ub", "tva"): [0.5, 0.5, 0.5],
    ("ub", "overall"): [0.5, 0.5, 0.5],
    ("mm-align", "t"): [0.9, 1.0, 1.1],  # 1.000 ± 0.100, best
    ("mm-align", "tva"): [0.7, 0.9, 0.8],  # 0.800 ± 0.100, tie with LB: both bold
    ("mm-align", "overall"): [0.95, 1.05, 1.0],  # 1.000 ± 0.050
}
# test samples per pattern and seed (the same for every method)
N = {"t": [10, 12, 14], "va": [30, 30, 31], "tva": [50, 50, 50], "overall": [90, 92, 95]}
# the runs' overall floor: present modalities (LB, MM-Align) and all modalities (UB)
FLOOR = {"random": [1.15, 1.15, 1.15], "complete": [0.4, 0.5, 0.6]}


def record(method, seed, pattern, metric, value, data="synthetic"):
    return {
        "fingerprint": f"{data}-{method}-{seed}",
        "data": data,
        "data_id": data,
        "method": method,
        "source": "",
        "victim": "",
        "p": 1.0,
        "seed": seed,
        "config_hash": "abc",
        "missing_rate": 0.3,
        "frame_drop": 0.0,
        "pattern": pattern,
        "metric": metric,
        "value": value,
    }


def make_records(data="synthetic"):
    records = []
    for (method, pattern), values in MAE.items():
        for seed, value in enumerate(values):
            records.append(record(method, seed, pattern, "mae", value, data))
            records.append(record(method, seed, pattern, "acc2_nonzero", 1.5 - value, data))
            records.append(record(method, seed, pattern, "n", N[pattern][seed], data))
    return records


def make_floors(data="synthetic"):
    floors = []
    for method in ("lb", "ub", "mm-align"):
        row = "complete" if method == "ub" else "random"
        for seed, value in enumerate(FLOOR[row]):
            floors.append(record(method, seed, "overall", "mae", value, data))
    return floors


def cell_text(table, method, pattern):
    j = [c.group for c in table.columns].index(pattern)
    cell = table.cells[(method, j)]
    return f"{cell.mean:.3f} ± {cell.std:.3f}", cell


def test_pattern_order_is_mmin_order():
    every = ["overall", "tva", "va", "ta", "tv", "a", "v", "t"]
    assert pattern_order(every) == ("t", "v", "a", "tv", "ta", "va", "tva", "overall")
    assert pattern_order(["tva", "x", "t", "overall"]) == ("t", "x", "tva", "overall")


def test_cells_are_mean_and_std_over_seeds():
    table = build_pattern_table(make_records(), "mae")
    assert table.by == "pattern" and table.methods == ("lb", "ub", "mm-align")
    # present patterns only, in MMIN's order; "v" has no result at all
    assert [c.group for c in table.columns] == ["t", "va", "tva", "overall"]
    assert {(c.source, c.victim, c.metric) for c in table.columns} == {("", "", "mae")}
    assert cell_text(table, "lb", "t")[0] == "1.200 ± 0.200"
    text, cell = cell_text(table, "lb", "va")
    assert text == "1.400 ± 0.141" and cell.n == 2
    assert cell_text(table, "mm-align", "t")[0] == "1.000 ± 0.100"
    assert cell_text(table, "mm-align", "overall")[0] == "1.000 ± 0.050"
    assert ("mm-align", 1) not in table.cells  # no "va" result
    # best: lowest MAE, the upper bound left out; ties are both bold
    assert cell_text(table, "mm-align", "t")[1].best and not cell_text(table, "ub", "t")[1].best
    assert cell_text(table, "lb", "va")[1].best  # the only contender
    assert cell_text(table, "lb", "tva")[1].best and cell_text(table, "mm-align", "tva")[1].best


def test_sample_count_row():
    table = build_pattern_table(make_records(), "mae")
    counts = {table.columns[j].group: cell for j, cell in table.sample_counts.items()}
    assert counts["t"].mean == 12.0 and counts["t"].std == 2.0 and counts["t"].n == 3
    assert counts["tva"].mean == 50.0 and counts["tva"].std == 0.0
    assert counts["va"].mean == pytest.approx(91 / 3)
    markdown = render(table)
    assert "| n (test samples) | 12.0 | 30.3 | 50 | 92.3 |" in markdown


def test_floor_rows_and_warnings():
    table = build_pattern_table(make_records(), "mae", floors=make_floors())
    assert table.floor_rows == ("random", "complete")
    overall = len(table.columns) - 1
    random_floor = table.floor_cells[("random", overall)]
    assert (random_floor.mean, random_floor.std, random_floor.n) == (1.15, 0.0, 3)
    complete = table.floor_cells[("complete", overall)]
    assert (round(complete.mean, 6), round(complete.std, 6)) == (0.5, 0.1)
    assert ("random", 0) not in table.floor_cells  # no per-pattern floor stored
    # UB (0.5) ties its floor (0.5): no warning; LB and MM-Align beat theirs
    assert table.warnings == ()
    worse = [r for r in make_floors() if r["method"] != "ub"]
    for r in worse:
        r["value"] = 1.05
    table = build_pattern_table(make_records(), "mae", floors=worse)
    assert table.floor_rows == ("random",)
    assert table.warnings == (
        "warning: LB is worse than its linear floor in Overall (MAE 1.100 vs 1.050)",
    )


def test_per_pattern_floor_when_stored():
    floors = make_floors() + [record("lb", s, "t", "mae", 1.3) for s in range(3)]
    table = build_pattern_table(make_records(), "mae", floors=floors)
    assert table.floor_cells[("random", 0)].mean == 1.3
    assert "| floor (present modalities) | 1.300 ± 0.000 | – | – | 1.150 ± 0.000 |" in render(table)


def test_markdown_csv_latex():
    (mae, acc) = build_pattern_tables(make_records(), floors=make_floors())
    markdown = render(mae)
    assert markdown.startswith(
        "**synthetic: test MAE↓ per pattern of present modalities, missing rate 30%**"
    )
    assert "| Method | {T} | {V,A} | {T,V,A} | Overall |" in markdown
    assert "| LB | 1.200 ± 0.200 | **1.400 ± 0.141** | **0.800 ± 0.000** |" in markdown
    assert "| MM-Align | **1.000 ± 0.100** | – | **0.800 ± 0.100** |" in markdown
    assert "| floor (all modalities) | – | – | – | 0.500 ± 0.100 |" in markdown
    assert "Mean ± std over 2-3 seeds" in markdown
    assert "| Method | {T} | {V,A} | {T,V,A} | Overall |" in render(acc)
    assert "| LB | 30.0 ± 20.0 |" in render(acc)

    rows = list(csv.DictReader(io.StringIO(render(mae, "csv"))))
    assert list(rows[0]) == ["method", "pattern", "metric", "mean", "std", "n", "best"] + [
        "significant"
    ]
    lb_t = next(r for r in rows if (r["method"], r["pattern"]) == ("lb", "t"))
    assert float(lb_t["mean"]) == pytest.approx(1.2) and lb_t["n"] == "3"
    assert float(lb_t["std"]) == pytest.approx(0.2) and lb_t["best"] == "False"
    floors = [r for r in rows if r["method"].startswith("floor:")]
    assert [(r["method"], r["pattern"]) for r in floors] == [
        ("floor:random", "overall"),
        ("floor:complete", "overall"),
    ]
    samples = [r for r in rows if r["method"] == "samples"]
    assert [(r["pattern"], r["metric"], float(r["mean"])) for r in samples][0] == ("t", "n", 12.0)

    latex = render(mae, "latex")
    assert r"Method & \multicolumn{4}{c}{MAE$\downarrow$} \\" in latex
    assert r" & \{T\} & \{V,A\} & \{T,V,A\} & Overall \\" in latex
    assert r"LB & 1.200 $\pm$ 0.200 & \textbf{1.400 $\pm$ 0.141}" in latex
    assert r"n (test samples) & 12.0 & 30.3 & 50 & 92.3 \\" in latex
    assert latex.count(r"\begin{tabular}") == 1


def test_significance_mark_on_a_pattern():
    records = [r for r in make_records() if r["metric"] == "mae"]
    for seed, value in enumerate([0.60, 0.61, 0.62]):  # MM-Align far better than LB on "t"
        next(
            r for r in records if (r["method"], r["pattern"], r["seed"]) == ("mm-align", "t", seed)
        )["value"] = value
    table = build_pattern_table(records, "mae")
    assert cell_text(table, "mm-align", "t")[1].significant
    assert "**0.610 ± 0.010†**" in render(table)


def test_nan_values_are_left_out_of_a_cell():
    records = make_records()
    records.append(record("lb", 0, "a", "corr", math.nan))
    records.append(record("lb", 1, "a", "corr", 0.5))
    table = build_pattern_table(records, "corr")
    assert [c.group for c in table.columns] == ["a"]
    cell = table.cells[("lb", 0)]
    assert (cell.mean, cell.std, cell.n) == (0.5, 0.0, 1)


def test_one_table_per_data_set_and_metric():
    records = make_records() + make_records("synthetic:n_train=8")
    tables = build_pattern_tables(records, metrics=["mae"])
    assert [t.title.split(":")[0] for t in tables] == ["synthetic", "synthetic"]
    assert tables[1].title.startswith("synthetic:n_train=8: test MAE")
    classes = [
        record("lb", 0, "t", "f1_weighted", 0.5),
        record("lb", 0, "t", "acc", 0.6),
    ]
    assert [t.columns[0].metric for t in build_pattern_tables(classes)] == ["f1_weighted"]


def test_errors():
    with pytest.raises(ConfigError, match=r"`metric` must be one of \['acc2_nonzero', 'mae'\]"):
        build_pattern_table(make_records(), "acc7")
    with pytest.raises(ConfigError, match="must hold random-missing results"):
        build_pattern_tables([])
    with pytest.raises(DataError, match="2 data sets"):
        build_pattern_table(make_records() + make_records("other"), "mae")
    twice = make_records() + [record("lb", 0, "t", "mae", 1.0)]
    with pytest.raises(DataError, match="two runs of lb seed=0"):
        build_pattern_table(twice, "mae")
