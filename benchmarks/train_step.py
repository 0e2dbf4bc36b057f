"""One training step of MM-Align vs Modal-Trans on the same complete and missing batches.

Run ``python -m benchmarks.train_step [--threads 1] [--device cpu] [--repeats 10]`` from the
repository root. Reproduces the comparison of MM-Align (Han et al., EMNLP 2022), appendix E,
Table 8 (about 2.9x in MM-Align's favour per batch on the authors' GPU): both methods are
built by the registry on the same backbone (d = 32, K = 8) from one seed and stepped by the
training loop's own ``train_step`` (backward, clipping, AdamW) on the *same* batches of a
CMU-MOSI-sized synthetic text -> vision pair (B = 32, lengths 10..50):

- ``complete``: a batch with the victim present (MM-Align: encoders, OT solve, fitter step,
  backbone step; Modal-Trans: encoders, teacher-forced translation and cycle loss);
- ``missing``: a batch without the victim (MM-Align: fitter imputation; Modal-Trans:
  autoregressive decoding and cycle loss).

Prints min / median ms per step and the ratio Modal-Trans / MM-Align. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch

from benchmarks._timing import format_table, set_threads, time_call
from mmalign.config import ADLConfig, ModelConfig, RunConfig, TrainConfig
from mmalign.data.batching import PairData, iterate_batches
from mmalign.data.synthetic import SyntheticConfig, make_synthetic
from mmalign.models.method import PairDims
from mmalign.models.registry import get_method
from mmalign.train.loop import build_optimizers, train_step

__all__ = ["make_pair_batches", "main"]

METHODS = ("mm-align", "modal-trans")


def make_pair_batches(n_batches: int, batch_size: int, device: str, seed: int = 0):
    """Complete and missing batches (same rows, victim in / out) and the pair's sizes."""
    n = n_batches * batch_size
    dataset = make_synthetic(SyntheticConfig(n_train=n, n_valid=2, n_test=2, seed=seed))
    pair = PairData.from_split(dataset.splits["train"], "text", "vision").to(device)
    out = {}
    for phase, has in (("complete", None), ("missing", False)):
        gen = torch.Generator().manual_seed(seed)
        out[phase] = list(
            iterate_batches(
                pair, np.arange(n), batch_size, shuffle=True, generator=gen, has_victim=has
            )
        )
    dims = PairDims(
        dataset.feature_dims["text"],
        dataset.feature_dims["vision"],
        dataset.output_dim,
        dataset.task,
    )
    return out, dims


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, default=8, help="distinct batches per phase")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    batches, dims = make_pair_batches(args.batches, args.batch_size, args.device)
    lengths = [int(b.source_mask.sum(1).max()) for b in batches["complete"]]
    print(
        f"torch {torch.__version__}, device {args.device}, threads {threads}, "
        f"B={args.batch_size}, d=32, K=8, {len(lengths)} batches per phase, padded lengths "
        f"{min(lengths)}..{max(lengths)} (mean {np.mean(lengths):.1f})"
    )
    config = RunConfig(model=ModelConfig(), adl=ADLConfig(), train=TrainConfig())
    timings = {}
    for name in METHODS:
        torch.manual_seed(0)
        model = get_method(name).build(dims, config).to(args.device).train()
        optimizers = build_optimizers(
            model, get_method(name).learning_rates(config), log=lambda _: None
        )
        groups = tuple(optimizers)
        for phase in ("complete", "missing"):
            cycle = itertools.cycle(batches[phase])

            def step(phase=phase, cycle=cycle):
                losses = model.compute_losses(next(cycle), phase)
                train_step(model, losses, optimizers, groups, config.train.grad_clip)

            timings[name, phase] = time_call(step, repeats=args.repeats, warmup=2)
    rows = []
    for phase in ("complete", "missing"):
        a, m = timings["mm-align", phase], timings["modal-trans", phase]
        rows.append(
            [
                phase,
                f"{a.min_s * 1e3:.1f} / {a.median_s * 1e3:.1f}",
                f"{m.min_s * 1e3:.1f} / {m.median_s * 1e3:.1f}",
                f"{m.min_s / a.min_s:.1f}x / {m.median_s / a.median_s:.1f}x",
            ]
        )
    print(
        format_table(
            [
                "batch",
                "MM-Align ms (min/med)",
                "Modal-Trans ms (min/med)",
                "Modal-Trans / MM-Align (min/med)",
            ],
            rows,
        )
    )
    ratio = timings["modal-trans", "missing"].min_s / timings["mm-align", "missing"].min_s
    print(
        f"goal: missing-batch step >= 5x faster than Modal-Trans: {ratio:.1f}x "
        f"({'met' if ratio >= 5 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
