"""ADL stage, forward and backward: per-sample reference vs POT per sample vs ours.

Run ``python -m benchmarks.adl_stage [--threads 1] [--device cpu] [--repeats 5]`` from the
repository root. The stage is MM-Align's (Han et al., EMNLP 2022, Eq. 7-15) windowed cosine
cost, Sinkhorn, fit targets, fit loss and banded imputation, then one backward pass of
``fit_loss + mean(imputed ** 2)`` into the fitter output and the source steps. The fitter
network itself is not part of the stage (its output is an input here).

Rows per shape (B, L, d=32, K=8, lengths uniform in L/5..L, i.e. 10..50 at L=50):

- (a) ``benchmarks.reference.reference_adl_stage``: the original code's way, a Python loop
  over samples, dense barrier cost, dense Sinkhorn of 10 iterations, ``diagflat`` loops;
- (b) POT's ``sinkhorn_log`` per sample on the same dense costs (the solver only; skipped
  when POT is not importable), 10 iterations like (a);
- (c) ours, the whole stage with the same 10 iterations (like for like), and at the
  training defaults (``tol=1e-4``, ``max_iter=100``, checked every 10), which does up to ten
  times the solver work of (a) and reaches the tolerance (``n_iter`` says how many ran).

``ratio`` is (a)'s time over the row's time (min over min, and median over median). A
consistency check compares (c) at 10 iterations with (a): largest difference of the plan,
the fit loss and the imputation. Timings are only comparable within one run.
"""

from __future__ import annotations

import argparse
import warnings

import torch

from benchmarks._timing import format_table, set_threads, time_call
from benchmarks.reference import pot_per_sample, reference_adl_stage
from mmalign.models.adl import banded_impute, fit_loss, ot_fit_targets
from mmalign.ot import band_valid_mask, sinkhorn_banded, windowed_cosine_cost
from mmalign.validation import ConvergenceWarning

__all__ = ["SHAPES", "make_inputs", "ours_stage", "main"]

SHAPES = [(32, 50), (256, 50), (32, 500)]
GOALS = {(32, 50): 50.0, (256, 50): 30.0, (32, 500): 30.0}


def make_inputs(batch: int, seq_len: int, window: int, dim: int = 32, seed: int = 0):
    """Encoded-like source and victim steps (smooth random walks, the victim a lagged noisy copy).

    Returns ``z_source, z_victim`` (B, L, d), ``lengths`` (B,), ``mask`` (B, L) and a fitter
    output ``(B, L, W)``: a softmax over the valid offsets of each valid row, zero elsewhere.
    """
    gen = torch.Generator().manual_seed(seed)
    steps = torch.randn(batch, seq_len, dim, generator=gen)
    z_source = steps.cumsum(1) / seq_len**0.5 + 0.5 * torch.randn(
        batch, seq_len, dim, generator=gen
    )
    lag = torch.randint(-window // 2, window // 2 + 1, (batch, 1), generator=gen)
    index = (torch.arange(seq_len) + lag).clamp(0, seq_len - 1)  # (B, L)
    z_victim = z_source.gather(1, index[:, :, None].expand(-1, -1, dim))  # (B, L, d)
    z_victim = z_victim + 0.5 * torch.randn(batch, seq_len, dim, generator=gen)
    lengths = torch.randint(max(1, seq_len // 5), seq_len + 1, (batch,), generator=gen)
    lengths[0] = seq_len
    mask = torch.arange(seq_len)[None, :] < lengths[:, None]  # (B, L)
    valid = band_valid_mask(mask, mask, window)  # (B, L, W)
    logits = torch.randn(batch, seq_len, 2 * window + 1, generator=gen)
    fitter_out = torch.softmax(logits.masked_fill(~valid, -torch.inf), -1).nan_to_num(0.0)
    return z_source, z_victim, lengths, mask, fitter_out


def ours_stage(z_source, z_victim, mask, fitter_out, window, reg, max_iter, tol):
    """Our stage on the whole padded batch; returns (plan, fit loss, imputed, n_iter)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cost = windowed_cosine_cost(z_source, z_victim, mask, mask, window)  # (B, L, W)
        ot = sinkhorn_banded(
            cost, mask, mask, window=window, reg=reg, max_iter=max_iter, tol=tol, check_every=10
        )
    target, valid = ot_fit_targets(ot.plan, mask, mask, window)
    loss = fit_loss(fitter_out, target, valid)
    imputed = banded_impute(fitter_out, z_source, window)  # (B, L, d)
    return ot.plan, loss, imputed, ot.n_iter


def _with_grad(*tensors):
    return [t.detach().clone().requires_grad_(True) for t in tensors]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="device of (c); (a) and (b) run on the CPU")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-repeats", type=int, default=3, help="repeats of (a) and (b)")
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--reg", type=float, default=0.1)
    parser.add_argument("--shapes", default="32x50,256x50,32x500", help="BxL,BxL,...")
    parser.add_argument("--no-pot", action="store_true", help="skip (b)")
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    try:
        import ot  # noqa: F401

        have_pot = not args.no_pot
    except ImportError:
        have_pot = False
    device, window, reg = args.device, args.window, args.reg
    print(
        f"torch {torch.__version__}, device {device} for (c), cpu for (a)/(b), threads "
        f"{threads}, float32, d 32, K {window}, reg {reg}, POT {'yes' if have_pot else 'no'}"
    )
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    rows, checks, verdicts = [], [], []
    for batch, seq_len in shapes:
        z_source, z_victim, lengths, mask, fitter_out = make_inputs(batch, seq_len, window)
        on_dev = [t.to(device) for t in (z_source, z_victim, mask, fitter_out)]

        def reference():
            zs, fo = _with_grad(z_source, fitter_out)
            out = reference_adl_stage(zs, z_victim, lengths, fo, window, reg)
            (out.fit_loss + out.imputed.square().mean()).backward()
            return out

        def ours(max_iter, tol):
            zs_d, zv_d, mask_d, fo_d = on_dev
            zs, fo = _with_grad(zs_d, fo_d)
            plan, loss, imputed, n_iter = ours_stage(
                zs, zv_d, mask_d, fo, window, reg, max_iter, tol
            )
            # (a) averages over its own (unpadded) steps: same mean as ours over B * L * d
            (loss + imputed.square().mean()).backward()
            return plan, loss, imputed, n_iter

        # consistency: same 10 iterations (tol tiny so that no early stop happens)
        ref = reference()
        plan, loss, imputed, _ = ours(10, 1e-30)
        checks.append(
            [
                f"B={batch} L={seq_len}",
                f"{float((plan.cpu() - ref.plan).abs().max()):.1e}",
                f"{abs(float(loss) - float(ref.fit_loss)):.1e}",
                f"{float((imputed.detach().cpu() - ref.imputed.detach()).abs().max()):.1e}",
            ]
        )
        n_iter_default = ours(100, 1e-4)[3]
        timings = {
            "(a) reference loop, 10 it": time_call(
                reference, repeats=args.reference_repeats, warmup=1
            ),
        }
        if have_pot:
            timings["(b) POT sinkhorn_log per sample, 10 it (solver only)"] = time_call(
                lambda: pot_per_sample(z_source, z_victim, lengths, window, reg, max_iter=10),
                repeats=args.reference_repeats,
                warmup=1,
            )
        timings["(c) ours, 10 it"] = time_call(lambda: ours(10, 1e-30), repeats=args.repeats)
        timings[f"(c) ours, tol 1e-4 (ran {n_iter_default} it)"] = time_call(
            lambda: ours(100, 1e-4), repeats=args.repeats
        )
        base = timings["(a) reference loop, 10 it"]
        for name, t in timings.items():
            rows.append(
                [
                    f"B={batch} L={seq_len}",
                    name,
                    f"{t.min_s * 1e3:.2f} / {t.median_s * 1e3:.2f}",
                    f"{base.min_s / t.min_s:.1f} / {base.median_s / t.median_s:.1f}",
                ]
            )
        goal = GOALS.get((batch, seq_len))
        if goal is not None:
            like = base.min_s / timings["(c) ours, 10 it"].min_s
            default = base.min_s / timings[f"(c) ours, tol 1e-4 (ran {n_iter_default} it)"].min_s
            verdicts.append(
                f"B={batch} L={seq_len}: goal >= {goal:.0f}x; like for like {like:.1f}x "
                f"({'met' if like >= goal else 'NOT met'}), training defaults {default:.1f}x "
                f"({'met' if default >= goal else 'NOT met'})"
            )
    print(
        format_table(["shape", "what", "ms (min / median)", "ratio (a)/row (min / median)"], rows)
    )
    print()
    print("consistency, (c) at 10 iterations vs (a):")
    print(
        format_table(["shape", "max |plan diff|", "|fit loss diff|", "max |imputed diff|"], checks)
    )
    print()
    print("\n".join(verdicts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
