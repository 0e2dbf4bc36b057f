"""Roofline of one training step on CPU, and the most that stacking several runs could gain.

Run ``python -m benchmarks.roofline [--threads 1] [--repeats 5] [--methods mm-align,lb]`` from
the repository root. Question (issue 13): can training several runs (seeds) in one process,
with their parameters stacked along an ensemble dimension, raise the grid's throughput on
this CPU by 2.5x over one run per 1-thread worker? Stacking only pays if one step does not
already use the CPU's matmul rate, i.e. if a bigger step costs less than proportionally more.
Prints the thread count and the load average before and after, then:

1. **Machine GEMM rate.** Sustained fp32 GFLOP/s of ``torch.matmul`` for a large square
   GEMM (1024) and for the model's own shapes at B = 32, L = 50, d = 32, 4 heads: the
   projections (B*L, d) @ (d, 3d) and (B*L, d) @ (d, 4d), a weight gradient
   (d, B*L) @ (B*L, 3d), and the batched attention product (B*h, L, d/h) @ (B*h, d/h, L).
2. **Per training step** (complete and missing batches, each method built by the registry
   and stepped by the training loop's own ``train_step`` -- backward, clipping, AdamW -- as in
   ``benchmarks/train_step.py``): the forward + backward FLOPs counted once by
   ``torch.utils.flop_counter.FlopCounterMode`` (matmul-family ops only: elementwise work,
   Sinkhorn and AdamW count 0), the median step time, the achieved GFLOP/s and its fraction
   of the large-GEMM rate; and, from ``torch.profiler`` (CPU), the self CPU time of the
   matmul-family ops per step (``MATMUL_OPS``), the rate inside them, and their share of the
   unprofiled median step time (and of all ``aten::`` self time, profiled). Two bounds
   follow: ``1 / share`` (every non-matmul op and all Python overhead removed) and
   ``1 / fraction`` (the step's FLOPs at the large-GEMM rate).
3. **Stacking bound.** The step time of one model at batch size B = 32 against S*B for S in
   2, 3, 5. Batches of size S*B hold the same rows: the size-s batch is the first s rows of
   each size-5B batch, trimmed to its longest sequence as ``PairData.batch`` trims. S runs
   stacked in one process do at least the work of one model on S*B rows (plus S copies of
   the parameter-side work: weight gradients' reductions, clipping, AdamW), so
   ``S * t(B) / t(S*B)`` is an upper bound on the throughput gain from stacking S runs per
   process. Sizes alternate within each of ``--rounds`` rounds; the best median is kept.
   With ``--two-threads``, also the step at S*B with 2 threads against two ideal 1-thread
   workers: ``S * t1(B) / (2 * t2(S*B))`` (ideal = no slowdown between the two workers).

Nothing is asserted.
"""

from __future__ import annotations

import argparse
import itertools
import os
from dataclasses import fields, replace

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from benchmarks._timing import format_table, set_threads, time_call
from benchmarks.train_step import make_pair_batches
from mmalign.config import ADLConfig, ModelConfig, RunConfig, TrainConfig
from mmalign.data.batching import Batch
from mmalign.models.registry import get_method
from mmalign.train.loop import build_optimizers, train_step

__all__ = ["MATMUL_OPS", "gemm_rates", "first_rows", "main"]

METHODS = ("mm-align", "lb")
PHASES = ("complete", "missing")
STACKS = (1, 2, 3, 5)

# matmul-family operators (self CPU time); any op whose name holds "scaled_dot_product" too
MATMUL_OPS = frozenset(
    {
        "aten::mm",
        "aten::bmm",
        "aten::addmm",
        "aten::baddbmm",
        "aten::addbmm",
        "aten::addmv",
        "aten::mv",
        "aten::dot",
        "aten::matmul",
        "aten::linear",
        "aten::einsum",
    }
)


def _is_matmul(name: str) -> bool:
    return name in MATMUL_OPS or "scaled_dot_product" in name


def gemm_rates(repeats: int, batch: int = 32, length: int = 50, d: int = 32, heads: int = 4):
    """Sustained fp32 GFLOP/s of ``torch.matmul`` for a large GEMM and the model's shapes.

    Parameters
    ----------
    repeats : int
        Timed calls per shape (each call runs the product ``inner`` times).
    batch, length, d, heads : int
        Batch size, padded length, model width and attention heads of the model's shapes.

    Returns
    -------
    list of (str, float, float)
        ``(shape label, GFLOP/s at the median, microseconds per product)`` per shape; the
        first row is the large square GEMM.
    """
    g = torch.Generator().manual_seed(0)
    h, e, n = heads, d // heads, batch * length
    shapes = [  # (label, left shape, right shape)
        ("(1024, 1024) @ (1024, 1024)", (1024, 1024), (1024, 1024)),
        (f"({n}, {d}) @ ({d}, {3 * d})", (n, d), (d, 3 * d)),
        (f"({n}, {d}) @ ({d}, {4 * d})", (n, d), (d, 4 * d)),
        (f"({d}, {n}) @ ({n}, {3 * d})", (d, n), (n, 3 * d)),
        (
            f"({batch * h}, {length}, {e}) @ ({batch * h}, {e}, {length})",
            (batch * h, length, e),
            (batch * h, e, length),
        ),
    ]
    rows = []
    for label, left, right in shapes:
        a, b = torch.randn(left, generator=g), torch.randn(right, generator=g)
        flops = 2 * a[..., 0].numel() * a.shape[-1] * b.shape[-1]  # 2 * (batch * m) * k * n
        inner = max(1, int(2e8 // flops))  # about 0.2 GFLOP per timed call

        def run(a=a, b=b, inner=inner):
            for _ in range(inner):
                torch.matmul(a, b)

        seconds = time_call(run, repeats=repeats, warmup=2).median_s / inner
        rows.append((label, flops / seconds / 1e9, seconds * 1e6))
    return rows


def first_rows(batch: Batch, size: int) -> Batch:
    """The first ``size`` rows of ``batch``, trimmed to their longest sequences.

    Parameters
    ----------
    batch : Batch
        Source (N, L, D_s), victim (N, M, D_v) and masks (N, L), (N, M); ``size <= N``.
    size : int

    Returns
    -------
    Batch
        Source (size, L', D_s), victim (size, M', D_v) with ``L'`` the longest source among
        the rows (>= 1) and ``M' = L'`` on the source's axis, else the longest victim.
    """
    rows = replace(batch, **{f.name: getattr(batch, f.name)[:size] for f in fields(batch)})
    steps = max(1, int(rows.source_mask.sum(1).max()))
    own_axis = batch.victim.shape[1] != batch.source.shape[1]
    victim_steps = max(1, int(rows.victim_mask.sum(1).max())) if own_axis else steps
    return replace(
        rows,
        source=rows.source[:, :steps],
        source_mask=rows.source_mask[:, :steps],
        victim=rows.victim[:, :victim_steps],
        victim_mask=rows.victim_mask[:, :victim_steps],
    )


def _stepper(name: str, config: RunConfig, dims):
    """A model built as ``benchmarks/train_step.py`` builds it; ``step(batch, phase)``."""
    torch.manual_seed(0)
    model = get_method(name).build(dims, config).train()
    optimizers = build_optimizers(
        model, get_method(name).learning_rates(config), log=lambda _: None
    )
    groups = tuple(optimizers)

    def step(batch: Batch, phase: str) -> None:
        losses = model.compute_losses(batch, phase)
        train_step(model, losses, optimizers, groups, config.train.grad_clip)

    return step


def _flops(step, batch: Batch, phase: str) -> int:
    with FlopCounterMode(display=False) as counter:
        step(batch, phase)
    return counter.get_total_flops()


def _matmul_profile(step, batches: list[Batch], phase: str) -> tuple[float, float, str]:
    """Matmul-family self CPU seconds per step, its share of all op self time, top others."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches:
            step(batch, phase)
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    matmul = sum(e.self_cpu_time_total for e in events if _is_matmul(e.key))
    total = sum(e.self_cpu_time_total for e in events)
    others = sorted(
        (e for e in events if not _is_matmul(e.key)), key=lambda e: -e.self_cpu_time_total
    )
    top = ", ".join(f"{e.key[6:]} {100 * e.self_cpu_time_total / total:.0f}%" for e in others[:3])
    return matmul / 1e6 / len(batches), matmul / total, top


def _times(step, sized, phase: str, repeats: int, rounds: int) -> dict[int, float]:
    """Best (over rounds) median seconds per step at each stack size, sizes alternating."""
    best = {s: float("inf") for s in sized}
    for _ in range(rounds):
        for s, batches in sized.items():
            cycle = itertools.cycle(batches)
            t = time_call(lambda: step(next(cycle), phase), repeats=repeats, warmup=2)
            best[s] = min(best[s], t.median_s)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batches", type=int, default=4, help="distinct batches per phase")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--two-threads", action="store_true", help="also S*B at 2 threads")
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    batch_size, methods = args.batch_size, args.methods.split(",")
    big, dims = make_pair_batches(args.batches, max(STACKS) * batch_size, "cpu")
    sized = {
        phase: {s: [first_rows(b, s * batch_size) for b in big[phase]] for s in STACKS}
        for phase in PHASES
    }
    print(
        f"torch {torch.__version__}, threads {threads}, load before {os.getloadavg()[0]:.2f} "
        f"(1/5/15-min {', '.join(f'{x:.2f}' for x in os.getloadavg())}); synthetic T->V, "
        f"B={batch_size}, d=32, 4 heads, {args.batches} batches per phase and size, median of "
        f"{args.repeats} steps, best of {args.rounds} rounds"
    )

    print(f"\n1. machine GEMM rate (torch.matmul, fp32, {threads} thread(s))")
    rates = gemm_rates(max(args.repeats, 10), batch=batch_size)
    peak = rates[0][1]
    rows = [[label, f"{r:.1f}", f"{us:.0f}", f"{r / peak:.0%}"] for label, r, us in rates]
    print(format_table(["product", "GFLOP/s", "us per product", "of large GEMM"], rows))

    config = RunConfig(model=ModelConfig(), adl=ADLConfig(), train=TrainConfig())
    steps = {m: _stepper(m, config, dims) for m in methods}
    times, flops, prof = {}, {}, {}
    for m, phase in itertools.product(methods, PHASES):
        for s in STACKS:
            flops[m, phase, s] = _flops(steps[m], sized[phase][s][0], phase)
        times[m, phase] = _times(steps[m], sized[phase], phase, args.repeats, args.rounds)
        prof[m, phase] = _matmul_profile(steps[m], sized[phase][1], phase)

    print(f"\n2. one training step at B={batch_size} (forward + backward + clip + AdamW)")
    rows = []
    for (m, phase), (mm_s, of_ops, top) in prof.items():
        t, f = times[m, phase][1], flops[m, phase, 1]
        rate, share = f / t / 1e9, mm_s / t
        rows.append(
            [
                m,
                phase,
                f"{f / 1e6:.0f}",
                f"{t * 1e3:.1f}",
                f"{rate:.2f}",
                f"{rate / peak:.1%}",
                f"{mm_s * 1e3:.1f}",
                f"{f / mm_s / 1e9:.1f}",
                f"{share:.0%} ({of_ops:.0%})",
                f"{1 / share:.1f}x",
                f"{peak / rate:.0f}x",
                top,
            ]
        )
    header = [
        "method",
        "batch",
        "MFLOP",
        "median ms",
        "GFLOP/s",
        "of large GEMM",
        "matmul ms",
        "GFLOP/s in matmul ops",
        "matmul share of step (of op time)",
        "bound: only matmul",
        "bound: at GEMM rate",
        "top other ops (share of op time)",
    ]
    print(format_table(header, rows))

    print(f"\n3. stacking bound S * t(B) / t(S*B), one model, {threads} thread(s)")
    rows = []
    for m, phase in itertools.product(methods, PHASES):
        t = times[m, phase]
        for s in STACKS[1:]:
            rate = flops[m, phase, s] / t[s] / 1e9
            rows.append(
                [
                    m,
                    phase,
                    s,
                    f"{t[1] * 1e3:.1f}",
                    f"{t[s] * 1e3:.1f}",
                    f"{t[s] / t[1]:.2f}x",
                    f"{rate:.2f} ({rate / peak:.1%})",
                    f"{s * t[1] / t[s]:.2f}x",
                ]
            )
    header = ["method", "batch", "S", "t(B) ms", "t(S*B) ms", "t(S*B) / t(B)"]
    print(format_table(header + ["GFLOP/s at S*B (of GEMM)", "bound S*t(B)/t(S*B)"], rows))

    if args.two_threads:
        set_threads(2)
        print("\n   one 2-thread process stacking S runs vs two ideal 1-thread workers")
        rows = []
        for m, phase in itertools.product(methods, PHASES):
            t1 = times[m, phase][1]
            t2 = _times(steps[m], sized[phase], phase, args.repeats, args.rounds)
            for s in STACKS:
                rows.append([m, phase, s, f"{t2[s] * 1e3:.1f}", f"{s * t1 / (2 * t2[s]):.2f}x"])
        print(format_table(["method", "batch", "S", "t2(S*B) ms", "S*t1(B)/(2*t2(S*B))"], rows))
        set_threads(args.threads)
    print(f"\nload after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
