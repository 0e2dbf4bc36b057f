"""Options whose default is ``None`` (off), e.g. ``missing_rate``: reading, checking, the CLI flag."""

import dataclasses

import pytest

from mmalign.cli import build_parser, main
from mmalign.commands.option_flags import config_from_args
from mmalign.config import RunConfig, check_option, check_protocol, flat_fields
from mmalign.options import coerce, option, validate_fields
from mmalign.validation import ConfigError


@dataclasses.dataclass(frozen=True)
class _Options:
    level: float | None = option(None, "a level in [0, 1)", check="fraction", kind=float)
    count: int | None = option(None, "a count > 0", check="positive", kind=int)


def _field(cls, name):
    return next(f for f in dataclasses.fields(cls) if f.name == name)


MISSING_RATE = flat_fields()["missing_rate"][1]


@pytest.fixture(autouse=True)
def _no_training(monkeypatch):
    """A command line that wrongly passes its checks fails here instead of training a model."""

    def refuse(*args, **kwargs):
        raise AssertionError("the command line started a run")

    monkeypatch.setattr("mmalign.runs.run", refuse)


@pytest.mark.parametrize(
    "f", [_field(_Options, "level"), MISSING_RATE], ids=["level", "missing_rate"]
)
def test_coerce_reads_a_value_or_off(f):
    assert coerce(f, "0.3") == 0.3 and isinstance(coerce(f, "0.3"), float)
    assert coerce(f, 0.25) == 0.25
    assert coerce(f, 0) == 0.0 and isinstance(coerce(f, 0), float)
    for off in (None, "", "none", " None ", "NONE"):
        assert coerce(f, off) is None
    with pytest.raises(ConfigError, match=f"`{f.name}` must be a float; got 'abc'"):
        coerce(f, "abc")


def test_coerce_reads_the_kind_of_the_option():
    count = _field(_Options, "count")
    assert coerce(count, "4") == 4 and isinstance(coerce(count, "4"), int)
    assert coerce(count, "none") is None
    with pytest.raises(ConfigError, match="`count` must be an? int(eger)?; got '2.5'"):
        coerce(count, "2.5")


def test_validate_fields_skips_off_options_and_checks_set_ones():
    validate_fields(_Options())
    validate_fields(_Options(level=0.0, count=3))
    with pytest.raises(ConfigError, match=r"`level` must be in \[0, 1\); got 1.5"):
        validate_fields(_Options(level=1.5))
    with pytest.raises(ConfigError, match="`count` must be"):
        validate_fields(_Options(count=0))


def test_run_config_checks_missing_rate_only_when_set():
    assert RunConfig().missing_rate is None and not RunConfig().random_missing
    assert RunConfig(missing_rate=0.0).validate().random_missing
    for bad in (1.5, 1.0, -0.1):
        with pytest.raises(ConfigError, match=r"`missing_rate` must be in \[0, 1\)"):
            RunConfig(missing_rate=bad).validate()


def test_check_option_missing_rate():
    assert check_option("missing_rate", None) is None
    assert check_option("missing_rate", "none") is None
    assert check_option("missing_rate", "0.3") == 0.3
    with pytest.raises(ConfigError, match=r"`missing_rate` must be in \[0, 1\); got 1.0"):
        check_option("missing_rate", "1")


@pytest.mark.parametrize("name, value", [("pair", "t:v"), ("p", 0.5)])
def test_check_protocol_refuses_pair_options_with_missing_rate(name, value):
    with pytest.raises(ConfigError, match=f"`{name}` cannot be combined with `missing_rate`"):
        check_protocol({"missing_rate": 0.3, name: value})
    with pytest.raises(ConfigError, match=f"`{name}` cannot be combined"):
        check_protocol({"missing_rate": 0.0, "frame_drop": 0.1, name: value})
    check_protocol({name: value})  # the pair protocol
    check_protocol({"missing_rate": None, name: value})


def test_check_protocol_accepts_the_random_missing_options():
    check_protocol({"missing_rate": 0.3, "frame_drop": 0.2, "drop_burst": 2.0, "seed": 1})


@pytest.mark.parametrize("off", ["none", ""])
def test_check_protocol_treats_an_off_missing_rate_as_off(off):
    check_protocol({"missing_rate": off, "pair": "t:v"})


def test_run_config_refuses_frame_drop_without_missing_rate_and_short_bursts():
    with pytest.raises(ConfigError, match="`frame_drop` needs the random-missing protocol"):
        RunConfig(frame_drop=0.2).validate()
    assert RunConfig(missing_rate=0.0, frame_drop=0.2).validate().frame_drop == 0.2
    with pytest.raises(ConfigError, match="`drop_burst` must be >= 1 step; got 0.5"):
        RunConfig(missing_rate=0.3, drop_burst=0.5).validate()
    with pytest.raises(ConfigError, match="`drop_burst` must be"):
        RunConfig(missing_rate=0.3, drop_burst=0.0).validate()
    assert RunConfig(missing_rate=0.3, drop_burst=1.0).validate().drop_burst == 1.0


def test_the_missing_rate_flag_parses():
    args = build_parser().parse_args(["run", "--missing-rate", "0.3", "--frame-drop", "0.2"])
    assert args.missing_rate == "0.3"  # raw: read and checked with the YAML and --set values
    config = config_from_args(args)
    assert (config.missing_rate, config.frame_drop, config.random_missing) == (0.3, 0.2, True)
    assert config_from_args(build_parser().parse_args(["run"])).missing_rate is None


def test_the_missing_rate_flag_is_documented(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--missing-rate FLOAT" in out and "(default: off)" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--missing-rate", "1.5"], r"`missing_rate` must be in [0, 1); got 1.5."),
        (["--missing-rate", "x"], "`missing_rate` must be a float; got 'x'."),
        (["--missing-rate", "0.3", "--pair", "t:v"], "`pair` cannot be combined with"),
        (["--missing-rate", "0.3", "--p", "0.5"], "`p` cannot be combined with"),
        (["--frame-drop", "0.2"], "`frame_drop` needs the random-missing protocol"),
        (["--missing-rate", "0.3", "--drop-burst", "0.5"], "`drop_burst` must be >= 1 step"),
    ],
)
def test_bad_missing_rate_options_exit_with_code_2(capsys, argv, message):
    assert main(["run", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmalign: error: ") and message in err


def test_the_missing_rate_flag_needs_a_value(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--missing-rate"])
    assert exit_info.value.code == 2
    assert "--missing-rate: expected one argument" in capsys.readouterr().err
