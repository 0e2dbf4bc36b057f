"""Peak memory of the OT stage (windowed cost + banded Sinkhorn) as the length L grows.

Run ``python -m benchmarks.ot_memory [--threads 1] [--batch 8] [--window 8]`` from the
repository root. On CUDA the peak is ``torch.cuda.max_memory_allocated`` around the stage. On
CPU each length runs in a fresh subprocess and the peak is the growth of the process's maximum
resident set size (``resource.getrusage``) during the stage: tensors of this size are served by
``mmap`` and touched, so the growth tracks the stage's own allocations (to within a page).
Memory should grow linearly in L: the "bytes / L" column should stay flat. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import torch

from benchmarks._timing import format_table, set_threads

__all__ = ["measure", "main"]

LENGTHS = [500, 1000, 2000]


def _inputs(batch: int, seq_len: int, dim: int, device: str):
    gen = torch.Generator().manual_seed(0)
    z_source = torch.randn(batch, seq_len, dim, generator=gen).to(device)
    z_victim = (z_source.cpu() + torch.randn(batch, seq_len, dim, generator=gen)).to(device)
    mask = torch.ones(batch, seq_len, dtype=torch.bool, device=device)
    return z_source, z_victim, mask


def _stage(z_source, z_victim, mask, window: int, max_iter: int):
    import warnings

    from mmalign.ot import sinkhorn_banded, windowed_cosine_cost
    from mmalign.validation import ConvergenceWarning

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cost = windowed_cosine_cost(z_source, z_victim, mask, mask, window)
        return sinkhorn_banded(cost, mask, mask, window=window, max_iter=max_iter).plan


def measure(batch: int, seq_len: int, window: int, dim: int, device: str, max_iter: int) -> int:
    """Peak bytes allocated by the OT stage beyond its inputs (run in this process)."""
    z_source, z_victim, mask = _inputs(batch, seq_len, dim, device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        _stage(z_source, z_victim, mask, window, max_iter)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    # warm up imports and torch's lazy state on a tiny problem first
    _stage(*_inputs(1, 4, dim, device), window, 1)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _stage(z_source, z_victim, mask, window, max_iter)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024  # KiB on Linux


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--lengths", type=int, nargs="+", default=LENGTHS)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    if args.child is not None:
        peak = measure(args.batch, args.child, args.window, args.dim, args.device, args.max_iter)
        print(json.dumps({"peak": peak}))
        return 0
    print(
        f"torch {torch.__version__}, device {args.device}, threads {threads}, B {args.batch}, "
        f"K {args.window}, D {args.dim}, float32, max_iter {args.max_iter}"
    )
    width = 2 * args.window + 1
    rows, first = [], None
    for seq_len in args.lengths:
        if args.device.startswith("cuda"):
            peak = measure(args.batch, seq_len, args.window, args.dim, args.device, args.max_iter)
        else:
            child = [sys.executable, "-m", "benchmarks.ot_memory", "--child", str(seq_len)]
            child += [
                f"--{k}={v}"
                for k, v in [
                    ("threads", args.threads),
                    ("batch", args.batch),
                    ("window", args.window),
                    ("dim", args.dim),
                    ("max-iter", args.max_iter),
                    ("device", args.device),
                ]
            ]
            out = subprocess.run(child, check=True, capture_output=True, text=True).stdout
            peak = json.loads(out.strip().splitlines()[-1])["peak"]
        band_bytes = args.batch * seq_len * width * 4
        per_len = peak / seq_len
        first = first or per_len
        rows.append(
            [
                seq_len,
                f"{peak / 2**20:.2f}",
                f"{per_len / 1024:.1f}",
                f"{per_len / first:.2f}",
                f"{peak / band_bytes:.1f}",
                f"{args.batch * seq_len * seq_len * 4 / 2**20:.1f}",
            ]
        )
    print(
        format_table(
            [
                "L",
                "peak MiB",
                "KiB / L",
                "(bytes / L) ratio to first",
                "peak / one (B,L,W) band",
                "one dense (B,L,L) MiB",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
