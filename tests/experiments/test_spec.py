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
