"""Cost of the default backbone against the paper's, per training step, side by side.

Run ``python -m benchmarks.backbone_cost [--threads 1] [--repeats 10] [--rounds 3]`` from the
repository root. The defaults differ from the paper's backbone in four ways
(``docs/method.md``, "Defaults"): standardised inputs, mean pooling of the fusion outputs,
dropout 0.2 and weight decay 0.01. This times one training step of LB and MM-Align with each
backbone on the *same* complete and missing batches (CMU-MOSI-sized synthetic T->V, B = 32,
d = 32, K = 8), in interleaved rounds (paper, default, paper, ...) to cancel drift on a
shared machine, and prints the ratio default / paper with the load and thread count.
Goal (issue 10): at most 1.2x. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import itertools
import os

import torch

from benchmarks._timing import format_table, set_threads, time_call
from benchmarks.train_step import make_pair_batches
from mmalign.config import RunConfig, apply_overrides
from mmalign.models.registry import get_method
from mmalign.train.loop import build_optimizers, train_step

__all__ = ["main"]

PAPER = {"pooling": "head", "standardize": False, "dropout": 0.1, "weight_decay": 0.0}


def _stepper(method: str, config: RunConfig, batches, dims, phase: str):
    torch.manual_seed(0)
    model = get_method(method).build(dims, config).train()
    rates = get_method(method).learning_rates(config)
    optimizers = build_optimizers(model, rates, config.train.weight_decay, log=lambda _: None)
    cycle = itertools.cycle(batches[phase])

    def step():
        losses = model.compute_losses(next(cycle), phase)
        train_step(model, losses, optimizers, None, config.train.grad_clip)

    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    batches, dims = make_pair_batches(8, 32, "cpu")
    configs = {"paper": apply_overrides(RunConfig(), PAPER), "default": RunConfig()}
    print(f"torch {torch.__version__}, threads {threads}, load before {os.getloadavg()[0]:.2f}")
    rows = []
    for method, phase in (("lb", "complete"), ("mm-align", "complete"), ("mm-align", "missing")):
        best = {name: float("inf") for name in configs}
        for _ in range(args.rounds):  # interleaved: paper, default, paper, default, ...
            for name, config in configs.items():
                step = _stepper(method, config, batches, dims, phase)
                best[name] = min(best[name], time_call(step, repeats=args.repeats).median_s)
        ratio = best["default"] / best["paper"]
        rows.append(
            [
                method,
                phase,
                f"{best['paper'] * 1e3:.1f}",
                f"{best['default'] * 1e3:.1f}",
                f"{ratio:.2f}x",
            ]
        )
    print(format_table(["method", "batch", "paper ms", "default ms", "default / paper"], rows))
    worst = max(float(r[-1][:-1]) for r in rows)
    print(f"load after {os.getloadavg()[0]:.2f}")
    print(
        f"goal: default backbone <= 1.2x the paper's per step: {worst:.2f}x ({'met' if worst <= 1.2 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
