"""Per-batch training cost: the random-missing protocol beside the pair protocol, equal batch size.

Run ``python -m benchmarks.pattern_batch_cost [--threads 1] [--repeats 10]`` from the
repository root. On the CMU-MOSI-sized synthetic training split (aligned, three modalities),
one training batch of ``--batch-size`` samples (build the batch, losses, backward, optimiser
steps) is timed for LB and MM-Align (untrained, default sizes) under

* ``pair``: the paper's protocol, text -> vision with p = 0.1 (the two-modality models). MM-Align
  has two kinds of batch there: complete ones (the alignment is learned) and missing ones
  (imputation only); an epoch at p = 0.1 is 10% the former, so ``pair`` is the epoch-weighted
  mean of the two and both are printed;
* ``random``: ``--missing-rate 0.3 --frame-drop 0.2`` (the three-modality models);
* ``pair-3``: the same three-modality models on the pair protocol's draw expressed as masks
  (``pair_missingness``: text always, vision where the T->V, p = 0.1 split keeps it, audio
  never), the batch's first rows;
* ``complete-3``: the same three-modality models on batches with every modality and every step
  present (R = 0, F = 0).

``random / pair-3`` compares the two protocols at equal batch size *and equal model*: what
the random-missing protocol itself costs (masks, imputing absent modalities and dropped
steps). ``random / pair`` also changes the model (three encoders and six aligned pairs
against two and one) and is printed beside it. Every configuration is timed in this one
process, alternating, with the thread count and the load average printed. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os

import torch

from benchmarks._timing import format_table, set_threads, time_call
from mmalign.config import RunConfig
from mmalign.data.batching import PairData
from mmalign.data.missingness import draw_missingness, pair_missingness
from mmalign.data.pattern_batching import PatternData
from mmalign.data.splits import make_missing_split
from mmalign.data.synthetic import make_synthetic
from mmalign.models.method import PairDims
from mmalign.models.pattern_method import PatternDims, PatternModel
from mmalign.models.registry import get_method
from mmalign.train.loop import build_optimizers, train_step

__all__ = ["main"]

METHODS = ("lb", "mm-align")
P_COMPLETE = 0.1  # share of complete batches in a pair-protocol epoch at p = 0.1


def _stepper(model, data, rows, phase, device):
    optimizers = build_optimizers(model, {"*": 1e-3}, log=lambda s: None)
    index = torch.as_tensor(rows, device=device)
    model.train()

    def step():
        batch = data.batch(index)
        losses = model.compute_losses(batch, phase)
        train_step(model, losses, optimizers, None, 0.8)

    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    before = os.getloadavg()[0]
    dataset = make_synthetic()
    train = dataset.splits["train"]
    rows = torch.arange(args.batch_size)
    pair = PairData.from_split(train, "text", "vision", resample=False).to(args.device)
    random = draw_missingness(dataset, 0.3, 0.2, 3.0, 0).splits["train"]
    patterns = PatternData.from_split(train, random).to(args.device)
    complete = PatternData.from_split(train, random.complete(train)).to(args.device)
    split = make_missing_split(dataset, "vision", P_COMPLETE, 0)
    as_masks = pair_missingness(dataset, split, "text")["train"]
    pair3 = PatternData.from_split(train, as_masks).to(args.device)
    pair_dims = PairDims(
        dataset.feature_dims["text"], dataset.feature_dims["vision"], 1, "regression"
    )
    dims = PatternDims(dict(dataset.feature_dims), 1, "regression")
    print(
        f"torch {torch.__version__}, device {args.device}, threads {threads}, load before "
        f"{before:.2f}; batch {args.batch_size}, synthetic (CMU-MOSI sizes, aligned)"
    )
    table = []
    for name in args.methods.split(","):
        method = get_method(name)
        times = {}
        for label, build, data, phase in (
            ("pair complete", lambda: method.build(pair_dims, RunConfig()), pair, "complete"),
            ("pair missing", lambda: method.build(pair_dims, RunConfig()), pair, "missing"),
            ("random", lambda: method.build_patterns(dims, RunConfig()), patterns, "mixed"),
            ("pair-3", lambda: method.build_patterns(dims, RunConfig()), pair3, "mixed"),
            ("complete-3", lambda: method.build_patterns(dims, RunConfig()), complete, "mixed"),
        ):
            torch.manual_seed(0)
            model = build()
            if isinstance(model, PatternModel):
                model.set_victim_rates({}, shared_axis=True)  # aligned data, as a run sets it
            model = model.to(args.device)
            step = _stepper(model, data, rows, phase, args.device)
            times[label] = time_call(step, repeats=args.repeats, warmup=2).median_s
        pair_s = P_COMPLETE * times["pair complete"] + (1 - P_COMPLETE) * times["pair missing"]
        table.append(
            [
                name,
                f"{1e3 * times['pair complete']:.0f} / {1e3 * times['pair missing']:.0f}",
                f"{1e3 * pair_s:.0f}",
                f"{1e3 * times['random']:.0f}",
                f"{1e3 * times['pair-3']:.0f}",
                f"{1e3 * times['complete-3']:.0f}",
                f"{times['random'] / times['pair-3']:.2f}x",
                f"{times['random'] / times['complete-3']:.2f}x",
                f"{times['random'] / pair_s:.2f}x",
            ]
        )
    header = [
        "method",
        "pair complete/missing ms",
        "pair (epoch mix) ms",
        "random ms",
        "pair-3 ms",
        "complete-3 ms",
        "random / pair-3",
        "random / complete-3",
        "random / pair (other model)",
    ]
    print(format_table(header, table))
    print(f"load after {os.getloadavg()[0]:.2f} (median of {args.repeats} batches each)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
