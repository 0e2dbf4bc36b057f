import multiprocessing
import sqlite3

import pytest
from grid_fakes import store_writer

from mmalign.experiments.spec import RunSpec
from mmalign.experiments.store import ResultStore, validate_result
from mmalign.validation import ConfigError, DataError

BLOCK = {"valid": {"mae": 1.5}, "test": {"mae": 1.25, "acc2_nonzero": 0.625}}
RESULT = {"A": BLOCK, "B": {"test": {"mae": 1.0}}, "meta": {"epochs": 3}}


def spec(seed=0, method="mm-align", p=0.1):
    return RunSpec("synthetic:n_train=8", method, "text", "vision", p, seed, {"lr": 0.01})


def test_put_has_rows(tmp_path):
    store = ResultStore(tmp_path / "sub" / "runs.sqlite")
    s = spec()
    assert not store.has(s.fingerprint()) and len(store) == 0
    fp = store.put(s, RESULT, 12.5, started_at="2024-01-01T00:00:00+00:00")
    assert fp == s.fingerprint() and store.has(fp)
    (row,) = store.rows()
    assert row["method"] == "mm-align" and row["source"] == "text" and row["victim"] == "vision"
    assert row["p"] == 0.1 and row["seed"] == 0 and row["wall_s"] == 12.5
    assert row["config"] == {"lr": 0.01} and row["result"] == RESULT
    assert row["data_id"] == "synthetic:n_train=8" and row["started_at"].startswith("2024")
    # a second put replaces, never duplicates
    store.put(s, RESULT, 3.0)
    assert len(store) == 1 and store.rows()[0]["wall_s"] == 3.0


def test_wal_mode(tmp_path):
    path = tmp_path / "runs.sqlite"
    ResultStore(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_rows_filters(tmp_path):
    store = ResultStore(tmp_path / "runs.sqlite")
    for seed in range(3):
        store.put(spec(seed), RESULT, 1.0)
    store.put(spec(0, method="lb"), RESULT, 1.0)
    assert len(store.rows(method="mm-align")) == 3
    assert {r["seed"] for r in store.rows(seed=[0, 2])} == {0, 2}
    assert len(store.rows(method="lb", seed=0)) == 1
    assert store.rows(fingerprint=[]) == []
    with pytest.raises(ConfigError, match="`filter` must be one of"):
        store.rows(colour="red")


def test_to_records_flattens_settings_splits_metrics(tmp_path):
    store = ResultStore(tmp_path / "runs.sqlite")
    store.put(spec(), RESULT, 1.0)
    records = store.to_records()
    # A: valid(1) + test(2), B: test(1)
    assert len(records) == 4
    key = ("A", "test", "mae")
    a_test_mae = [r for r in records if (r["setting"], r["split"], r["metric"]) == key]
    assert a_test_mae[0]["value"] == 1.25 and a_test_mae[0]["method"] == "mm-align"


@pytest.mark.parametrize(
    "bad, match",
    [
        ([], "`result` must be a dict"),
        ({"A": {"test": {}}}, r"`result\['B'\]` must be a dict with a 'test' dict"),
        ({"A": {"test": {"mae": "x"}}, "B": {"test": {}}}, r"\['mae'\]` must be a number"),
    ],
)
def test_validate_result_errors(bad, match):
    with pytest.raises(ConfigError, match=match):
        validate_result(bad)


def test_bad_result_writes_nothing(tmp_path):
    store = ResultStore(tmp_path / "runs.sqlite")
    with pytest.raises(ConfigError):
        store.put(spec(), {"A": {"test": {}}}, 1.0)
    assert len(store) == 0


def test_not_a_store(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(DataError, match="junk.sqlite"):
        ResultStore(path)
    with pytest.raises(DataError, match="must be a file"):
        ResultStore(tmp_path)


def test_delete(tmp_path):
    store = ResultStore(tmp_path / "runs.sqlite")
    fp = store.put(spec(), RESULT, 1.0)
    assert store.delete(fp) and not store.has(fp) and not store.delete(fp)


def test_two_processes_write_concurrently(tmp_path):
    path = str(tmp_path / "runs.sqlite")
    ResultStore(path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=store_writer, args=(path, offset, 25)) for offset in (0, 25)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    rows = ResultStore(path).rows()
    assert sorted(r["seed"] for r in rows) == list(range(50))
    assert all(r["result"]["A"]["test"]["mae"] == r["seed"] for r in rows)


def test_runner_extras_are_kept_but_not_records(tmp_path):
    import numpy as np

    store = ResultStore(tmp_path / "runs.sqlite")
    block = {"valid": {"mae": np.float32(1.5)}, "test": {"mae": 1.25}, "best_epoch": 4}
    result = {"A": block, "B": block, "floor": {"source_only": {"mae": 2.0}}, "meta": {}}
    store.put(spec(), result, 1.0)
    assert store.rows()[0]["result"]["A"]["best_epoch"] == 4
    records = store.to_records()
    assert {(r["setting"], r["split"]) for r in records} == {
        ("A", "valid"),
        ("A", "test"),
        ("B", "valid"),
        ("B", "test"),
    }
    assert all(r["metric"] == "mae" for r in records)


def test_configs_summarise_each_config(tmp_path):
    store = ResultStore(tmp_path / "runs.sqlite")
    assert store.configs() == []
    store.put(spec(0), RESULT, 1.0)
    store.put(spec(1), RESULT, 1.0)
    store.put(spec(0, method="lb"), RESULT, 1.0)
    other = RunSpec(
        "synthetic:n_train=16", "lb", "text", "vision", 0.1, 0, {"lr": 0.1, "device": "cpu"}
    )
    store.put(other, RESULT, 1.0)
    first, second = store.configs()
    assert first["config_hash"] == store.rows(seed=1)[0]["config_hash"]
    assert (first["data"], first["methods"], first["n_runs"]) == (
        ["synthetic:n_train=8"],
        ["mm-align", "lb"],
        3,
    )
    assert first["options"] == {"lr": 0.01}
    assert second["options"] == {"lr": 0.1}  # the execution option is left out
    assert second["n_runs"] == 1 and second["data"] == ["synthetic:n_train=16"]
    assert [c["n_runs"] for c in store.configs(data="synthetic:n_train=16")] == [1]
    assert store.configs(method=[]) == []
    with pytest.raises(ConfigError, match="`filter` must be one of"):
        store.configs(colour="red")


def test_configs_leave_out_defaults(tmp_path):
    from mmalign.experiments.spec import config_hash

    store = ResultStore(tmp_path / "runs.sqlite")
    # 8 is the default window (config_hash's doctest): same config as {}
    assert config_hash({"window": 8}) == config_hash({})
    s = RunSpec("synthetic", "mm-align", "text", "vision", 0.1, 0, {"window": 8, "epochs": 3})
    store.put(s, RESULT, 1.0)
    assert store.configs()[0]["options"] == {"epochs": 3}


def random_spec(seed=0, method="mm-align"):
    config = {"missing_rate": 0.3, "frame_drop": 0.2}
    return RunSpec.random_missing("synthetic:n_train=8", method, seed, config)


def test_random_missing_round_trip(tmp_path):
    from grid_fakes import fake_random_result

    store = ResultStore(tmp_path / "runs.sqlite")
    result = fake_random_result("mm-align", 1, missing=("va",))
    random_run, pair_run = random_spec(1), spec()
    fp = store.put(random_run, result, 2.0)
    store.put(pair_run, RESULT, 1.0)  # a pair run beside it
    assert fp == random_run.fingerprint() and store.has(fp) and len(store) == 2
    (row,) = store.rows(fingerprint=fp)
    assert (row["source"], row["victim"], row["p"], row["seed"]) == ("", "", 1.0, 1)
    assert row["result"] == result and row["config"] == random_run.config
    # the pair tables' records hold the pair run only
    assert {r["fingerprint"] for r in store.to_records()} == {pair_run.fingerprint()}
    assert store.floor_records() == []
    records = store.pattern_records()
    assert {r["fingerprint"] for r in records} == {fp}
    patterns = {r["pattern"] for r in records}
    assert patterns == {"overall", "t", "v", "a", "tv", "ta", "tva"}  # "va" was absent
    tv_mae = [r for r in records if (r["pattern"], r["metric"]) == ("tv", "mae")]
    assert tv_mae[0]["value"] == result["test"]["patterns"]["tv"]["mae"]
    assert (tv_mae[0]["missing_rate"], tv_mae[0]["frame_drop"], tv_mae[0]["method"]) == (
        0.3,
        0.2,
        "mm-align",
    )
    floors = store.pattern_floor_records()
    assert {(f["pattern"], f["metric"]) for f in floors} == {
        ("overall", "mae"),
        ("overall", "acc2_nonzero"),
    }
    summary = {c["config_hash"]: c for c in store.configs()}[row["config_hash"]]
    assert summary["options"] == {"frame_drop": 0.2, "missing_rate": 0.3}


def test_random_floor_patterns_and_nan_values(tmp_path):
    from grid_fakes import fake_random_result

    store = ResultStore(tmp_path / "runs.sqlite")
    result = fake_random_result("lb", 0)
    result["test"]["patterns"]["a"]["corr"] = float("nan")  # one sample: no correlation
    result["floor"]["random"]["patterns"] = {"tv": {"mae": 0.7}}
    store.put(random_spec(0, "lb"), result, 1.0)
    corr = [r for r in store.pattern_records() if r["metric"] == "corr"]
    assert len(corr) == 1 and corr[0]["value"] != corr[0]["value"]  # NaN kept
    floors = {(f["pattern"], f["metric"]): f["value"] for f in store.pattern_floor_records()}
    assert floors[("tv", "mae")] == 0.7 and floors[("overall", "mae")] == 1.1
    result["floor"] = {"random": {"error": "LinAlgError: singular"}}
    store.put(random_spec(1, "lb"), result, 1.0)
    assert {f["seed"] for f in store.pattern_floor_records()} == {0}


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"random": {"test": {}}}, r"`result\['test'\]` must be a dict with an 'overall'"),
        ({"random": {}, "test": {}}, r"`result\['random'\]` must be a dict with a 'test'"),
        (
            {"random": {"test": {}}, "test": {"overall": {"mae": "x"}, "patterns": {}}},
            r"`result\['test'\]\['overall'\]\['mae'\]` must be a number",
        ),
        (
            {"random": {"test": {}}, "test": {"overall": {}, "patterns": {"tv": 1.0}}},
            r"`result\['test'\]\['patterns'\]\['tv'\]` must be a dict",
        ),
        (
            {"random": {"test": {}}, "test": {"overall": {}, "patterns": {"t": {"n": None}}}},
            r"\['patterns'\]\['t'\]\['n'\]` must be a number",
        ),
    ],
)
def test_validate_random_result_errors(bad, match):
    with pytest.raises(ConfigError, match=match):
        validate_result(bad)


def test_layout_must_match_the_protocol(tmp_path):
    from grid_fakes import fake_random_result

    store = ResultStore(tmp_path / "runs.sqlite")
    with pytest.raises(ConfigError, match="layout of the run's random protocol"):
        store.put(random_spec(), RESULT, 1.0)
    with pytest.raises(ConfigError, match="layout of the run's pair protocol"):
        store.put(spec(), fake_random_result("lb", 0), 1.0)
    assert len(store) == 0


def test_warned_runs_rebuild_the_spec_of_both_protocols(tmp_path):
    from grid_fakes import fake_random_result

    store = ResultStore(tmp_path / "runs.sqlite")
    random_run, pair_run, quiet_run = random_spec(1), spec(), spec(seed=4)
    warned = {"warnings": ["w1", "w2"], "warning_codes": ["epoch_cap", "below_floor"]}
    store.put(random_run, {**fake_random_result("lb", 1, missing=()), **warned}, 1.0)
    store.put(pair_run, {**RESULT, "warnings": ["old"]}, 1.0)  # stored before codes
    store.put(quiet_run, {**RESULT, "warnings": [], "warning_codes": []}, 1.0)
    n_runs, runs = store.warned_runs()
    assert n_runs == 3
    by_fp = {run.fingerprint: run for run in runs}
    assert set(by_fp) == {random_run.fingerprint(), pair_run.fingerprint()}
    for original in (random_run, pair_run):  # the rebuilt spec is the stored one
        rebuilt = by_fp[original.fingerprint()].spec
        assert rebuilt == original and rebuilt.config == original.config
        assert rebuilt.fingerprint() == original.fingerprint()
    assert by_fp[random_run.fingerprint()].codes == ("epoch_cap", "below_floor")
    assert by_fp[pair_run.fingerprint()].codes == ("uncoded",)
    assert store.warned_runs([quiet_run.fingerprint()]) == (1, [])
