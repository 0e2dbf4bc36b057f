"""Fake runners and helper entry points for the experiment-grid tests.

They live in a module (not in a test file) so that spawned pool workers and Ray tasks can
import them by name: a runner must be a picklable module-level function.
"""

import json
import os
import sys
import time
import uuid
from pathlib import Path

SEED_OFFSETS = [0.0, 0.02, -0.01, 0.03, 0.01]
METHOD_MAE = {"lb": 1.2, "ub": 0.9, "mfm": 1.1, "smil": 1.08, "modal-trans": 1.05, "mm-align": 1.0}


def fake_metrics(spec):
    """Deterministic metrics from (method, seed, p): mm-align is best, ub better still."""
    mae = METHOD_MAE.get(spec.method, 1.3) + SEED_OFFSETS[spec.seed % 5] - 0.1 * (spec.p - 0.1)
    return {"mae": round(mae, 6), "acc2_nonzero": round(1.5 - mae, 6)}


def _log_call(spec, run_dir):
    calls = spec.config.get("calls_dir")
    if calls:
        name = f"{spec.fingerprint()}-{uuid.uuid4().hex}"
        (Path(calls) / name).write_text(str(run_dir))
    pids = spec.config.get("pids_dir")
    if pids:
        (Path(pids) / f"{spec.fingerprint()}-{os.getpid()}").write_text(str(run_dir))


def _finish(run_dir, metrics):
    """Write metrics.json (as a real runner does) and return the same dict."""
    (Path(run_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def fake_runner(spec, run_dir, threads):
    """Return fake metrics at once; log the call; refuse a run folder left dirty."""
    _log_call(spec, run_dir)
    leftovers = sorted(p.name for p in Path(run_dir).iterdir() if p.name != "spec.json")
    if leftovers:
        raise RuntimeError(f"run folder not cleaned: {leftovers}")
    (Path(run_dir) / "partial.txt").write_text("started\n")
    time.sleep(float(spec.config.get("sleep", 0.0)))
    metrics = fake_metrics(spec)
    block = {"valid": metrics, "test": metrics}
    return _finish(run_dir, {"A": block, "B": block, "meta": {"pid": os.getpid()}})


PATTERNS = ("t", "v", "a", "tv", "ta", "va", "tva")


def fake_random_result(method, seed, *, missing=(), floor_mae=1.1):
    """A random-missing result: test MAE per pattern = method's MAE + seed offset + 0.1 per
    absent modality; 20 + seed test samples per pattern; ``missing`` patterns left out."""
    base = METHOD_MAE.get(method, 1.3) + SEED_OFFSETS[seed % 5]
    patterns = {}
    for pattern in PATTERNS:
        if pattern in missing:
            continue
        mae = round(base + 0.1 * (3 - len(pattern)), 6)
        patterns[pattern] = {"n": 20 + seed, "mae": mae, "acc2_nonzero": round(1.5 - mae, 6)}
    overall = {"n": 140 + 7 * seed, "mae": round(base, 6), "acc2_nonzero": round(1.5 - base, 6)}
    floor = {"test": {"mae": floor_mae, "acc2_nonzero": 0.6}, "valid": {"mae": 1.0}, "alpha": 1.0}
    return {
        "random": {"valid": {"mae": base}, "test": {"mae": base}, "best_epoch": 3},
        "test": {"overall": overall, "patterns": patterns},
        "floor": {"random": floor},
        "meta": {"protocol": "random", "modalities": ["text", "vision", "audio"]},
        "warnings": [],
    }


def fake_random_runner(spec, run_dir, threads):
    """A random-missing run: refuse a pair spec, return :func:`fake_random_result`."""
    if spec.config.get("missing_rate") is None or spec.source is not None:
        raise RuntimeError(f"not a random-missing spec: {spec}")
    _log_call(spec, run_dir)
    return _finish(run_dir, fake_random_result(spec.method, spec.seed))


def failing_runner(spec, run_dir, threads):
    """Fail on seed 1, succeed otherwise."""
    if spec.seed == 1:
        raise ValueError("boom on seed 1")
    return fake_runner(spec, run_dir, threads)


def malformed_runner(spec, run_dir, threads):
    """Return a result without setting B."""
    return {"A": {"test": {"mae": 1.0}}}


def thread_runner(spec, run_dir, threads):
    """Report the thread caps the worker runs under and the threads it was given."""
    import torch

    block = {"test": {"threads": float(torch.get_num_threads()), "given": float(threads)}}
    meta = {"omp": os.environ.get("OMP_NUM_THREADS"), "env": sorted(os.environ)}
    return _finish(run_dir, {"A": block, "B": block, "meta": meta})


def slow_runner(spec, run_dir, threads):
    """Seed 0 returns at once, every other seed sleeps for a minute (the interrupt test)."""
    if spec.seed == 0:
        return fake_runner(spec, run_dir, threads)
    _log_call(spec, run_dir)
    (Path(run_dir) / "partial.txt").write_text("started\n")
    time.sleep(60.0)
    return fake_runner(spec, run_dir, threads)


def count_calls(calls_dir):
    """Map fingerprint -> number of runner calls logged in ``calls_dir``."""
    counts = {}
    for path in Path(calls_dir).iterdir():
        fp = path.name.split("-", 1)[0]
        counts[fp] = counts.get(fp, 0) + 1
    return counts


def store_writer(store_path, offset, n):
    """Write ``n`` rows to the store (the concurrency test runs two of these at once)."""
    from mmalign.experiments import ResultStore, RunSpec

    store = ResultStore(store_path)
    for seed in range(offset, offset + n):
        spec = RunSpec("synthetic", "lb", "text", "vision", 0.5, seed)
        block = {"test": {"mae": float(seed)}}
        store.put(spec, {"A": block, "B": block}, 0.01)


def kill_me_grid(store_path, out_dir, calls_dir):
    """The grid the kill-and-resume test runs in a child process and SIGKILLs."""
    from mmalign.experiments import run_grid

    specs = grid_for_kill(calls_dir)
    run_grid(specs, store_path, runner=fake_runner, workers=1, out_dir=out_dir, progress=False)


def interrupt_me_grid(store_path, out_dir, pids_dir):
    """The grid the interrupt test runs in a child process and stops with SIGINT / SIGTERM.

    Like ``mmalign benchmark``: a KeyboardInterrupt prints 'interrupted' and exits 130.
    """
    from mmalign.experiments import expand_grid, run_grid

    config = {"pids_dir": str(pids_dir)}
    specs = expand_grid("synthetic:n_train=8", ["mm-align"], "t:v", [0.1], 4, config)
    try:
        run_grid(
            specs,
            store_path,
            runner=slow_runner,
            workers=2,
            threads_per_worker=1,
            out_dir=out_dir,
            progress=False,
        )
    except KeyboardInterrupt as err:
        print(f"interrupted ({type(err).__name__})", file=sys.stderr)
        sys.exit(130)
    sys.exit(0)


def grid_for_kill(calls_dir):
    """Four slow runs (one method, one pair, one p, seeds 0..3)."""
    from mmalign.experiments import expand_grid

    config = {"calls_dir": str(calls_dir), "sleep": 0.6}
    return expand_grid("synthetic:n_train=8", ["mm-align"], "t:v", [0.1], 4, config)


if __name__ == "__main__":
    sys.exit("import this module; do not run it")


def warning_runner(spec, run_dir, threads):
    """Like :func:`fake_runner`, and seed ``s`` records ``epoch_cap`` when even, ``below_floor``
    when divisible by 3 (seed 0: both)."""
    result = fake_runner(spec, run_dir, threads)
    codes = [
        c
        for c, hit in (("epoch_cap", spec.seed % 2 == 0), ("below_floor", spec.seed % 3 == 0))
        if hit
    ]
    return {**result, "warnings": [f"{c}: text" for c in codes], "warning_codes": codes}
