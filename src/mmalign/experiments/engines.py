"""Execution engines of experiment grids: a local process pool, Ray, or in-process (serial).

Every engine follows one contract (``docs/experiments.md``):

- runs whose fingerprint is in the store are skipped, so a grid resumes where it stopped;
- each run gets its own folder under ``out_dir``, emptied before the run starts;
- the *driver* (this process) writes a run's row into the store when the run has finished,
  in one transaction, so a run killed mid-way leaves nothing behind that counts as done;
- an error in one run is printed, collected in :attr:`GridResult.failures`, and the grid goes
  on;
- Ctrl-C (SIGINT) or SIGTERM to the driver stops the workers at once, removes the folders of
  the runs that were in flight (they are not in the store) and re-raises
  :class:`KeyboardInterrupt` (:class:`GridInterrupted` for SIGTERM); runs finished before
  stay in the store.

A *runner* is any picklable module-level callable ``runner(spec: RunSpec, run_dir: Path,
threads: int) -> dict``: it runs ``spec`` with at most ``threads`` torch / OpenMP threads,
writes its metrics to ``run_dir/metrics.json`` and returns the same dict, ``{"A": {"valid":
{...}, "test": {...}}, "B": {...}, "meta": {...}}``, which the driver records in the store.
The default is :func:`mmalign.runs.run_spec`, imported when first needed.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mmalign.experiments.grid import prepare_run_dir, run_dir_for
from mmalign.experiments.progress import GridProgress
from mmalign.experiments.spec import RunSpec
from mmalign.experiments.store import ResultStore, validate_result
from mmalign.runs.device import available_cores
from mmalign.validation import ConfigError, MMAlignError, check_in, check_positive

__all__ = [
    "ENGINES",
    "Runner",
    "RunFailure",
    "GridResult",
    "GridInterrupted",
    "default_runner",
    "execute_run",
    "run_grid",
]

#: Engine names accepted by :func:`run_grid`.
ENGINES: tuple[str, ...] = ("local", "ray", "serial")

#: ``runner(spec, run_dir, threads) -> metrics`` (see the module docstring).
Runner = Callable[[RunSpec, Path, int], dict]

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

# seconds a terminated worker gets to exit before it is killed
_TERMINATE_GRACE_S = 3.0


class GridInterrupted(KeyboardInterrupt):
    """Raised in the driver of :func:`run_grid` when it receives SIGTERM.

    A :class:`KeyboardInterrupt`, so code that handles Ctrl-C handles it too.

    Attributes
    ----------
    signum : int
        The signal received.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"received signal {signal.Signals(signum).name}")
        self.signum = signum


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


def default_runner() -> Runner:
    """Return :func:`mmalign.runs.run_spec` (the training entry point of a grid run).

    Raises
    ------
    ConfigError
        The runs package is not available.
    """
    try:
        from mmalign.runs import run_spec
    except ImportError as err:
        raise ConfigError(
            f"`runner` must be given: the training entry point mmalign.runs.run_spec "
            f"cannot be imported ({err})."
        ) from err
    return run_spec


def _limit_threads(threads: int) -> None:
    """Cap BLAS/OpenMP/torch threads of this process (pool worker, Ray task)."""
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


def _init_worker(threads: int) -> None:
    """Pool initializer: cap threads; leave Ctrl-C to the driver, which stops the workers.

    A Ctrl-C at a terminal reaches every process of the foreground group; a worker that
    raised KeyboardInterrupt mid-run would report it as the run's outcome and take the next
    queued run. Ignoring SIGINT here leaves one place in charge: the driver terminates its
    workers (SIGTERM) and cleans up after them.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_threads(threads)


def execute_run(
    runner: Runner, spec: RunSpec, fingerprint: str, run_dir: str, threads: int = 1
) -> dict[str, Any]:
    """Run one spec in a fresh run folder; never raise an Exception (errors come back as data).

    Parameters
    ----------
    runner : callable
        ``runner(spec, run_dir, threads) -> metrics``; it writes ``run_dir/metrics.json``.
    spec : RunSpec
    fingerprint : str
    run_dir : str
        The run's folder; emptied first.
    threads : int, default 1
        Threads the run may use, passed on to the runner.

    Returns
    -------
    dict
        ``{"ok": True, "result", "wall_s", "started_at"}`` or ``{"ok": False, "error",
        "traceback"}``.
    """
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    try:
        folder = prepare_run_dir(run_dir, spec, fingerprint)
        result = runner(spec, folder, int(threads))
        validate_result(result)
        wall_s = time.perf_counter() - start
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
    return execute_run(runner, spec, fingerprint, run_dir, threads)


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
                self.progress.finished(ok=True, wall_s=outcome["wall_s"])
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


@contextmanager
def _terminate_raises() -> Iterator[None]:
    """While inside: SIGTERM raises :class:`GridInterrupted` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise GridInterrupted(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


@contextmanager
def _signals_held() -> Iterator[None]:
    """While inside: ignore SIGINT and SIGTERM, so a second Ctrl-C cannot cut the clean-up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def _remove_unfinished(store: ResultStore, items: Iterable[tuple[str, str]]) -> None:
    """Remove the run folders of ``(fingerprint, run_dir)`` items the store does not hold."""
    try:
        stored = store.fingerprints()
    except MMAlignError:  # keep a folder rather than remove a recorded run's
        return
    for fingerprint, run_dir in items:
        if fingerprint not in stored:
            shutil.rmtree(run_dir, ignore_errors=True)


def _run_serial(items, runner, collector, threads) -> None:
    for spec, fingerprint, run_dir in items:
        collector.progress.started()
        try:
            outcome = execute_run(runner, spec, fingerprint, run_dir, threads)
        except BaseException:  # Ctrl-C / SIGTERM mid-run: its folder is partial
            with _signals_held():
                _remove_unfinished(collector.store, [(fingerprint, run_dir)])
            raise
        collector.finish(spec, fingerprint, outcome)


def _stop_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Terminate the pool's workers now (a running run included), then shut the pool down."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.terminate()
    # the pool's manager thread sees the workers gone, fails the pending futures and closes
    # the queues (their semaphores included); shutdown joins it
    pool.shutdown(wait=True, cancel_futures=True)
    deadline = time.monotonic() + _TERMINATE_GRACE_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():  # a runner that ignores SIGTERM
            process.kill()
            process.join(1.0)


def _run_local(items, runner, collector, workers, threads) -> None:
    # spawn: no fork of a process that may hold torch threads or an open SQLite handle
    context = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(threads,)
    )
    pending: dict[cf.Future, tuple[RunSpec, str, str]] = {}
    try:
        for spec, fp, run_dir in items:
            future = pool.submit(execute_run, runner, spec, fp, run_dir, threads)
            pending[future] = (spec, fp, run_dir)
        collector.progress.started(min(workers, len(pending)))
        unstarted = len(pending) - min(workers, len(pending))
        for future in cf.as_completed(list(pending)):
            spec, fingerprint, _ = pending[future]
            try:
                outcome = future.result()
            except Exception as err:  # the worker died (killed, out of memory) or unpicklable
                outcome = {"ok": False, "error": f"{type(err).__name__}: {err}", "traceback": ""}
            collector.finish(spec, fingerprint, outcome)
            del pending[future]
            if unstarted:
                unstarted -= 1
                collector.progress.started()
    except BaseException:  # Ctrl-C, SIGTERM or a driver error: stop the workers, clean up
        with _signals_held():
            _stop_pool(pool)
            _remove_unfinished(collector.store, [(fp, d) for _, fp, d in pending.values()])
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
                spec, fingerprint = refs[ref]
                try:
                    outcome = ray.get(ref)
                except Exception as err:  # the task's worker died
                    outcome = {"ok": False, "error": f"{type(err).__name__}: {err}"}
                collector.finish(spec, fingerprint, outcome)
                del refs[ref]
                if unstarted:
                    unstarted -= 1
                    collector.progress.started()
    except BaseException:  # Ctrl-C / SIGTERM: kill the running tasks, drop the queued ones
        with _signals_held():
            for ref in refs:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # already finished or its worker is gone
                    pass
        raise
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
        A picklable module-level ``runner(spec, run_dir, threads) -> metrics`` that writes
        ``run_dir/metrics.json`` and returns its content; default
        :func:`mmalign.runs.run_spec`.
    engine : {"local", "ray", "serial"}, default "local"
        ``local``: a process pool (spawn) on this machine; ``ray``: tasks on a Ray cluster
        (``address="auto"``) or on a local Ray started with ``workers x threads`` CPUs;
        ``serial``: one run after the other in this process (debugging).
    workers : int, optional
        Concurrent runs. Default: available cores // threads_per_worker, at most the runs
        pending.
    threads_per_worker : int, optional
        Torch / OpenMP / MKL threads of each run, passed to the runner and capped in each
        worker process. Default: cores // workers (at least 1), so that workers x threads <=
        cores; with ``engine="serial"``: every available core.
    address : str, optional
        Ray cluster address (``"auto"`` for the cluster this machine belongs to).
    out_dir : str or Path, default "runs/grid"
        The grid folder; each run writes into its own sub-folder (:func:`run_dir_for`).
        With Ray on a cluster it must be on a file system every node shares.
    progress : bool, default True
        Show a progress bar on stderr. Two lines go to stderr either way: the plan (runs to
        execute, runs already stored, workers x threads) and, once the first run has
        finished, its time and an estimate of the time left.

    Returns
    -------
    GridResult
        Fingerprints of the grid, counts and failures.

    Raises
    ------
    ConfigError
        Unknown engine, bad worker counts, an unpicklable runner, Ray missing or unreachable.
    KeyboardInterrupt
        Ctrl-C (SIGINT), or :class:`GridInterrupted` for SIGTERM (handled while the grid runs
        in the main thread): the workers were stopped, the folders of the runs in flight
        removed; the runs finished before are in the store.
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
        if threads_per_worker is not None:
            check_positive("threads_per_worker", threads_per_worker)
        n_workers, threads = 1, int(threads_per_worker or available_cores())
    else:
        n_workers, threads = _resolve_workers(len(items), workers, threads_per_worker)
    bar = GridProgress(len(items), skipped=n_skipped, workers=n_workers, disable=not progress)
    if items:
        bar.write(
            f"mmalign grid: {len(items)} runs to execute, {n_skipped} already in the store; "
            f"{engine} engine, workers x threads = {n_workers} x {threads}"
        )
    else:
        bar.write(f"mmalign grid: nothing to execute, all {n_skipped} runs are in the store")
    collector = _Collector(store, bar)
    try:
        with _terminate_raises():
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
