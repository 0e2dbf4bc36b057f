"""One whole training epoch (training passes + validation of both settings), method against method.

Run ``python -m benchmarks.epoch_ratio [--threads 1] [--repeats 2] [--data synthetic] [--pair t:v]
[--p 0.1]`` from the repository root. Each method is built by the registry with the default
options, on the default synthetic data (``--data``; T→V, p = 0.1, split seed 0), and
trained for one epoch exactly as ``mmalign run`` trains it (``train.loop.fit`` with one
epoch and no warm-up: complete batches, missing batches, then validation under settings A
and B). Methods alternate repeat by repeat, each repeat from the
same initial weights, so load changes hit all alike. Prints the min and median epoch seconds
and the ratio of each method to the first, with the thread count and the load average before
and after. Issue 13's goal: a Modal-Trans epoch at most 3x an MM-Align epoch. Nothing is
asserted.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch

from benchmarks._timing import format_table, set_threads
from mmalign.config import RunConfig, apply_overrides
from mmalign.data.spec import DataSpec
from mmalign.models.registry import options_for
from mmalign.options import parse_assignments
from mmalign.runs.execute import RunPlan, build_model, standardize_inputs
from mmalign.train.loop import fit

__all__ = ["main"]

METHODS = ("mm-align", "modal-trans")


def _setup(name: str, dataset, device: torch.device, options: dict[str, str], args):
    base = {"pair": args.pair, "p": args.p, "seed": 0, "epochs": 1, "warmup_epochs": 0}
    # options that do not apply to a method (e.g. MM-Align's for Modal-Trans) are left out
    mine = options_for(name, options)
    config = apply_overrides(
        RunConfig(), {**base, **mine, "method": name, "progress": False}
    ).validate()
    plan = RunPlan.make(config, dataset)
    model = build_model(config, plan.dims)
    standardize_inputs(model, dataset, plan)
    return config, plan, model.to(device), plan.train_data(dataset, device)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--data", default="synthetic", help="a data spec (default: synthetic)")
    parser.add_argument("--pair", default="t:v")
    parser.add_argument("--p", type=float, default=0.1)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="an option for every method it applies to (e.g. alignment_space=encoder)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    options = parse_assignments("set", args.set)
    threads = set_threads(args.threads)
    before = os.getloadavg()[0]
    device = torch.device(args.device)
    dataset = DataSpec.parse(args.data).load()
    methods = args.methods.split(",")
    setups = {m: _setup(m, dataset, device, options, args) for m in methods}
    initial = {m: copy.deepcopy(s[2].state_dict()) for m, s in setups.items()}
    print(
        f"torch {torch.__version__}, device {args.device}, threads {threads}, load before "
        f"{before:.2f}; data {args.data}, pair {args.pair}, p = {args.p:g}, one epoch per repeat, "
        f"options {options or 'default'}"
    )
    times: dict[str, list[float]] = {m: [] for m in methods}
    for _ in range(args.repeats):
        for m in methods:
            config, plan, model, data = setups[m]
            model.load_state_dict(initial[m])
            start = time.perf_counter()
            fit(
                model, data, config.train, plan.method.learning_rates(config),
                generator=torch.Generator().manual_seed(0), log=lambda s: None, progress=False,
            )  # fmt: skip
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[m].append(time.perf_counter() - start)
    first = min(times[methods[0]])
    rows = [
        [m, f"{min(t):.2f} / {statistics.median(t):.2f}", f"{min(t) / first:.2f}x"]
        for m, t in times.items()
    ]
    print(format_table(["method", "epoch s (min/med)", f"ratio to {methods[0]} (min)"], rows))
    print(f"load after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
