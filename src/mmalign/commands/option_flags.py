"""Command-line flags generated from the option table (:mod:`mmalign.config`).

Every command that takes run options (``run`` all of them; ``predict``, ``data describe``
and the analyses the data options) builds its flags here, so an option's flag, help text,
default and constraint are those of its one field in the table.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["DATA_OPTIONS", "add_config_flags", "given_options", "config_from_args"]

#: The options that say which data to load and how (shared by every command that reads data).
DATA_OPTIONS = ("data", "format", "trust_pickle", "task", "label_key")


def add_config_flags(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    """Add ``--flag`` for each option in ``names`` (default: every option, plus ``--config``).

    Flags not given parse to ``None``, so :func:`given_options` can tell them from defaults.
    """
    from mmalign.config import SECTION_TITLES, flat_fields
    from mmalign.options import add_field_flags

    fields = flat_fields()
    if names is None:
        parser.add_argument(
            "--config", metavar="FILE.yaml", help="YAML options (flags given here override it)"
        )
        names = list(fields)
    chosen = [n for n in names if n in fields]
    if "method" in chosen:  # the registry knows the methods; the option table does not
        from mmalign.models.registry import method_names

        parser.epilog = f"methods: {', '.join(method_names())}"
    for section, title in SECTION_TITLES.items():
        members = [fields[n][1] for n in chosen if fields[n][0] == section]
        if members:
            add_field_flags(parser.add_argument_group(title), members)


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """Return the options given on the command line (flat names -> raw values)."""
    from mmalign.config import flat_fields

    return {n: getattr(args, n) for n in flat_fields() if getattr(args, n, None) is not None}


def config_from_args(args: argparse.Namespace):
    """Defaults (or a resumed run's config), then ``--config``, then the flags given.

    Options given as flags that do not apply to the chosen method are refused (e.g.
    ``--window`` with ``--method lb``).
    """
    from mmalign.config import (
        RunConfig,
        apply_overrides,
        check_protocol,
        load_run_config,
        load_yaml_options,
    )
    from mmalign.models.registry import check_options_apply
    from mmalign.validation import ConfigError

    resume = getattr(args, "resume", None)
    if resume and not (Path(resume) / "config.yaml").is_file():
        raise ConfigError(f"`--resume` must name a run folder; {resume!r} has no config.yaml.")
    config = load_run_config(Path(resume) / "config.yaml") if resume else RunConfig()
    from_file = load_yaml_options(args.config) if getattr(args, "config", None) else {}
    config = apply_overrides(config, from_file)
    given = given_options(args)
    check_protocol({**from_file, **given})
    config = apply_overrides(config, given).validate()
    check_options_apply(config.method, given)
    return config
