import pytest

from mmalign.config import (
    RunConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
)
from mmalign.validation import ConfigError


def test_overrides_accept_flat_and_dotted_names_and_coerce_types():
    c = apply_overrides(
        RunConfig(), {"window": "4", "train.lr_main": "2e-3", "single_iteration": "false", "p": 0.5}
    )
    assert (
        c.adl.window == 4
        and c.train.lr_main == 2e-3
        and c.train.single_iteration is False
        and c.p == 0.5
    )


def test_yaml_round_trip(tmp_path):
    c = apply_overrides(RunConfig(), {"d_model": 40, "method": "lb"})
    path = tmp_path / "c.yaml"
    import yaml

    path.write_text(yaml.safe_dump(config_to_dict(c)))
    assert load_config(path) == c
    assert config_from_dict({"window": 3}).adl.window == 3


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"windw": 3}, "unknown option 'windw'"),
        ({"window": "x"}, "`window` must be a int"),
        ({"p": 0}, r"`p` must be in \(0, 1\]"),
        ({"p": 1.5}, r"`p` must be in \(0, 1\]"),
        ({"pair": "tv"}, "`pair` must look like"),
        ({"d_model": 30, "n_heads": 4}, "divisible"),
        ({"reg": -1.0}, "`reg` must be a number > 0"),
        ({"convention": "diag"}, r"`convention` must be one of \['column', 'row'\]"),
        ({"device": "tpu"}, "`device` must be one of"),
        ({"single_iteration": "maybe"}, "true or false"),
    ],
)
def test_bad_values_raise_clear_errors(overrides, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(RunConfig(), overrides).validate()


def test_missing_and_malformed_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)
