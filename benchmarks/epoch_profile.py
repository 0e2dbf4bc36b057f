"""Profile one full MM-Align training epoch on the default synthetic data (torch.profiler).

Run ``python -m benchmarks.epoch_profile [--threads 1] [--device cpu] [--p 0.1]`` from the
repository root. Builds the run exactly as ``mmalign run`` does (CMU-MOSI-sized synthetic
data, pair t:v, survival rate ``p``, split seed 0, default configuration), then:

1. times one epoch of Algorithm 1 without the profiler (``fit`` with no warm-up and one
   epoch: complete batches with OT and the fitter step, missing batches with imputation,
   validation under settings A and B), after an untimed warm-up epoch;
2. runs one more epoch under ``torch.profiler`` with a labelled range around each stage
   (batching, encoders, OT solve, fit targets + loss, fitter, imputation, fusion + head,
   backward + optimiser step, validation), and prints the time per stage and the top
   operators by self time.

Used for the before / after summary in ``benchmarks/README.md``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import time
import types

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile, record_function

import mmalign.models.mm_align as mm_align_module
import mmalign.train.loop as loop_module
from benchmarks._timing import format_table, set_threads
from mmalign.config import RunConfig, TrainConfig
from mmalign.data.batching import PairData
from mmalign.data.splits import make_missing_split
from mmalign.data.synthetic import SyntheticConfig, make_synthetic
from mmalign.models.method import PairDims
from mmalign.models.registry import get_method
from mmalign.runs import build_model

__all__ = ["STAGES", "main"]

# stage labels in print order; indented ones run inside the forward (compute_losses)
STAGES = [
    "batching",
    "forward (compute_losses)",
    "  encoders",
    "  OT solve (cost + Sinkhorn)",
    "  fit targets + fit loss",
    "  fitter (GRU)",
    "  imputation (banded product)",
    "  fusion + head",
    "backward + clip + step",
    "validation (predict + metrics)",
]


def _labelled(label, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with record_function(label):
            return fn(*args, **kwargs)

    return wrapper


@contextlib.contextmanager
def _instrument(model):
    """Wrap each stage's function in a record_function range; undo on exit.

    Classes and modules get their attribute replaced and restored; model instances get an
    instance attribute that shadows the method and is deleted afterwards.
    """
    patches = [
        (PairData, "batch", "batching"),
        (mm_align_module, "banded_impute", "  imputation (banded product)"),
        (mm_align_module, "ot_fit_targets", "  fit targets + fit loss"),
        (mm_align_module, "fit_loss", "  fit targets + fit loss"),
        (loop_module, "train_step", "backward + clip + step"),
        (loop_module, "predict_outputs", "validation (predict + metrics)"),
        (model, "compute_losses", "forward (compute_losses)"),
        (model, "solve_alignment", "  OT solve (cost + Sinkhorn)"),
        (model.fitter, "forward", "  fitter (GRU)"),
        (model.backbone, "encode_source", "  encoders"),
        (model.backbone, "encode_victim", "  encoders"),
        (model.backbone, "predict_fused", "  fusion + head"),
    ]
    undo = []
    for owner, name, label in patches:
        shared = isinstance(owner, (type, types.ModuleType))
        original = vars(owner)[name] if isinstance(owner, type) else getattr(owner, name)
        setattr(owner, name, _labelled(label, original))
        undo.append((owner, name, original if shared else None))
    try:
        yield
    finally:
        for owner, name, original in reversed(undo):
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def _setup(config: RunConfig, device: str):
    dataset = make_synthetic(SyntheticConfig())
    split = make_missing_split(dataset, "vision", config.p, config.seed)
    settings = {st: split.present("valid", st) for st in ("A", "B")}
    union = np.any(list(settings.values()), axis=0)
    train = PairData.from_split(
        dataset.splits["train"], "text", "vision", present=split.present("train", "A")
    ).to(device)
    valid = PairData.from_split(dataset.splits["valid"], "text", "vision", present=union).to(device)
    dims = PairDims(
        dataset.feature_dims["text"],
        dataset.feature_dims["vision"],
        dataset.output_dim,
        dataset.task,
    )
    return train, valid, split, settings, dims


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--p", type=float, default=RunConfig().p)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    config = RunConfig(p=args.p)
    train_config = TrainConfig(warmup_epochs=0, epochs=1)
    train, valid, split, settings, dims = _setup(config, args.device)
    torch.manual_seed(config.seed)
    model = build_model(config, dims).to(args.device)
    print(
        f"torch {torch.__version__}, device {args.device}, threads {threads}, synthetic "
        f"CMU-MOSI-sized data, t->v, p={args.p}: {len(split.train_complete)} complete / "
        f"{len(split.train_missing)} missing training samples, {len(valid)} validation"
    )

    def epoch():
        generator = torch.Generator().manual_seed(config.seed)
        data = loop_module.TrainData(
            train, split.train_complete, split.train_missing, valid, settings
        )
        loop_module.fit(
            model,
            data,
            train_config,
            get_method(config.method).learning_rates(config),
            generator=generator,
            log=lambda _: None,
            progress=False,
        )
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    epoch()  # warm-up: lazy initialisation, allocator
    start = time.perf_counter()
    epoch()
    wall = time.perf_counter() - start
    print(f"one epoch, no profiler: {wall:.2f} s")

    activities = [ProfilerActivity.CPU]
    if args.device.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    with _instrument(model), profile(activities=activities) as prof:
        with record_function("epoch"):
            epoch()
    events = {e.key: e for e in prof.key_averages()}
    total = events["epoch"].cpu_time_total
    rows = []
    for label in STAGES:
        event = events.get(label)
        if event is None:
            continue
        rows.append(
            [
                label,
                event.count,
                f"{event.cpu_time_total / 1e3:.1f}",
                f"{100 * event.cpu_time_total / total:.1f}%",
            ]
        )
    print(
        f"\nprofiled epoch: {total / 1e6:.2f} s CPU (profiler overhead included); stages "
        "(inclusive; indented ones are inside the forward):"
    )
    print(format_table(["stage", "calls", "CPU ms", "share of epoch"], rows))
    sort_key = "self_cuda_time_total" if args.device.startswith("cuda") else "self_cpu_time_total"
    print(f"\ntop {args.top} operators by self time:")
    print(prof.key_averages().table(sort_by=sort_key, row_limit=args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
