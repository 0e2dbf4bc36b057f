"""Training epoch of this tree against an earlier commit's, side by side (the eager baseline).

Run ``python -m benchmarks.speedup_vs_commit --baseline REV [--threads 1] [--rounds 3]``
from the repository root. ``REV`` is checked out into a temporary git worktree. Each round
times, in a fresh subprocess per tree and alternating between the trees (so load changes hit
both alike), the training part of one epoch (every training batch: losses, backward,
optimiser steps; no validation) of each method on the CMU-MOSI-sized synthetic data, T->V,
p = 0.1 (``--p``), default options, one thread, after one warm-up epoch. ``--set KEY=VALUE``
changes an option in this tree only (say, one the baseline does not have). It prints the best and the
median over rounds, the ratio baseline / this tree, the ratio to the official MM-Align code's
4.14 s per training epoch (issue 13's measurement on this machine: paper width 32, 4 heads;
ours uses the default backbone, which costs at most 1.2x the paper's, benchmarks/README.md),
the thread count and the load average. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks._worktree import REPOSITORY, worktree

__all__ = ["main"]

#: Training part of one epoch of the official MM-Align code (issue 13, 1 thread, this machine).
OFFICIAL_EPOCH_S = 4.14

_SNIPPET = r"""
import json, sys, time, warnings
import numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
from mmalign.config import RunConfig, apply_overrides
from mmalign.data.batching import PairData
from mmalign.data.splits import make_missing_split
from mmalign.data.synthetic import make_synthetic
from mmalign.models.method import PairDims
from mmalign.models.registry import get_method
from mmalign.train.loop import TrainData, build_optimizers, _run_epoch
warnings.simplefilter("ignore")
dataset = make_synthetic()
split = make_missing_split(dataset, "vision", float(sys.argv[3]), 0)
dims = PairDims(dataset.feature_dims["text"], dataset.feature_dims["vision"], 1, "regression")
out = {}
for name in sys.argv[2].split(","):
    method = get_method(name)
    pair = PairData.from_split(dataset.splits["train"], "text", "vision",
                               split.present("train"), resample=not method.own_axis)
    data = TrainData(pair, split.train_complete, split.train_missing, pair, {})
    torch.manual_seed(0)
    config = apply_overrides(RunConfig(), json.loads(sys.argv[4]))
    model = method.build(dims, config)
    optimizers = build_optimizers(model, method.learning_rates(config), log=lambda s: None)
    generator = torch.Generator().manual_seed(0)

    class Bar:
        def update(self, n):
            pass

    passes = model.epoch_passes(False)
    _run_epoch(model, data, passes, optimizers, config.train, generator, Bar())  # warm-up
    start = time.perf_counter()
    _run_epoch(model, data, passes, optimizers, config.train, generator, Bar())
    out[name] = time.perf_counter() - start
print(json.dumps(out))
"""


def _time_tree(
    src: Path, threads: int, methods: str, p: float, overrides: dict[str, str]
) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, "-c", _SNIPPET, str(threads), methods, str(p), json.dumps(overrides)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git revision of the eager baseline")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--methods", default="mm-align,lb")
    parser.add_argument("--p", type=float, default=0.1, help="survival rate (default 0.1)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="an option of this tree's runs only (repeatable)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.set)
    before = os.getloadavg()[0]
    times: dict[str, dict[str, list[float]]] = {"baseline": {}, "this tree": {}}
    with worktree(args.baseline) as tree:
        for _ in range(args.rounds):
            for label, src, options in (
                ("baseline", tree / "src", {}),
                ("this tree", REPOSITORY / "src", overrides),
            ):
                timed = _time_tree(src, args.threads, args.methods, args.p, options)
                for name, seconds in timed.items():
                    times[label].setdefault(name, []).append(seconds)
    print(
        f"threads {args.threads}, {args.rounds} rounds, load before {before:.2f}, after "
        f"{os.getloadavg()[0]:.2f}; training part of one epoch (T->V, p = {args.p}, default "
        f"options{''.join(f', {k}={v} in this tree' for k, v in overrides.items())})"
    )
    print(
        "| method | baseline s (min / med) | this tree s (min / med) | baseline / this | official 4.14 s / this |"
    )
    print("|---|---|---|---|---|")
    for name in args.methods.split(","):
        old, new = np.array(times["baseline"][name]), np.array(times["this tree"][name])
        print(
            f"| {name} | {old.min():.2f} / {np.median(old):.2f} | {new.min():.2f} / "
            f"{np.median(new):.2f} | {old.min() / new.min():.2f}x | "
            f"{OFFICIAL_EPOCH_S / new.min():.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
