import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import pytest
from grid_fakes import (
    count_calls,
    failing_runner,
    fake_metrics,
    fake_runner,
    grid_for_kill,
    malformed_runner,
    thread_runner,
)

from mmalign.experiments.engines import GridInterrupted, available_cores, execute_run, run_grid
from mmalign.experiments.grid import expand_grid, run_dir_for
from mmalign.experiments.store import ResultStore
from mmalign.validation import ConfigError

HERE = Path(__file__).resolve().parent


def small_grid(calls_dir, seeds=2, **config):
    config = {"calls_dir": str(calls_dir), **config}
    return expand_grid("synthetic:n_train=8", "lb,ub,mm-align", "t:v", [0.1, 0.5], seeds, config)


def test_serial_runs_then_skips(tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    specs = small_grid(calls)  # (2 methods x 2 p + ub) x 2 seeds = 10
    store = ResultStore(tmp_path / "runs.sqlite")
    first = run_grid(
        specs, store, fake_runner, engine="serial", out_dir=tmp_path / "g", progress=False
    )
    assert (first.n_total, first.n_skipped, first.n_done, first.ok) == (10, 0, 10, True)
    assert sum(count_calls(calls).values()) == 10
    row = store.rows(method="mm-align", p=0.5, seed=1)[0]
    spec = next(s for s in specs if (s.method, s.p, s.seed) == ("mm-align", 0.5, 1))
    assert row["result"]["A"]["test"] == fake_metrics(spec)
    run_dir = run_dir_for(tmp_path / "g", spec, spec.fingerprint())
    # the runner writes metrics.json; the engine adds no copy of it
    assert json.loads((run_dir / "metrics.json").read_text()) == row["result"]
    assert sorted(p.name for p in run_dir.iterdir()) == ["metrics.json", "partial.txt", "spec.json"]
    # the same grid plus two more seeds: only the new runs execute
    again = run_grid(
        small_grid(calls, seeds=3) + specs,
        store,
        fake_runner,
        engine="serial",
        out_dir=tmp_path / "g",
        progress=False,
    )
    assert (again.n_total, again.n_skipped, again.n_done) == (15, 10, 5)
    assert set(count_calls(calls).values()) == {1}


def test_errors_are_isolated(tmp_path, capsys):
    calls = tmp_path / "calls"
    calls.mkdir()
    specs = small_grid(calls)
    store = ResultStore(tmp_path / "runs.sqlite")
    result = run_grid(
        specs, store, failing_runner, engine="serial", out_dir=tmp_path / "g", progress=False
    )
    assert result.n_done == 5 and len(result.failures) == 5 and not result.ok
    assert all(f.spec.seed == 1 for f in result.failures)
    assert "ValueError: boom on seed 1" in result.failures[0].error
    assert "Traceback" in result.failures[0].traceback
    assert {r["seed"] for r in store.rows()} == {0}
    err = capsys.readouterr().err
    assert "run failed" in err and "boom on seed 1" in err and "5 of 10 runs failed" in err


def test_malformed_result_is_a_failure(tmp_path):
    specs = small_grid(tmp_path, seeds=1)[:1]
    store = ResultStore(tmp_path / "runs.sqlite")
    result = run_grid(
        specs, store, malformed_runner, engine="serial", out_dir=tmp_path / "g", progress=False
    )
    assert len(result.failures) == 1 and "result['B']" in result.failures[0].error
    assert len(store) == 0


def test_bad_arguments(tmp_path):
    specs = small_grid(tmp_path, seeds=1)
    with pytest.raises(ConfigError, match=r"`engine` must be one of \['local', 'ray', 'serial'\]"):
        run_grid(specs, tmp_path / "s.sqlite", fake_runner, engine="dask")
    with pytest.raises(ConfigError, match="`runner` must be a picklable module-level function"):
        run_grid(specs, tmp_path / "s.sqlite", lambda spec, run_dir, threads: {}, engine="local")
    with pytest.raises(ConfigError, match="`workers` must be a number > 0"):
        run_grid(specs, tmp_path / "s.sqlite", fake_runner, workers=0)


def test_local_pool_caps_threads(tmp_path):
    specs = small_grid(tmp_path, seeds=1)[:2]
    store = ResultStore(tmp_path / "runs.sqlite")
    with pytest.warns(UserWarning, match="exceeds") if available_cores() < 2 else nullcontext():
        result = run_grid(
            specs,
            store,
            thread_runner,
            engine="local",
            workers=2,
            threads_per_worker=1,
            out_dir=tmp_path / "g",
            progress=False,
        )
    assert result.ok and result.n_done == 2
    for row in store.rows():
        assert row["result"]["A"]["test"]["threads"] == 1.0
        assert row["result"]["A"]["test"]["given"] == 1.0  # passed to the runner
        assert row["result"]["meta"]["omp"] == "1"
        assert "MMALIGN_THREADS" not in row["result"]["meta"]["env"]


def test_sigkill_then_resume(tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    store_path, out_dir = tmp_path / "runs.sqlite", tmp_path / "grid"
    specs = grid_for_kill(calls)
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); import grid_fakes; "
        f"grid_fakes.kill_me_grid({str(store_path)!r}, {str(out_dir)!r}, {str(calls)!r})"
    )
    child = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            if store_path.exists() and len(ResultStore(store_path)) >= 1:
                break
            time.sleep(0.05)
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the driver and its pool workers
        child.wait(30)
    store = ResultStore(store_path)
    finished = store.fingerprints()
    assert 1 <= len(finished) < len(specs), "the kill must land mid-grid"
    for row in store.rows():  # only complete rows
        spec = next(s for s in specs if s.fingerprint() == row["fingerprint"])
        assert row["result"]["A"]["test"] == fake_metrics(spec)
    before = count_calls(calls)
    result = run_grid(
        specs, store, fake_runner, engine="local", workers=1, out_dir=out_dir, progress=False
    )
    assert result.ok and result.n_skipped == len(finished)
    assert result.n_done == len(specs) - len(finished) and len(store) == len(specs)
    after = count_calls(calls)
    for fp in finished:  # finished runs were not re-run
        assert after[fp] == before[fp] == 1
    assert all(after[s.fingerprint()] >= 1 for s in specs)
    for spec in specs:  # the interrupted run's folder was cleaned: fake_runner checks it
        run_dir = run_dir_for(out_dir, spec, spec.fingerprint())
        assert sorted(p.name for p in run_dir.iterdir()) == [
            "metrics.json",
            "partial.txt",
            "spec.json",
        ]


def test_plan_and_estimate_lines_without_bar(tmp_path, capsys):
    specs = small_grid(tmp_path, seeds=1)  # 5 runs
    store = ResultStore(tmp_path / "runs.sqlite")
    run_grid(specs[:2], store, fake_runner, engine="serial", out_dir=tmp_path / "g", progress=False)
    capsys.readouterr()
    run_grid(
        specs,
        store,
        fake_runner,
        engine="serial",
        threads_per_worker=2,
        out_dir=tmp_path / "g",
        progress=False,
    )
    err = capsys.readouterr().err
    assert "mmalign grid: 3 runs to execute, 2 already in the store; serial engine, " in err
    assert "workers x threads = 1 x 2" in err
    assert re.search(
        r"first run took [\d.]+ s; estimated [\d.]+ s for the 2 left with 1 workers", err
    )
    run_grid(specs, store, fake_runner, engine="serial", out_dir=tmp_path / "g", progress=False)
    assert "nothing to execute, all 5 runs are in the store" in capsys.readouterr().err


def test_execute_run_passes_threads(tmp_path):
    spec = small_grid(tmp_path, seeds=1)[0]
    outcome = execute_run(thread_runner, spec, "fp", str(tmp_path / "run"), 3)
    assert outcome["ok"] and outcome["result"]["A"]["test"]["given"] == 3.0


def test_serial_interrupt_removes_the_partial_run(tmp_path, monkeypatch):
    specs = grid_for_kill(tmp_path)[:2]
    store = ResultStore(tmp_path / "runs.sqlite")

    def interrupted(spec, run_dir, threads):
        if spec.seed == 1:
            (run_dir / "checkpoint.pt").write_text("half")
            raise KeyboardInterrupt
        return fake_runner(spec, run_dir, threads)

    with pytest.raises(KeyboardInterrupt):
        run_grid(specs, store, interrupted, engine="serial", out_dir=tmp_path / "g", progress=False)
    done, cut = (run_dir_for(tmp_path / "g", s, s.fingerprint()) for s in specs)
    assert store.fingerprints() == {specs[0].fingerprint()} and done.is_dir()
    assert not cut.exists()


def test_sigterm_handler_is_restored(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    specs = grid_for_kill(tmp_path)[:1]

    def terminated(spec, run_dir, threads):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts the sleep
        raise AssertionError("SIGTERM did not interrupt the run")

    with pytest.raises(GridInterrupted, match="SIGTERM"):
        run_grid(
            specs,
            tmp_path / "s.sqlite",
            terminated,
            engine="serial",
            progress=False,
            out_dir=tmp_path / "g",
        )
    assert signal.getsignal(signal.SIGTERM) == before
    assert not run_dir_for(tmp_path / "g", specs[0], specs[0].fingerprint()).exists()


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_interrupt_stops_workers_and_cleans_up(tmp_path, how):
    pids_dir = tmp_path / "pids"
    pids_dir.mkdir()
    store_path, out_dir = tmp_path / "runs.sqlite", tmp_path / "grid"
    # a job started in the background by a non-interactive shell (a CI script, `cmd &`)
    # inherits SIGINT ignored, and Python keeps it so: give the driver Ctrl-C's default
    # handler, as in a terminal, or the SIGINT below is never seen
    code = (
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        f"import sys; sys.path.insert(0, {str(HERE)!r}); import grid_fakes; "
        f"grid_fakes.interrupt_me_grid({str(store_path)!r}, {str(out_dir)!r}, {str(pids_dir)!r})"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # wait for: seed 0 stored, seeds 1 and 2 sleeping in the two workers
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            if len(list(pids_dir.iterdir())) >= 3 and len(ResultStore(store_path)) >= 1:
                break
            time.sleep(0.05)
        assert child.poll() is None, child.communicate()[1]
        workers = {int(p.name.rsplit("-", 1)[1]) for p in pids_dir.iterdir()}
        assert len(workers) == 2 and child.pid not in workers
        time.sleep(0.2)  # both slow runs are in their sleep
        sent = time.monotonic()
        os.kill(child.pid, getattr(signal, how))  # the driver only, as `kill -INT PID` does
        # stderr reaches EOF once every process holding it (workers, resource tracker) is gone
        # a hang guard, not a timing: on a loaded 2-core machine the workers (torch imports)
        # took over 10 s to wind down once, so the bounds are generous
        try:
            _, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # say who still holds stderr: the next fix needs it
            listing = subprocess.run(
                ["ps", "-o", "pid,ppid,stat,etime,args", "-s", str(child.pid)],
                capture_output=True,
                text=True,
            ).stdout
            pytest.fail(
                f"the grid did not wind down within 60 s of {how}; driver exit code "
                f"{child.poll()!r}; processes of its session:\n{listing}"
            )
        took = time.monotonic() - sent
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)
    assert took < 30, f"exit took {took:.1f} s"
    assert child.returncode == 130, err
    assert "interrupted" in err and "leaked semaphore" not in err and "Traceback" not in err, err
    assert not [pid for pid in workers if _alive(pid)]
    (row,) = ResultStore(store_path).rows()  # the run finished before the interrupt stays
    assert row["seed"] == 0
    # no partial folder: only the stored run's folder is left
    folders = [p.name for p in out_dir.glob("*/*/*")]
    assert folders == [f"p0.1_seed0_{row['fingerprint']}"]


@pytest.mark.ray
def test_ray_engine_local_cluster(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    # Ray's workers inherit the driver's environment: let them import grid_fakes
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    calls = tmp_path / "calls"
    calls.mkdir()
    specs = small_grid(calls, seeds=1)[:4]
    store = ResultStore(tmp_path / "runs.sqlite")
    result = run_grid(
        specs,
        store,
        failing_runner,
        engine="ray",
        workers=2,
        threads_per_worker=1,
        out_dir=tmp_path / "g",
        progress=False,
    )
    assert result.ok and result.n_done == 4 and len(store) == 4
    spec = specs[0]
    assert store.rows(fingerprint=spec.fingerprint())[0]["result"]["B"]["test"] == fake_metrics(
        spec
    )


def test_ray_missing_is_a_clear_config_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    specs = small_grid(tmp_path, seeds=1)[:1]
    with pytest.raises(ConfigError, match=r"pip install 'mmalign\[ray\]'"):
        run_grid(specs, tmp_path / "s.sqlite", fake_runner, engine="ray", progress=False)
