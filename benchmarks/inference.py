"""Inference throughput in setting A (victim missing for every sample): MM-Align vs Modal-Trans.

Run ``python -m benchmarks.inference [--threads 1] [--device cpu] [--repeats 3]`` from the
repository root. Both methods are built by the registry on the same backbone (d = 32, K = 8,
untrained weights: throughput does not depend on them) and predict the whole CMU-MOSI-sized
synthetic test split (686 samples, lengths 10..50) with the victim absent, through the
training loop's ``predict_outputs`` (the path used for validation and testing) at the
evaluation batch size. MM-Align imputes with the fitter and one banded product; Modal-Trans
decodes the victim autoregressively (MM-Align, Han et al., EMNLP 2022, section 4.5 and
appendix E). Prints samples/s (from the min and the median time of a full pass) and the
ratio. Nothing is asserted.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks._timing import format_table, set_threads, time_call
from mmalign.config import RunConfig
from mmalign.data.batching import PairData
from mmalign.data.synthetic import SyntheticConfig, make_synthetic
from mmalign.models.method import PairDims
from mmalign.models.registry import get_method
from mmalign.train.loop import predict_outputs

__all__ = ["main"]

METHODS = ("mm-align", "modal-trans")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-test", type=int, default=686)
    parser.add_argument("--batch-size", type=int, default=RunConfig().train.eval_batch_size)
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    dataset = make_synthetic(SyntheticConfig(n_train=2, n_valid=2, n_test=args.n_test))
    test = dataset.splits["test"]
    absent = np.zeros(len(test), dtype=bool)  # setting A
    pair = PairData.from_split(test, "text", "vision", present=absent).to(args.device)
    dims = PairDims(
        dataset.feature_dims["text"],
        dataset.feature_dims["vision"],
        dataset.output_dim,
        dataset.task,
    )
    print(
        f"torch {torch.__version__}, device {args.device}, threads {threads}, "
        f"{len(pair)} test samples, batch {args.batch_size}, setting A (victim absent)"
    )
    config = RunConfig()
    rows, rates = [], {}
    for name in METHODS:
        torch.manual_seed(0)
        model = get_method(name).build(dims, config).to(args.device)
        t = time_call(
            lambda: predict_outputs(model, pair, absent, args.batch_size),
            repeats=args.repeats,
            warmup=1,
        )
        rates[name] = (len(pair) / t.min_s, len(pair) / t.median_s)
        rows.append(
            [
                name,
                f"{t.min_s * 1e3:.1f} / {t.median_s * 1e3:.1f}",
                f"{rates[name][0]:.0f} / {rates[name][1]:.0f}",
            ]
        )
    (a_min, a_med), (m_min, m_med) = rates["mm-align"], rates["modal-trans"]
    rows.append(
        ["ratio mm-align / modal-trans", "", f"{a_min / m_min:.1f}x / {a_med / m_med:.1f}x"]
    )
    print(format_table(["method", "pass ms (min/med)", "samples/s (best/median)"], rows))
    print(
        f"goal: inference >= 5x Modal-Trans: {a_min / m_min:.1f}x "
        f"({'met' if a_min / m_min >= 5 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
