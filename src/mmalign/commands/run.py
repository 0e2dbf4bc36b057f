"""``mmalign run``: train and evaluate one method on one pair, survival rate and split seed."""

from __future__ import annotations

import argparse
import sys

from mmalign.commands.option_flags import add_config_flags, config_from_args

__all__ = ["register", "format_metrics_table"]


def _metric_names(task: str) -> list[str]:
    if task == "regression":
        return ["mae", "corr", "acc2_nonzero", "f1_nonzero", "acc2_haszero", "acc7"]
    return ["acc", "f1_weighted", "f1_macro"]


def format_pattern_table(result) -> str:
    """Random-missing run: test metrics per pattern (with its sample count) and overall."""
    names = _metric_names(result.meta.task)
    lines = ["pattern      n  " + "  ".join(f"{n:>12}" for n in names)]
    order = [k for k in result.patterns if k != "overall"] + ["overall"]
    for key in order:
        res = result.patterns[key]
        row = "  ".join(f"{res.metrics.get(n, float('nan')):>12.4f}" for n in names)
        lines.append(f"{key:<8} {res.n:>5}  {row}")
    ref = result.floor.get("random", {})
    if isinstance(ref, dict) and "test" in ref:
        row = "  ".join(f"{ref['test'].get(n, float('nan')):>12.4f}" for n in names)
        lines.append(f"{'floor':<8} {'':>5}  {row}")
        lines.append(
            "(floor: ridge/logistic on time-pooled readable features of the present modalities)"
        )
    return "\n".join(lines)


def format_metrics_table(result) -> str:
    """Test metrics per setting, with the sanity floor of the same setting, as a text table."""
    from mmalign.evaluate.metrics import PRIMARY_METRIC

    if result.patterns:
        return format_pattern_table(result)
    task = result.meta.task
    names = _metric_names(task)
    lines = ["setting  " + "  ".join(f"{n:>12}" for n in names)]
    for setting, res in result.settings.items():
        lines.append(
            f"{setting:<8} " + "  ".join(f"{res.test.get(n, float('nan')):>12.4f}" for n in names)
        )
    from mmalign.models.registry import get_method

    method = get_method(result.meta.method)
    for setting in result.settings:
        ref = result.floor.get(method.floor_key(setting), {})
        if isinstance(ref, dict) and "test" in ref:
            row = "  ".join(f"{ref['test'].get(n, float('nan')):>12.4f}" for n in names)
            lines.append(f"floor {setting:<2} " + row)
    primary = PRIMARY_METRIC[task][0]
    lines.append(
        f"(floor: ridge/logistic on time-pooled features of the same inputs; primary metric {primary})"
    )
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    import warnings

    from mmalign.data.checks import DataQualityWarning
    from mmalign.runs import run
    from mmalign.validation import ConfigError

    config = config_from_args(args)
    if args.resume and args.out and args.out != args.resume:
        raise ConfigError(f"`--out` must be the resumed folder {args.resume!r}; got {args.out!r}.")
    with warnings.catch_warnings():  # already printed by the run's log
        warnings.simplefilter("ignore", DataQualityWarning)
        result = run(config, args.resume or args.out, resume=bool(args.resume))
    meta = result.meta
    if meta.protocol == "random":
        what = f"random missing rate={meta.missing_rate:g}, frame_drop={meta.frame_drop:g}"
    else:
        what = f"{meta.source}->{meta.victim}, p={meta.p:g}"
    print(f"test metrics ({meta.method}, {what}, seed={meta.seed}):")
    print(format_metrics_table(result))
    print(f"run folder: {result.run_dir}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mmalign run``."""
    parser = subparsers.add_parser(
        "run",
        help="train and evaluate one method (settings A and B from one training run)",
        description="Train one method for one source:victim pair, survival rate p and split seed; "
        "select on the validation set; report test metrics for settings A and B beside the "
        "linear sanity floor. With --missing-rate R (and --frame-drop F) the random-missing "
        "protocol instead: every modality missing at random, test metrics per pattern of present "
        "modalities (lb, ub, mm-align). Every option is also a YAML key of --config.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--out",
        metavar="RUN_DIR",
        help="run folder, new or empty (default: runs/<method>_<pair>_p<p>_s<seed>_<time>)",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from RUN_DIR/resume.pt (saved after every epoch); "
        "its config is the base, flags given here (e.g. --epochs) override it",
    )
    add_config_flags(parser)
    parser.set_defaults(func=_run)
