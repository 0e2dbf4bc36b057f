"""The command line behaves the same way everywhere: no abbreviations, one spelling per flag kind."""

import argparse
import subprocess
import sys

import pytest

from mmalign.cli import build_parser, main


def _parsers(parser, path="mmalign"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_no_parser_accepts_abbreviations():
    offenders = [path for path, p in _parsers(build_parser()) if p.allow_abbrev]
    assert not offenders


def test_an_abbreviated_flag_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "--data", "synthetic", "--pair", "t:v"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --pair" in capsys.readouterr().err


def test_boolean_options_are_flags_with_a_negation_everywhere():
    bad = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if action.dest in ("progress", "trust_pickle") and not isinstance(
                action, argparse.BooleanOptionalAction
            ):
                bad.append(f"{path} {action.option_strings}")
    assert not bad


def test_choices_ignore_case(tmp_path):
    from mmalign.config import config_from_dict

    config = config_from_dict({"format": "MMSA", "method": "MM_Align", "task": "Regression"})
    assert (config.format, config.method, config.task) == ("mmsa", "mm-align", "regression")


def test_the_cli_starts_without_torch():
    code = (
        "import sys; from mmalign.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'matplotlib', 'scipy', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_threads_default_to_one():
    from mmalign.config import RunConfig
    from mmalign.runs import resolve_threads

    assert RunConfig().threads == 0 and resolve_threads(0) == 1 and resolve_threads(3) == 3
