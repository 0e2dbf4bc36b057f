"""Does ``torch.compile`` make a training step faster on this CPU? Eager against compiled.

Run ``python -m benchmarks.compile_cost [--threads 1] [--repeats 16] [--rounds 2]`` from the
repository root (about three minutes, most of it compiling). Issue 13 lists ``torch.compile``
among the ways to a faster epoch. This measures it on LB, the backbone alone: the source
encoder's attention blocks and the head, the part of every method that ``torch.compile``
captures whole (MM-Align's step breaks into about 20 graphs at its checks and host syncs,
``torch._dynamo.explain``).

One training step is ``compute_losses`` then the loop's ``train_step`` (backward, clipping,
AdamW), on CMU-MOSI-sized synthetic text -> vision batches (B = 32, lengths 10..50).
Variants, each a fresh model from the same seed:

- ``eager``: the model as ``mmalign run`` trains it;
- ``compiled, dynamic``: ``torch.compile(model.compute_losses, dynamic=True)``, cycling
  through batches of different lengths, as training does;
- ``compiled, static``: ``dynamic=False`` on one batch shape (what padding every batch to one
  length would allow), against eager on the same batch.

The backbone's dropout draws its mask with the in-place ``Tensor.random_``, which Dynamo
cannot trace (one graph break per attention block). The compiled variants therefore draw the
mask out of place with ``torch.rand`` (inductor generates it inside its fused kernels), the
same drop probability. Prints the first-pass (compile) time and min / median ms per step,
best over alternating rounds, with the thread count and the load. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from collections.abc import Callable

import torch

import mmalign.models.attention as attention
from benchmarks._timing import format_table, set_threads, time_call
from benchmarks.train_step import make_pair_batches
from mmalign.config import ADLConfig, ModelConfig, RunConfig, TrainConfig
from mmalign.models.registry import get_method
from mmalign.train.loop import build_optimizers, train_step

__all__ = ["main"]


def _traceable_keep_mask(shape: torch.Size, threshold: int, device: torch.device) -> torch.Tensor:
    """The dropout keep mask drawn out of place, so Dynamo can trace it (module docstring)."""
    return torch.rand(shape, device=device) >= threshold / 256


def _stepper(batches: list, mode: str) -> tuple[Callable[[], None], float]:
    """A closure doing one LB training step per call, and its first pass over ``batches`` in s."""
    config = RunConfig(model=ModelConfig(), adl=ADLConfig(), train=TrainConfig())
    method = get_method("lb")
    torch.manual_seed(0)
    model = method.build(_stepper.dims, config).train()
    optimizers = build_optimizers(model, method.learning_rates(config), log=lambda _: None)
    groups = tuple(optimizers)
    losses_of = model.compute_losses
    if mode != "eager":
        losses_of = torch.compile(model.compute_losses, dynamic=mode == "dynamic")
    cycle = itertools.cycle(batches)

    def step() -> None:
        losses = losses_of(next(cycle), "complete")
        train_step(model, losses, optimizers, groups, config.train.grad_clip)

    start = time.perf_counter()
    for _ in batches:  # compiles here: once (dynamic) or per shape (static)
        step()
    return step, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", type=int, default=8, help="distinct batches (dynamic)")
    parser.add_argument("--repeats", type=int, default=16, help="steps timed per round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; best kept")
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    batches, _stepper.dims = make_pair_batches(args.batches, 32, "cpu")
    varied = batches["complete"]
    lengths = [int(b.source_mask.sum(1).max()) for b in varied]
    print(
        f"torch {torch.__version__}, threads {threads}, load {os.getloadavg()[0]:.2f} "
        f"(1/5/15-min {', '.join(f'{x:.2f}' for x in os.getloadavg())}); LB, synthetic T->V, "
        f"B=32, d=32, 4 heads; {len(varied)} batches of padded lengths {min(lengths)}.."
        f"{max(lengths)} (dynamic), the first of them alone (static, length {lengths[0]})"
    )
    steppers: dict[str, Callable[[], None]] = {}
    first: dict[str, float] = {}
    keep_mask = attention._keep_mask
    for name, mode, data in (
        ("eager", "eager", varied),
        ("compiled, dynamic", "dynamic", varied),
        ("eager, one batch", "eager", varied[:1]),
        ("compiled, static", "static", varied[:1]),
    ):
        attention._keep_mask = keep_mask if mode == "eager" else _traceable_keep_mask
        steppers[name], first[name] = _stepper(data, mode)
        print(f"  built {name}: first pass {first[name]:.1f} s", flush=True)
    best: dict[str, tuple[float, float]] = {}
    try:
        for _ in range(args.rounds):
            for name, step in steppers.items():
                attention._keep_mask = (
                    keep_mask if name.startswith("eager") else _traceable_keep_mask
                )
                t = time_call(step, repeats=args.repeats, warmup=2)
                old = best.get(name, (float("inf"), float("inf")))
                best[name] = (min(old[0], t.min_s), min(old[1], t.median_s))
    finally:
        attention._keep_mask = keep_mask
    reference = {"compiled, dynamic": "eager", "compiled, static": "eager, one batch"}
    rows = []
    for name, (low, median) in best.items():
        base = best[reference.get(name, name)]
        rows.append(
            [
                name,
                f"{first[name]:.1f}",
                f"{low * 1e3:.1f} / {median * 1e3:.1f}",
                f"{base[0] / low:.2f}x / {base[1] / median:.2f}x",
            ]
        )
    print(format_table(["variant", "first pass s", "ms per step (min/med)", "eager / this"], rows))
    print(f"load after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
