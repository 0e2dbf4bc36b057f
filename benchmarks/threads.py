"""Torch thread count vs time per MM-Align training step, on an idle and on a loaded CPU.

Run ``python -m benchmarks.threads [--budget-s 100] [--load-procs 2] [--sizes 32x32,128x128]``
from the repository root (about 3 minutes). Question: which intra-op thread count should
``mmalign run`` use on CPU for its small models? The default MM-Align model (d = 32, B = 32,
built-in synthetic text -> vision pair, lengths 10..50) is stepped by the training loop's own
``train_step`` (backward, clipping, AdamW) on complete and on missing batches; larger sizes
(default d = 128, B = 128) on missing batches only (90% of the steps of an epoch at p = 0.1).
Settings: ``torch.set_num_threads`` in {1, 2} and torch's own default (= cores; shown once
when it equals one of those), under two conditions:

- ``as is``: the machine as it is (its load average is printed before and after);
- ``+N busy``: with N busy-loop Python processes started by this script (killed at the end,
  whatever happens; each also stops itself after a deadline as a safety net).

The settings are interleaved in rounds (A B, B A, A B, ...) on one model, so that drift in
the machine's load affects them alike. Printed per cell: median ms per step with its
interquartile range, CPU seconds per wall second of this process (about 1 per thread that
really ran; well below 1 means the process waited for a core), and the ratio
threads=2 / threads=1 (pooled medians, and the range of the per-round ratios).
Nothing is asserted.

``set_num_interop_threads`` is not measured: it can be set once per process only, and the
training step makes no inter-op (``torch.jit.fork``) calls, so its pool stays idle.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import statistics
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import torch

__all__ = ["main"]

_TORCH_DEFAULT_THREADS = torch.get_num_threads()  # read before anything changes it
_PHASES = ("complete", "missing")
_BUSY = (
    "import time\n"
    "end = time.monotonic() + {seconds}\n"
    "while time.monotonic() < end:\n"
    "    for _ in range(100000):\n"
    "        pass\n"
)


def _import_api() -> SimpleNamespace:
    """The training API this benchmark drives (one namespace, passed around)."""
    from benchmarks.train_step import make_pair_batches
    from mmalign.config import ADLConfig, ModelConfig, RunConfig, TrainConfig
    from mmalign.models.registry import get_method
    from mmalign.train.loop import build_optimizers, train_step

    return SimpleNamespace(
        make_pair_batches=make_pair_batches,
        get_method=get_method,
        build_optimizers=build_optimizers,
        train_step=train_step,
        ADLConfig=ADLConfig,
        ModelConfig=ModelConfig,
        RunConfig=RunConfig,
        TrainConfig=TrainConfig,
    )


def _load() -> str:
    """1-minute load average and the instantaneous count of runnable tasks."""
    one, five, _ = os.getloadavg()
    with open("/proc/loadavg") as f:
        running = f.read().split()[3].split("/")[0]
    return f"{one:.2f} (5-min {five:.2f}, running now {running})"


def _start_busy(n: int, seconds: float) -> list[subprocess.Popen]:
    code = _BUSY.format(seconds=seconds)
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]


def _stop_busy(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait()


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    q1, med, q3 = np.percentile(xs, [25, 50, 75])
    return float(q1), float(med), float(q3)


def _optimizers(api, model, config):
    """AdamW per parameter group, as the training loop builds them."""
    rates = api.get_method("mm-align").learning_rates(config)
    return api.build_optimizers(model, rates, config.train.weight_decay, log=lambda _: None)


def _measure(api, d_model, batch, phases, settings, budget_s, pairs):
    """Interleaved rounds over `settings`; per setting and phase: step seconds and CPU/wall."""
    batches, dims = api.make_pair_batches(4, batch, "cpu")
    config = api.RunConfig(
        model=api.ModelConfig(d_model=d_model),
        adl=api.ADLConfig(),
        train=api.TrainConfig(batch_size=batch),
    )
    torch.manual_seed(0)
    model = api.get_method("mm-align").build(dims, config).to("cpu").train()
    optimizers = _optimizers(api, model, config)
    groups = tuple(optimizers)
    cycles = {ph: itertools.cycle(batches[ph]) for ph in phases}

    def step(phase: str) -> float:
        start = time.perf_counter()
        losses = model.compute_losses(next(cycles[phase]), phase)
        api.train_step(model, losses, optimizers, groups, config.train.grad_clip)
        return time.perf_counter() - start

    for t in settings:  # warm-up: allocator, thread pools, first-call costs
        torch.set_num_threads(t)
        for ph in phases:
            step(ph)
    samples = {(t, ph): [] for t in settings for ph in phases}
    rounds = {(t, ph): [] for t in settings for ph in phases}  # per-round medians
    cpu = {t: [0.0, 0.0] for t in settings}  # CPU seconds, wall seconds
    start = time.perf_counter()
    r = 0
    while r < 2 or time.perf_counter() - start < budget_s:
        for t in settings if r % 2 == 0 else settings[::-1]:
            torch.set_num_threads(t)
            block = {ph: [] for ph in phases}
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(pairs):
                for ph in phases:
                    block[ph].append(step(ph))
            cpu[t][0] += time.process_time() - c0
            cpu[t][1] += time.perf_counter() - w0
            for ph in phases:
                samples[t, ph] += block[ph]
                rounds[t, ph].append(statistics.median(block[ph]))
        r += 1
    return samples, rounds, {t: c / w for t, (c, w) in cpu.items()}, r


def _parse_sizes(text: str) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in item.split("x")) for item in text.split(",") if item]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget-s",
        type=float,
        default=100.0,
        help="timed seconds in all (warm-up and the 2 rounds minimum excluded)",
    )
    parser.add_argument("--load-procs", type=int, default=2, help="busy loops for condition b")
    parser.add_argument(
        "--sizes",
        default="32x32,128x128",
        help="d_model x batch; the first is timed on complete and missing "
        "batches, the others on missing batches only",
    )
    args = parser.parse_args(argv)
    api = _import_api()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` runs

    from mmalign.runs import available_cores

    cores = available_cores()
    settings = sorted({1, 2, _TORCH_DEFAULT_THREADS})
    sizes = _parse_sizes(args.sizes)
    per_size = args.budget_s / 2 / len(sizes)
    print(
        f"torch {torch.__version__}, {torch.__config__.parallel_info().splitlines()[-1].strip()}"
        f", cores {cores} (os.cpu_count {os.cpu_count()}), torch default threads "
        f"{_TORCH_DEFAULT_THREADS}, interop threads {torch.get_num_interop_threads()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    print(
        f"settings: threads in {settings}, interleaved; MM-Align train_step, synthetic t->v, "
        f"lengths 10..50; budget {args.budget_s:.0f} s"
    )
    rows, ratio_rows = [], []
    for cond in ("as is", f"+{args.load_procs} busy"):
        busy = []
        try:
            if cond != "as is":
                busy = _start_busy(args.load_procs, 3 * args.budget_s + 120)
                time.sleep(1.0)
            before = _load()
            for i, (d, batch) in enumerate(sizes):
                phases = _PHASES if i == 0 else ("missing",)
                pairs = 2 if d * batch <= 32 * 32 * 4 else 1
                samples, rounds, cpu, n_rounds = _measure(
                    api, d, batch, phases, settings, per_size, pairs
                )
                label = f"d={d} B={batch}"
                for ph in phases:
                    for t in settings:
                        q1, med, q3 = _quartiles(samples[t, ph])
                        name = f"{t}" + (" (default)" if t == _TORCH_DEFAULT_THREADS else "")
                        rows.append(
                            [
                                cond,
                                label,
                                ph,
                                name,
                                f"{med * 1e3:.1f}",
                                f"{q1 * 1e3:.1f}..{q3 * 1e3:.1f}",
                                len(samples[t, ph]),
                                f"{cpu[t]:.2f}",
                            ]
                        )
                    per_round = [b / a for a, b in zip(rounds[1, ph], rounds[2, ph])]
                    pooled = statistics.median(samples[2, ph]) / statistics.median(samples[1, ph])
                    ratio_rows.append(
                        [
                            cond,
                            label,
                            ph,
                            f"{pooled:.2f}",
                            f"{min(per_round):.2f}..{max(per_round):.2f}",
                            n_rounds,
                        ]
                    )
                print(f"[{cond}] {label}: {n_rounds} rounds", flush=True)
            after = _load()
        finally:
            _stop_busy(busy)
        print(f"[{cond}] load average before {before}, after {after}", flush=True)

    from benchmarks._timing import format_table

    print()
    print(
        format_table(
            [
                "condition",
                "model",
                "batch",
                "threads",
                "ms/step (median)",
                "IQR ms",
                "steps",
                "CPU s / wall s",
            ],
            rows,
        )
    )
    print()
    print(
        format_table(
            [
                "condition",
                "model",
                "batch",
                "threads=2 / threads=1 (pooled medians)",
                "per-round range",
                "rounds",
            ],
            ratio_rows,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
