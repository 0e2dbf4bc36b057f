"""Live log and epoch history of a run folder: ``train.log`` and ``history.json``.

:class:`RunLog` writes both files while a run trains, not only when it ends: every log line
is appended and flushed at once (``tail -f train.log`` follows a run, and a crash keeps
everything written before it), and ``history.json`` is rewritten atomically after every
epoch, so it is always a complete, valid JSON list. ``--resume`` appends to both instead of
starting over.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from mmalign.data.checks import DataQualityWarning, DataWarning
from mmalign.validation import ConfigError, DataError

__all__ = ["RunLog", "LOG_NAME", "HISTORY_NAME"]

#: File names inside the run folder.
LOG_NAME = "train.log"
HISTORY_NAME = "history.json"


class RunLog:
    r"""Append-as-you-go ``train.log`` and per-epoch ``history.json`` of one run folder.

    Parameters
    ----------
    run_dir : Path
        The run folder (created when missing).
    echo : callable, optional
        Also receives every :meth:`line`, without the timestamp (e.g. ``print`` to stderr);
        ``None`` writes to the file only.
    resume : bool
        ``False`` (a fresh run): truncate ``train.log`` and reset ``history.json`` to ``[]``.
        ``True``: append to ``train.log`` after a ``--- resumed <iso time> ---`` line and
        continue the history already in ``history.json`` (empty when the file is missing).
    resume_epoch : int, optional
        Only with ``resume=True``: the last epoch the resumed training state holds (the
        epoch of ``resume.pt``). History records with ``epoch <= resume_epoch`` are kept and
        later ones, written after that state was saved, are dropped (they will be trained
        again). ``None`` keeps every record.

    Raises
    ------
    ConfigError
        ``resume_epoch`` without ``resume=True``, or not an integer >= 0.
    DataError
        On resume, a ``history.json`` that is not a JSON list of records with an ``epoch``.

    Notes
    -----
    In the file each line is prefixed with the wall-clock time ``[HH:MM:SS]``; a text with
    several lines gets one prefix per line. :meth:`epoch` keeps the history in memory and
    rewrites the whole file each time (a temporary file in ``run_dir``, then
    :func:`os.replace`), so a reader never sees a half-written ``history.json``. Use as a
    context manager, or call :meth:`close` when the run ends; after a crash without
    :meth:`close` both files still hold everything written so far.

    Examples
    --------
    >>> import json, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with RunLog(Path(folder), echo=print) as log:
    ...         log.line("epoch 1/1  loss 0.5")
    ...         log.epoch({"epoch": 1, "complete/main": 0.5, "valid_A": {"mae": 0.9}})
    ...     logged = (Path(folder) / "train.log").read_text()
    ...     history = json.loads((Path(folder) / "history.json").read_text())
    epoch 1/1  loss 0.5
    >>> logged[:1], logged.split("] ", 1)[1]
    ('[', 'epoch 1/1  loss 0.5\n')
    >>> history
    [{'epoch': 1, 'complete/main': 0.5, 'valid_A': {'mae': 0.9}}]
    """

    def __init__(
        self,
        run_dir: str | Path,
        *,
        echo: Callable[[str], None] | None = None,
        resume: bool = False,
        resume_epoch: int | None = None,
    ) -> None:
        if resume_epoch is not None:
            if not resume:
                raise ConfigError(
                    f"`resume_epoch` must be None unless resume=True; got {resume_epoch!r}."
                )
            if isinstance(resume_epoch, bool) or not isinstance(resume_epoch, int):
                raise ConfigError(f"`resume_epoch` must be an integer >= 0; got {resume_epoch!r}.")
            if resume_epoch < 0:
                raise ConfigError(f"`resume_epoch` must be an integer >= 0; got {resume_epoch!r}.")
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.run_dir / LOG_NAME
        self.history_path = self.run_dir / HISTORY_NAME
        self._echo = echo
        self._history: list[dict[str, Any]] = []
        if resume:
            self._history = _read_history(self.history_path, resume_epoch)
        # history.json first: a bad file raises before train.log is touched
        self._write_history()
        # kept open for the whole run (closed by close()): one flush per line
        self._file: TextIO | None = open(self.log_path, "a" if resume else "w", encoding="utf-8")
        if resume:
            stamp = datetime.now().astimezone().isoformat(timespec="seconds")
            self._write(f"--- resumed {stamp} ---\n")

    @property
    def history(self) -> list[dict[str, Any]]:
        """A copy of the epoch records so far, as ``history.json`` holds them."""
        return [dict(record) for record in self._history]

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._file is None

    def warn(self, found: "list[DataWarning]") -> None:
        """Log each data or training warning and raise it as a :class:`DataQualityWarning`."""
        for w in found:
            self.line(f"warning: {w.message}")
            warnings.warn(w.message, DataQualityWarning, stacklevel=3)

    def line(self, text: str) -> None:
        """Append ``text`` to ``train.log`` now (timestamped, flushed) and echo it.

        Parameters
        ----------
        text : str
            One log line (embedded newlines give several timestamped lines).

        Raises
        ------
        ConfigError
            The log is closed.
        """
        self._check_open()
        stamp = datetime.now().strftime("[%H:%M:%S]")
        parts = str(text).splitlines() or [""]
        self._write("".join(f"{stamp} {part}\n" for part in parts))
        if self._echo is not None:
            self._echo(text)

    def epoch(self, record: Mapping[str, Any]) -> None:
        """Append one epoch record to the history and rewrite ``history.json`` atomically.

        Parameters
        ----------
        record : dict
            JSON-able values: floats, ints, bools, strings and nested dicts or lists of
            those; other numbers (numpy or torch scalars) are stored with ``float``. Must
            hold the integer ``"epoch"`` (1-based) that ``resume_epoch`` filters on.

        Raises
        ------
        ConfigError
            The log is closed, the record has no integer ``epoch``, or a value cannot be
            stored as JSON (nothing is written then).
        """
        self._check_open()
        if not isinstance(record, Mapping) or not _has_epoch(record):
            raise ConfigError(f"`record` must be a dict with an integer 'epoch'; got {record!r}.")
        try:
            # the round trip stores exactly what the file holds (numpy floats -> float)
            stored = json.loads(json.dumps(record, default=float))
        except (TypeError, ValueError) as err:
            raise ConfigError(
                f"`record` must hold JSON-able values only; got {record!r} ({err})."
            ) from None
        self._history.append(stored)
        self._write_history()

    def close(self) -> None:
        """Close ``train.log`` (both files are complete already); calling again is a no-op."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RunLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._file is None:
            raise ConfigError(
                f"the run log of {self.run_dir} is closed; got a write after close()."
            )

    def _write(self, text: str) -> None:
        if self._file is None:
            return
        self._file.write(text)
        self._file.flush()

    def _write_history(self) -> None:
        text = json.dumps(self._history, indent=1, default=float) + "\n"
        handle, temp_name = tempfile.mkstemp(
            prefix=f".{HISTORY_NAME}.", suffix=".tmp", dir=self.run_dir
        )
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as temp:
                temp.write(text)
                temp.flush()
                os.fsync(temp.fileno())
            os.replace(temp_name, self.history_path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise


def _has_epoch(record: Mapping[str, Any]) -> bool:
    epoch = record.get("epoch")
    return isinstance(epoch, int) and not isinstance(epoch, bool)


def _read_history(path: Path, resume_epoch: int | None) -> list[dict[str, Any]]:
    """Return the records of ``path`` with ``epoch <= resume_epoch`` (all when ``None``)."""
    if not path.is_file():
        return []
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: cannot read the epoch history to resume ({err}).") from None
    if not isinstance(history, list) or not all(
        isinstance(r, dict) and _has_epoch(r) for r in history
    ):
        raise DataError(
            f"{path}: the epoch history must be a JSON list of records with an integer "
            "'epoch'; resume from a clean run folder or delete the file."
        )
    if resume_epoch is None:
        return history
    return [r for r in history if r["epoch"] <= resume_epoch]
