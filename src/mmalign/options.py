"""Options stated once: each option's help, default and constraint live on one dataclass field.

:func:`option` makes such a field. Everything else is generated from the fields: the
command-line flags of every command (:func:`add_field_flags`), ``--set key=value`` and the
YAML keys (:func:`coerce`), and validation (:func:`validate_fields`). The string formats that
options and grid flags use each have exactly one parser here: booleans (:func:`parse_bool`),
comma lists (:func:`parse_list`), seed lists (:func:`parse_seeds`), ``key=value`` items
(:func:`parse_assignments`) and ``source:victim`` pairs (:func:`split_pair`).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from mmalign.validation import (
    ConfigError,
    check_fraction,
    check_in,
    check_non_negative,
    check_positive,
    check_probability,
)

__all__ = [
    "CHECKS",
    "option",
    "field_default",
    "validate_fields",
    "coerce",
    "parse_bool",
    "parse_list",
    "parse_seeds",
    "parse_assignments",
    "split_pair",
    "add_field_flags",
]

#: Named constraints an option may carry (``option(..., check="positive")``).
CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "positive": check_positive,
    "non_negative": check_non_negative,
    "probability": check_probability,  # (0, 1]
    "fraction": check_fraction,  # [0, 1)
}


def _lower(text: str) -> str:
    return text.strip().lower()


def _method_name(text: str) -> str:
    return text.strip().lower().replace("_", "-")


#: Case and spelling rules for string options: ``MMSA`` is ``mmsa``, ``MM_Align`` is ``mm-align``.
NORMALISE: dict[str, Callable[[str], str]] = {"lower": _lower, "method": _method_name}


def option(
    default: Any,
    help: str,
    *,
    check: str | None = None,
    choices: Sequence[str] | None = None,
    normalise: str | None = None,
    execution: bool = False,
    kind: type | None = None,
) -> Any:
    """Make a dataclass field that carries its help text and constraint.

    Parameters
    ----------
    default : object
        The default (its type is the option's type).
    help : str
        One line for ``--help``.
    check : {"positive", "non_negative", "probability", "fraction"}, optional
        Constraint checked by :func:`validate_fields`.
    choices : sequence of str, optional
        Allowed values (after normalisation).
    normalise : {"lower", "method"}, optional
        Spelling rule applied when the value is read.
    execution : bool
        The option chooses where or how a run executes, not what it computes (device,
        threads, progress display): results stores leave it out of a run's fingerprint.
    kind : type, optional
        The type of an option whose default is ``None`` (off); ``None`` stays allowed.
    """
    if check is not None and check not in CHECKS:
        raise ConfigError(f"`check` must be one of {list(CHECKS)}; got {check!r}.")
    metadata = {
        "help": help,
        "check": check,
        "choices": tuple(choices) if choices else None,
        "normalise": normalise,
        "execution": execution,
        "kind": kind,
    }
    return dataclasses.field(default=default, metadata=metadata)


def field_default(f: dataclasses.Field) -> Any:
    """Return the default of a dataclass field (calling its factory), or ``dataclasses.MISSING``."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def validate_fields(obj: Any) -> None:
    """Check every field of dataclass instance ``obj`` against its declared constraint."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None and f.metadata.get("kind") is not None:
            continue  # an optional option that is off
        if f.metadata.get("choices"):
            check_in(f.name, value, f.metadata["choices"])
        if f.metadata.get("check"):
            CHECKS[f.metadata["check"]](f.name, value)


def parse_bool(name: str, value: Any) -> bool:
    """Read a boolean, the one reader for all of them (flags, YAML, ``--set``, synthetic knobs).

    >>> parse_bool("progress", "no"), parse_bool("progress", True)
    (False, True)
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"`{name}` must be true or false; got {value!r}.")


def coerce(f: dataclasses.Field, value: Any) -> Any:
    """Read ``value`` as the type of field ``f`` (from its default), normalised; or raise."""
    name, default = f.name, field_default(f)
    if default is None and f.metadata.get("kind") is not None:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
            return None
        default = f.metadata["kind"]()  # read the value as the option's type
    if isinstance(default, bool):
        return parse_bool(name, value)
    try:
        if isinstance(default, int):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if isinstance(default, tuple):
            return parse_list(name, value, type(default[0]) if default else str)
    except (TypeError, ValueError):
        kind = type(default).__name__
        raise ConfigError(f"`{name}` must be a {kind}; got {value!r}.") from None
    text = "" if value is None else str(value)
    rule = f.metadata.get("normalise")
    return NORMALISE[rule](text) if rule else text


def parse_list(name: str, value: Any, element: type = str) -> tuple:
    """Read a comma list, the one reader of them: ``"0.1, 0.5"`` -> ``(0.1, 0.5)``; lists pass through typed.

    >>> parse_list("ps", "0.1,0.5", float)
    (0.1, 0.5)
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        out = tuple(element(str(v).strip()) for v in items if str(v).strip())
    except ValueError:
        raise ConfigError(
            f"`{name}` must be a comma list of {element.__name__}; got {value!r}."
        ) from None
    if not out:
        raise ConfigError(f"`{name}` must name at least one value; got {value!r}.")
    return out


def parse_seeds(value: int | str | Iterable[int]) -> list[int]:
    """Split seeds: a count ``n`` means ``0..n-1``; a comma list is kept (deduplicated).

    >>> parse_seeds(3), parse_seeds("4,2,4"), parse_seeds([1])
    ([0, 1, 2], [4, 2], [1])
    """
    if isinstance(value, str) and "," not in value:
        value = parse_list("seeds", value, int)[0]
    if isinstance(value, bool):
        raise ConfigError(f"`seeds` must be a count or a list of seeds; got {value!r}.")
    if isinstance(value, int):
        if value < 1:
            raise ConfigError(f"`seeds` must be a count >= 1; got {value!r}.")
        return list(range(value))
    seeds = list(dict.fromkeys(parse_list("seeds", value, int)))
    if any(s < 0 for s in seeds):
        raise ConfigError(f"`seeds` must be integers >= 0; got {value!r}.")
    return seeds


def parse_assignments(name: str, items: str | Iterable[str]) -> dict[str, str]:
    """Read ``key=value`` items, the one reader of them (``--set`` items, synthetic knobs); values stay strings.

    >>> parse_assignments("data", "n_train=200, task=classification")
    {'n_train': '200', 'task': 'classification'}
    """
    parts = items.split(",") if isinstance(items, str) else list(items)
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in parts)):
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"`{name}` items must look like key=value; got {item!r}.")
        out[key.strip().replace("-", "_")] = text.strip()
    return out


def split_pair(text: str) -> tuple[str, str]:
    """Read a pair, the one reader of pairs: ``"t:v"``, ``"text->vision"`` or ``"t→v"`` -> ``(source, victim)``.

    >>> split_pair("t:v"), split_pair("audio -> text")
    (('t', 'v'), ('audio', 'text'))
    """
    parts = [p.strip() for p in re.split(r"->|:|→", str(text).strip())]
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"`pair` must look like 'source:victim' (e.g. 't:v'); got {text!r}.")
    if parts[0] == parts[1]:
        raise ConfigError(f"`pair` must join two different modalities; got {text!r}.")
    return parts[0], parts[1]


def add_field_flags(
    parser: argparse.ArgumentParser | Any,
    fields: Iterable[dataclasses.Field],
    dest_prefix: str = "",
) -> list[str]:
    """Add one ``--flag`` per field; return the names of fields that get no flag.

    Booleans get ``--x / --no-x``; int, float and str take their type from the default;
    tuples are comma lists. A flag not given leaves ``None`` in ``args.<dest_prefix><name>``,
    so callers can tell given options from defaults. Values are checked later, by the same
    :func:`coerce` and :func:`validate_fields` as YAML and ``--set``.
    """
    skipped = []
    for f in fields:
        default = field_default(f)
        kwargs: dict[str, Any] = {"dest": dest_prefix + f.name, "default": None}
        if default is None and f.metadata.get("kind") is not None:
            kwargs["metavar"] = f.metadata["kind"].__name__.upper()
            parser.add_argument(
                "--" + f.name.replace("_", "-"),
                help=f.metadata.get("help", "") + " (default: off)",
                **kwargs,
            )
            continue
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, (int, float, str)):
            kwargs["metavar"] = (
                f.metadata.get("choices") and "{" + ",".join(f.metadata["choices"]) + "}"
            ) or type(default).__name__.upper()
        elif isinstance(default, tuple):
            kwargs["metavar"] = "A,B,..."
            default = ",".join(map(str, default))
        else:
            skipped.append(f.name)
            continue
        shown = f" (default: {default})" if default != "" else ""
        parser.add_argument(
            "--" + f.name.replace("_", "-"), help=f.metadata.get("help", "") + shown, **kwargs
        )
    return skipped
