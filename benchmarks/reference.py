"""Per-sample references for the ADL stage, written the way the original MM-Align code worked.

Han et al., MM-Align, EMNLP 2022 (section 3.4, Eq. 7-15). These functions are deliberately
slow baselines for ``benchmarks`` and for checking the vectorised stage; keep them out of
``src/``. What "the way the original code worked" means here:

- a Python loop over the samples of the batch;
- a dense ``n x n`` cosine cost with a large finite barrier outside the window;
- a dense multiplicative Sinkhorn of at most 10 iterations per sample (a *working* Sinkhorn:
  the original's column step and final normalisation were wrong, we do not copy that bug);
- band <-> dense conversion by a loop of ``torch.diagflat`` calls (fit-loss targets and the
  imputation matrix).

``pot_per_sample`` runs POT's log-domain Sinkhorn on the same dense costs, one sample at a time.

Run ``python -m benchmarks.reference [--threads 1]`` for a side-by-side timing of the OT part.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from benchmarks._timing import format_table, set_threads, time_call

__all__ = [
    "BARRIER",
    "ReferenceADLOutput",
    "dense_windowed_cost",
    "dense_to_band_diagflat",
    "band_to_dense_diagflat",
    "reference_adl_stage",
    "pot_per_sample",
    "main",
]

BARRIER = 1e6  # stands in for +inf outside the window: exp(-BARRIER / reg) is exactly 0


@dataclass(frozen=True)
class ReferenceADLOutput:
    """Outputs of :func:`reference_adl_stage`, padded to the batch length ``L``.

    plan: (B, L, W) row band of the OT plan; target: (B, L, W) column band of the fit target
    (plan columns renormalised over valid source steps); fit_loss: scalar masked MSE over valid
    band entries; imputed: (B, L, d) imputed victim sequence (zeros on padded steps).
    """

    plan: Tensor
    target: Tensor
    fit_loss: Tensor
    imputed: Tensor


def dense_windowed_cost(z_source: Tensor, z_victim: Tensor, window: int) -> Tensor:
    """Dense (n, m) ``1 - cos`` cost with ``BARRIER`` where ``abs(i - j) > window``."""
    unit_source = z_source / z_source.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    unit_victim = z_victim / z_victim.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    cost = 1 - unit_source @ unit_victim.T  # (n, m)
    rows = torch.arange(cost.shape[0])[:, None]
    cols = torch.arange(cost.shape[1])[None, :]
    return cost.masked_fill((rows - cols).abs() > window, BARRIER)


def dense_sinkhorn(cost: Tensor, reg: float, n_iter: int = 10) -> Tensor:
    """Multiplicative Sinkhorn on one dense cost, uniform marginals, ``n_iter`` iterations."""
    n, m = cost.shape
    kernel = torch.exp(-cost / reg)
    a = torch.full((n,), 1.0 / n, dtype=cost.dtype)
    b = torch.full((m,), 1.0 / m, dtype=cost.dtype)
    v = torch.ones(m, dtype=cost.dtype)
    for _ in range(n_iter):
        u = a / (kernel @ v)
        v = b / (kernel.T @ u)
    return u[:, None] * kernel * v[None, :]


def band_to_dense_diagflat(band: Tensor, window: int) -> Tensor:
    """(n, W) row band of a square matrix -> dense (n, n), one ``diagflat`` per offset."""
    n = band.shape[0]
    dense = torch.zeros(n, n, dtype=band.dtype)
    for k in range(2 * window + 1):
        offset = k - window
        if abs(offset) >= n:
            continue
        rows = slice(max(0, -offset), n - max(0, offset))  # rows i with 0 <= i + offset < n
        dense = dense + torch.diagflat(band[rows, k], offset)
    return dense


def dense_to_band_diagflat(dense: Tensor, window: int) -> Tensor:
    """Dense (n, n) -> (n, W) row band, masking each diagonal with a ``diagflat`` of ones."""
    n = dense.shape[0]
    band = torch.zeros(n, 2 * window + 1, dtype=dense.dtype)
    for k in range(2 * window + 1):
        offset = k - window
        if abs(offset) >= n:
            continue
        rows = slice(max(0, -offset), n - max(0, offset))
        ones = torch.diagflat(torch.ones(n - abs(offset), dtype=dense.dtype), offset)
        band[rows, k] = (dense * ones).sum(1)[rows]
    return band


def reference_adl_stage(
    z_source: Tensor,
    z_victim: Tensor,
    lengths: Tensor,
    fitter_out: Tensor,
    window: int,
    reg: float,
) -> ReferenceADLOutput:
    """Cost, Sinkhorn, fit targets, fit loss and imputation, one sample at a time.

    z_source, z_victim: (B, L, d); lengths: (B,) valid steps (shared by both modalities);
    fitter_out: (B, L, W) predicted column band, ``fitter_out[b, j, k]`` the weight of source
    step ``j + k - K`` for victim step ``j``.
    """
    n_batch, seq_len, dim = z_source.shape
    width = 2 * window + 1
    plan_band = torch.zeros(n_batch, seq_len, width, dtype=z_source.dtype)
    target_band = torch.zeros(n_batch, seq_len, width, dtype=z_source.dtype)
    imputed = torch.zeros(n_batch, seq_len, dim, dtype=z_source.dtype)
    squared, count = z_source.new_zeros(()), 0
    for b in range(n_batch):
        n = int(lengths[b])
        if n == 0:
            continue
        cost = dense_windowed_cost(z_source[b, :n], z_victim[b, :n], window)
        with torch.no_grad():
            plan = dense_sinkhorn(cost, reg)
        plan_band[b, :n] = dense_to_band_diagflat(plan, window)
        columns = plan.T  # (victim j, source i)
        target = columns / columns.sum(1, keepdim=True).clamp_min(1e-30)
        target_band[b, :n] = dense_to_band_diagflat(target, window)
        predicted = band_to_dense_diagflat(fitter_out[b, :n], window)  # (victim j, source i)
        in_band = band_to_dense_diagflat(torch.ones(n, width, dtype=z_source.dtype), window)
        squared = squared + (((predicted - target) ** 2) * in_band).sum()
        count += int(in_band.sum())
        imputed[b, :n] = predicted @ z_source[b, :n]
    fit_loss = squared / max(count, 1)
    return ReferenceADLOutput(plan_band, target_band, fit_loss, imputed)


def pot_per_sample(
    z_source: Tensor,
    z_victim: Tensor,
    lengths: Tensor,
    window: int,
    reg: float,
    *,
    max_iter: int = 1000,
    tol: float = 1e-9,
) -> Tensor:
    """POT's ``sinkhorn_log`` per sample on the dense barrier costs -> (B, L, W) row band."""
    import numpy as np
    import ot

    n_batch, seq_len, _ = z_source.shape
    plan_band = torch.zeros(n_batch, seq_len, 2 * window + 1, dtype=torch.float64)
    for b in range(n_batch):
        n = int(lengths[b])
        if n == 0:
            continue
        cost = dense_windowed_cost(z_source[b, :n], z_victim[b, :n], window).double().numpy()
        weights = np.full(n, 1.0 / n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plan = ot.sinkhorn(
                weights, weights, cost, reg, method="sinkhorn_log", numItermax=max_iter, stopThr=tol
            )
        plan_band[b, :n] = dense_to_band_diagflat(torch.from_numpy(plan), window)
    return plan_band


def main(argv=None) -> int:
    from mmalign.ot import sinkhorn_banded, windowed_cosine_cost
    from mmalign.validation import ConvergenceWarning

    parser = argparse.ArgumentParser(description="OT stage: vectorised vs per-sample loops")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    print(f"torch {torch.__version__}, cpu, threads {threads}, float32, reg 0.1, K 8")
    rows = []
    for batch, seq_len in [(32, 50), (32, 200)]:
        gen = torch.Generator().manual_seed(0)
        z_source = torch.randn(batch, seq_len, 32, generator=gen)
        z_victim = z_source + torch.randn(batch, seq_len, 32, generator=gen)
        lengths = torch.randint(seq_len // 5, seq_len + 1, (batch,), generator=gen)
        mask = torch.arange(seq_len)[None, :] < lengths[:, None]  # (B, L)
        fitter_out = torch.softmax(torch.randn(batch, seq_len, 17, generator=gen), -1)

        def ours(max_iter):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                cost = windowed_cosine_cost(z_source, z_victim, mask, mask, 8)
                return sinkhorn_banded(
                    cost, mask, mask, window=8, max_iter=max_iter, check_every=10, tol=1e-4
                )

        timings = {
            "ours, 10 iterations": time_call(lambda: ours(10), repeats=args.repeats),
            "ours, to tol 1e-4 (max 100)": time_call(lambda: ours(100), repeats=args.repeats),
            "reference loop (whole ADL stage)": time_call(
                lambda: reference_adl_stage(z_source, z_victim, lengths, fitter_out, 8, 0.1),
                repeats=args.repeats,
                warmup=1,
            ),
            "POT per sample, 10 iterations": time_call(
                lambda: pot_per_sample(z_source, z_victim, lengths, 8, 0.1, max_iter=10),
                repeats=args.repeats,
                warmup=1,
            ),
        }
        base = timings["ours, 10 iterations"].min_s
        for name, timing in timings.items():
            rows.append(
                [
                    f"B={batch} L={seq_len}",
                    name,
                    f"{timing.min_s * 1e3:.2f}",
                    f"{timing.median_s * 1e3:.2f}",
                    f"{timing.min_s / base:.1f}",
                ]
            )
    print(format_table(["case", "what", "min ms", "median ms", "ratio to ours (10 it)"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
