"""``mmalign run``: train and evaluate one method on one pair, survival rate and split seed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmalign.train.config import RunConfig, apply_overrides, flat_fields, load_config
from mmalign.validation import ConfigError

__all__ = ["register", "add_config_flags", "config_from_args", "format_metrics_table"]

_SHORT_HELP = {
    "data": "dataset path, or 'synthetic' (default) / 'synthetic:key=value,...' for the built-in benchmark",
    "format": "data format override (default: detected from the path)",
    "trust_pickle": "allow arbitrary pickles (only for files you trust)",
    "pair": "source:victim, e.g. t:v or text:vision",
    "p": "survival rate of the victim modality in training, in (0, 1]",
    "seed": "split seed (also seeds initialisation and batch order)",
    "method": "lb, ub, mfm, smil, modal-trans or mm-align",
    "device": "auto (CUDA when present), cpu, cuda, cuda:N",
    "threads": "torch threads (0 = torch default)",
    "progress": "show progress bars (true/false)",
    "d_model": "shared model width d (paper: 32-64)",
    "n_heads": "attention heads",
    "n_layers": "self-attention layers per modality encoder",
    "n_fusion_layers": "cross-attention layers per fusion direction",
    "dropout": "dropout probability",
    "ff_mult": "feed-forward width as a multiple of d",
    "window": "window radius K: alignment only where |i - j| <= K",
    "reg": "entropic regularisation mu of the OT problem",
    "max_iter": "Sinkhorn iteration cap",
    "tol": "Sinkhorn tolerance on the L1 marginal error",
    "convention": "fitter targets from OT plan 'column's (default) or 'row's (official code)",
    "fit_normalisation": "fit loss: 'mse' (masked mean) or 'eq13' (the paper's normalisation)",
    "train_fitter": "false = untrained fitter (the 'w/o fit loss' ablation)",
    "epochs": "maximum training epochs after warm-up",
    "warmup_epochs": "warm-up epochs on the complete split",
    "patience": "early stopping: epochs without validation improvement",
    "batch_size": "training batch size",
    "lr_main": "learning rate of the backbone (and of every baseline)",
    "lr_fit": "learning rate of the alignment fitter",
    "weight_decay": "AdamW weight decay",
    "lambda_con": "weight of the contrastive (InfoNCE) loss; 0 = 'w/o contrastive' ablation",
    "tau": "InfoNCE temperature",
    "grad_clip": "maximum gradient norm per optimiser (0 = off)",
    "lr_decay": "learning-rate factor on a validation plateau",
    "lr_patience": "plateau epochs before the learning rate decays",
    "single_iteration": "false = separate fitter and backbone loops ('w/o SI' ablation)",
    "eval_batch_size": "batch size for validation and test predictions",
    "recon_weight": "reconstruction / translation loss weight (MFM, SMIL, Modal-Trans)",
    "cycle_weight": "Modal-Trans back-translation loss weight",
    "mt_layers": "Modal-Trans encoder/decoder layers",
    "mfm_factor_dim": "MFM factor width (0 = d)",
    "smil_clusters": "SMIL k-means centres",
    "smil_decay": "SMIL EMA k-means decay",
    "smil_kl_weight": "SMIL KL weight on the learned noise",
}


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """Add one ``--flag`` per configuration option (defaults come from the config, then YAML)."""
    parser.add_argument(
        "--config", metavar="FILE", help="YAML config (flags given here override it)"
    )
    groups: dict[str | None, argparse._ArgumentGroup] = {}
    for name, (section, f) in flat_fields().items():
        group = groups.get(section)
        if group is None:
            title = {
                None: "run",
                "model": "model (backbone)",
                "adl": "alignment dynamics learner / OT",
                "train": "training",
                "baselines": "baselines (MFM, SMIL, Modal-Trans)",
            }[section]
            group = groups[section] = parser.add_argument_group(title)
        default = f.default if not callable(getattr(f, "default_factory", None)) else None
        kind = type(default)
        flag = "--" + name.replace("_", "-")
        help_text = _SHORT_HELP.get(name, "") + (f" (default: {default})" if default != "" else "")
        if kind is bool:
            group.add_argument(
                flag, dest=name, metavar="BOOL", default=argparse.SUPPRESS, help=help_text
            )
        else:
            group.add_argument(
                flag, dest=name, type=kind, default=argparse.SUPPRESS, help=help_text
            )


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Defaults (or a resumed run's config), then the YAML file, then the flags given."""
    resume = getattr(args, "resume", None)
    if resume:
        if not (Path(resume) / "config.yaml").is_file():
            raise ConfigError(f"`--resume` must name a run folder; {resume!r} has no config.yaml.")
    base = Path(resume) / "config.yaml" if resume else None
    config = (
        load_config(args.config or base) if (getattr(args, "config", None) or base) else RunConfig()
    )
    given = {name: getattr(args, name) for name in flat_fields() if hasattr(args, name)}
    return apply_overrides(config, given).validate()


def format_metrics_table(metrics: dict, task: str) -> str:
    """Test metrics per setting as an aligned text table."""
    names = (
        ["mae", "corr", "acc2_nonzero", "f1_nonzero", "acc2_haszero", "acc7"]
        if task == "regression"
        else ["acc", "f1_weighted", "f1_macro"]
    )
    settings = [s for s in ("A", "B") if s in metrics]
    lines = ["setting  " + "  ".join(f"{n:>12}" for n in names)]
    for s in settings:
        test = metrics[s]["test"]
        lines.append(f"{s:<8} " + "  ".join(f"{test.get(n, float('nan')):>12.4f}" for n in names))
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from mmalign.train.run import run_experiment

    config = config_from_args(args)
    if args.resume and args.out and args.out != args.resume:
        raise ConfigError(f"`--out` must be the resumed folder {args.resume!r}; got {args.out!r}.")
    result = run_experiment(config, args.resume or args.out, resume=bool(args.resume))
    task = result.metrics["meta"]["dims"]["task"]
    print(
        f"test metrics ({config.method}, {result.metrics['meta']['source']}->"
        f"{result.metrics['meta']['victim']}, p={config.p:g}, seed={config.seed}):"
    )
    print(format_metrics_table(result.metrics, task))
    print(f"run folder: {result.run_dir}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mmalign run``."""
    parser = subparsers.add_parser(
        "run",
        help="train and evaluate one method (settings A and B from one training run)",
        description="Train one method for one source:victim pair, survival rate p and split seed; "
        "select on the validation set; report test metrics for settings A and B.",
    )
    parser.add_argument(
        "--out",
        metavar="RUN_DIR",
        help="run folder (default: runs/<method>_<pair>_p<p>_s<seed>_<time>)",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from RUN_DIR/resume.pt (saved after every epoch); "
        "its config is the base, flags given here (e.g. --epochs) override it",
    )
    add_config_flags(parser)
    parser.set_defaults(func=_run)
