"""Execution engines of experiment grids: a local process pool, Ray, or in-process (serial).

Every engine follows one contract (``docs/experiments.md``):

- runs whose fingerprint is in the store are skipped, so a grid resumes where it stopped;
- each run gets its own folder under ``out_dir``, emptied before the run starts;
- the *driver* (this process) writes a run's row into the store when the run has finished,
  in one transaction, so a run killed mid-way leaves nothing behind that counts as done;
- an error in one run is printed, collected in :attr:`GridResult.failures`, and the grid goes
  on.

A *runner* is any picklable module-level callable ``runner(spec: RunSpec, run_dir: Path) ->
dict`` returning ``{"A": {"valid": {...}, "test": {...}}, "B": {...}, "meta": {...}}``; the
default is :func:`mmalign.train.run.run_spec`, imported when first needed.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import pickle
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mmalign.experiments.grid import prepare_run_dir, run_dir_for
from mmalign.experiments.progress import GridProgress
from mmalign.experiments.spec import RunSpec
from mmalign.experiments.store import ResultStore, validate_result
from mmalign.validation import ConfigError, MMAlignError, check_in, check_positive

__all__ = [
    "ENGINES",
    "Runner",
    "RunFailure",
    "GridResult",
    "available_cores",
    "default_runner",
    "execute_run",
    "run_grid",
]

#: Engine names accepted by :func:`run_grid`.
ENGINES: tuple[str, ...] = ("local", "ray", "serial")

Runner = Callable[[RunSpec, Path], dict]

# MMALIGN_THREADS: read by mmalign.train.run.run_spec when the config leaves threads at 0
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MMALIGN_THREADS",
)


@dataclass(frozen=True)
class RunFailure:
    """A run of the grid that raised (or returned a malformed result).

    Attributes
    ----------
    spec : RunSpec
    fingerprint : str
    error : str
        ``"ExceptionType: message"``.
    traceback : str
        The formatted traceback from the worker ('' when there is none).
    """

    spec: RunSpec
    fingerprint: str
    error: str
    traceback: str = ""


@dataclass(frozen=True)
class GridResult:
    """What :func:`run_grid` did.

    Attributes
    ----------
    fingerprints : tuple of str
        Every distinct run of the grid, in grid order (skipped ones included).
    n_skipped : int
        Runs the store already had.
    n_done : int
        Runs finished and stored by this call.
    failures : tuple of RunFailure
        Runs that failed; they are not in the store and run again next time.
    """

    fingerprints: tuple[str, ...]
    n_skipped: int
    n_done: int
    failures: tuple[RunFailure, ...] = field(default_factory=tuple)

    @property
    def n_total(self) -> int:
        """Number of distinct runs in the grid."""
        return len(self.fingerprints)

    @property
    def ok(self) -> bool:
        """Whether every run of the grid is now in the store."""
        return not self.failures


def available_cores() -> int:
    """Return the CPU cores this process may use (its affinity mask where known).

    >>> available_cores() >= 1
    True
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_runner() -> Runner:
    """Return :func:`mmalign.train.run.run_spec` (the training entry point).

    Raises
    ------
    ConfigError
        The training package is not available.
    """
    try:
        from mmalign.train.run import run_spec
    except ImportError as err:
        raise ConfigError(
            f"`runner` must be given: the training entry point mmalign.train.run.run_spec "
            f"cannot be imported ({err})."
        ) from err
    return run_spec


def _limit_threads(threads: int) -> None:
    """Cap BLAS/OpenMP/torch threads of this process (pool initializer, Ray task)."""
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(threads)
    try:
        import torch
    except ImportError:  # a runner that does not need torch
        return
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process (Ray reuses workers)
        pass


def execute_run(runner: Runner, spec: RunSpec, fingerprint: str, run_dir: str) -> dict[str, Any]:
    """Run one spec in a fresh run folder; never raise (errors come back as data).

    Parameters
    ----------
    runner : callable
        ``runner(spec, run_dir) -> result``.
    spec : RunSpec
    fingerprint : str
    run_dir : str
        The run's folder; emptied first.

    Returns
    -------
    dict
        ``{"ok": True, "result", "wall_s", "started_at"}`` or ``{"ok": False, "error",
        "traceback"}``. A successful result is also written to ``run_dir/result.json``.
    """
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    try:
        folder = prepare_run_dir(run_dir, spec, fingerprint)
        result = runner(spec, folder)
        validate_result(result)
        wall_s = time.perf_counter() - start
        text = json.dumps(result, indent=2, sort_keys=True, default=float)
        (folder / "result.json").write_text(text + "\n")
    except Exception as err:  # one failed run must not stop the grid
        return {
            "ok": False,
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(),
        }
    return {"ok": True, "result": result, "wall_s": wall_s, "started_at": started_at}


def _ray_task(
    runner: Runner, spec: RunSpec, fingerprint: str, run_dir: str, threads: int
) -> dict[str, Any]:
    _limit_threads(threads)
    return execute_run(runner, spec, fingerprint, run_dir)


class _Collector:
    """Driver-side bookkeeping: store finished runs, collect failures, drive the display."""

    def __init__(self, store: ResultStore, progress: GridProgress) -> None:
        self.store = store
        self.progress = progress
        self.n_done = 0
        self.failures: list[RunFailure] = []

    def finish(self, spec: RunSpec, fingerprint: str, outcome: dict[str, Any]) -> None:
        if outcome.get("ok"):
            try:
                self.store.put(
                    spec,
                    outcome["result"],
                    outcome["wall_s"],
                    fingerprint=fingerprint,
                    started_at=outcome.get("started_at"),
                )
            except MMAlignError as err:
                outcome = {"ok": False, "error": f"{type(err).__name__}: {err}", "traceback": ""}
            else:
                self.n_done += 1
                self.progress.finished(ok=True)
                return
        failure = RunFailure(spec, fingerprint, outcome["error"], outcome.get("traceback", ""))
        self.failures.append(failure)
        self.progress.finished(ok=False)
        self.progress.write(f"mmalign: run failed: {spec.label} [{fingerprint}]: {failure.error}")


def _resolve_workers(
    n_pending: int, workers: int | None, threads_per_worker: int | None
) -> tuple[int, int]:
    cores = available_cores()
    if workers is not None:
        check_positive("workers", workers)
    if threads_per_worker is not None:
        check_positive("threads_per_worker", threads_per_worker)
    if workers is None:
        workers = max(1, cores // (threads_per_worker or 1))
        workers = max(1, min(workers, n_pending))
    if threads_per_worker is None:
        threads_per_worker = max(1, cores // workers)
    if workers * threads_per_worker > cores:
        warnings.warn(
            f"workers x threads_per_worker = {workers} x {threads_per_worker} exceeds the "
            f"{cores} available cores: runs will compete for them.",
            stacklevel=3,
        )
    return int(workers), int(threads_per_worker)


def _run_serial(items, runner, collector, threads) -> None:
    for spec, fingerprint, run_dir in items:
        collector.progress.started()
        collector.finish(spec, fingerprint, execute_run(runner, spec, fingerprint, run_dir))


def _run_local(items, runner, collector, workers, threads) -> None:
    # spawn: no fork of a process that may hold torch threads or an open SQLite handle
    context = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_limit_threads, initargs=(threads,)
    )
    try:
        futures = {
            pool.submit(execute_run, runner, spec, fp, run_dir): (spec, fp)
            for spec, fp, run_dir in items
        }
        collector.progress.started(min(workers, len(futures)))
        unstarted = len(futures) - min(workers, len(futures))
        for future in cf.as_completed(futures):
            spec, fingerprint = futures[future]
            try:
                outcome = future.result()
            except Exception as err:  # the worker died (killed, out of memory) or unpicklable
                outcome = {"ok": False, "error": f"{type(err).__name__}: {err}", "traceback": ""}
            collector.finish(spec, fingerprint, outcome)
            if unstarted:
                unstarted -= 1
                collector.progress.started()
    except BaseException:  # Ctrl-C included: drop the queued runs, leave the store consistent
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _import_ray():
    try:
        import ray
    except ImportError as err:
        raise ConfigError(
            "`engine` 'ray' needs the optional Ray extra (pip install 'mmalign[ray]'); "
            f"got an environment without ray ({err})."
        ) from err
    return ray


def _run_ray(items, runner, collector, workers, threads, address) -> None:
    ray = _import_ray()
    started_here = False
    if not ray.is_initialized():
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers * threads, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ConfigError(
                f"`address` must name a reachable Ray cluster; got {address!r} ({err})."
            ) from err
        started_here = True
    try:
        task = ray.remote(num_cpus=threads, max_retries=0)(_ray_task)
        refs = {
            task.remote(runner, spec, fp, run_dir, threads): (spec, fp)
            for spec, fp, run_dir in items
        }
        cluster_cpus = int(ray.cluster_resources().get("CPU", workers * threads))
        slots = max(1, cluster_cpus // threads)
        collector.progress.started(min(slots, len(refs)))
        unstarted = len(refs) - min(slots, len(refs))
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                spec, fingerprint = refs.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as err:  # the task's worker died
                    outcome = {"ok": False, "error": f"{type(err).__name__}: {err}"}
                collector.finish(spec, fingerprint, outcome)
                if unstarted:
                    unstarted -= 1
                    collector.progress.started()
    finally:
        if started_here:
            ray.shutdown()


def run_grid(
    specs: Sequence[RunSpec],
    store: ResultStore | str | Path,
    runner: Runner | None = None,
    engine: str = "local",
    workers: int | None = None,
    threads_per_worker: int | None = None,
    address: str | None = None,
    out_dir: str | Path = "runs/grid",
    *,
    progress: bool = True,
) -> GridResult:
    """Run every spec not yet in the store and record the results there.

    Parameters
    ----------
    specs : sequence of RunSpec
        The grid (duplicates by fingerprint run once).
    store : ResultStore or path
        The results store; finished runs are skipped.
    runner : callable, optional
        A picklable module-level ``runner(spec, run_dir) -> result``; default
        :func:`mmalign.train.run.run_spec`.
    engine : {"local", "ray", "serial"}, default "local"
        ``local``: a process pool (spawn) on this machine; ``ray``: tasks on a Ray cluster
        (``address="auto"``) or on a local Ray started with ``workers x threads`` CPUs;
        ``serial``: one run after the other in this process (debugging).
    workers : int, optional
        Concurrent runs. Default: available cores // threads_per_worker, at most the runs
        pending.
    threads_per_worker : int, optional
        Torch / OpenMP / MKL threads of each run. Default: cores // workers (at least 1), so
        that workers x threads <= cores.
    address : str, optional
        Ray cluster address (``"auto"`` for the cluster this machine belongs to).
    out_dir : str or Path, default "runs/grid"
        The grid folder; each run writes into its own sub-folder (:func:`run_dir_for`).
        With Ray on a cluster it must be on a file system every node shares.
    progress : bool, default True
        Show a progress bar on stderr.

    Returns
    -------
    GridResult
        Fingerprints of the grid, counts and failures.

    Raises
    ------
    ConfigError
        Unknown engine, bad worker counts, an unpicklable runner, Ray missing or unreachable.
    """
    check_in("engine", engine, ENGINES)
    runner = default_runner() if runner is None else runner
    if not callable(runner):
        raise ConfigError(f"`runner` must be callable; got {runner!r}.")
    if engine != "serial":
        try:
            pickle.dumps(runner)
        except Exception as err:
            raise ConfigError(
                f"`runner` must be a picklable module-level function for engine {engine!r}; "
                f"got {runner!r} ({err})."
            ) from err
    if not isinstance(store, ResultStore):
        store = ResultStore(store)
    out_dir = Path(out_dir)

    unique: dict[str, RunSpec] = {}
    for spec in specs:
        if not isinstance(spec, RunSpec):
            raise ConfigError(f"`specs` must hold RunSpec objects; got {spec!r}.")
        unique.setdefault(spec.fingerprint(), spec)
    finished = store.fingerprints()
    items = [
        (spec, fp, str(run_dir_for(out_dir, spec, fp)))
        for fp, spec in unique.items()
        if fp not in finished
    ]
    n_skipped = len(unique) - len(items)
    if engine == "serial" or not items:
        n_workers, threads = 1, threads_per_worker or 1
    else:
        n_workers, threads = _resolve_workers(len(items), workers, threads_per_worker)
    bar = GridProgress(len(items), skipped=n_skipped, workers=n_workers, disable=not progress)
    collector = _Collector(store, bar)
    try:
        if items and engine == "serial":
            _run_serial(items, runner, collector, threads)
        elif items and engine == "local":
            _run_local(items, runner, collector, n_workers, threads)
        elif items:
            _run_ray(items, runner, collector, n_workers, threads, address)
    finally:
        bar.close()
    if collector.failures:
        print(
            f"mmalign: {len(collector.failures)} of {len(items)} runs failed; "
            "run the same command again to retry them.",
            file=sys.stderr,
        )
    return GridResult(
        fingerprints=tuple(unique),
        n_skipped=n_skipped,
        n_done=collector.n_done,
        failures=tuple(collector.failures),
    )
