"""``mmalign data describe PATH`` and ``mmalign data synth --out PATH [knobs]``.

The synth flags are built from the fields of ``SyntheticConfig`` (``n_train`` ->
``--n-train``, the type taken from the default, tuples as comma lists, the help from the
field's ``metadata["help"]``), so new generator knobs appear here without edits.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from typing import Any

from mmalign.validation import ConfigError

__all__ = ["register", "run_describe", "run_synth", "add_dataclass_flags", "parse_comma_list"]

_SYNTH_PREFIX = "synth__"


def parse_comma_list(text: str, element: type) -> tuple:
    """Parse ``"a,b"`` into a tuple of ``element``.

    >>> parse_comma_list("1, 2,3", int)
    (1, 2, 3)
    """
    try:
        return tuple(element(part.strip()) for part in text.split(",") if part.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a comma list of {element.__name__}") from err


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def add_dataclass_flags(parser: argparse.ArgumentParser, cls: type, prefix: str) -> list[str]:
    """Add one ``--flag`` per field of dataclass ``cls``; return the skipped field names.

    Booleans get ``--x/--no-x``; int, float and str take their type from the default; tuples
    are comma lists typed by their first element; other fields (dicts, ``None`` defaults,
    no default) are skipped. Parsed values land in ``args.<prefix><field>`` (``None`` when
    the flag is not given).
    """
    skipped = []
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        default = _field_default(field)
        flag = "--" + field.name.replace("_", "-")
        text = field.metadata.get("help", "")
        options: dict[str, Any] = {"dest": prefix + field.name, "default": None}
        if isinstance(default, bool):
            options["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, (int, float, str)):
            kind = type(default)
            annotation = (
                field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
            )
            if kind is int and annotation == "float":
                kind = float  # `x: float = 1` must still accept 0.5
            options["type"] = kind
            options["metavar"] = kind.__name__.upper()
        elif isinstance(default, tuple):
            element = type(default[0]) if default else str
            options["type"] = lambda s, e=element: parse_comma_list(s, e)
            options["metavar"] = "A,B,..."
            default = ",".join(map(str, default))
        else:
            skipped.append(field.name)
            continue
        parser.add_argument(flag, help=f"{text} (default: {default})".strip(), **options)
    return skipped


def run_describe(args: argparse.Namespace) -> int:
    """Load ``args.path`` and print :func:`~mmalign.data.describe.describe`."""
    from mmalign.data.describe import describe
    from mmalign.train.run import load_run_data

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # load_run_data also knows "synthetic[:knob=value,...]"
        dataset = load_run_data(args.path, args.format or "", args.trust_pickle)
    for warning in caught:
        print(f"mmalign: warning: {warning.message}", file=sys.stderr)
    print(describe(dataset))
    return 0


def run_synth(args: argparse.Namespace) -> int:
    """Generate a synthetic dataset with the given knobs and write it in the native format."""
    try:
        from mmalign.data.synthetic import SyntheticConfig, make_synthetic
    except ImportError as err:
        raise ConfigError(f"the synthetic generator is not available: {err}.") from err
    from mmalign.data.formats.native import save_native

    given = {
        key[len(_SYNTH_PREFIX) :]: value
        for key, value in vars(args).items()
        if key.startswith(_SYNTH_PREFIX) and value is not None
    }
    try:
        config = SyntheticConfig(**given)
    except TypeError as err:
        raise ConfigError(f"bad synthetic option: {err}.") from err
    dataset = make_synthetic(config)
    folder = save_native(dataset, args.out)
    sizes = ", ".join(f"{s} {len(split)}" for s, split in dataset.splits.items())
    print(f"wrote synthetic dataset ({sizes}; modalities {list(dataset.modalities)}) to {folder}")
    return 0


def _help(parser: argparse.ArgumentParser) -> Any:
    def show(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return show


def register(subparsers: Any) -> None:
    """Add ``data describe`` and ``data synth`` to the ``mmalign`` parser."""
    data = subparsers.add_parser("data", help="inspect data files and make synthetic data")
    data.set_defaults(func=_help(data))
    actions = data.add_subparsers(dest="data_command", metavar="ACTION")

    describe = actions.add_parser(
        "describe",
        help="load a data file or folder and summarise it",
        description="Load PATH (any supported format, see docs/data.md) and print per-split "
        "sample counts, feature widths, lengths, label statistics and cleaning counts.",
    )
    describe.add_argument(
        "path", metavar="PATH", help="data file or folder, or 'synthetic[:knob=value,...]'"
    )
    describe.add_argument(
        "--format",
        default=None,
        help="format name (detected when omitted): native, mmsa, mult, misa, meld, csd",
    )
    describe.add_argument(
        "--trust-pickle",
        action="store_true",
        help="unpickle without restrictions (runs code in the file: only for files you trust)",
    )
    describe.set_defaults(func=run_describe)

    synth = actions.add_parser(
        "synth",
        help="write a synthetic dataset in the native format",
        description="Generate a synthetic dataset and save it as a native folder.",
    )
    synth.add_argument("--out", required=True, metavar="PATH", help="output folder")
    try:
        from mmalign.data.synthetic import SyntheticConfig
    except ImportError:
        SyntheticConfig = None  # noqa: N806 - not written yet; run_synth reports it
    if SyntheticConfig is not None:
        add_dataclass_flags(synth, SyntheticConfig, _SYNTH_PREFIX)
    synth.set_defaults(func=run_synth)
