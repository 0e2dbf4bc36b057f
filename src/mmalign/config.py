"""The run configuration: the one option table of a run, YAML files and overrides.

Each option is one :func:`~mmalign.options.option` field below: its default, help text and
constraint are stated there and nowhere else. Command-line flags, ``--set key=value``, YAML
keys (nested sections or flat names) and validation are generated from these fields.

Defaults follow appendix B (Table 7, CMU-MOSI column) of MM-Align (Han et al., EMNLP 2022)
where the paper gives them; every other default says why it was chosen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from mmalign.options import CHECKS, coerce, option, split_pair, validate_fields
from mmalign.validation import ConfigError, check_in

__all__ = [
    "ModelConfig",
    "ADLConfig",
    "TrainConfig",
    "BaselineConfig",
    "RunConfig",
    "SECTIONS",
    "SECTION_TITLES",
    "flat_fields",
    "flatten",
    "execution_options",
    "apply_overrides",
    "check_option",
    "check_protocol",
    "missing_rate_in",
    "config_to_dict",
    "config_from_dict",
    "load_config",
    "load_run_config",
    "load_yaml_options",
    "LATER_OPTIONS",
    "OLDER_RUN_OPTIONS",
    "PAIR_ONLY_OPTIONS",
]


#: Options added after run folders and results stores existed, each with the value that
#: reproduces the runs made before it (issue 12: random missing; issue 11: the monotone
#: solver, its sub-states, stepwise EM, full covariances; issue 10: the imputed path's
#: weight on complete batches). A run folder whose config.yaml lacks one meant this value,
#: and at this value the option is left out of fingerprints and config hashes, so those of
#: earlier runs stay valid. A new option of that kind goes here.
LATER_OPTIONS: Mapping[str, Any] = MappingProxyType(
    {
        "missing_rate": None,
        "frame_drop": 0.0,
        "drop_burst": 3.0,
        "alignment_solver": "sinkhorn",
        "alignment_states": 1,
        "emission_update": "gradient",
        "emission_covariance": "diagonal",
        "lambda_imputed": 0.0,
        "victim_stream_dropout": 0.0,
        "selection": "metric",
    }
)


#: What a run folder meant by an option its ``config.yaml`` lacks: before the shared step
#: space (issue 11), the paper's alignment; then the options added later (:data:`LATER_OPTIONS`).
OLDER_RUN_OPTIONS: Mapping[str, Any] = MappingProxyType(
    {"alignment_space": "encoder", "reg_relative": False, **LATER_OPTIONS}
)


#: Options of the pair protocol only: a random-missing run ignores them (every batch there
#: trains on imputed inputs), so they are left out of its fingerprint.
PAIR_ONLY_OPTIONS = frozenset({"lambda_imputed", "victim_stream_dropout"})


@dataclass(frozen=True)
class ModelConfig:
    """Backbone sizes."""

    d_model: int = option(
        32, "shared model width d (Table 7: attn_dim 32 on MOSI)", check="positive"
    )
    n_heads: int = option(4, "attention heads (Table 7: num_head 4)", check="positive")
    # 1 layer suits ~1k training samples
    n_layers: int = option(1, "self-attention layers per modality encoder", check="positive")
    n_fusion_layers: int = option(
        1, "cross-attention layers per fusion direction", check="positive"
    )
    # 0.2, not the paper's 0.1: ~1k training samples overfit (docs/method.md, "Defaults")
    dropout: float = option(0.2, "dropout probability", check="fraction")
    # a feed-forward width of 2d keeps the model small on tiny data
    ff_mult: int = option(2, "feed-forward width as a multiple of d", check="positive")
    # mean, not the paper's head token: the labels are time averages (docs/method.md)
    pooling: str = option(
        "mean",
        "fusion output: the head tokens (Eq. 4) or the mean over head and valid steps",
        choices=("head", "mean"),
        normalise="lower",
    )
    # real features (COVAREP, Facet) differ by orders of magnitude between columns
    standardize: bool = option(
        True, "standardise each feature by training-split statistics (kept in the checkpoint)"
    )


@dataclass(frozen=True)
class ADLConfig:
    """Alignment dynamics learner and OT solver."""

    # Table 7: K in {4,5,8,9,10}; Table 8 times K = 8
    window: int = option(
        8, "window radius K: alignment only where |i - j| <= K", check="non_negative"
    )
    # cosine costs lie in [0, 2], so 0.1 gives sharp but smooth plans; with reg_relative
    # it is 0.1 standard deviations of each sample's costs, whatever their scale
    reg: float = option(
        0.1,
        "entropic regularisation mu of the OT problem (in units of each sample's cost "
        "spread with --reg-relative)",
        check="positive",
    )
    max_iter: int = option(100, "Sinkhorn iteration cap", check="positive")
    # targets are compared at ~1e-2 precision by the fit loss
    tol: float = option(1e-4, "Sinkhorn tolerance on the L1 marginal error", check="positive")
    convention: str = option(
        "column",
        "fitter targets from OT plan columns (DESIGN.md) or rows (the official code)",
        choices=("column", "row"),
        normalise="lower",
    )
    fit_normalisation: str = option(
        "mse",
        "fit loss: masked mean squared error, or the paper's Eq. 13 normalisation",
        choices=("mse", "eq13"),
        normalise="lower",
    )
    train_fitter: bool = option(
        True, "train the alignment fitter (off: the 'w/o fit loss' ablation)"
    )
    # docs/method.md, "A step space for the cost": raw encoder outputs give a flat cost
    alignment_space: str = option(
        "projected",
        "where the alignment cost compares steps: a learned shared step space, the raw "
        "encoder outputs (the paper), or a linear-Gaussian emission of the victim's input "
        "features from the source's (a cost in nats; reg and reg_relative then do not apply)",
        choices=("projected", "encoder", "emission"),
        normalise="lower",
    )
    # docs/method.md, "Monotone alignment": per-step plans cannot localise a frame whose
    # content says little; the order of the steps can
    alignment_solver: str = option(
        "sinkhorn",
        "how the cost becomes an alignment: an entropic OT plan (the paper), or the "
        "posterior of a monotone path through the band (forward-backward)",
        choices=("sinkhorn", "monotone"),
        normalise="lower",
    )
    # docs/method.md, "Monotone alignment": a geometric time per source step makes one or two
    # victim steps its likeliest length; sub-states give durations their spread (3-19 frames)
    alignment_states: int = option(
        1,
        "monotone solver: most left-to-right sub-states per source step (1 = geometric "
        "durations); a step holding D victim steps on average gets min(floor(D / 2), this)",
        check="positive",
    )
    emission_update: str = option(
        "gradient",
        "emission space: fit the emission by gradient steps with the model, or by stepwise EM "
        "(a closed-form M-step on running posterior-weighted statistics)",
        choices=("gradient", "em"),
        normalise="lower",
    )
    emission_covariance: str = option(
        "diagonal",
        "emission space: the emission's noise covariance, per feature or full",
        choices=("diagonal", "full"),
        normalise="lower",
    )
    reg_relative: bool = option(
        True, "scale reg by each sample's cost spread (std of its in-window costs)"
    )
    # docs/method.md: word durations vary (3-19 frames), so a word's share of the frames is
    # not 1/n; rho = reg penalises a source marginal off 1/n as much as the entropy smooths
    source_relaxation: float = option(
        0.1,
        "KL weight rho of a relaxed source marginal, in the units of reg (0 = balanced OT, "
        "every source step gets 1/n as in the paper)",
        check="non_negative",
    )
    lambda_step: float = option(
        1.0,
        "weight of the alignment space's own loss: the step-level InfoNCE (projected space) "
        "or the posterior-weighted emission likelihood (emission space; no effect with "
        "emission_update em)",
        check="non_negative",
    )
    step_tau: float = option(0.1, "temperature of the step-level InfoNCE", check="positive")
    lambda_translate: float = option(
        1.0,
        "weight of the source-to-victim step translation loss (projected and emission spaces)",
        check="non_negative",
    )


@dataclass(frozen=True)
class BaselineConfig:
    """Hyperparameters of the imputation baselines (MFM, SMIL, Modal-Trans)."""

    recon_weight: float = option(
        1.0,
        "reconstruction / translation loss weight (MFM, SMIL, Modal-Trans)",
        check="non_negative",
    )
    cycle_weight: float = option(
        1.0, "Modal-Trans back-translation loss weight", check="non_negative"
    )
    mt_layers: int = option(1, "Modal-Trans encoder and decoder layers", check="positive")
    mfm_factor_dim: int = option(
        0, "MFM factor width (0 = the backbone width d)", check="non_negative"
    )
    smil_clusters: int = option(16, "SMIL k-means centres", check="positive")
    smil_decay: float = option(0.9, "SMIL EMA k-means decay per complete batch", check="fraction")
    # keeps SMIL's learned noise from collapsing to zero
    smil_kl_weight: float = option(
        1e-3, "SMIL KL weight on the learned noise", check="non_negative"
    )


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and model selection."""

    # a cap: early stopping usually ends earlier
    epochs: int = option(30, "maximum training epochs after warm-up", check="positive")
    warmup_epochs: int = option(
        1, "warm-up epochs on the complete split (Table 7: 1)", check="non_negative"
    )
    patience: int = option(
        10, "early stopping: epochs without validation improvement (Table 7: 10)", check="positive"
    )
    batch_size: int = option(32, "training batch size (Table 7: 32)", check="positive")
    lr_main: float = option(
        1e-3,
        "learning rate of the backbone and of every baseline (Table 7: 1e-3)",
        check="positive",
    )
    lr_fit: float = option(
        5e-4, "learning rate of MM-Align's alignment fitter (Table 7: 5e-4)", check="positive"
    )
    # 0.01, not the paper's 0: ~1k training samples overfit (docs/method.md, "Defaults")
    weight_decay: float = option(0.01, "AdamW weight decay", check="non_negative")
    lambda_con: float = option(
        0.1,
        "weight of the contrastive (InfoNCE) loss; 0 = 'w/o contrastive' ablation (Table 7: 0.1)",
        check="non_negative",
    )
    # not in the paper; the common SimCLR value
    tau: float = option(0.1, "InfoNCE temperature", check="positive")
    grad_clip: float = option(
        1.0, "maximum gradient norm per optimiser (0 = off)", check="non_negative"
    )
    lr_decay: float = option(0.5, "learning-rate factor on a validation plateau", check="positive")
    lr_patience: int = option(
        3, "plateau epochs before the learning rate decays", check="non_negative"
    )
    single_iteration: bool = option(
        True, "fitter and backbone in one pass over complete batches (off: the 'w/o SI' ablation)"
    )
    # 1, not Algorithm 1's 0: setting A tests the imputed path, which Algorithm 1 trains on
    # the missing split alone; one value for every imputing method (docs/method.md, "Defaults")
    lambda_imputed: float = option(
        1.0,
        "MFM, SMIL, Modal-Trans, MM-Align: weight of the task loss of the imputed path on "
        "complete batches (the victim imputed as if missing; 0 = the paper, only missing "
        "batches train that path). Pair protocol only: under --missing-rate every batch "
        "trains on imputed inputs",
        check="non_negative",
    )
    # modality dropout (Neverova et al., "ModDrop", TPAMI 2016): off by default; an experiment
    # for the privileged regime, where the imputing models trail LB (docs/results.md)
    victim_stream_dropout: float = option(
        0.0,
        "MFM, SMIL, Modal-Trans, MM-Align: probability that a training sample's victim stream, "
        "real or imputed, is replaced in the fusion by its source stream (the computation LB "
        "does for every sample); 0 = off. Pair protocol only",
        check="fraction",
    )
    # 'auto' selects classification runs on the validation cross-entropy, smoother than
    # weighted F1 on a few hundred samples: adopted by a rule written before its runs
    # (docs/results.md, "Selecting on the validation loss"); regression keeps MAE
    selection: str = option(
        "auto",
        "what picks each setting's best checkpoint and drives early stopping and the "
        "learning-rate plateau: 'metric' = the validation MAE (weighted F1 for classes, the "
        "paper's), 'loss' = the validation task loss (MSE; cross-entropy for classes), "
        "'auto' = loss for classification, metric for regression",
        choices=("auto", "metric", "loss"),
        normalise="lower",
    )
    eval_batch_size: int = option(
        256, "batch size of validation and test predictions", check="positive"
    )


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run."""

    data: str = option(
        "synthetic",
        "dataset path, or 'synthetic' / 'synthetic:key=value,...' for the built-in benchmark",
    )
    format: str = option(
        "",
        "data format (default: detected from the path)",
        choices=("", "native", "mmsa", "mult", "misa", "meld", "csd"),
        normalise="lower",
    )
    trust_pickle: bool = option(False, "unpickle without restrictions (only for files you trust)")
    task: str = option(
        "",
        "task when the file has both label kinds (default: what the file says, regression first)",
        choices=("", "regression", "classification"),
        normalise="lower",
    )
    label_key: str = option("", "name of the label array to use (default: chosen from the format)")
    pair: str = option("t:v", "source:victim, e.g. t:v or text:vision")
    p: float = option(
        0.1, "survival rate of the victim modality in training, in (0, 1]", check="probability"
    )
    seed: int = option(
        0, "split seed (also seeds initialisation and batch order)", check="non_negative"
    )
    missing_rate: float | None = option(
        None,
        "random-missing protocol: each (sample, modality) is missing with this probability, "
        "in [0, 1), at least one modality kept (replaces --pair and --p)",
        check="fraction",
        kind=float,
    )
    frame_drop: float = option(
        0.0,
        "random-missing protocol: share of the steps dropped in every present modality, in [0, 1)",
        check="fraction",
    )
    drop_burst: float = option(
        3.0, "mean length in steps of a burst of dropped steps (>= 1)", check="positive"
    )
    method: str = option(
        "mm-align",
        "method: a registered method (mmalign run --help lists them)",
        normalise="method",
    )
    device: str = option(
        "auto", "auto (CUDA when present), cpu, cuda, cuda:N", normalise="lower", execution=True
    )
    threads: int = option(
        0,
        "torch threads (0 = auto: see docs/method.md, 'Threads')",
        check="non_negative",
        execution=True,
    )
    progress: bool = option(True, "show progress bars on a terminal", execution=True)
    model: ModelConfig = field(default_factory=ModelConfig)
    adl: ADLConfig = field(default_factory=ADLConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    baselines: BaselineConfig = field(default_factory=BaselineConfig)

    def validate(self) -> "RunConfig":
        """Check every option against its constraint; raise :class:`ConfigError` naming it."""
        validate_fields(self)
        for section in SECTIONS:
            validate_fields(getattr(self, section))
        check_in("device", self.device.split(":")[0], ["auto", "cpu", "cuda", "mps"])
        split_pair(self.pair)
        if self.drop_burst < 1:
            raise ConfigError(f"`drop_burst` must be >= 1 step; got {self.drop_burst!r}.")
        if self.frame_drop > 0 and self.missing_rate is None:
            raise ConfigError(
                f"`frame_drop` needs the random-missing protocol; got frame_drop={self.frame_drop!r}"
                " without missing_rate (use --missing-rate 0 to drop frames only)."
            )
        if self.adl.alignment_states > 1 and self.adl.alignment_solver != "monotone":
            raise ConfigError(
                f"`alignment_states` applies to the monotone solver; got alignment_states="
                f"{self.adl.alignment_states} with alignment_solver="
                f"{self.adl.alignment_solver!r} (add --alignment-solver monotone)."
            )
        for name, default in (("emission_update", "gradient"), ("emission_covariance", "diagonal")):
            value = getattr(self.adl, name)
            if value != default and self.adl.alignment_space != "emission":
                raise ConfigError(
                    f"`{name}` applies to the emission space; got {name}={value!r} with "
                    f"alignment_space={self.adl.alignment_space!r} (add --alignment-space "
                    "emission)."
                )
        if self.model.d_model % self.model.n_heads:
            raise ConfigError(
                f"`d_model` must be divisible by n_heads={self.model.n_heads}; got {self.model.d_model}."
            )
        return self

    @property
    def random_missing(self) -> bool:
        """True for the random-missing protocol (``missing_rate`` set), False for the pair one."""
        return self.missing_rate is not None

    @property
    def source_victim(self) -> tuple[str, str]:
        """The pair as ``(source, victim)`` short or full names, as given."""
        return split_pair(self.pair)


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "adl": ADLConfig,
    "train": TrainConfig,
    "baselines": BaselineConfig,
}

#: Titles of the option groups in ``--help`` (``None``: the run's own options).
SECTION_TITLES: dict[str | None, str] = {
    None: "run",
    "model": "model (backbone)",
    "adl": "alignment dynamics learner / OT (MM-Align)",
    "train": "training",
    "baselines": "baselines (MFM, SMIL, Modal-Trans)",
}


def flat_fields() -> dict[str, tuple[str | None, dataclasses.Field]]:
    """Every settable option by its flat name -> (section or None, field).

    Flat names are unique across sections, so ``--window 4`` and ``adl.window: 4`` mean the same.
    """
    out: dict[str, tuple[str | None, dataclasses.Field]] = {}
    for f in fields(RunConfig):
        if f.name in SECTIONS:
            for g in fields(SECTIONS[f.name]):
                out[g.name] = (f.name, g)
        else:
            out[f.name] = (None, f)
    return out


def execution_options() -> frozenset[str]:
    """Options that choose where and how a run executes, not what it computes.

    >>> sorted(execution_options())
    ['device', 'progress', 'threads']
    """
    return frozenset(n for n, (_, f) in flat_fields().items() if f.metadata.get("execution"))


def flatten(values: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten config sections and dotted keys to flat option names.

    >>> flatten({"adl": {"window": 4}, "train.epochs": 2, "trust-pickle": True})
    {'window': 4, 'epochs': 2, 'trust_pickle': True}
    """
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value))
        else:
            flat[str(key).split(".")[-1].replace("-", "_")] = value
    return flat


def apply_overrides(config: RunConfig, overrides: Mapping[str, Any]) -> RunConfig:
    """Return ``config`` with options replaced; keys are flat names, ``section.name`` or sections."""
    known = flat_fields()
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for name, value in flatten(overrides).items():
        if name not in known:
            raise ConfigError(f"unknown option {name!r}; valid options are {sorted(known)}.")
        section, f = known[name]
        (top if section is None else nested[section])[name] = coerce(f, value)
    for section, values in nested.items():
        if values:
            top[section] = replace(getattr(config, section), **values)
    return replace(config, **top)


def check_option(name: str, value: Any) -> Any:
    """Read and check one option by its flat name, as the table states it; return the value.

    >>> check_option("p", "0.5")
    0.5
    >>> check_option("p", 0)
    Traceback (most recent call last):
    ...
    mmalign.validation.ConfigError: `p` must be in (0, 1]; got 0.0.
    """
    fields = flat_fields()
    if name not in fields:
        raise ConfigError(f"unknown option {name!r}; valid options are {sorted(fields)}.")
    f = fields[name][1]
    value = coerce(f, value)
    if value is None and f.metadata.get("kind") is not None:
        return None  # an optional option that is off
    if f.metadata.get("choices"):
        check_in(name, value, f.metadata["choices"])
    if f.metadata.get("check"):
        CHECKS[f.metadata["check"]](name, value)
    return value


def missing_rate_in(options: Mapping[str, Any]) -> float | None:
    """Return the ``missing_rate`` that options set, checked; ``None`` (or off) is the pair protocol.

    The one reader of the protocol choice (flat, dotted or nested keys; ``""`` and ``"none"``
    mean off).

    >>> missing_rate_in({"missing_rate": "0.3"}), missing_rate_in({"missing_rate": "none"})
    (0.3, None)
    """
    value = flatten(options).get("missing_rate")
    return None if value is None else check_option("missing_rate", value)


def check_protocol(given: Mapping[str, Any]) -> None:
    """Refuse options of the pair protocol given together with a ``missing_rate``.

    ``given`` maps flat option names to what a user set (flags, YAML, ``--set``). The
    random-missing protocol has no source:victim pair and no survival rate.

    >>> check_protocol({"missing_rate": 0.3, "frame_drop": 0.2})
    >>> check_protocol({"missing_rate": 0.3, "pair": "t:v"})
    Traceback (most recent call last):
    ...
    mmalign.validation.ConfigError: `pair` cannot be combined with `missing_rate` (the random-missing protocol draws every modality's presence); drop pair.
    """
    flat = flatten(given)
    if missing_rate_in(flat) is None:
        return
    for name in ("pair", "p"):
        if flat.get(name) is not None:
            raise ConfigError(
                f"`{name}` cannot be combined with `missing_rate` (the random-missing protocol "
                f"draws every modality's presence); drop {name}."
            )


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """Nested plain dict (YAML/JSON-able)."""
    return dataclasses.asdict(config)


def config_from_dict(values: Mapping[str, Any] | None) -> RunConfig:
    """Build a config from a nested or flat dict (as read from YAML)."""
    return apply_overrides(RunConfig(), values or {})


def load_yaml_options(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into flat options (nested sections or flat keys)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist.")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err}).") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of options.")
    return flatten(values)


def load_config(path: str | Path) -> RunConfig:
    """Read a YAML config file (nested sections or flat keys) into a :class:`RunConfig`."""
    return config_from_dict(load_yaml_options(path))


def load_run_config(path: str | Path) -> RunConfig:
    """Read a run folder's ``config.yaml`` into a :class:`RunConfig`.

    Options the file lacks take their :data:`OLDER_RUN_OPTIONS` value (what the run meant
    when it was made), not today's default: ``mmalign run --resume`` continues an older run
    as it began.
    """
    return config_from_dict({**OLDER_RUN_OPTIONS, **load_yaml_options(path)})
