"""Time the banded Sinkhorn against "the practical floor": one elementwise pass over the band.

Run ``python -m benchmarks.ot_solver [--threads 1] [--device cpu]`` from the repository root.
The floor is one ``torch.exp`` over a ``(B, L, W)`` tensor; the solver's time is printed as a
multiple of it ("passes"), measured side by side in the same process. Nothing is asserted.
Settings: reg=0.1 (the training default), tol=1e-4, check_every=10, max_iter=100.
"""

from __future__ import annotations

import argparse
import itertools
import warnings

import torch

from benchmarks._timing import format_table, set_threads, time_call
from mmalign.ot import sinkhorn_banded, windowed_cosine_cost
from mmalign.validation import ConvergenceWarning

__all__ = ["make_problem", "main"]

CASES = [(32, 50, 8), (256, 50, 8), (32, 500, 8)]


def make_problem(
    batch: int,
    seq_len: int,
    window: int,
    *,
    dim: int = 32,
    seed: int = 0,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
):
    """Cost band and masks for smooth random-walk sequences, lengths uniform in L/5..L."""
    gen = torch.Generator().manual_seed(seed)
    steps = torch.randn(batch, seq_len, dim, generator=gen)
    z_source = steps.cumsum(1) / seq_len**0.5 + 0.5 * torch.randn(
        batch, seq_len, dim, generator=gen
    )
    lag = torch.randint(-window // 2, window // 2 + 1, (batch, 1), generator=gen)
    index = (torch.arange(seq_len) + lag).clamp(0, seq_len - 1)  # (B, L)
    z_victim = z_source.gather(1, index[:, :, None].expand(-1, -1, dim))  # (B, L, D)
    z_victim = z_victim + 0.5 * torch.randn(batch, seq_len, dim, generator=gen)
    lengths = torch.randint(max(1, seq_len // 5), seq_len + 1, (batch,), generator=gen)
    lengths[0] = seq_len
    mask = torch.arange(seq_len)[None, :] < lengths[:, None]  # (B, L)
    z_source, z_victim, mask = (t.to(device) for t in (z_source, z_victim, mask))
    cost = windowed_cosine_cost(z_source.to(dtype), z_victim.to(dtype), mask, mask, window)
    return cost, mask


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--reg", type=float, default=0.1)
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--check-every", type=int, default=10)
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--overrelaxation", type=float, nargs="+", default=[1.0, 1.8])
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    print(
        f"torch {torch.__version__}, device {args.device}, threads {threads}, dtype "
        f"{args.dtype}, reg {args.reg}, tol {args.tol}, check_every {args.check_every}, "
        f"max_iter {args.max_iter}"
    )
    rows = []
    for (batch, seq_len, window), omega in itertools.product(CASES, args.overrelaxation):
        cost, mask = make_problem(batch, seq_len, window, device=args.device, dtype=dtype)

        def solve():
            with warnings.catch_warnings():
                # non-convergence shows in the table (n_iter = max_iter, max err > tol)
                warnings.simplefilter("ignore", ConvergenceWarning)
                return sinkhorn_banded(
                    cost,
                    mask,
                    mask,
                    window=window,
                    reg=args.reg,
                    tol=args.tol,
                    max_iter=args.max_iter,
                    check_every=args.check_every,
                    overrelaxation=omega,
                )

        result = solve()
        floor = time_call(lambda: torch.exp(cost), repeats=args.repeats)
        solver = time_call(solve, repeats=args.repeats)
        rows.append(
            [
                f"B={batch} L={seq_len} K={window}",
                omega,
                result.n_iter,
                f"{float(result.marginal_error.max()):.1e}",
                f"{floor.min_s * 1e6:.1f} / {floor.median_s * 1e6:.1f}",
                f"{solver.min_s * 1e3:.3f} / {solver.median_s * 1e3:.3f}",
                f"{solver.min_s / floor.min_s:.0f}",
                f"{solver.min_s / floor.min_s / result.n_iter:.1f}",
            ]
        )
    print(
        format_table(
            [
                "case",
                "omega",
                "n_iter",
                "max err",
                "exp pass us (min/med)",
                "solver ms (min/med)",
                "solver / pass",
                "passes per iter",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
