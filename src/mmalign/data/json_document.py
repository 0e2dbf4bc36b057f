"""Small JSON documents that say what they are: a ``format`` name and a ``version``.

The one reader of them (missing splits, missingness draws), so every such file fails the same
way: a :class:`~mmalign.validation.DataError` naming the file and what is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmalign.validation import DataError

__all__ = ["write_document", "read_document"]


def write_document(path: str | Path, body: dict[str, Any], indent: int | None = None) -> Path:
    """Write ``body`` (which holds its ``format`` and ``version``) as JSON; return the path."""
    path = Path(path)
    path.write_text(json.dumps(body, indent=indent) + "\n", encoding="utf-8")
    return path


def read_document(path: str | Path, fmt: str, version: int, what: str) -> dict[str, Any]:
    """Read a JSON document of format ``fmt`` and version ``version``.

    Parameters
    ----------
    path : path
    fmt : str
        The ``format`` the document must name.
    version : int
    what : str
        What it holds, for messages (``"missing split"``).

    Raises
    ------
    DataError
        The file cannot be read or parsed, or has another format or version.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: cannot read the {what} ({err}).") from None
    if not isinstance(raw, dict) or raw.get("format") != fmt:
        raise DataError(f"{path}: not a {what} file (format {fmt!r}).")
    if raw.get("version") != version:
        raise DataError(f"{path}: unsupported version {raw.get('version')!r}; need {version}.")
    return raw
