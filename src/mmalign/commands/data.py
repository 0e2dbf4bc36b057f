"""``mmalign data describe PATH`` and ``mmalign data synth --out PATH [knobs]``.

The synth flags are built from the fields of ``SyntheticConfig`` (``n_train`` ->
``--n-train``, the type taken from the default, tuples as comma lists, the help from the
field's ``metadata["help"]``), so new generator knobs appear here without edits. The
written folder holds the ground-truth alignment spans too (``span_<a>_<b>``, see
``docs/data.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from typing import Any

from mmalign.commands.option_flags import DATA_OPTIONS, add_config_flags

__all__ = ["register", "run_describe", "run_synth"]

_SYNTH_PREFIX = "synth__"


def run_describe(args: argparse.Namespace) -> int:
    """Load ``args.path`` and print :func:`~mmalign.data.describe.describe`."""
    from mmalign.config import config_from_dict
    from mmalign.data.describe import budget_note, describe, synthetic_budget
    from mmalign.runs import load_data

    given = {n: getattr(args, n) for n in DATA_OPTIONS[1:] if getattr(args, n) is not None}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = load_data(config_from_dict({**given, "data": args.path}))
    for warning in caught:
        print(f"mmalign: warning: {warning.message}", file=sys.stderr)
    budget = synthetic_budget(args.path, given.get("task"))
    note = budget_note(args.path)
    print(describe(dataset, budget=budget, notes=[note] if note else []))
    return 0


def run_synth(args: argparse.Namespace) -> int:
    """Generate a synthetic dataset with the given knobs and write it in the native format."""
    from mmalign.data.formats.native import save_native
    from mmalign.data.synthetic import SyntheticConfig, make_synthetic
    from mmalign.options import coerce

    fields = {f.name: f for f in dataclasses.fields(SyntheticConfig)}
    given = {
        name: coerce(fields[name], getattr(args, _SYNTH_PREFIX + name))
        for name in fields
        if getattr(args, _SYNTH_PREFIX + name, None) is not None
    }
    config = SyntheticConfig(**given).validate()
    dataset = make_synthetic(config)
    folder = save_native(dataset, args.out)
    sizes = ", ".join(f"{s} {len(split)}" for s, split in dataset.splits.items())
    pairs = len(dataset.splits["train"].spans)
    print(
        f"wrote synthetic dataset ({sizes}; modalities {list(dataset.modalities)}; "
        f"truth spans of {pairs} modality pairs) to {folder}"
    )
    return 0


def _help(parser: argparse.ArgumentParser) -> Any:
    def show(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return show


def register(subparsers: Any) -> None:
    """Add ``data describe`` and ``data synth`` to the ``mmalign`` parser."""
    data = subparsers.add_parser(
        "data", help="inspect data files and make synthetic data", allow_abbrev=False
    )
    data.set_defaults(func=_help(data))
    actions = data.add_subparsers(dest="data_command", metavar="ACTION")

    describe = actions.add_parser(
        "describe",
        help="load a data file or folder and summarise it",
        description="Load PATH (any supported format, see docs/data.md) and print per-split "
        "sample counts, feature widths, lengths, label statistics, cleaning counts and the "
        "missingness already in the file (zero-length and all-zero sequences, runs of >= 3 "
        "all-zero steps inside a sequence).",
        allow_abbrev=False,
    )
    describe.add_argument(
        "path", metavar="PATH", help="data file or folder, or 'synthetic[:knob=value,...]'"
    )
    add_config_flags(describe, DATA_OPTIONS[1:])
    describe.set_defaults(func=run_describe)

    synth = actions.add_parser(
        "synth",
        help="write a synthetic dataset in the native format",
        description="Generate a synthetic dataset and save it as a native folder.",
        allow_abbrev=False,
    )
    synth.add_argument("--out", required=True, metavar="PATH", help="output folder")
    from mmalign.data.synthetic import SyntheticConfig
    from mmalign.options import add_field_flags

    add_field_flags(synth, dataclasses.fields(SyntheticConfig), _SYNTH_PREFIX)
    synth.set_defaults(func=run_synth)
