import os

import pytest

from mmalign.data.spec import DataSpec
from mmalign.experiments import spec as spec_module
from mmalign.experiments.spec import (
    RunSpec,
    config_hash,
    data_identity,
    file_content_hash,
    run_fingerprint,
)
from mmalign.validation import ConfigError, DataError


def make(**changes):
    values = dict(
        data="synthetic",
        method="mm-align",
        source="text",
        victim="vision",
        p=0.1,
        seed=0,
        config={"lr": 0.001},
    )
    values.update(changes)
    return RunSpec(**values)


def test_fingerprint_is_stable_and_short():
    fp = make().fingerprint()
    assert fp == make().fingerprint()
    assert len(fp) == 16 and all(c in "0123456789abcdef" for c in fp)


@pytest.mark.parametrize(
    "change",
    [
        {"method": "lb"},
        {"source": "audio"},
        {"victim": "audio"},
        {"p": 0.5},
        {"seed": 1},
        {"config": {"lr": 0.01}},
        {"data": "synthetic:n_train=10"},
    ],
)
def test_fingerprint_changes_with_every_field(change):
    assert make(**change).fingerprint() != make().fingerprint()


def test_fingerprint_ignores_config_key_order_and_synthetic_knob_order():
    a = make(config={"a": 1, "b": {"x": 1, "y": 2}}, data="synthetic:n_train=4,seed=2")
    b = make(config={"b": {"y": 2, "x": 1}, "a": 1}, data="synthetic: seed=2, n_train=4")
    assert a.fingerprint() == b.fingerprint()
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_data_file_identity_is_its_content(tmp_path):
    one, two = tmp_path / "one.pkl", tmp_path / "two.pkl"
    one.write_bytes(b"same bytes")
    two.write_bytes(b"same bytes")
    assert data_identity(str(one)) == data_identity(str(two))
    assert make(data=str(one)).fingerprint() == make(data=str(two)).fingerprint()
    two.write_bytes(b"other bytes")
    assert data_identity(str(one)) != data_identity(str(two))


def test_file_hash_is_cached_by_size_and_mtime(tmp_path, monkeypatch):
    path = tmp_path / "big.pkl"
    path.write_bytes(b"x" * 1000)
    first = file_content_hash(path)
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    assert file_content_hash(path) == first
    assert opened == []  # served from the cache
    path.write_bytes(b"y" * 1001)
    os.utime(path, ns=(1, 10**18))
    assert file_content_hash(path) != first
    assert len(opened) == 1


def test_folder_identity_covers_names_and_contents(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.pkl").write_bytes(b"a")
    (folder / "test.pkl").write_bytes(b"b")
    before = data_identity(str(folder))
    (folder / ".hidden").write_bytes(b"ignored")
    assert data_identity(str(folder)) == before
    (folder / "test.pkl").write_bytes(b"c")
    assert data_identity(str(folder)) != before


def test_missing_data_path_raises(tmp_path):
    with pytest.raises(DataError, match="no such data file"):
        data_identity(str(tmp_path / "nope.pkl"))


@pytest.mark.parametrize(
    "change, match",
    [
        ({"p": 0.0}, r"`p` must be in \(0, 1\]"),
        ({"seed": -1}, "`seed` must be an integer >= 0"),
        ({"victim": "text"}, "`victim` must differ"),
        ({"method": ""}, "`method` must be a non-empty string"),
        ({"config": {"x": object()}}, "`config` must hold plain JSON values"),
        ({"config": {"x": float("nan")}}, "`config` must hold plain JSON values"),
    ],
)
def test_runspec_validation(change, match):
    with pytest.raises(ConfigError, match=match):
        make(**change)


def test_round_trip_dict_and_hashable():
    spec = make()
    assert RunSpec.from_dict(spec.to_dict()) == spec
    assert spec.label == "mm-align text->vision p=0.1 seed=0"
    assert hash(spec) == hash(make(config={"other": 1}))  # config is not hashed


def test_data_spec_rejects_bad_knob():
    with pytest.raises(ConfigError, match="key=value"):
        DataSpec.parse("synthetic:n")
    with pytest.raises(ConfigError, match="unknown synthetic knob 'n'"):
        DataSpec.parse("synthetic:n=4")
    assert run_fingerprint(make()) == make().fingerprint()
    assert spec_module.FINGERPRINT_LENGTH == 16


# Fingerprints and the default config hash of pair-protocol specs as computed before the
# random-missing protocol (issue 12) added `missing_rate`, `frame_drop` and `drop_burst` to the
# option table: existing stores keep their rows only while these stay as they are.
PAIR_FINGERPRINTS_BEFORE_ISSUE_12 = [
    (("synthetic", "lb", "text", "vision", 0.1, 0, {}), "2f43415246b01e14"),
    (("synthetic", "mm-align", "text", "vision", 0.1, 0, {}), "8686bd19f3f8bc49"),
    (
        (
            "synthetic:n_train=64,seed=1",
            "mm-align",
            "audio",
            "text",
            0.5,
            3,
            {"epochs": 5, "window": 4},
        ),
        "394cfc6cd92248f4",
    ),
    (
        ("synthetic", "ub", "vision", "audio", 1.0, 2, {"epochs": 2, "lr_main": 0.01}),
        "9bae37423f9aa128",
    ),
    (("synthetic", "mfm", "text", "audio", 0.5, 1, {"dropout": 0.1}), "3c983374bc87fca2"),
]
DEFAULT_CONFIG_HASH_BEFORE_ISSUE_12 = (
    "5f2b4f778c0cdc06faf7b6313a1d03f65ac10f1fc7d60783be645adf9e8ab652"
)


@pytest.mark.parametrize("fields, fingerprint", PAIR_FINGERPRINTS_BEFORE_ISSUE_12)
def test_pair_fingerprints_are_unchanged_by_the_random_missing_options(fields, fingerprint):
    data, method, source, victim, p, seed, config = fields
    # defaults that changed later: selection became 'auto' (earlier runs selected on the
    # metric), and the imputing methods' lambda_imputed became 1 (earlier runs are the 0 runs)
    assert RunSpec(*fields).fingerprint() != fingerprint
    config = {**config, "selection": "metric"}
    if method in ("mm-align", "mfm"):
        config["lambda_imputed"] = 0.0
    fields = (data, method, source, victim, p, seed, config)
    assert RunSpec(*fields).fingerprint() == fingerprint
    # the new options at the values that reproduce earlier runs are the same run
    neutral = {
        **config,
        "missing_rate": None,
        "frame_drop": 0.0,
        "drop_burst": 3.0,
        "alignment_solver": "sinkhorn",
        "alignment_states": 1,
    }
    assert RunSpec(data, method, source, victim, p, seed, neutral).fingerprint() == fingerprint


def test_default_config_hash_is_unchanged_but_for_the_changed_default():
    assert config_hash({}) != DEFAULT_CONFIG_HASH_BEFORE_ISSUE_12
    before = {"lambda_imputed": 0.0, "selection": "metric"}
    assert config_hash(before) == DEFAULT_CONFIG_HASH_BEFORE_ISSUE_12
    assert config_hash({"lambda_imputed": 0.0}) != DEFAULT_CONFIG_HASH_BEFORE_ISSUE_12
    assert config_hash({"drop_burst": 4.0}) != config_hash({})
    assert config_hash({"alignment_solver": "monotone"}) != config_hash({})
    monotone = {"alignment_solver": "monotone"}
    assert config_hash({**monotone, "alignment_states": 1}) == config_hash(monotone)
    assert config_hash({**monotone, "alignment_states": 5}) != config_hash(monotone)


def random_spec(**changes):
    values = dict(data="synthetic", method="mm-align", seed=0)
    values.update(changes)
    config = values.pop("config", {"missing_rate": 0.3, "frame_drop": 0.2})
    return RunSpec.random_missing(values["data"], values["method"], values["seed"], config)


def test_random_missing_spec_fields():
    spec = random_spec()
    assert (spec.source, spec.victim, spec.p) == (None, None, None)
    assert spec.protocol == "random" and spec.missing_rate == 0.3
    assert spec.label == "mm-align random missing_rate=0.3 seed=0"
    assert make().protocol == "pair" and make().missing_rate is None
    assert RunSpec.from_dict(spec.to_dict()) == spec
    # the same spec built by hand, and with a dotted key
    assert RunSpec("synthetic", "mm-align", None, None, None, 0, spec.config) == spec
    dotted = RunSpec("synthetic", "lb", None, None, None, 0, {"run.missing_rate": 0.3})
    assert dotted.protocol == "random"


@pytest.mark.parametrize(
    "change",
    [
        {"method": "lb"},
        {"seed": 1},
        {"config": {"missing_rate": 0.5, "frame_drop": 0.2}},
        {"config": {"missing_rate": 0.3}},
        {"config": {"missing_rate": 0.3, "frame_drop": 0.2, "drop_burst": 5.0}},
        {"data": "synthetic:n_train=10"},
    ],
)
def test_random_fingerprint_changes_with_every_field(change):
    assert random_spec(**change).fingerprint() != random_spec().fingerprint()


def test_options_a_run_does_not_read_leave_its_fingerprint_alone():
    # lambda_imputed: MM-Align's, pair protocol only
    assert (
        make(method="lb", config={"lambda_imputed": 0.0}).fingerprint()
        == make(method="lb", config={}).fingerprint()
    )
    assert make(config={"lambda_imputed": 0.0}).fingerprint() != make(config={}).fingerprint()
    unread = random_spec(config={"missing_rate": 0.3, "frame_drop": 0.2, "lambda_imputed": 0.5})
    assert unread.fingerprint() == random_spec().fingerprint()
    # victim_stream_dropout: the imputing methods', pair protocol only; 0 hashes as before it
    off = {"victim_stream_dropout": 0.0}
    assert make(config=off).fingerprint() == make(config={}).fingerprint()
    on = {"victim_stream_dropout": 0.3}
    assert make(config=on).fingerprint() != make(config={}).fingerprint()
    assert make(method="lb", config=on).fingerprint() == make(method="lb", config={}).fingerprint()
    unread = random_spec(config={"missing_rate": 0.3, "victim_stream_dropout": 0.3})
    assert unread.fingerprint() == random_spec(config={"missing_rate": 0.3}).fingerprint()


def test_random_fingerprint_differs_from_every_pair_run():
    rate_zero = random_spec(config={"missing_rate": 0.0}).fingerprint()
    pairs = {make(p=p, config={}).fingerprint() for p in (0.1, 1.0)}
    assert rate_zero not in pairs and random_spec().fingerprint() not in pairs


@pytest.mark.parametrize(
    "fields, match",
    [
        (("text", None, None, {"missing_rate": 0.3}), "`source` must be None in the random"),
        ((None, None, 0.5, {"missing_rate": 0.3}), "`p` must be None in the random"),
        ((None, None, None, {"missing_rate": 1.5}), "`missing_rate` must be"),
        ((None, None, None, {}), "`source` must be a non-empty string"),
    ],
)
def test_random_spec_validation(fields, match):
    source, victim, p, config = fields
    with pytest.raises(ConfigError, match=match):
        RunSpec("synthetic", "lb", source, victim, p, 0, config)


def test_random_missing_needs_a_rate():
    with pytest.raises(ConfigError, match="must set missing_rate"):
        RunSpec.random_missing("synthetic", "lb", 0, {"epochs": 2})
