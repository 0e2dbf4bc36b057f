"""``mmalign plot-history``: training curves of a run folder from its ``history.json``.

Training losses and the validation metric per setting against the epoch, warm-up epochs
shaded and the best epoch of each setting starred. By default the metric is the quantity the
run selected its checkpoints on (``--selection``), so the stars are the run's checkpoints.
``history.json`` is rewritten after every epoch, so the command also works on a run that is
still training or that crashed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmalign.validation import ConfigError, DataError

__all__ = ["register", "run_plot_history", "read_history", "selected_quantity"]


def read_history(run_dir: Path) -> list[dict]:
    """Return the epoch records of ``run_dir/history.json``.

    Parameters
    ----------
    run_dir : Path
        A run folder.

    Returns
    -------
    list of dict
        One record per epoch, each with an integer ``epoch``; at least one.

    Raises
    ------
    DataError
        A missing folder or ``history.json``, a file that is not a JSON list of epoch
        records, or one with no epoch yet.
    """
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run folder.")
    path = run_dir / "history.json"
    if not path.is_file():
        raise DataError(f"{run_dir}: no history.json in this folder (not a run folder?).")
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a readable JSON file ({err}).") from None
    if not isinstance(history, list) or not all(
        isinstance(r, dict)
        and isinstance(r.get("epoch"), int)
        and not isinstance(r.get("epoch"), bool)
        for r in history
    ):
        raise DataError(f"{path}: must be a JSON list of epoch records with an integer 'epoch'.")
    if not history:
        raise DataError(f"{path}: holds no epoch yet (the run has not finished its first epoch).")
    return history


def selected_quantity(run_dir: Path, history: list[dict]) -> str | None:
    """Return ``"loss"`` when the run selected its checkpoints on the validation loss.

    Read from ``run_dir/config.yaml`` (``selection``, older runs: the metric) and the task
    the history shows; ``None`` (the plot's default metric) otherwise or without a config.
    """
    from mmalign.config import load_run_config
    from mmalign.train.loop import resolve_selection

    if not (run_dir / "config.yaml").is_file():
        return None
    selection = load_run_config(run_dir / "config.yaml").train.selection
    valid = [v for r in history for k, v in r.items() if k.startswith("valid_") and v]
    task = "regression" if valid and "mae" in valid[0] else "classification"
    if resolve_selection(selection, task) == "loss" and valid and "loss" in valid[0]:
        return "loss"
    return None


def run_plot_history(args: argparse.Namespace) -> int:
    """Draw the training curves of ``args.run_dir`` and print the PNG's path."""
    run_dir = Path(args.run_dir)
    out = Path(args.out) if args.out else run_dir / "history.png"
    if out.suffix.lower() != ".png":
        raise ConfigError(f"`--out` must end in .png; got {str(out)!r}.")
    history = read_history(run_dir)
    from mmalign.evaluate.plots import plot_training_curves  # matplotlib: only when drawing

    title = run_dir.resolve().name
    metric = args.metric or selected_quantity(run_dir, history)
    plot_training_curves(history, out, title=title, metric=metric)
    print(out)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mmalign plot-history``."""
    parser = subparsers.add_parser(
        "plot-history",
        help="training curves (losses, validation metric) of a run folder",
        description="Plot the training losses and the validation metric per setting of a run "
        "folder against the epoch, from its history.json (written after every epoch, so a "
        "running or crashed run works too). Warm-up epochs are shaded, the best epoch of each "
        "setting is starred.",
        allow_abbrev=False,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (with history.json)")
    parser.add_argument(
        "--out", metavar="FILE.png", help="figure to write (default RUN_DIR/history.png)"
    )
    parser.add_argument(
        "--metric",
        help="validation metric to draw, or 'loss' (default: what the run selected on: "
        "mae for regression, loss for classification; f1_weighted for runs made with "
        "--selection metric)",
    )
    parser.set_defaults(func=run_plot_history)
