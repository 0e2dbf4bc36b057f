"""Analysis commands: ablation, window sweep, alignment plots and scores, timings.

``ablate``, ``sweep-window``, ``plot-alignment`` and ``time`` reproduce the paper's Table 5,
Fig. 4, Fig. 5 and Table 8 respectively (:mod:`mmalign.analyses`); ``score-alignment``
scores a run's alignment against the data's ground truth.

``ablate`` and ``sweep-window`` are grids of runs of the proposed method: they share the grid
flags, the results store and the engines of ``mmalign benchmark``
(:mod:`mmalign.commands.grid_flags`; finished runs are skipped when the command runs again).
``plot-alignment`` and ``score-alignment`` read one finished run folder; ``time`` measures per-batch training steps
in this process. Heavy modules (torch, matplotlib, the analyses) are imported inside the
command functions, so the command line starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mmalign.commands.grid_flags import (
    add_engine_flags,
    add_options_flags,
    grid_overrides,
    run_specs,
)
from mmalign.commands.option_flags import DATA_OPTIONS, add_config_flags
from mmalign.options import parse_list, parse_seeds
from mmalign.validation import ConfigError

__all__ = [
    "register",
    "run_ablate",
    "run_sweep_window",
    "run_plot_alignment",
    "run_score_alignment",
    "run_time",
]

# run options that `time` takes as flags (from the option table), besides the data options
_TIME_OPTIONS = ("pair", "p", "seed", "device", "threads")


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    """Return the options among ``names`` given as flags (flat names -> raw values)."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _grid_rows(store, result, method: str) -> list[dict[str, Any]]:
    """Store rows of ``method`` that belong to this grid."""
    wanted = set(result.fingerprints)
    return [r for r in store.rows(method=method) if r["fingerprint"] in wanted]


def run_ablate(args: argparse.Namespace) -> int:
    """Run the ablation grid (Table 5) and print its table; exit 1 if a run failed."""
    from mmalign.analyses.ablation import ABLATION_METHOD, ablation_tables, expand_ablation
    from mmalign.evaluate.tables import render

    variants = parse_list("variants", args.variants) if args.variants else None
    specs = expand_ablation(
        args.data,
        args.pairs,
        parse_list("ps", args.ps, float),
        parse_seeds(args.seeds),
        grid_overrides(args.config, args.set),
        variants,
    )
    out_dir = args.out or str(Path(args.store).parent / "ablation-grid")
    store, result = run_specs(specs, args, out_dir, "ablate")
    rows = _grid_rows(store, result, ABLATION_METHOD)
    if rows:
        metrics = parse_list("metrics", args.metrics) if args.metrics else None
        tables = ablation_tables(rows, metrics=metrics, split=args.split)
        print("\n".join(render(table, args.format) for table in tables), end="")
    return 1 if result.failures else 0


def run_sweep_window(args: argparse.Namespace) -> int:
    """Run the window sweep (Fig. 4), write its CSV and PNG; exit 1 if a run failed."""
    from mmalign.analyses.window_sweep import (
        SWEEP_METHOD,
        expand_window_sweep,
        parse_windows,
        plot_sweep,
        window_sweep_summary,
        write_sweep_csv,
    )

    windows = parse_windows(args.windows)
    specs = expand_window_sweep(
        args.data,
        args.pairs,
        parse_list("ps", args.ps, float),
        parse_seeds(args.seeds),
        windows,
        grid_overrides(args.config, args.set),
    )
    out = Path(args.out)
    args.store = args.store or str(out / "window_sweep.sqlite")
    store, result = run_specs(specs, args, str(out / "grid"), "sweep-window")
    rows = _grid_rows(store, result, SWEEP_METHOD)
    if not rows:
        return 1
    points = window_sweep_summary(rows, split=args.split)
    csv_path = write_sweep_csv(points, out / "window_sweep.csv")
    settings = ("A", "B") if args.setting == "both" else (args.setting,)
    png_path = plot_sweep(
        points,
        args.png or out / "fig4_window_sweep.png",
        metric=args.metric,
        settings=settings,
        data=args.data,
    )
    metric = args.metric or next(
        (m for m in ("mae", "f1_weighted") if any(q.metric == m for q in points)), points[0].metric
    )
    print(f"{'pair':<14} {'p':>5} {'set':>3} {'K':>5}  {metric} mean ± std (n)")
    for q in points:
        if q.metric == metric and q.setting in settings:
            print(
                f"{q.source + '->' + q.victim:<14} {q.p:>5g} {q.setting:>3} {q.window:>5}  "
                f"{q.mean:.4f} ± {q.std:.4f} ({q.n})"
            )
    print(f"mmalign sweep-window: wrote {csv_path} and {png_path}", file=sys.stderr)
    return 1 if result.failures else 0


def run_plot_alignment(args: argparse.Namespace) -> int:
    """Draw Fig. 5 (mean absolute alignment entries, predicted vs OT) for one run."""
    from mmalign.analyses.alignment import run_alignment_summary
    from mmalign.config import RunConfig, apply_overrides
    from mmalign.evaluate.plots import plot_alignment_heatmaps
    from mmalign.runs import apply_threads

    apply_threads(apply_overrides(RunConfig(), _given(args, ("threads",))).validate().threads)
    summary = run_alignment_summary(
        args.run_dir,
        data_options=_given(args, DATA_OPTIONS),
        min_length=args.min_length,
        setting=args.setting,
        batch_size=args.batch_size,
    )
    out = Path(args.out) if args.out else Path(args.run_dir) / "fig5_alignment.png"
    size = summary.predicted.shape[0]
    where = f"data {summary.data}, run {args.run_dir}"
    plot_alignment_heatmaps(
        summary.predicted,
        summary.ot,
        out,
        window=summary.window,
        titles=(f"fitter (predicted), K={summary.window}", "OT plan (target)"),
        suptitle=f"mean |alignment| over {summary.n_samples} test samples; {where}",
    )
    if args.samples > 0:
        from mmalign.analyses.alignment import run_sample_alignments
        from mmalign.evaluate.plots import plot_sample_alignments

        samples = run_sample_alignments(
            args.run_dir,
            data_options=_given(args, DATA_OPTIONS),
            n_samples=args.samples,
            setting=args.setting,
        )
        sample_out = out.with_name(f"{out.stem}_samples{out.suffix}")
        plot_sample_alignments(samples, sample_out, suptitle=f"single test samples; {where}")
        print(f"mmalign plot-alignment: wrote {sample_out}", file=sys.stderr)
    if args.npz:
        import numpy as np

        np.savez(args.npz, predicted=summary.predicted, ot=summary.ot, n_samples=summary.n_samples)
    print(
        f"mean |alignment entry| over {summary.n_samples} test samples of length >= {size} "
        f"(top-left {size}x{size} block), window K={summary.window}: "
        f"outside the window predicted {summary.outside_mass('predicted'):.2e}, "
        f"OT {summary.outside_mass('ot'):.2e}; mean |predicted - OT| inside "
        f"{summary.inside_gap():.4f}"
    )
    print(f"mmalign plot-alignment: wrote {out}", file=sys.stderr)
    return 0


def run_time(args: argparse.Namespace) -> int:
    """Time per-batch training steps of the imputation modules (Table 8)."""
    from mmalign.analyses.timing import DEFAULT_METHODS, format_timing, time_imputation
    from mmalign.config import apply_overrides, config_from_dict
    from mmalign.runs import apply_threads, load_data

    if args.pair is not None and len(parse_list("pair", args.pair)) != 1:
        raise ConfigError(f"`--pair` must name one pair; got {args.pair!r}.")
    config = apply_overrides(
        config_from_dict(grid_overrides(args.config, args.set)),
        {**_given(args, (*DATA_OPTIONS, *_TIME_OPTIONS)), "progress": False},
    ).validate()
    apply_threads(config.threads)
    dataset = load_data(config)
    source, victim = config.source_victim
    report = time_imputation(
        dataset,
        source,
        victim,
        methods=parse_list("methods", args.methods) if args.methods else DEFAULT_METHODS,
        n_batches=args.batches,
        batch_size=args.batch_size,
        config=config,
        p=config.p,
        seed=config.seed,
        warmup_batches=args.warmup,
    )
    print(format_timing(report), end="")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _add_grid_flags(parser: argparse.ArgumentParser, default_store: str | None) -> None:
    """Add data, grid axes (plural names), ``--config`` / ``--set``, store, engine, split."""
    parser.add_argument("--data", required=True, help="data path or synthetic[:knob=value,...]")
    parser.add_argument(
        "--pairs", default="t:v", help="source:victim pairs, comma list (default t:v)"
    )
    parser.add_argument("--ps", default="0.1", help="survival rates, comma list (default 0.1)")
    parser.add_argument(
        "--seeds", default="3", help="a count n (seeds 0..n-1) or a comma list (default 3)"
    )
    add_options_flags(parser)
    parser.add_argument(
        "--store",
        default=default_store,
        help=f"results store (default {default_store or '<out>/window_sweep.sqlite'})",
    )
    add_engine_flags(parser)
    parser.add_argument(
        "--split", choices=("test", "valid"), default="test", help="split to report (default test)"
    )


def run_score_alignment(args: argparse.Namespace) -> int:
    """Score a run's alignment (fitter, OT, uniform, diagonal) against the data's truth spans."""
    import json

    from mmalign.analyses.alignment import run_alignment_scores
    from mmalign.config import RunConfig, apply_overrides
    from mmalign.runs import apply_threads

    apply_threads(apply_overrides(RunConfig(), _given(args, ("threads",))).validate().threads)
    if _protocol(args.run) == "random":
        return _score_pattern_alignment(args)
    scores = run_alignment_scores(
        args.run,
        data_options=_given(args, DATA_OPTIONS),
        setting=args.setting,
        batch_size=args.batch_size,
        split=args.split,
    )
    print(
        f"alignment of {scores.victim} steps to {scores.source} steps on {scores.n_samples} "
        f"complete {args.split} samples ({scores.fitter.n_steps} {scores.victim} steps), "
        f"run {args.run}:"
    )
    print(scores.table())
    if args.json:
        Path(args.json).write_text(json.dumps(scores.to_dict(), indent=2) + "\n")
        print(f"mmalign score-alignment: wrote {args.json}", file=sys.stderr)
    return 0


def _protocol(run_dir: str) -> str:
    """Return the protocol a run folder says it followed (``"pair"`` when it does not say)."""
    import json

    path = Path(run_dir) / "model.json"
    return json.loads(path.read_text()).get("protocol", "pair") if path.is_file() else "pair"


def _score_pattern_alignment(args: argparse.Namespace) -> int:
    """Score every ordered pair of a random-missing run (its complete samples)."""
    import json

    from mmalign.analyses.alignment import run_pattern_alignment_scores

    scores = run_pattern_alignment_scores(
        args.run, data_options=_given(args, DATA_OPTIONS), batch_size=args.batch_size,
        split=args.split,
    )  # fmt: skip
    for key, pair in scores.items():
        print(
            f"{pair.source} -> {pair.victim}: {pair.victim} steps to {pair.source} steps on "
            f"{pair.n_samples} {args.split} samples with every modality, run {args.run}:"
        )
        print(pair.table())
    if args.json:
        body = {key: pair.to_dict() for key, pair in scores.items()}
        Path(args.json).write_text(json.dumps(body, indent=2) + "\n")
        print(f"mmalign score-alignment: wrote {args.json}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mmalign ablate``, ``sweep-window``, ``plot-alignment`` and ``time``."""
    from mmalign.models.registry import get_method, proposed_method

    name = proposed_method()
    label = get_method(name).label
    ablate = subparsers.add_parser(
        "ablate",
        help=f"ablation grid of {label} (paper Table 5), then its table",
        description=f"Train {label} and its ablations (w/o contrastive loss, w/o fit loss, "
        "w/o single iteration) on the same splits and print mean ± std over seeds. Finished "
        "runs are kept in a results store and skipped when the command runs again.",
        allow_abbrev=False,
    )
    _add_grid_flags(ablate, "runs/ablation.sqlite")
    ablate.add_argument(
        "--variants",
        help="comma list among full,no-contrastive,no-fit,no-si (default: all four)",
    )
    ablate.add_argument(
        "--out", metavar="DIR", help="grid folder (default <store folder>/ablation-grid)"
    )
    ablate.add_argument("--metrics", help="metrics to show (default MAE, Acc-2 or weighted F1)")
    ablate.add_argument(
        "--format", choices=("markdown", "csv", "latex"), default="markdown", help="table format"
    )
    ablate.set_defaults(func=run_ablate)

    sweep = subparsers.add_parser(
        "sweep-window",
        help=f"{label} over window sizes (paper Fig. 4): CSV and PNG",
        description=f"Train {label} for every window radius K and write the metric against "
        "K (mean ± std over seeds) as <out>/window_sweep.csv and <out>/fig4_window_sweep.png.",
        allow_abbrev=False,
    )
    _add_grid_flags(sweep, None)
    sweep.add_argument(
        "--windows", default="1,2,4,8,16,32,256", help="window radii (default 1,2,4,8,16,32,256)"
    )
    sweep.add_argument("--out", required=True, metavar="DIR", help="output folder")
    sweep.add_argument("--metric", help="metric to plot (default mae, or f1_weighted)")
    sweep.add_argument(
        "--setting", choices=("A", "B", "both"), default="both", help="settings to plot"
    )
    sweep.add_argument(
        "--png", metavar="FILE.png", help="figure path (default <out>/fig4_window_sweep.png)"
    )
    sweep.set_defaults(func=run_sweep_window)

    plot = subparsers.add_parser(
        "plot-alignment",
        help=f"heat maps of mean absolute alignment entries of a {name} run (paper Fig. 5)",
        description=f"Run the fitter and the OT solver of a trained {label} model on complete "
        "test batches and draw the mean absolute entries of the top-left S x S block over the "
        "samples of length >= S (S = --min-length). The data options default to the run's own.",
        allow_abbrev=False,
    )
    plot.add_argument("run_dir", metavar="RUN_DIR", help=f"a finished {name} run folder")
    add_config_flags(plot, (*DATA_OPTIONS, "threads"))
    plot.add_argument("--min-length", type=int, default=20, help="S (default 20, as the paper)")
    plot.add_argument(
        "--out", metavar="FILE.png", help="figure (default RUN_DIR/fig5_alignment.png)"
    )
    plot.add_argument("--npz", metavar="FILE.npz", help="also save the two (S, S) matrices")
    plot.add_argument(
        "--samples",
        type=int,
        default=3,
        help="also draw this many single test samples, with the true alignment where the "
        "data has it, as <out>_samples.png (default 3; 0: none)",
    )
    plot.add_argument("--setting", choices=("A", "B"), default="A", help="which checkpoint")
    plot.add_argument("--batch-size", type=int, default=64, help="test batch size (default 64)")
    plot.set_defaults(func=run_plot_alignment)

    score = subparsers.add_parser(
        "score-alignment",
        help=f"score a {name} run's alignment against the true alignment of the data",
        description=f"Run the fitter and the OT solver of a trained {label} model on the "
        "complete samples of a split and score them, beside a uniform guess over the window "
        "and the diagonal guess, against the data's span_<victim>_<source> arrays (docs/data.md"
        "): mass on the true steps, arg-max accuracy, and the arg-max's distance to the "
        "nearest true step. The data options default to the run's own. A random-missing run "
        "(--missing-rate) is scored pair by pair on samples that hold every modality (JSON: "
        "one entry per '<source>><victim>').",
        allow_abbrev=False,
    )
    score.add_argument("--run", required=True, metavar="RUN_DIR", help=f"a finished {name} run")
    add_config_flags(score, (*DATA_OPTIONS, "threads"))
    score.add_argument(
        "--split", choices=("test", "valid", "train"), default="test", help="default test"
    )
    score.add_argument("--setting", choices=("A", "B"), default="A", help="which checkpoint")
    score.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    score.add_argument("--json", metavar="OUT", help="also write the scores as JSON")
    score.set_defaults(func=run_score_alignment)

    default_methods = f"{name},modal-trans"
    timing = subparsers.add_parser(
        "time",
        help="per-batch training time of the imputation modules (paper Table 8)",
        description="Time one training step (forward, backward, optimiser step) per batch of "
        "each method, side by side on the same missing-split batches (and, separately, on the "
        "same complete-split batches); print mean, median, min and the ratio to the first "
        "method.",
        allow_abbrev=False,
    )
    add_config_flags(timing, (*DATA_OPTIONS, *_TIME_OPTIONS))
    timing.add_argument(
        "--methods",
        help=f"methods, comma list; the first is the reference (default {default_methods})",
    )
    timing.add_argument("--batches", type=int, default=20, help="timed batches (default 20)")
    timing.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    timing.add_argument("--warmup", type=int, default=2, help="untimed batches first (default 2)")
    add_options_flags(timing)
    timing.add_argument("--json", metavar="FILE", help="also write the measurements as JSON")
    timing.set_defaults(func=run_time)
