"""Peak memory and time of the unequal-length OT stage (column-band cost + sinkhorn_columns).

Run ``python -m benchmarks.ot_unequal_memory [--threads 1] [--batch 32] [--window 8]`` from the
repository root. The source length stays at ``--source-len`` (50, e.g. words) while the victim
length grows (125 to 1000, e.g. audio frames); every sample uses its full lengths, so the
window follows the rescaled diagonal ``c_j = floor((2j + 1) Ls / (2 Lv))``.

Peak memory is measured as in ``benchmarks/ot_memory.py``: on CUDA
``torch.cuda.max_memory_allocated`` around the stage; on CPU each length runs in a fresh
subprocess and the peak is the growth of the process's maximum resident set size
(``resource.getrusage``) during the stage. The stage never builds an ``Ls x Lv`` matrix, so the
peak should grow linearly in ``Lv``: about 2x per doubling ("peak ratio to previous"). With
``Ls`` fixed, one dense ``(B, Ls, Lv)`` matrix grows linearly in ``Lv`` too, so "peak / dense"
stays about constant; it is ``Ls / W`` times the number of band-sized buffers the stage holds,
and falls as ``Ls`` grows (the band does not depend on ``Ls``). Wall time per solve
(cost + solver at ``--max-iter`` iterations) is the min / median of ``--repeats`` calls after
one warm-up, in the same subprocess, after the memory measurement. Nothing is asserted.

The CPU reading is noisy by a few MiB: glibc raises its mmap threshold after freeing a large
buffer, so later buffers of that size come from the heap, whose freed pages stay resident.
``--mmap-threshold 65536`` starts each subprocess with ``MALLOC_MMAP_THRESHOLD_`` fixed (every
large buffer is mapped and unmapped), which makes the reading close to the live peak.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

import torch

from benchmarks._timing import format_table, set_threads, time_call

__all__ = ["measure", "main"]

VICTIM_LENGTHS = [125, 250, 500, 1000]


def _inputs(batch: int, source_len: int, victim_len: int, dim: int, device: str):
    gen = torch.Generator().manual_seed(0)
    z_source = torch.randn(batch, source_len, dim, generator=gen).to(device)
    z_victim = torch.randn(batch, victim_len, dim, generator=gen).to(device)
    source_mask = torch.ones(batch, source_len, dtype=torch.bool, device=device)
    victim_mask = torch.ones(batch, victim_len, dtype=torch.bool, device=device)
    return z_source, z_victim, source_mask, victim_mask


def _stage(z_source, z_victim, source_mask, victim_mask, window: int, max_iter: int):
    import warnings

    from mmalign.ot import column_cosine_cost, diagonal_centres, sinkhorn_columns
    from mmalign.validation import ConvergenceWarning

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        centres = diagonal_centres(source_mask.sum(1), victim_mask.sum(1), victim_mask.shape[1])
        cost = column_cosine_cost(z_source, z_victim, source_mask, victim_mask, centres, window)
        return sinkhorn_columns(
            cost, source_mask, victim_mask, centres, window=window, max_iter=max_iter
        )


def measure(
    batch: int,
    source_len: int,
    victim_len: int,
    window: int,
    dim: int,
    device: str,
    max_iter: int,
    repeats: int,
) -> dict[str, float]:
    """Peak bytes of the stage beyond its inputs, then seconds per stage (run in this process)."""
    inputs = _inputs(batch, source_len, victim_len, dim, device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        result = _stage(*inputs, window, max_iter)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        # warm up imports and torch's lazy state on a tiny problem first
        _stage(*_inputs(1, 4, 6, dim, device), window, 1)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = _stage(*inputs, window, max_iter)
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024  # KiB on Linux
    n_iter = result.n_iter
    del result
    timing = time_call(lambda: _stage(*inputs, window, max_iter), repeats=repeats, warmup=1)
    return {"peak": peak, "min_s": timing.min_s, "median_s": timing.median_s, "n_iter": n_iter}


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min) / {five:.2f} (5 min)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--source-len", type=int, default=50)
    parser.add_argument("--victim-lens", type=int, nargs="+", default=VICTIM_LENGTHS)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per length")
    parser.add_argument(
        "--mmap-threshold",
        type=int,
        default=0,
        help="CPU: set MALLOC_MMAP_THRESHOLD_ (bytes) in each subprocess; 0 keeps glibc's default",
    )
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    if args.child is not None:
        out = measure(
            args.batch,
            args.source_len,
            args.child,
            args.window,
            args.dim,
            args.device,
            args.max_iter,
            args.repeats,
        )
        print(json.dumps(out))
        return 0
    print(
        f"torch {torch.__version__}, device {args.device}, threads {threads}, B {args.batch}, "
        f"Ls {args.source_len}, K {args.window}, D {args.dim}, float32, "
        f"max_iter {args.max_iter}, mmap threshold "
        f"{args.mmap_threshold or 'glibc default'}, load before {_load()}",
        flush=True,
    )
    rows, previous = [], None
    for victim_len in args.victim_lens:
        if args.device.startswith("cuda"):
            out = measure(
                args.batch,
                args.source_len,
                victim_len,
                args.window,
                args.dim,
                args.device,
                args.max_iter,
                args.repeats,
            )
        else:
            child = [sys.executable, "-m", "benchmarks.ot_unequal_memory", "--child"]
            child += [str(victim_len)]
            child += [
                f"--{k}={v}"
                for k, v in [
                    ("threads", args.threads),
                    ("batch", args.batch),
                    ("source-len", args.source_len),
                    ("window", args.window),
                    ("dim", args.dim),
                    ("max-iter", args.max_iter),
                    ("repeats", args.repeats),
                    ("device", args.device),
                ]
            ]
            env = dict(os.environ)
            if args.mmap_threshold:
                env["MALLOC_MMAP_THRESHOLD_"] = str(args.mmap_threshold)
            text = subprocess.run(child, check=True, capture_output=True, text=True, env=env).stdout
            out = json.loads(text.strip().splitlines()[-1])
        peak = out["peak"]
        dense = args.batch * args.source_len * victim_len * 4
        ratio = "-" if not previous else f"{peak / previous:.2f}"
        previous = peak
        rows.append(
            [
                victim_len,
                f"{peak / 2**20:.2f}",
                ratio,
                f"{dense / 2**20:.2f}",
                f"{peak / dense:.2f}",
                f"{out['min_s'] * 1e3:.1f} / {out['median_s'] * 1e3:.1f}",
                out["n_iter"],
            ]
        )
    print(
        format_table(
            [
                "Lv",
                "peak MiB",
                "peak ratio to previous Lv",
                "one dense (B,Ls,Lv) MiB",
                "peak / dense",
                "ms per solve (min / median)",
                "n_iter",
            ],
            rows,
        )
    )
    print(f"load after {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
