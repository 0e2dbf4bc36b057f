"""``mmalign predict``: predictions of a trained run for samples with or without the victim."""

from __future__ import annotations

import argparse
import csv
import sys

import numpy as np

__all__ = ["register"]


def _predict(args: argparse.Namespace) -> int:
    from mmalign.api import load_run
    from mmalign.train.run import load_run_data

    run = load_run(args.run, setting=args.setting, device=args.device)
    dataset = load_run_data(args.data, args.format or "", args.trust_pickle)
    split = dataset.splits[args.split]
    if args.victim == "absent":
        present = np.zeros(len(split), bool)
    elif run.victim not in split.features:
        from mmalign.validation import DataError

        raise DataError(f"{args.data}: --victim present needs modality {run.victim!r} in the data.")
    else:
        present = split.lengths[run.victim] > 0
    outputs = run.predict(split, present)
    out = open(args.out, "w", newline="") if args.out else sys.stdout
    writer = csv.writer(out)
    classification = run.meta["dims"]["task"] == "classification"
    writer.writerow(["id", "victim_present", "label", "prediction"])
    for i, p, y, o in zip(split.ids, present, split.labels, outputs):
        writer.writerow([i, int(p), y, int(o.argmax()) if classification else f"{o[0]:.6f}"])
    if args.out:
        out.close()
        print(f"wrote {len(split)} predictions to {args.out}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mmalign predict``."""
    p = subparsers.add_parser(
        "predict",
        help="predict with a trained run",
        description=(
            "Predict with the best checkpoint of a run on a dataset split, the victim modality absent "
            "(default) or present where the data has it."
        ),
    )
    p.add_argument(
        "--run", required=True, metavar="RUN_DIR", help="run folder written by `mmalign run`"
    )
    p.add_argument(
        "--data", required=True, metavar="PATH", help="dataset path or 'synthetic[:knobs]'"
    )
    p.add_argument("--format", default="", help="data format override")
    p.add_argument(
        "--trust-pickle", action="store_true", help="allow arbitrary pickles (trusted files only)"
    )
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument(
        "--setting", default="A", choices=["A", "B"], help="which best checkpoint to use"
    )
    p.add_argument(
        "--victim",
        default="absent",
        choices=["absent", "present"],
        help="absent: impute the victim for every sample; present: use it where the data has it",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", metavar="FILE.csv", help="write CSV here (default: stdout)")
    p.set_defaults(func=_predict)
