"""Estimated wall time of the paper's full grid, from the wall times of runs in a results store.

Run ``python -m benchmarks.grid_estimate --store STORE [--data synthetic] [--workers 2]``.
The full paper-protocol grid is every method on the six directed pairs, p in {0.1, 0.5} and
``--seeds`` split seeds (the upper bound once per pair and seed: p does not apply to it). For
each method the estimate takes the mean ``wall_s`` of that method's pair-protocol runs in the
store (runs that ran ``--workers`` at a time on this machine, so their times already include
that contention) times its number of runs in the full grid, and divides the sum by
``--workers``. It prints the sample it used per method. Nothing is asserted.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from mmalign.experiments.store import ResultStore
from mmalign.models.registry import METHODS

__all__ = ["main"]

PAIRS = 6
PS = 2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--data", default="synthetic")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    walls: dict[str, list[float]] = defaultdict(list)
    for row in ResultStore(args.store).rows(data=args.data):
        if row.get("source") and row.get("wall_s") is not None:  # pair-protocol runs only
            walls[row["method"]].append(float(row["wall_s"]))
    total = 0.0
    print("| method | sample runs | mean wall s | runs in the full grid | run time h |")
    print("|---|---|---|---|---|")
    for name, spec in METHODS.items():
        if not walls.get(name):
            print(f"| {name} | 0 | - | - | (no sample: not estimated) |")
            continue
        runs = PAIRS * args.seeds * (1 if spec.complete_data else PS)
        seconds = float(np.mean(walls[name])) * runs
        total += seconds
        print(
            f"| {name} | {len(walls[name])} | {np.mean(walls[name]):.1f} | {runs} | "
            f"{seconds / 3600:.2f} |"
        )
    print(
        f"estimated wall time with {args.workers} workers: {total / args.workers / 3600:.1f} h "
        f"(sum of run times {total / 3600:.1f} h)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
