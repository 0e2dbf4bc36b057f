"""Time of the monotone alignment (plain and with sub-states) beside the column Sinkhorn solver.

Run ``python -m benchmarks.monotone_cost [--threads 1] [--repeats 5]`` from the repository
root (about a minute). On one band of costs, B = 32 samples of ``--source-len`` source steps
(words) and victim lengths 125 .. 500 (frames), K = 8, it times:

- ``sinkhorn``: :func:`~mmalign.ot.column_band.sinkhorn_columns` at the training defaults
  (``reg`` 0.1, 100 iterations at most), the default solver;
- ``monotone S=1``: :func:`~mmalign.ot.monotone.monotone_band_posterior`, geometric durations;
- ``monotone S=5``: the same with ``states=5`` (``--alignment-states 5``; a source step
  holding ``D`` victim steps uses ``min(floor(D / 2), 5)`` sub-states).

Each is the min / median of ``--repeats`` calls after one warm-up, alternated call by call, and
the ratios are to ``monotone S=1``. The costs are random and the victim steps of every sample
are all valid, so every solver does its full work. Prints the thread count and the load.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import warnings

import torch

from benchmarks._timing import format_table, set_threads, time_call
from mmalign.ot import diagonal_centres, sinkhorn_columns
from mmalign.ot.monotone import monotone_band_posterior
from mmalign.validation import ConvergenceWarning

__all__ = ["main"]

VICTIM_LENGTHS = (125, 250, 500)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--source-len", type=int, default=30)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    load = os.getloadavg()
    print(
        f"torch {torch.__version__}, threads {threads}, load {load[0]:.2f} (1/5/15-min "
        f"{', '.join(f'{x:.2f}' for x in load)}); B={args.batch}, source length "
        f"{args.source_len}, K={args.window}, no gradient"
    )
    width = 2 * args.window + 1
    rows = []
    for victim_len in VICTIM_LENGTHS:
        gen = torch.Generator().manual_seed(0)
        cost = torch.rand(args.batch, victim_len, width, generator=gen)
        source_mask = torch.ones(args.batch, args.source_len, dtype=torch.bool)
        victim_mask = torch.ones(args.batch, victim_len, dtype=torch.bool)
        centres = diagonal_centres(source_mask.sum(1), victim_mask.sum(1), victim_len)

        def sinkhorn(cost=cost, victim_mask=victim_mask, centres=centres):
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                sinkhorn_columns(
                    cost, source_mask, victim_mask, centres, window=args.window, reg=0.1
                )

        def monotone(states, cost=cost, victim_mask=victim_mask, centres=centres):
            monotone_band_posterior(
                -cost, source_mask, victim_mask, centres, args.window, states=states
            )

        calls = {
            "sinkhorn": sinkhorn,
            "monotone S=1": lambda: monotone(1),
            "monotone S=5": lambda: monotone(5),
        }
        for call in calls.values():  # warm-up
            call()
        samples: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(args.repeats):  # alternate, one call each per round
            for name, call in calls.items():
                samples[name].append(time_call(call, repeats=1, warmup=0).min_s)
        plain = min(samples["monotone S=1"])
        for name, times in samples.items():
            low, median = min(times), statistics.median(times)
            rows.append(
                [victim_len, name, f"{low * 1e3:.1f} / {median * 1e3:.1f}", f"{low / plain:.2f}x"]
            )
    print(format_table(["victim length", "solver", "ms (min/med)", "min / monotone S=1"], rows))
    print(f"load after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
