"""``mmalign predict``: predictions of a trained run for samples with or without the victim."""

from __future__ import annotations

import argparse
import sys

from mmalign.commands.option_flags import DATA_OPTIONS, add_config_flags

__all__ = ["register"]


def _predict(args: argparse.Namespace) -> int:
    import numpy as np

    from mmalign.config import apply_overrides
    from mmalign.runs import apply_threads, load_data, load_run, predictions_csv
    from mmalign.validation import DataError

    apply_threads(args.threads)
    model = load_run(args.run, setting=args.setting, device=args.device)
    given = {n: getattr(args, n) for n in DATA_OPTIONS if getattr(args, n) is not None}
    dataset = load_data(apply_overrides(model.config, given))
    split = dataset.splits[args.split]
    if model.meta.protocol == "random":
        return _predict_patterns(args, model, split, bool(given))
    if args.victim == "absent":
        present = np.zeros(len(split), bool)
    elif model.victim not in split.features:
        raise DataError(
            f"{args.data}: --victim present needs modality {model.victim!r} in the data."
        )
    else:
        present = split.lengths[model.victim] > 0
    outputs = model.predict(split, present)
    text = predictions_csv(
        split.ids, split.labels, {model.setting: present}, {model.setting: outputs}, model.meta.task
    )
    _write(text, args.out, len(split))
    return 0


def _predict_patterns(args: argparse.Namespace, model, split, other_data: bool) -> int:
    """Predict with a random-missing run: its own draw on its own data, else what the data holds."""
    from pathlib import Path

    from mmalign.data.missingness import RandomMissingness, SplitMissingness
    from mmalign.runs import predictions_csv

    if other_data:
        seen = SplitMissingness.observed(split)
        print("missingness: a modality of length 0 is absent, no step dropped", file=sys.stderr)
    else:
        seen = RandomMissingness.load(Path(args.run) / "missingness.json").splits[args.split]
        print(f"missingness: the run's own draw of split {args.split!r}", file=sys.stderr)
    outputs = model.predict(split, seen)
    text = predictions_csv(
        split.ids, split.labels, {model.setting: seen.patterns()}, {model.setting: outputs},
        model.meta.task, "pattern",
    )  # fmt: skip
    _write(text, args.out, len(split))
    return 0


def _write(text: str, out: str | None, n: int) -> None:
    if out:
        with open(out, "w", newline="") as f:
            f.write(text)
        print(f"wrote {n} predictions to {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mmalign predict``."""
    p = subparsers.add_parser(
        "predict",
        help="predict with a trained run",
        description=(
            "Predict with the best checkpoint of a run on a dataset split, the victim modality "
            "absent (default) or present where the data has it. Writes CSV: setting (the checkpoint), id, "
            "victim_present, label, prediction, and prob_<k> per class for classification. For a "
            "run of the random-missing protocol: the run's own draw of missing modalities and "
            "dropped steps on its own data, or with --data, a modality of length 0 as absent; "
            "the CSV then has a pattern column."
        ),
        allow_abbrev=False,
    )
    p.add_argument(
        "--run", required=True, metavar="RUN_DIR", help="run folder written by `mmalign run`"
    )
    add_config_flags(p, DATA_OPTIONS)  # --data defaults to the run's own data
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument(
        "--setting",
        choices=["A", "B"],
        help="which best checkpoint to use (default A; a random-missing run has one)",
    )
    p.add_argument(
        "--victim",
        default="absent",
        choices=["absent", "present"],
        help="absent: impute the victim for every sample; present: use it where the data has it",
    )
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default 0: automatic, 1)")
    p.add_argument("--out", metavar="FILE.csv", help="write CSV here (default: stdout)")
    p.set_defaults(func=_predict)
