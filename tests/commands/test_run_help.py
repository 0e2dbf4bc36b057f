import re

import pytest

from mmalign.cli import main
from mmalign.config import flat_fields


def test_every_config_option_has_help_text():
    missing = [name for name, (_, f) in flat_fields().items() if not f.metadata.get("help")]
    assert missing == []


def test_run_help_shows_every_option_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    flags = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", text))
    for name, (_, f) in flat_fields().items():
        flag = "--" + name.replace("_", "-")
        assert flag in flags, flag
        if isinstance(f.default, bool):  # booleans are --x / --no-x
            assert "--no-" + flag[2:] in flags, flag


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--alignment-states", "3"],
            "`alignment_states` applies to the monotone solver; got alignment_states=3 with "
            "alignment_solver='sinkhorn' (add --alignment-solver monotone).",
        ),
        (["--alignment-solver", "monotone", "--alignment-states", "0"], "`alignment_states`"),
    ],
)
def test_bad_alignment_states_exit_with_code_2(capsys, argv, message):
    assert main(["run", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmalign: error: ") and message in err


@pytest.mark.parametrize(
    "flag, value", [("emission_update", "em"), ("emission_covariance", "full")]
)
def test_emission_options_need_the_emission_space(capsys, flag, value):
    assert main(["run", f"--{flag.replace('_', '-')}", value]) == 2
    err = capsys.readouterr().err
    assert (
        f"`{flag}` applies to the emission space; got {flag}={value!r} with "
        "alignment_space='projected' (add --alignment-space emission)." in err
    )
