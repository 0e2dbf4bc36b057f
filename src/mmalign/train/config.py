"""Run configuration: frozen dataclasses, YAML files and command-line overrides.

Defaults follow appendix B (Table 7, CMU-MOSI column) of MM-Align (Han et al., EMNLP 2022)
where the paper gives them; every other default says why it was chosen.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from mmalign.validation import (
    ConfigError,
    check_in,
    check_non_negative,
    check_positive,
    check_probability,
)

__all__ = [
    "ModelConfig",
    "ADLConfig",
    "TrainConfig",
    "BaselineConfig",
    "RunConfig",
    "SECTIONS",
    "load_config",
    "apply_overrides",
    "config_to_dict",
    "config_from_dict",
    "flat_fields",
]


@dataclass(frozen=True)
class ModelConfig:
    """Backbone sizes."""

    d_model: int = 32  # Table 7: attn_dim 32 (MOSI)
    n_heads: int = 4  # Table 7: num_head 4
    n_layers: int = 1  # self-attention layers per modality encoder; 1 suits ~1k samples
    n_fusion_layers: int = 1  # cross-attention layers per fusion direction
    dropout: float = 0.1
    ff_mult: int = 2  # feed-forward width 2d keeps the model small on tiny data


@dataclass(frozen=True)
class ADLConfig:
    """Alignment dynamics learner and OT solver."""

    window: int = 8  # Table 7: K in {4,5,8,9,10}; Table 8 times K = 8
    reg: float = 0.1  # entropic mu: costs lie in [0, 2], so 0.1 gives sharp but smooth plans
    max_iter: int = 100
    tol: float = 1e-4  # marginal error; targets are compared at ~1e-2 precision by the fit loss
    convention: str = "column"  # DESIGN.md: barycentric projection uses plan columns
    fit_normalisation: str = "mse"  # masked MSE; "eq13" for the paper's normalisation
    train_fitter: bool = True  # False = "w/o fit loss" ablation (untrained fitter)


@dataclass(frozen=True)
class BaselineConfig:
    """Hyperparameters of the imputation baselines (MFM, SMIL, Modal-Trans)."""

    recon_weight: float = 1.0  # reconstruction / translation loss weight (all three)
    cycle_weight: float = 1.0  # Modal-Trans back-translation loss weight
    mt_layers: int = 1  # Modal-Trans encoder and decoder layers per translator
    mfm_factor_dim: int = 0  # MFM factor width; 0 = the backbone width d
    smil_clusters: int = 16  # SMIL k-means centres
    smil_decay: float = 0.9  # SMIL EMA k-means decay per complete batch
    smil_kl_weight: float = 1e-3  # keeps SMIL's learned noise from collapsing to zero


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and model selection."""

    epochs: int = 30  # cap; early stopping usually ends earlier
    warmup_epochs: int = 1  # Table 7: warm-up 1
    patience: int = 10  # Table 7: patience 10 (MOSI)
    batch_size: int = 32  # Table 7: n_b 32
    lr_main: float = 1e-3  # Table 7: eta_main 1e-3
    lr_fit: float = 5e-4  # Table 7: eta_fit 5e-4
    weight_decay: float = 0.0
    lambda_con: float = 0.1  # Table 7: lambda 0.1
    tau: float = 0.1  # InfoNCE temperature (not in the paper; common SimCLR value)
    grad_clip: float = 1.0  # max gradient norm per optimiser group
    lr_decay: float = 0.5  # ReduceLROnPlateau factor
    lr_patience: int = 3  # epochs without validation improvement before decaying
    single_iteration: bool = True  # False = "w/o SI" ablation: separate fitter and backbone loops
    eval_batch_size: int = 256


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one run."""

    data: str = "synthetic"  # a path, or "synthetic" for the built-in benchmark
    format: str = ""  # data format override ("" = detect from the path)
    trust_pickle: bool = False
    pair: str = "t:v"  # source:victim
    p: float = 0.1  # survival rate of the victim in training
    seed: int = 0  # split seed; also seeds initialisation and batch order
    method: str = "mm-align"
    device: str = "auto"
    threads: int = 0  # torch threads; 0 = leave torch's default
    progress: bool = True
    model: ModelConfig = field(default_factory=ModelConfig)
    adl: ADLConfig = field(default_factory=ADLConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    baselines: BaselineConfig = field(default_factory=BaselineConfig)

    def validate(self) -> "RunConfig":
        """Check ranges and choices; raise :class:`ConfigError` naming the option."""
        check_probability("p", self.p)
        check_in("device", self.device.split(":")[0], ["auto", "cpu", "cuda", "mps"])
        if ":" not in self.pair and "->" not in self.pair:
            raise ConfigError(
                f"`pair` must look like 'source:victim' (e.g. 't:v'); got {self.pair!r}."
            )
        for name in ("d_model", "n_heads", "n_layers", "n_fusion_layers", "ff_mult"):
            check_positive(name, getattr(self.model, name))
        if self.model.d_model % self.model.n_heads:
            raise ConfigError(
                f"`d_model` must be divisible by n_heads={self.model.n_heads}; got {self.model.d_model}."
            )
        check_non_negative("window", self.adl.window)
        check_positive("reg", self.adl.reg)
        check_positive("max_iter", self.adl.max_iter)
        check_positive("tol", self.adl.tol)
        check_in("convention", self.adl.convention, ["column", "row"])
        check_in("fit_normalisation", self.adl.fit_normalisation, ["mse", "eq13"])
        for name in (
            "epochs",
            "batch_size",
            "lr_main",
            "lr_fit",
            "patience",
            "eval_batch_size",
            "tau",
        ):
            check_positive(name, getattr(self.train, name))
        check_non_negative("warmup_epochs", self.train.warmup_epochs)
        check_non_negative("lambda_con", self.train.lambda_con)
        check_non_negative("grad_clip", self.train.grad_clip)
        b = self.baselines
        check_non_negative("recon_weight", b.recon_weight)
        check_non_negative("cycle_weight", b.cycle_weight)
        check_positive("mt_layers", b.mt_layers)
        check_non_negative("mfm_factor_dim", b.mfm_factor_dim)
        check_positive("smil_clusters", b.smil_clusters)
        check_probability("smil_decay", b.smil_decay, open_low=False)
        check_non_negative("smil_kl_weight", b.smil_kl_weight)
        return self

    @property
    def source_victim(self) -> tuple[str, str]:
        """The pair as ``(source, victim)`` short or full names, as given."""
        sep = "->" if "->" in self.pair else ":"
        source, victim = (s.strip() for s in self.pair.split(sep, 1))
        return source, victim


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "adl": ADLConfig,
    "train": TrainConfig,
    "baselines": BaselineConfig,
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


def _coerce(name: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"`{name}` must be true or false; got {value!r}.")
        return bool(value)
    try:
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"`{name}` must be a {type(default).__name__}; got {value!r}.") from None
    return str(value)


def apply_overrides(config: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """Return ``config`` with options replaced; keys are flat names or ``section.name``."""
    known = flat_fields()
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for key, value in overrides.items():
        name = key.split(".")[-1].replace("-", "_")
        if name not in known:
            raise ConfigError(f"unknown option {key!r}; valid options are {sorted(known)}.")
        section, f = known[name]
        default = f.default if f.default is not dataclasses.MISSING else None
        value = _coerce(name, value, default)
        if section is None:
            top[name] = value
        else:
            nested[section][name] = value
    for section, values in nested.items():
        if values:
            top[section] = replace(getattr(config, section), **values)
    return replace(config, **top)


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """Nested plain dict (YAML/JSON-able)."""
    return dataclasses.asdict(config)


def config_from_dict(values: dict[str, Any]) -> RunConfig:
    """Build a config from a nested or flat dict (as read from YAML)."""
    flat: dict[str, Any] = {}
    for key, value in (values or {}).items():
        if key in SECTIONS and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return apply_overrides(RunConfig(), flat)


def load_config(path: str | Path) -> RunConfig:
    """Read a YAML config file (nested sections or flat keys)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist.")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err}).") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of options.")
    return config_from_dict(values)
