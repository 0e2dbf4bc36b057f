"""Per-batch training time of the imputation module: MM-Align against Modal-Trans.

Run ``python -m benchmarks.imputation_time [--threads 1] [--device cpu]`` from the repository
root. Reproduces the measurement of MM-Align (Han et al., EMNLP 2022), appendix E, Table 8
(MOSI column: Modal-Trans 0.811 s, MM-Align 0.278 s per batch on their GPU): both methods are
built by the registry with the same backbone (d = 32, K = 8), then timed side by side in this
process on the *same* missing-split batches (B = 32, synthetic CMU-MOSI-like lengths 10..50).

Two numbers per method and batch, min / median over the repeats (one batch per call,
cycling through the batches):

- ``imputation``: forward and backward through the imputation module only (MM-Align: the
  fitter and the banded imputation; Modal-Trans: encoder and autoregressive decoder), from
  fixed encoded source steps. This is Table 8's quantity.
- ``missing step``: the whole training step on a missing batch (source encoder, imputation,
  fusion, head, the method's extra losses, backward, clipping, AdamW step).

Nothing is asserted; timings are only comparable at one thread count and on one device.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch

from benchmarks._timing import format_table, set_threads, time_call
from benchmarks.train_step import make_pair_batches
from mmalign.config import ADLConfig, ModelConfig, RunConfig, TrainConfig
from mmalign.models.registry import get_method
from mmalign.train.loop import build_optimizers, train_step

__all__ = ["make_batches", "main"]

METHODS = ("mm-align", "modal-trans")


def make_batches(n_batches: int, batch_size: int, device: str, seed: int = 0):
    """Missing-split batches (victim forced out) of a MOSI-like synthetic text -> vision pair."""
    batches, dims = make_pair_batches(n_batches, batch_size, device, seed)
    return batches["missing"], dims


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, default=8, help="distinct missing batches")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=16)
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--window", type=int, default=8)
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    batches, dims = make_batches(args.batches, args.batch_size, args.device)
    lengths = [int(b.source_mask.sum(1).max()) for b in batches]
    print(
        f"torch {torch.__version__}, device {args.device}, threads {threads}, "
        f"B={args.batch_size}, d={args.d_model}, K={args.window}, {len(batches)} batches, "
        f"padded lengths {min(lengths)}..{max(lengths)} (mean {np.mean(lengths):.1f})"
    )
    config = RunConfig(
        model=ModelConfig(d_model=args.d_model),
        adl=ADLConfig(window=args.window),
        train=TrainConfig(),
    )
    timings = {}
    for name in METHODS:
        torch.manual_seed(0)
        model = get_method(name).build(dims, config).to(args.device).train()
        optimizers = build_optimizers(
            model, get_method(name).learning_rates(config), log=lambda _: None
        )
        groups = tuple(optimizers)
        with torch.no_grad():  # fixed encoder outputs: the imputation is timed on its own
            encoded = [model.backbone.encode_source(b.source, b.source_mask) for b in batches]
        cycle_impute = itertools.cycle(zip(encoded, batches))
        cycle_step = itertools.cycle(batches)

        def impute():
            z_source, batch = next(cycle_impute)
            z_source = z_source.detach().requires_grad_(True)
            z_victim, _ = model.impute_victim(z_source, batch)
            model.zero_grad(set_to_none=True)
            z_victim.square().mean().backward()

        def step():
            batch = next(cycle_step)
            losses = model.compute_losses(batch, "missing")
            train_step(model, losses, optimizers, groups, config.train.grad_clip)

        timings[name] = (
            time_call(impute, repeats=args.repeats, warmup=2),
            time_call(step, repeats=args.repeats, warmup=2),
        )
    rows = [
        [
            name,
            f"{imp.min_s * 1e3:.1f} / {imp.median_s * 1e3:.1f}",
            f"{stp.min_s * 1e3:.1f} / {stp.median_s * 1e3:.1f}",
        ]
        for name, (imp, stp) in timings.items()
    ]
    (imp_a, stp_a), (imp_m, stp_m) = timings["mm-align"], timings["modal-trans"]
    rows.append(
        [
            "ratio modal-trans / mm-align",
            f"{imp_m.min_s / imp_a.min_s:.1f}x / {imp_m.median_s / imp_a.median_s:.1f}x",
            f"{stp_m.min_s / stp_a.min_s:.1f}x / {stp_m.median_s / stp_a.median_s:.1f}x",
        ]
    )
    print(format_table(["method", "imputation ms (min/med)", "missing step ms (min/med)"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
