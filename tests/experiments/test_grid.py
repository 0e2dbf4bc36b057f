import json

import pytest

from mmalign.experiments.grid import expand_grid, parse_pairs, prepare_run_dir, run_dir_for
from mmalign.experiments.spec import RunSpec
from mmalign.options import parse_seeds
from mmalign.validation import ConfigError

SIX = ["lb", "ub", "mfm", "smil", "modal-trans", "mm-align"]


def test_paper_grid_count():
    specs = expand_grid("synthetic", SIX, "all", [0.1, 0.5], 5)
    # 6 pairs x (5 methods x 2 p + ub once) x 5 seeds
    assert len(specs) == 6 * (5 * 2 + 1) * 5 == 330
    assert len({s.fingerprint() for s in specs}) == 330
    ub = [s for s in specs if s.method == "ub"]
    assert len(ub) == 30 and {s.p for s in ub} == {1.0}


def test_pairs_all_in_paper_order():
    pairs = parse_pairs("all", ["text", "vision", "audio"])
    assert pairs == [
        ("text", "vision"),
        ("vision", "audio"),
        ("audio", "text"),
        ("vision", "text"),
        ("audio", "vision"),
        ("text", "audio"),
    ]
    assert parse_pairs("all", ["text", "audio"]) == [("audio", "text"), ("text", "audio")]


def test_pair_forms_and_dedup():
    assert parse_pairs(["t:v", "text->vision", "a→t"]) == [("text", "vision"), ("audio", "text")]


@pytest.mark.parametrize(
    "pairs, match",
    [
        ("t", "must look like 'source:victim'"),
        ("t:t", "two different modalities"),
        ("t:x", "`modality` must be one of"),
        ("", "at least one pair"),
    ],
)
def test_pair_errors(pairs, match):
    with pytest.raises(ConfigError, match=match):
        parse_pairs(pairs, ["text", "vision", "audio"])


def test_seeds():
    assert parse_seeds(2) == [0, 1]
    assert parse_seeds([3, 7]) == [3, 7]
    assert parse_seeds("3") == [0, 1, 2]  # a plain count string is a count
    assert parse_seeds("3,7") == [3, 7]
    with pytest.raises(ConfigError, match="`seeds` must be a count >= 1"):
        parse_seeds(0)
    with pytest.raises(ConfigError, match="integers >= 0"):
        parse_seeds([-1])


def test_expand_grid_fields_and_config():
    specs = expand_grid("synthetic:n_train=8", "lb,mm-align", ["a:t"], 0.5, [3], {"epochs": 2})
    assert [(s.method, s.source, s.victim, s.p, s.seed) for s in specs] == [
        ("lb", "audio", "text", 0.5, 3),
        ("mm-align", "audio", "text", 0.5, 3),
    ]
    assert all(s.config == {"epochs": 2} for s in specs)
    # one grid config for every method (one config_hash in the store); a run's fingerprint
    # hashes only the options that apply to its method
    from mmalign.experiments.spec import config_hash

    specs = expand_grid("synthetic", "lb,mm-align", "t:v", 0.5, 1, {"epochs": 2, "window": 4})
    assert all(s.config == {"epochs": 2, "window": 4} for s in specs)
    assert len({config_hash(s.config) for s in specs}) == 1
    lb = expand_grid("synthetic", "lb", "t:v", 0.5, 1, {"epochs": 2})[0]
    assert specs[0].fingerprint() == lb.fingerprint()  # the window does not reach LB
    mm = expand_grid("synthetic", "mm-align", "t:v", 0.5, 1, {"epochs": 2})[0]
    assert specs[1].fingerprint() != mm.fingerprint()
    with pytest.raises(ConfigError, match="`method` must be one of"):
        expand_grid("synthetic", "lb,mfn", "t:v", [0.5], 1)
    with pytest.raises(ConfigError, match=r"`p` must be in \(0, 1\]"):
        expand_grid("synthetic", "lb", "t:v", [1.5], 1)
    with pytest.raises(ConfigError, match="`methods` must name at least one"):
        expand_grid("synthetic", "", "t:v", [0.5], 1)


def test_run_dirs_are_unique_and_prepared(tmp_path):
    specs = expand_grid("synthetic", SIX, "t:v,v:a", [0.1], 2)
    dirs = {run_dir_for(tmp_path, s, s.fingerprint()) for s in specs}
    assert len(dirs) == len(specs)
    spec = RunSpec("synthetic", "mm-align", "text", "vision", 0.1, 0)
    run_dir = run_dir_for(tmp_path, spec, "abc")
    run_dir.mkdir(parents=True)
    (run_dir / "stale.pt").write_bytes(b"half a checkpoint")
    prepare_run_dir(run_dir, spec, "abc")
    assert sorted(p.name for p in run_dir.iterdir()) == ["spec.json"]
    assert json.loads((run_dir / "spec.json").read_text())["fingerprint"] == "abc"


def test_random_grid_is_methods_x_seeds(tmp_path):
    from mmalign.experiments.grid import expand_random_grid

    config = {"missing_rate": 0.3, "frame_drop": 0.2}
    specs = expand_random_grid("synthetic", "lb,ub,mm-align", 3, config)
    assert [(s.method, s.seed) for s in specs] == [
        (m, seed) for m in ("lb", "ub", "mm-align") for seed in range(3)
    ]
    assert all((s.source, s.victim, s.p, s.config) == (None, None, None, config) for s in specs)
    assert len({s.fingerprint() for s in specs}) == 9
    dirs = {run_dir_for(tmp_path, s, s.fingerprint()) for s in specs}
    assert len(dirs) == 9
    spec = specs[0]
    expected = tmp_path / "lb" / "random" / f"r0.3_f0.2_seed0_{spec.fingerprint()}"
    assert run_dir_for(tmp_path, spec, spec.fingerprint()) == expected


def test_random_grid_errors():
    from mmalign.experiments.grid import expand_random_grid, random_missing_methods

    assert random_missing_methods() == ("lb", "ub", "mm-align")
    with pytest.raises(ConfigError, match=r"one of \['lb', 'ub', 'mm-align'\].*got 'mfm'"):
        expand_random_grid("synthetic", "lb,mfm", 1, {"missing_rate": 0.3})
    with pytest.raises(ConfigError, match="must set missing_rate"):
        expand_random_grid("synthetic", "lb", 1, {"epochs": 2})
    with pytest.raises(ConfigError, match="`pairs` and `ps` do not apply"):
        expand_grid("synthetic", "lb", "t:v", [0.5], 1, {"missing_rate": 0.3})
