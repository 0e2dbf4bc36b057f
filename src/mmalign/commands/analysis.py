"""Analysis commands: ``ablate``, ``sweep-window``, ``plot-alignment`` and ``time``.

They reproduce the paper's Table 5, Fig. 4, Fig. 5 and Table 8 respectively.

``ablate`` and ``sweep-window`` are grids of ``mm-align`` runs: they share the flags, the
results store and the engines of ``mmalign benchmark`` (finished runs are skipped when the
command runs again). ``plot-alignment`` reads one finished run folder; ``time`` measures
per-batch training steps in this process.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmalign.commands.benchmark import add_engine_flags, parse_ps, parse_seeds
from mmalign.validation import ConfigError, check_positive

__all__ = ["register", "run_ablate", "run_sweep_window", "run_plot_alignment", "run_time"]


def _run_specs(specs, args: argparse.Namespace, out_dir: str, name: str):
    """Run a grid with the engine flags of ``args`` (see :func:`benchmark.run_specs`)."""
    from mmalign.commands.benchmark import run_specs

    return run_specs(specs, args, out_dir, name)


def run_ablate(args: argparse.Namespace) -> int:
    """Run the ablation grid (Table 5) and print its table; exit 1 if a run failed."""
    from mmalign.commands.benchmark import load_overrides
    from mmalign.evaluate.tables import render
    from mmalign.experiments.ablation import ablation_tables, expand_ablation

    config = load_overrides(args.config, args.set)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None
    specs = expand_ablation(
        args.data, args.pair, parse_ps(args.p), parse_seeds(args.seeds), config, variants
    )
    out_dir = args.out or str(Path(args.store).parent / "ablation-grid")
    store, result = _run_specs(specs, args, out_dir, "ablate")
    wanted = set(result.fingerprints)
    rows = [r for r in store.rows(method="mm-align") if r["fingerprint"] in wanted]
    if rows:
        metrics = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
        tables = ablation_tables(rows, metrics=metrics, split=args.split)
        print("\n".join(render(table, args.format) for table in tables), end="")
    return 1 if result.failures else 0


def run_sweep_window(args: argparse.Namespace) -> int:
    """Run the window sweep (Fig. 4), write its CSV and PNG; exit 1 if a run failed."""
    from mmalign.commands.benchmark import load_overrides
    from mmalign.experiments.window_sweep import (
        expand_window_sweep,
        parse_windows,
        plot_sweep,
        window_sweep_summary,
        write_sweep_csv,
    )

    windows = parse_windows(args.windows)
    config = load_overrides(args.config, args.set)
    specs = expand_window_sweep(
        args.data, args.pair, parse_ps(args.p), parse_seeds(args.seeds), windows, config
    )
    out = Path(args.out)
    args.store = args.store or str(out / "window_sweep.sqlite")
    store, result = _run_specs(specs, args, str(out / "grid"), "sweep-window")
    wanted = set(result.fingerprints)
    rows = [r for r in store.rows(method="mm-align") if r["fingerprint"] in wanted]
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
    """Draw Fig. 5 (mean absolute alignment entries, predicted vs OT) for one mm-align run."""
    from mmalign.evaluate.alignment import run_alignment_summary
    from mmalign.evaluate.plots import plot_alignment_heatmaps

    summary = run_alignment_summary(
        args.run_dir,
        data=args.data,
        min_length=args.min_length,
        setting=args.setting,
        batch_size=args.batch_size,
        trusted=args.trust_pickle,
    )
    out = Path(args.out) if args.out else Path(args.run_dir) / "fig5_alignment.png"
    size = summary.predicted.shape[0]
    plot_alignment_heatmaps(
        summary.predicted,
        summary.ot,
        out,
        window=summary.window,
        titles=(f"fitter (predicted), K={summary.window}", "OT plan (target)"),
    )
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
    import torch

    from mmalign.commands.benchmark import load_overrides
    from mmalign.experiments.grid import parse_pairs
    from mmalign.experiments.timing import format_timing, time_imputation
    from mmalign.train.config import config_from_dict
    from mmalign.train.run import load_run_data

    if args.threads is not None:
        check_positive("threads", args.threads)
        torch.set_num_threads(args.threads)
    overrides = load_overrides(args.config, args.set)
    config = config_from_dict({**overrides, "data": args.data, "progress": False})
    dataset = load_run_data(args.data, config.format, config.trust_pickle)
    pairs = parse_pairs(args.pair, dataset.modalities)
    if len(pairs) != 1:
        raise ConfigError(f"`--pair` must name one pair; got {args.pair!r}.")
    ((source, victim),) = pairs
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    report = time_imputation(
        dataset,
        source,
        victim,
        methods=methods,
        n_batches=args.batches,
        batch_size=args.batch_size,
        config=config,
        p=float(args.p),
        seed=args.seed,
        warmup_batches=args.warmup,
    )
    print(format_timing(report), end="")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _add_grid_flags(parser: argparse.ArgumentParser, default_store: str | None) -> None:
    parser.add_argument("--data", required=True, help="data path or synthetic[:knob=value,...]")
    parser.add_argument(
        "--pair",
        "--pairs",
        dest="pair",
        default="t:v",
        help="source:victim pair(s), comma list (default t:v); --pairs is the same flag",
    )
    parser.add_argument("--p", default="0.1", help="survival rate(s), comma list (default 0.1)")
    parser.add_argument(
        "--seeds", default="3", help="a count n (seeds 0..n-1) or a comma list (default 3)"
    )
    parser.add_argument("--config", metavar="FILE.yaml", help="hyperparameters for every run")
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override one option for every run (repeatable), e.g. --set epochs=12",
    )
    parser.add_argument(
        "--store",
        default=default_store,
        help=f"results store (default {default_store or '<out>/window_sweep.sqlite'})",
    )
    add_engine_flags(parser)
    parser.add_argument(
        "--split", choices=("test", "valid"), default="test", help="split to report (default test)"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mmalign ablate``, ``sweep-window``, ``plot-alignment`` and ``time``."""
    ablate = subparsers.add_parser(
        "ablate",
        help="ablation grid of MM-Align (paper Table 5), then its table",
        description="Train MM-Align and its ablations (w/o contrastive loss, w/o fit loss, "
        "w/o single iteration) on the same splits and print mean ± std over seeds. Finished "
        "runs are kept in a results store and skipped when the command runs again.",
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
        help="MM-Align over window sizes (paper Fig. 4): CSV and PNG",
        description="Train MM-Align for every window radius K and write the metric against "
        "K (mean ± std over seeds) as <out>/window_sweep.csv and <out>/fig4_window_sweep.png.",
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
        help="heat maps of mean absolute alignment entries of an mm-align run (paper Fig. 5)",
        description="Run the fitter and the OT solver of a trained MM-Align model on complete "
        "test batches and draw the mean absolute entries of the top-left S x S block over the "
        "samples of length >= S (S = --min-length).",
    )
    plot.add_argument("run_dir", metavar="RUN_DIR", help="a finished mm-align run folder")
    plot.add_argument("--data", help="data path or synthetic[...] (default: the run's data)")
    plot.add_argument("--min-length", type=int, default=20, help="S (default 20, as the paper)")
    plot.add_argument(
        "--out", metavar="FILE.png", help="figure (default RUN_DIR/fig5_alignment.png)"
    )
    plot.add_argument("--npz", metavar="FILE.npz", help="also save the two (S, S) matrices")
    plot.add_argument("--setting", choices=("A", "B"), default="A", help="which checkpoint")
    plot.add_argument("--batch-size", type=int, default=64, help="test batch size (default 64)")
    plot.add_argument("--trust-pickle", action="store_true", help="allow any pickle content")
    plot.set_defaults(func=run_plot_alignment)

    timing = subparsers.add_parser(
        "time",
        help="per-batch training time of the imputation modules (paper Table 8)",
        description="Time one training step (forward, backward, optimiser step) per batch of "
        "each method, side by side on the same missing-split batches (and, separately, on the "
        "same complete-split batches); print mean, median, min and the ratio to the first "
        "method.",
    )
    timing.add_argument("--data", required=True, help="data path or synthetic[:knob=value,...]")
    timing.add_argument("--pair", default="t:v", help="source:victim (default t:v)")
    timing.add_argument(
        "--methods", default="mm-align,modal-trans", help="methods (default mm-align,modal-trans)"
    )
    timing.add_argument("--batches", type=int, default=20, help="timed batches (default 20)")
    timing.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    timing.add_argument("--warmup", type=int, default=2, help="untimed batches first (default 2)")
    timing.add_argument("--threads", type=int, help="torch threads (default: torch's default)")
    timing.add_argument("--p", default="0.1", help="survival rate of the split (default 0.1)")
    timing.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    timing.add_argument("--config", metavar="FILE.yaml", help="hyperparameters")
    timing.add_argument("--set", action="append", metavar="KEY=VALUE", help="override an option")
    timing.add_argument("--json", metavar="FILE", help="also write the measurements as JSON")
    timing.set_defaults(func=run_time)
