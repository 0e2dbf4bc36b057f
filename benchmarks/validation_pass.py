"""One validation pass over both settings: one prediction per setting vs encode-and-impute once.

Run ``python -m benchmarks.validation_pass [--threads 1] [--repeats 3]`` from the repository
root. Each epoch ends with validation under settings A (victim absent everywhere) and B
(absent with probability ``1 - p``). The loop used to call ``predict_outputs`` once per
setting, so every batch was encoded twice and its victim imputed twice (for Modal-Trans, two
autoregressive decodes). ``predict_settings`` encodes the source and the real victim once,
imputes once and runs only the fusion per setting. For each method (untrained weights,
d = 32, K = 8, the CMU-MOSI-sized synthetic validation split, p = 0.1) both ways are timed
alternately in this one process, so load changes hit both alike; the ratio is printed with
the thread count and the load average before and after. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch

from benchmarks._timing import format_table, set_threads, time_call
from mmalign.config import RunConfig
from mmalign.data.batching import PairData
from mmalign.data.splits import make_missing_split
from mmalign.data.synthetic import make_synthetic
from mmalign.models.method import PairDims
from mmalign.models.registry import get_method
from mmalign.train.loop import predict_outputs, predict_settings

__all__ = ["main"]

METHODS = ("mm-align", "modal-trans")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    before = os.getloadavg()[0]
    dataset = make_synthetic()
    split = make_missing_split(dataset, "vision", 0.1, 0)
    valid = dataset.splits["valid"]
    present = {s: split.present("valid", s) for s in ("A", "B")}
    anywhere = np.any(list(present.values()), axis=0)
    pair = PairData.from_split(valid, "text", "vision", anywhere).to(args.device)
    dims = PairDims(dataset.feature_dims["text"], dataset.feature_dims["vision"], 1, dataset.task)
    batch = RunConfig().train.eval_batch_size
    print(
        f"torch {torch.__version__}, device {args.device}, threads {threads}, load before "
        f"{before:.2f}; {len(pair)} validation samples, batch {batch}, settings A and B"
    )
    rows = []
    for name in args.methods.split(","):
        torch.manual_seed(0)
        model = get_method(name).build(dims, RunConfig()).to(args.device).eval()

        def separate():
            for p in present.values():
                predict_outputs(model, pair, p, batch)

        def together():
            predict_settings(model, pair, present, batch)

        old = time_call(separate, repeats=args.repeats, warmup=1)
        new = time_call(together, repeats=args.repeats, warmup=1)
        rows.append(
            [
                name,
                f"{old.min_s:.2f} / {old.median_s:.2f}",
                f"{new.min_s:.2f} / {new.median_s:.2f}",
                f"{old.min_s / new.min_s:.2f}x",
            ]
        )
    header = ["method", "per setting s (min/med)", "once s (min/med)", "speed-up (min)"]
    print(format_table(header, rows))
    print(f"load after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
