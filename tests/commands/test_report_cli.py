import csv
import io

import pytest

from mmalign.cli import main
from mmalign.commands.report import _resolve_config_hash
from mmalign.experiments.spec import RunSpec
from mmalign.experiments.store import ResultStore
from mmalign.validation import ConfigError, DataError

# seeds 0..2 of pair audio->text; mm-align beats modal-trans significantly on MAE (setting A)
RUNS = {
    ("lb", 0.1): [1.40, 1.42, 1.41],
    ("ub", 1.0): [1.00, 1.01, 1.02],
    ("modal-trans", 0.1): [1.30, 1.31, 1.32],
    ("mm-align", 0.1): [1.20, 1.22, 1.21],
    ("mm-align", 0.5): [1.10, 1.12, 1.11],
}
# test MAE of the stored floors over seeds 0..2: LB (1.410) is worse than the source-only
# floor (1.360), Modal-Trans (1.310) than the pair floor at p = 10% (1.250); the others are not
FLOOR_MAE = {
    "source_only": [1.35, 1.36, 1.37],
    ("pair", 0.1): [1.25, 1.25, 1.25],
    ("pair", 0.5): [1.15, 1.16, 1.17],
    "both": [1.05, 1.05, 1.05],
}


def _floor(method, p, seed):
    def block(maes):
        return {"test": {"mae": maes[seed], "acc2_nonzero": 0.5}, "valid": {"mae": 9.0}}

    floor = {"source_only": block(FLOOR_MAE["source_only"])}
    if method == "ub":
        floor["both"] = block(FLOOR_MAE["both"])
    else:
        floor.update({f"pair_{s}": block(FLOOR_MAE[("pair", p)]) for s in ("A", "B")})
    return floor


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "runs.sqlite"
    store = ResultStore(path)
    for (method, p), maes in RUNS.items():
        for seed, mae in enumerate(maes):
            block = {"test": {"mae": mae, "acc2_nonzero": 0.5}}
            spec = RunSpec("synthetic:n_train=8", method, "audio", "text", p, seed)
            result = {"A": block, "B": block, "floor": _floor(method, p, seed)}
            store.put(spec, result, 1.0)
    return path


def test_markdown_default(store_path, capsys):
    assert main(["report", "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert (
        "synthetic:n_train=8: test results, p = 10%" in out and "p = 50%" in out
    )  # one table per p
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
    assert out.startswith("# synthetic:n_train=8: test results in setting A")
    body = [line for line in out.splitlines() if not line.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(body))))
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


def _add_config(path, config, seeds=(0, 1)):
    store = ResultStore(path)
    for seed in seeds:
        block = {"test": {"mae": 1.0 + seed / 100, "acc2_nonzero": 0.5}}
        spec = RunSpec("synthetic:n_train=8", "mm-align", "audio", "text", 0.1, seed, config)
        store.put(spec, {"A": block, "B": block}, 1.0)


def _hash(config):
    from mmalign.experiments.spec import config_hash

    return config_hash(config)


def test_list_configs(store_path, capsys):
    _add_config(store_path, {"epochs": 3, "lr": 0.01, "device": "cpu"})
    assert main(["report", "--store", str(store_path), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["config_hash", "runs", "data", "methods", "options"]
    default, custom = lines[1:]
    assert default.split()[0] == _hash({})[:12] and default.split()[1] == "15"
    assert "lb, ub, modal-trans, mm-align" in default and default.endswith("(defaults)")
    assert custom.split()[:3] == [_hash({"epochs": 3, "lr": 0.01})[:12], "2", "synthetic:n_train=8"]
    assert custom.endswith("epochs=3, lr=0.01")  # device is not an option of the result
    assert main(["report", "--store", str(store_path), "--list", "--data", "other"]) == 2
    assert "holds no runs" in capsys.readouterr().err


def report(*argv):
    """Run ``mmalign report ARGV`` without the CLI's error handling (for pytest.raises)."""
    from mmalign.cli import build_parser

    args = build_parser().parse_args(["report", *argv])
    return args.func(args)


def test_two_configs_need_config_hash(store_path, capsys):
    _add_config(store_path, {"epochs": 3})
    default, custom = _hash({})[:12], _hash({"epochs": 3})[:12]
    message = (
        rf"the runs of synthetic:n_train=8 were made under 2 configs \({default}, {custom}\); "
        r"pick one with --config-hash HASH \(a unique prefix is enough\)\. "
        rf"`mmalign report --store .*runs\.sqlite --list` shows what each config sets"
    )
    with pytest.raises(DataError, match=message):
        report("--store", str(store_path))
    assert main(["report", "--store", str(store_path)]) == 2  # the CLI: one line, exit 2
    assert "made under 2 configs" in capsys.readouterr().err
    # a prefix picks one config, the full hash too
    assert report("--store", str(store_path), "--config-hash", custom[:8]) == 0
    out = capsys.readouterr().out
    assert "| MM-Align | **1.005 ± 0.007** |" in out and "Modal-Trans" not in out
    assert report("--store", str(store_path), "--config-hash", _hash({})) == 0
    assert "| Modal-Trans |" in capsys.readouterr().out


def test_bad_config_hash(store_path):
    _add_config(store_path, {"epochs": 3})
    default, custom = _hash({})[:12], _hash({"epochs": 3})[:12]
    message = (
        r"`--config-hash` must name one config of the store \(a unique prefix is enough\); "
        rf"got 'zzzz', which matches no config of this selection: {default}, {custom}\. "
        r"`mmalign report --store .* --list` describes them"
    )
    with pytest.raises(ConfigError, match=message):
        report("--store", str(store_path), "--config-hash", "zzzz")


def test_ambiguous_config_hash_prefix():
    class TwoConfigs:
        path = "runs.sqlite"

        def configs(self, **filters):
            return [{"config_hash": "abc1" + "0" * 60}, {"config_hash": "abc2" + "0" * 60}]

    with pytest.raises(ConfigError, match=r"got 'abc', which matches several configs: abc1"):
        _resolve_config_hash(TwoConfigs(), "abc", None)
    assert _resolve_config_hash(TwoConfigs(), "abc2", None).startswith("abc2")


def test_floor_rows_and_warnings(store_path, capsys):
    assert main(["report", "--store", str(store_path), "--metrics", "mae", "--p", "0.1"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "| floor (source only) | 1.360 ± 0.010 | 1.360 ± 0.010 |" in lines
    assert "| floor (pair) | 1.250 ± 0.000 | 1.250 ± 0.000 |" in lines
    assert "| floor (both) | 1.050 ± 0.000 | 1.050 ± 0.000 |" in lines
    assert "| MM-Align | **1.210 ± 0.010†** | **1.210 ± 0.010†** |" in lines
    assert [line for line in lines if line.startswith("warning:")] == [
        "warning: LB is worse than its linear floor in A→T setting A (MAE 1.410 vs 1.360)",
        "warning: LB is worse than its linear floor in A→T setting B (MAE 1.410 vs 1.360)",
        "warning: Modal-Trans is worse than its linear floor in A→T setting A (MAE 1.310 vs 1.250)",
        "warning: Modal-Trans is worse than its linear floor in A→T setting B (MAE 1.310 vs 1.250)",
    ]
    assert lines[-1].startswith("warning: Modal-Trans")  # below the table
    # at p = 50% MM-Align (1.110) beats its pair floor (1.160): no warning
    assert main(["report", "--store", str(store_path), "--metrics", "mae", "--p", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "| floor (pair) | 1.160 ± 0.010 | 1.160 ± 0.010 |" in out and "warning:" not in out


def test_no_floor(store_path, capsys):
    assert main(["report", "--store", str(store_path), "--no-floor"]) == 0
    out = capsys.readouterr().out
    assert "| MM-Align | **1.210 ± 0.010†** |" in out
    assert "floor" not in out.lower() and "warning" not in out


def test_floor_csv_and_latex(store_path, tmp_path, capsys):
    argv = ["report", "--store", str(store_path), "--metrics", "mae", "--p", "0.1"]
    assert main([*argv, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# synthetic:n_train=8: test results, p = 10%")
    assert lines[-4:] == [
        "# warning: LB is worse than its linear floor in A→T setting A (MAE 1.410 vs 1.360)",
        "# warning: LB is worse than its linear floor in A→T setting B (MAE 1.410 vs 1.360)",
        "# warning: Modal-Trans is worse than its linear floor in A→T setting A "
        "(MAE 1.310 vs 1.250)",
        "# warning: Modal-Trans is worse than its linear floor in A→T setting B "
        "(MAE 1.310 vs 1.250)",
    ]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[1:-4]))))
    floors = {(r["method"], r["setting"]): r for r in rows if r["method"].startswith("floor:")}
    assert sorted(floors) == [
        ("floor:both", "A"),
        ("floor:both", "B"),
        ("floor:pair_A", "A"),
        ("floor:pair_B", "B"),
        ("floor:source_only", "A"),
        ("floor:source_only", "B"),
    ]
    assert float(floors[("floor:source_only", "A")]["mean"]) == pytest.approx(1.36)
    assert all(r["best"] == r["significant"] == "False" for r in floors.values())
    out = tmp_path / "t.tex"
    assert main([*argv, "--format", "latex", "--out", str(out)]) == 0
    text = out.read_text()
    assert r"floor (source only) & 1.360 $\pm$ 0.010 & 1.360 $\pm$ 0.010 \\" in text
    assert r"floor (both) & 1.050 $\pm$ 0.000 & 1.050 $\pm$ 0.000 \\" in text
    assert "% warning: LB is worse than its linear floor in A→T setting A" in text


# test MAE of the random-missing runs over seeds 0..2: MM-Align 1.0 + 0.01 seed on every
# pattern, LB 1.2 + 0.01 seed; UB 0.9; no run has pattern "a"
RANDOM_MAE = {"lb": 1.2, "ub": 0.9, "mm-align": 1.0}
RANDOM_PATTERNS = ("tva", "t", "va", "tv")


def _random_result(method, seed):
    mae = RANDOM_MAE[method] + seed / 100
    metrics = {"n": 10, "mae": mae, "acc2_nonzero": 0.5, "corr": 0.1}
    patterns = {p: dict(metrics) for p in RANDOM_PATTERNS}
    patterns["t"]["corr"] = float("nan")  # too few samples
    return {
        "random": {"valid": {"mae": mae}, "test": {"mae": mae}, "best_epoch": 2},
        "test": {"overall": {**metrics, "n": 40}, "patterns": patterns},
        "floor": {"random": {"test": {"mae": 1.1, "acc2_nonzero": 0.5}, "alpha": 1.0}},
        "meta": {"protocol": "random", "missing_rate": 0.3, "frame_drop": 0.2},
        "warnings": [],
    }


def _add_random_runs(path, config=None):
    store = ResultStore(path)
    config = config or {"missing_rate": 0.3, "frame_drop": 0.2}
    for method in RANDOM_MAE:
        for seed in range(3):
            spec = RunSpec.random_missing("synthetic:n_train=8", method, seed, config)
            store.put(spec, _random_result(method, seed), 1.0)


@pytest.fixture
def random_store(tmp_path):
    path = tmp_path / "random.sqlite"
    _add_random_runs(path)
    return path


def test_report_patterns(random_store, capsys):
    assert main(["report", "--store", str(random_store), "--patterns"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == (
        "**synthetic:n_train=8: test MAE↓ per pattern of present modalities, missing rate 30%, "
        "frame drop 20%**"
    )
    assert "| Method | {T} | {T,V} | {V,A} | {T,V,A} | Overall |" in lines
    assert "| LB | 1.210 ± 0.010 | 1.210 ± 0.010 |" in out
    assert "| MM-Align | **1.010 ± 0.010†** | **1.010 ± 0.010†** |" in out
    assert "| floor (present modalities) | – | – | – | – | 1.100 ± 0.000 |" in lines
    assert "| n (test samples) | 10 | 10 | 10 | 10 | 40 |" in lines
    assert "warning: LB is worse than its linear floor in Overall (MAE 1.210 vs 1.100)" in lines
    assert "test Acc-2↑ per pattern" in out  # the second default metric
    assert main(["report", "--store", str(random_store), "--patterns", "--no-floor"]) == 0
    assert "floor" not in capsys.readouterr().out.lower()


def test_report_patterns_csv_metric_and_nan(random_store, capsys):
    argv = ["report", "--store", str(random_store), "--patterns", "--metrics", "corr"]
    assert main([*argv, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# synthetic:n_train=8: test Corr↑ per pattern")
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[1:]))))
    t = [r for r in rows if r["pattern"] == "t" and not r["method"].startswith("samples")]
    assert {r["mean"] for r in t} == {"nan"} and {r["n"] for r in t} == {"0"}
    assert main([*argv, "--format", "latex"]) == 0
    assert r"\multicolumn{5}{c}{Corr$\uparrow$}" in capsys.readouterr().out


def test_plain_report_of_random_runs_says_patterns(random_store, capsys):
    assert main(["report", "--store", str(random_store)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmalign: error: ") and len(err.strip().splitlines()) == 1
    assert "holds only random-missing runs" in err and "--patterns" in err


def test_mixed_store(store_path, capsys):
    _add_random_runs(store_path)
    assert main(["report", "--store", str(store_path), "--p", "0.1"]) == 0
    captured = capsys.readouterr()
    assert "A→T Setting A" in captured.out and "pattern" not in captured.out
    assert "also holds 9 random-missing run(s); --patterns shows" in captured.err
    assert main(["report", "--store", str(store_path), "--patterns"]) == 0
    out = capsys.readouterr().out
    assert "Modal-Trans" not in out and "| MM-Align | **1.010 ± 0.010†** |" in out


def test_report_patterns_errors(store_path, random_store, capsys):
    assert main(["report", "--store", str(store_path), "--patterns"]) == 2
    assert "holds no random-missing runs" in capsys.readouterr().err
    for flags, match in [
        (["--pairs", "t:v"], "`--pairs` must not be given with --patterns"),
        (["--by", "p"], "`--by` must not be given with --patterns"),
        (["--p", "0.1"], "`--p` must not be given with --patterns"),
        (["--split", "valid"], "`--split` must be 'test' with --patterns"),
    ]:
        assert main(["report", "--store", str(random_store), "--patterns", *flags]) == 2
        assert match in capsys.readouterr().err
    # two missing rates in one store: two configs, pick one
    _add_random_runs(random_store, {"missing_rate": 0.5})
    assert main(["report", "--store", str(random_store), "--patterns"]) == 2
    assert "were made under 2 configs" in capsys.readouterr().err
    config = _hash({"missing_rate": 0.5})[:10]
    argv = ["report", "--store", str(random_store), "--patterns", "--config-hash", config]
    assert main(argv) == 0
    assert "missing rate 50%**" in capsys.readouterr().out


def test_report_patterns_counts_and_lists_the_runs_warnings(random_store, capsys):
    store = ResultStore(random_store)
    (row,) = store.rows(method="lb", seed=1)
    spec = RunSpec.random_missing(row["data"], "lb", 1, row["config"])
    result = {**row["result"], "warnings": ["small"], "warning_codes": ["pattern_small"]}
    store.put(spec, result, 1.0)
    assert main(["report", "--store", str(random_store), "--patterns"]) == 0
    err = capsys.readouterr().err
    assert "mmalign report: runs with warnings: pattern_small 1 of 9 (" in err
    assert main(["report", "--store", str(random_store), "--warnings"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 of 9 runs recorded warnings")
    folder = f"lb/random/r0.3_f0.2_seed1_{spec.fingerprint()}"
    assert f"lb random missing_rate=0.3 seed=1 on synthetic:n_train=8: {folder}\n" in out
    assert "  [pattern_small] small\n" in out
