"""Argument and data validation helpers with one message format.

Every public entry point validates its input with these helpers and ``raise`` (never
``assert``). Messages follow ``"`{name}` must be {constraint}; got {value!r}."``.
Errors about a data file derive from :class:`DataError` and name the file; the command
line turns any :class:`MMAlignError` into one line on stderr and exit code 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "MMAlignError",
    "DataError",
    "ConfigError",
    "ConvergenceWarning",
    "check_positive",
    "check_non_negative",
    "check_in",
    "check_probability",
    "check_fraction",
    "check_shape",
]


class MMAlignError(Exception):
    """Base class of every error that mmalign reports to a user as one clear line."""


class DataError(MMAlignError, ValueError):
    """A data file is missing, unreadable, unsafe or inconsistent.

    The message names the file and the problem.
    """


class ConfigError(MMAlignError, ValueError):
    """A configuration value or command-line option is invalid."""


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped at ``max_iter`` before reaching ``tol``."""


def check_positive(name: str, value: Any) -> Any:
    """Raise ``ConfigError`` unless ``value`` is a number > 0.

    >>> check_positive("reg", 0.1)
    0.1
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"`{name}` must be a number > 0; got {value!r}.")
    return value


def check_non_negative(name: str, value: Any) -> Any:
    """Raise ``ConfigError`` unless ``value`` is a number >= 0.

    >>> check_non_negative("window", 0)
    0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigError(f"`{name}` must be a number >= 0; got {value!r}.")
    return value


def check_probability(name: str, value: Any, *, open_low: bool = True) -> float:
    """Raise ``ConfigError`` unless ``value`` lies in (0, 1] (or [0, 1] with ``open_low=False``).

    >>> check_probability("p", 0.5)
    0.5
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (0 < value <= 1 if open_low else 0 <= value <= 1)
    if not ok:
        interval = "(0, 1]" if open_low else "[0, 1]"
        raise ConfigError(f"`{name}` must be in {interval}; got {value!r}.")
    return float(value)


def check_fraction(name: str, value: Any) -> float:
    """Raise ``ConfigError`` unless ``value`` lies in [0, 1) (a decay or a drop share).

    >>> check_fraction("smil_decay", 0.9)
    0.9
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1
    if not ok:
        raise ConfigError(f"`{name}` must be in [0, 1); got {value!r}.")
    return float(value)


def check_in(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Raise ``ConfigError`` unless ``value`` is one of ``choices``; the message lists them.

    >>> check_in("task", "regression", ["regression", "classification"])
    'regression'
    """
    choices = list(choices)
    if value not in choices:
        raise ConfigError(f"`{name}` must be one of {choices}; got {value!r}.")
    return value


def check_shape(name: str, shape: Sequence[int], expected: Sequence[int | None]) -> None:
    """Raise ``ConfigError`` unless ``shape`` matches ``expected`` (``None`` = any size).

    >>> check_shape("x", (2, 3), (None, 3))
    """
    shape = tuple(shape)
    ok = len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))
    if not ok:
        pretty = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise ConfigError(f"`{name}` must have shape {pretty}; got {shape!r}.")
