"""SQLite results store of experiment grids: one row per *finished* run, keyed by fingerprint.

Schema (table ``runs``, see ``docs/experiments.md``)::

    fingerprint TEXT PRIMARY KEY   -- RunSpec fingerprint (spec.py)
    data, data_id, method, source, victim, p, seed
    config TEXT                    -- canonical JSON of the resolved overrides
    config_hash TEXT
    result TEXT                    -- JSON {"A": {"valid": {...}, "test": {...}}, "B": ..., "meta"}
                                   -- or, random missing, {"random": ..., "test": {"overall",
                                   -- "patterns"}, "meta"}
    started_at, finished_at TEXT   -- ISO 8601, UTC
    wall_s REAL                    -- seconds the run took
    version TEXT                   -- mmalign version that wrote the row

A run of the random-missing protocol has no pair nor survival rate: its row has ``source =
victim = ""`` and ``p = 1.0`` (the columns are NOT NULL in stores written before it existed),
and its config holds ``missing_rate``.

A row is written in one transaction only when its run has finished, so a run killed
mid-way (even by SIGKILL) leaves no row and is simply run again. The database uses WAL
journaling and every operation retries on ``database is locked``, so several processes (pool
workers, Ray drivers, two ``mmalign benchmark`` commands) can share one file.
"""

from __future__ import annotations

import json
import math
import numbers
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, TypeVar

from mmalign import __version__
from mmalign.config import flatten
from mmalign.experiments.spec import RunSpec, canonical_json, config_hash, data_identity
from mmalign.validation import ConfigError, DataError, check_non_negative

__all__ = [
    "ResultStore",
    "WarnedRun",
    "SETTINGS",
    "OVERALL",
    "is_random_result",
    "validate_result",
]

#: Test settings every result of the pair protocol carries (glossary: setting A, setting B).
SETTINGS: tuple[str, ...] = ("A", "B")

#: The pattern name of a random-missing run's whole test split in :meth:`ResultStore.pattern_records`.
OVERALL = "overall"

# a random-missing row's pair and p (no pair, p does not apply)
_NO_MODALITY = ""
_NO_P = 1.0

_T = TypeVar("_T")


@dataclass(frozen=True)
class WarnedRun:
    """A stored run that recorded warnings (:meth:`ResultStore.warned_runs`).

    Attributes
    ----------
    spec : RunSpec
        The run; ``run_dir_for(out_dir, spec, fingerprint)`` is its folder.
    fingerprint : str
    codes : tuple of str
        One code per warning (``docs/warnings.md``); ``("uncoded",)`` for a run stored
        before warning codes were recorded.
    texts : tuple of str
        The warnings as the run logged them.
    """

    spec: RunSpec
    fingerprint: str
    codes: tuple[str, ...]
    texts: tuple[str, ...]


def _row_spec(row: dict[str, Any]) -> RunSpec:
    """Rebuild the :class:`RunSpec` of a stored row (the inverse of :meth:`ResultStore.put`)."""
    if is_random_result(row["result"]):  # undo the placeholders of the NOT NULL columns
        row = {**row, "source": None, "victim": None, "p": None}
    return RunSpec.from_dict(row)


_COLUMNS = (
    "fingerprint",
    "data",
    "data_id",
    "method",
    "source",
    "victim",
    "p",
    "seed",
    "config",
    "config_hash",
    "result",
    "started_at",
    "finished_at",
    "wall_s",
    "version",
)
_FILTERS = (
    "fingerprint",
    "data",
    "data_id",
    "method",
    "source",
    "victim",
    "p",
    "seed",
    "config_hash",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    fingerprint TEXT PRIMARY KEY,
    data        TEXT NOT NULL,
    data_id     TEXT NOT NULL,
    method      TEXT NOT NULL,
    source      TEXT NOT NULL,
    victim      TEXT NOT NULL,
    p           REAL NOT NULL,
    seed        INTEGER NOT NULL,
    config      TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    result      TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT NOT NULL,
    wall_s      REAL NOT NULL,
    version     TEXT NOT NULL
)
"""


def is_random_result(result: Any) -> bool:
    """Return whether ``result`` has the random-missing layout (a ``"random"`` block).

    >>> is_random_result({"random": {"test": {}}}), is_random_result({"A": {}, "B": {}})
    (True, False)
    """
    return isinstance(result, dict) and "random" in result


def validate_result(result: Any) -> dict:
    """Check that ``result`` has one of the two runner layouts and return it.

    The pair protocol's layout is ``{"A": {"valid": {metric: float}, "test": {metric: float},
    ...}, "B": {...}, "meta": {...}}``: each setting needs a ``test`` dict of numbers; its other
    dict entries (``valid``) must hold numbers too; non-dict entries (``best_epoch``) and
    other top-level keys (``meta``, ``floor``) are stored as they are.

    The random-missing layout (:func:`is_random_result`) is ``{"random": {"valid": {...},
    "test": {...}, "best_epoch": 7}, "test": {"overall": {"n": 300, metric: float}, "patterns":
    {"tv": {"n": 20, metric: float}, ...}}, "floor": ..., "meta": ...}``: ``random`` is
    checked like a setting, ``test.overall`` and every ``test.patterns`` entry must be dicts of
    numbers (NaN allowed).

    >>> block = {"test": {"mae": 1.0}, "best_epoch": 3}
    >>> validate_result({"A": block, "B": block})["B"]["best_epoch"]
    3
    >>> test = {"overall": {"n": 4, "mae": 1.0}, "patterns": {"tv": {"n": 4, "mae": 1.0}}}
    >>> sorted(validate_result({"random": block, "test": test}))
    ['random', 'test']

    Raises
    ------
    ConfigError
        A setting, the ``test`` split or a numeric metric is missing.
    """
    if not isinstance(result, dict):
        raise ConfigError(
            "`result` must be a dict with keys 'A' and 'B' (pair protocol) or 'random' and "
            f"'test' (random missing); got {result!r}."
        )
    if is_random_result(result):
        _check_setting(result, "random")
        _check_patterns(result.get("test"))
        return result
    for setting in SETTINGS:
        _check_setting(result, setting)
    return result


def _check_setting(result: dict, setting: str) -> None:
    """Check ``result[setting]``: a dict with a ``test`` dict, every dict entry of numbers."""
    block = result.get(setting)
    if not isinstance(block, dict) or not isinstance(block.get("test"), dict):
        raise ConfigError(
            f"`result[{setting!r}]` must be a dict with a 'test' dict of metrics; got {block!r}."
        )
    for split, metrics in block.items():
        if isinstance(metrics, dict):  # others are per-setting extras such as best_epoch
            _check_numbers(f"result[{setting!r}][{split!r}]", metrics)


def _check_patterns(test: Any) -> None:
    """Check a random-missing result's ``test``: ``overall`` and ``patterns`` of numbers."""
    if (
        not isinstance(test, dict)
        or not isinstance(test.get("overall"), dict)
        or not isinstance(test.get("patterns"), dict)
    ):
        raise ConfigError(
            "`result['test']` must be a dict with an 'overall' dict of metrics and a "
            f"'patterns' dict of them in the random-missing layout; got {test!r}."
        )
    _check_numbers("result['test']['overall']", test["overall"])
    for pattern, metrics in test["patterns"].items():
        where = f"result['test']['patterns'][{pattern!r}]"
        if not isinstance(pattern, str) or not pattern or not isinstance(metrics, dict):
            raise ConfigError(f"`{where}` must be a dict of metrics; got {metrics!r}.")
        _check_numbers(where, metrics)


def _check_numbers(where: str, metrics: dict) -> None:
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"`{where}[{name!r}]` must be a number; got {value!r}.")


def _non_default(config: dict) -> dict:
    """Return the options of ``config`` that change its resolved configuration.

    An option set to its default value, or an execution option (``device``, ``threads``),
    leaves :func:`~mmalign.experiments.spec.config_hash` as it is without it, so it is left
    out; a custom runner's keys are kept as given.
    """
    default = config_hash({})
    out = {}
    for key, value in sorted(config.items()):
        try:
            changes = config_hash({key: value}) != default
        except Exception:  # an override the current code no longer resolves: show it
            changes = True
        if changes:
            out[key] = value
    return out


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _is_locked(err: sqlite3.OperationalError) -> bool:
    text = str(err).lower()
    return "locked" in text or "busy" in text


class ResultStore:
    """A results store over one SQLite file (created with its folder on first use).

    Parameters
    ----------
    path : str or Path
        The SQLite file.
    timeout : float, default 60.0
        Seconds one operation keeps retrying while another process holds the write lock.

    Examples
    --------
    >>> import tempfile, os
    >>> store = ResultStore(os.path.join(tempfile.mkdtemp(), "runs.sqlite"))
    >>> spec = RunSpec("synthetic", "lb", "text", "vision", 0.5, 0)
    >>> store.has(spec.fingerprint())
    False
    >>> fp = store.put(spec, {"A": {"test": {"mae": 1.0}}, "B": {"test": {"mae": 0.9}}}, 2.5)
    >>> store.has(fp), len(store)
    (True, 1)
    """

    def __init__(self, path: str | Path, *, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout = check_non_negative("timeout", timeout)
        if self.path.exists() and self.path.is_dir():
            raise DataError(f"{self.path}: the results store must be a file, not a folder.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._retry(self._init_schema)

    # -- connection handling ------------------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # a fresh connection per operation: safe across fork/spawn and threads
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            yield conn
        finally:
            conn.close()

    def _retry(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``operation(conn)``, retrying with backoff while the database is locked."""
        deadline = time.monotonic() + self.timeout
        delay = 0.05
        while True:
            try:
                with self._connect() as conn:
                    return operation(conn)
            except sqlite3.OperationalError as err:
                if not _is_locked(err) or time.monotonic() > deadline:
                    raise DataError(f"{self.path}: results store error ({err}).") from err
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            except sqlite3.DatabaseError as err:
                raise DataError(f"{self.path}: not a results store ({err}).") from err

    @staticmethod
    def _init_schema(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(_SCHEMA)
        conn.execute("CREATE INDEX IF NOT EXISTS runs_method ON runs (method, source, victim)")

    # -- writing ------------------------------------------------------------------------------
    def put(
        self,
        spec: RunSpec,
        result: dict,
        wall_s: float,
        *,
        fingerprint: str | None = None,
        started_at: str | None = None,
    ) -> str:
        """Record a finished run in one transaction; return its fingerprint.

        Parameters
        ----------
        spec : RunSpec
            The run.
        result : dict
            The runner's result (checked with :func:`validate_result`).
        wall_s : float
            Seconds the run took.
        fingerprint : str, optional
            ``spec.fingerprint()`` if already known (saves re-hashing the data).
        started_at : str, optional
            ISO time the run started.

        Returns
        -------
        str
            The fingerprint the row is stored under (an existing row is replaced).
        """
        validate_result(result)
        if is_random_result(result) != (spec.protocol == "random"):
            layout = "random-missing" if is_random_result(result) else "pair"
            raise ConfigError(
                f"`result` must have the layout of the run's {spec.protocol} protocol "
                f"({spec.label}); got the {layout} layout."
            )
        check_non_negative("wall_s", wall_s)
        fingerprint = fingerprint or spec.fingerprint()
        row = (
            fingerprint,
            spec.data,
            data_identity(spec.data),
            spec.method,
            _NO_MODALITY if spec.source is None else spec.source,
            _NO_MODALITY if spec.victim is None else spec.victim,
            _NO_P if spec.p is None else float(spec.p),
            int(spec.seed),
            canonical_json(spec.config),
            config_hash(spec.config),
            json.dumps(result, sort_keys=True, default=float),
            started_at,
            _utc_now(),
            float(wall_s),
            __version__,
        )
        placeholders = ", ".join("?" * len(_COLUMNS))
        sql = f"INSERT OR REPLACE INTO runs ({', '.join(_COLUMNS)}) VALUES ({placeholders})"

        def write(conn: sqlite3.Connection) -> None:
            # BEGIN IMMEDIATE takes the write lock up front; the row appears whole or not at all
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(sql, row)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        self._retry(write)
        return fingerprint

    def delete(self, fingerprint: str) -> bool:
        """Remove one row (to force a re-run); return whether it existed."""

        def remove(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM runs WHERE fingerprint = ?", (fingerprint,)).rowcount

        return self._retry(remove) > 0

    # -- reading ------------------------------------------------------------------------------
    def has(self, fingerprint: str) -> bool:
        """Return whether a finished run with this fingerprint is stored."""

        def query(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("SELECT 1 FROM runs WHERE fingerprint = ?", (fingerprint,))
            return cur.fetchone() is not None

        return self._retry(query)

    def fingerprints(self) -> set[str]:
        """Return every stored fingerprint."""
        found = self._retry(lambda c: c.execute("SELECT fingerprint FROM runs").fetchall())
        return {row[0] for row in found}

    def __len__(self) -> int:
        return int(self._retry(lambda c: c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]))

    def configs(self, **filters: Any) -> list[dict[str, Any]]:
        """Return one summary per configuration (``config_hash``) in the store, oldest first.

        Parameters
        ----------
        **filters
            The filters of :meth:`rows` (``data="..."``).

        Returns
        -------
        list of dict
            ``{"config_hash", "data": [...], "methods": [...], "n_runs", "options": {...}}``:
            the data sets and methods in the order stored, and the options of the
            config that differ from the defaults (the overrides that change the resolved
            configuration; execution options such as ``device`` are left out).

        Examples
        --------
        >>> import tempfile, os
        >>> store = ResultStore(os.path.join(tempfile.mkdtemp(), "runs.sqlite"))
        >>> result = {"A": {"test": {"mae": 1.0}}, "B": {"test": {"mae": 1.0}}}
        >>> for method in ("lb", "mm-align"):
        ...     _ = store.put(RunSpec("synthetic", method, "text", "vision", 0.5, 0,
        ...                           {"epochs": 3, "device": "cpu"}), result, 1.0)
        >>> (summary,) = store.configs()
        >>> summary["methods"], summary["n_runs"], summary["options"]
        (['lb', 'mm-align'], 2, {'epochs': 3})
        """
        where, params = self._where(filters)
        if where is None:
            return []
        sql = f"SELECT config_hash, data, method, config FROM runs{where} ORDER BY rowid"
        raw = self._retry(lambda c: c.execute(sql, params).fetchall())
        summaries: dict[str, dict[str, Any]] = {}
        for digest, data, method, config in raw:
            summary = summaries.get(digest)
            if summary is None:
                summary = summaries[digest] = {
                    "config_hash": digest,
                    "data": [],
                    "methods": [],
                    "n_runs": 0,
                    "options": _non_default(json.loads(config)),
                }
            if data not in summary["data"]:
                summary["data"].append(data)
            if method not in summary["methods"]:
                summary["methods"].append(method)
            summary["n_runs"] += 1
        return list(summaries.values())

    def rows(self, **filters: Any) -> list[dict[str, Any]]:
        """Return stored runs as dicts (``config`` and ``result`` parsed), oldest first.

        Parameters
        ----------
        **filters
            Column equalities: ``method="mm-align"``; a list or tuple means "one of":
            ``fingerprint=[...]``, ``p=[0.1, 0.5]``. Columns: fingerprint, data, data_id,
            method, source, victim, p, seed, config_hash.

        Raises
        ------
        ConfigError
            An unknown filter column.
        """
        where, params = self._where(filters)
        if where is None:
            return []
        sql = f"SELECT {', '.join(_COLUMNS)} FROM runs{where} ORDER BY finished_at, fingerprint"
        raw = self._retry(lambda c: c.execute(sql, params).fetchall())
        rows = []
        for values in raw:
            row = dict(zip(_COLUMNS, values))
            row["config"] = json.loads(row["config"])
            row["result"] = json.loads(row["result"])
            rows.append(row)
        return rows

    @staticmethod
    def _where(filters: dict[str, Any]) -> tuple[str | None, list[Any]]:
        """Return the WHERE clause and parameters of ``filters`` (``None``: matches nothing)."""
        clauses: list[str] = []
        params: list[Any] = []
        for name, value in filters.items():
            if name not in _FILTERS:
                raise ConfigError(f"`filter` must be one of {list(_FILTERS)}; got {name!r}.")
            values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
            if not values:
                return None, []
            clauses.append(f"{name} IN ({', '.join('?' * len(values))})")
            params.extend(values)
        return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params

    def to_records(self, **filters: Any) -> list[dict[str, Any]]:
        """Return one flat record per (run, setting, split, metric), for tables and CSV.

        Each record has the keys ``fingerprint, data, data_id, method, source, victim, p, seed,
        config_hash, setting, split, metric, value``. Accepts the filters of :meth:`rows`.
        Runs of the random-missing protocol have no setting and give none
        (:meth:`pattern_records` holds them).
        """
        records = []
        for row in self.rows(**filters):
            base = {k: row[k] for k in _FILTERS}
            for setting in SETTINGS:
                for split, metrics in row["result"].get(setting, {}).items():
                    if not isinstance(metrics, dict):
                        continue
                    for metric, value in metrics.items():
                        records.append(
                            {
                                **base,
                                "setting": setting,
                                "split": split,
                                "metric": metric,
                                "value": float(value) if value is not None else math.nan,
                            }
                        )
        return records

    def warned_runs(
        self, fingerprints: Iterable[str] | None = None, **filters: Any
    ) -> tuple[int, list[WarnedRun]]:
        """Return the stored runs that recorded warnings, oldest first.

        ``fingerprints`` selects runs (matched here, not in SQL: a large grid would pass more
        parameters than SQLite takes); ``filters`` are those of :meth:`rows`.

        Returns
        -------
        n_runs : int
            Runs selected, with or without warnings.
        warned : list of WarnedRun
            Those of them that recorded at least one warning.

        Examples
        --------
        >>> import tempfile, os
        >>> store = ResultStore(os.path.join(tempfile.mkdtemp(), "runs.sqlite"))
        >>> block = {"test": {"mae": 1.0}}
        >>> for seed, codes in enumerate([["epoch_cap"], []]):
        ...     result = {"A": block, "B": block, "warning_codes": codes, "warnings": codes}
        ...     _ = store.put(RunSpec("synthetic", "lb", "text", "vision", 0.5, seed), result, 1.0)
        >>> n, warned = store.warned_runs()
        >>> n, [(w.spec.label, w.codes) for w in warned]
        (2, [('lb text->vision p=0.5 seed=0', ('epoch_cap',))])
        """
        rows = self.rows(**filters)
        if fingerprints is not None:
            wanted = set(fingerprints)
            rows = [r for r in rows if r["fingerprint"] in wanted]
        warned = []
        for row in rows:
            texts = tuple(row["result"].get("warnings") or ())
            codes = tuple(row["result"].get("warning_codes") or ())
            if texts or codes:
                spec = _row_spec(row)
                warned.append(WarnedRun(spec, row["fingerprint"], codes or ("uncoded",), texts))
        return len(rows), warned

    def warning_counts(
        self, fingerprints: Iterable[str] | None = None, **filters: Any
    ) -> tuple[int, dict[str, int]]:
        """Count the stored runs that recorded warnings, per warning code.

        Selection as in :meth:`warned_runs`. Runs stored before warning codes were recorded
        count their warnings under ``"uncoded"``.

        Returns
        -------
        n_runs : int
            Runs selected.
        counts : dict[str, int]
            Code (``docs/warnings.md``) -> number of runs that recorded it at least once,
            most frequent first.

        Examples
        --------
        >>> import tempfile, os
        >>> store = ResultStore(os.path.join(tempfile.mkdtemp(), "runs.sqlite"))
        >>> block = {"test": {"mae": 1.0}}
        >>> for seed, codes in enumerate([["epoch_cap"], ["epoch_cap", "below_floor"], []]):
        ...     result = {"A": block, "B": block, "warning_codes": codes, "warnings": codes}
        ...     _ = store.put(RunSpec("synthetic", "lb", "text", "vision", 0.5, seed), result, 1.0)
        >>> store.warning_counts()
        (3, {'epoch_cap': 2, 'below_floor': 1})
        """
        n_runs, warned = self.warned_runs(fingerprints, **filters)
        counts: dict[str, int] = {}
        for run in warned:
            for code in set(run.codes):
                counts[code] = counts.get(code, 0) + 1
        return n_runs, dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def floor_records(self, **filters: Any) -> list[dict[str, Any]]:
        """Return one flat record per (run, floor, split, metric) of the runs' sanity floors.

        A run's result may carry ``"floor": {"source_only": {"valid": {...}, "test": {...},
        "fit": {...}}, "pair_A": ..., "pair_B": ...}`` (``"both"`` instead of the pair floors
        for the upper bound; see ``mmalign.runs.execute``). Each record has the keys of
        :meth:`to_records` with ``floor`` (``"source_only"``, ``"pair_A"``, ``"pair_B"``,
        ``"both"``) in place of ``setting``. Runs without a floor, or whose floor failed
        (``{"error": ...}``), give no record, nor do runs of the random-missing protocol
        (:meth:`pattern_floor_records`). Accepts the filters of :meth:`rows`.

        Examples
        --------
        >>> import tempfile, os
        >>> store = ResultStore(os.path.join(tempfile.mkdtemp(), "runs.sqlite"))
        >>> block = {"test": {"mae": 1.0}}
        >>> floor = {"source_only": {"test": {"mae": 0.9}, "fit": {"alpha": 1.0}}}
        >>> _ = store.put(RunSpec("synthetic", "lb", "text", "vision", 0.5, 0),
        ...               {"A": block, "B": block, "floor": floor}, 1.0)
        >>> [(r["floor"], r["split"], r["metric"], r["value"]) for r in store.floor_records()]
        [('source_only', 'fit', 'alpha', 1.0), ('source_only', 'test', 'mae', 0.9)]
        """
        records = []
        for row in self.rows(**filters):
            floor = row["result"].get("floor")
            if not isinstance(floor, dict) or is_random_result(row["result"]):
                continue
            base = {k: row[k] for k in _FILTERS}
            for kind, block in floor.items():
                if not isinstance(block, dict):
                    continue  # "error": the message of a floor that could not be fitted
                for split, metrics in block.items():
                    if not isinstance(metrics, dict):
                        continue
                    for metric, value in metrics.items():
                        if value is not None and (
                            isinstance(value, bool) or not isinstance(value, numbers.Real)
                        ):
                            continue
                        records.append(
                            {
                                **base,
                                "floor": kind,
                                "split": split,
                                "metric": metric,
                                "value": float(value) if value is not None else math.nan,
                            }
                        )
        return records

    def pattern_records(self, **filters: Any) -> list[dict[str, Any]]:
        """Return one flat record per (random-missing run, test pattern, metric).

        A random-missing result holds ``"test": {"overall": {...}, "patterns": {"tv": {...},
        ...}}``: one record per metric of each pattern (the short names of the present
        modalities, ``"tv"``) and of the whole test split (pattern ``"overall"``), the sample
        count ``"n"`` included. Each record has the keys ``fingerprint, data, data_id, method,
        source, victim, p, seed, config_hash`` (``source = victim = ""``), ``missing_rate``,
        ``frame_drop`` (from the run's config), ``pattern, metric, value``. Runs of the pair
        protocol give none. Accepts the filters of :meth:`rows`.

        Examples
        --------
        >>> import tempfile, os
        >>> store = ResultStore(os.path.join(tempfile.mkdtemp(), "runs.sqlite"))
        >>> spec = RunSpec.random_missing("synthetic", "lb", 0, {"missing_rate": 0.3})
        >>> test = {"overall": {"n": 5, "mae": 1.0}, "patterns": {"t": {"n": 5, "mae": 1.0}}}
        >>> _ = store.put(spec, {"random": {"test": {"mae": 1.0}}, "test": test}, 1.0)
        >>> [(r["pattern"], r["metric"], r["value"]) for r in store.pattern_records()]
        [('overall', 'mae', 1.0), ('overall', 'n', 5.0), ('t', 'mae', 1.0), ('t', 'n', 5.0)]
        """
        records = []
        for row in self.rows(**filters):
            if not is_random_result(row["result"]):
                continue
            test = row["result"]["test"]
            blocks = {OVERALL: test["overall"], **test["patterns"]}
            records += _pattern_records(row, blocks)
        return records

    def pattern_floor_records(self, **filters: Any) -> list[dict[str, Any]]:
        """Return the random-missing runs' linear floors as :meth:`pattern_records` records.

        A random-missing result may carry ``"floor": {"random": {"test": {...}, "valid":
        {...}, "patterns": {"tv": {...}, ...}}}`` (a ridge floor on pooled features of the
        present modalities): its ``test`` metrics give pattern ``"overall"``, each
        ``patterns`` entry (when the runner stores them) its own pattern. A floor that failed
        (``{"error": ...}``) gives no record. Accepts the filters of :meth:`rows`.
        """
        records = []
        for row in self.rows(**filters):
            floor = row["result"].get("floor")
            if not is_random_result(row["result"]) or not isinstance(floor, dict):
                continue
            block = floor.get("random")
            if not isinstance(block, dict) or not isinstance(block.get("test"), dict):
                continue
            patterns = block.get("patterns")
            blocks = {OVERALL: block["test"], **(patterns if isinstance(patterns, dict) else {})}
            records += _pattern_records(row, blocks)
        return records

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows())

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"


def _pattern_records(row: dict[str, Any], blocks: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten ``{pattern: {metric: value}}`` of one stored run into records."""
    options = flatten(row["config"])
    base = {k: row[k] for k in _FILTERS}
    base["missing_rate"] = options.get("missing_rate")
    base["frame_drop"] = float(options.get("frame_drop") or 0.0)
    records = []
    for pattern, metrics in blocks.items():
        if not isinstance(metrics, dict):
            continue
        for metric, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, (numbers.Real, type(None))):
                continue
            records.append(
                {
                    **base,
                    "pattern": pattern,
                    "metric": metric,
                    "value": float(value) if value is not None else math.nan,
                }
            )
    return records
