"""The single registry of methods: every fact the harness knows about a method lives here.

A :class:`MethodSpec` gives a method's name, its label and place in tables, how to build it,
whether it needs complete data, its optimiser groups with their learning-rate options, and
which method-specific options apply to it. Commands, grids, tables and significance tests
read these facts; nothing else names a method. Builders are the only code that reads a
:class:`~mmalign.config.RunConfig`; modules take explicit arguments (house style rule 5).
Importing this module imports no torch: builders import their model when called.
Registry introduced for this toolkit (2026).

Adding a method: write its module (a :class:`~mmalign.models.method.MissingModalityModel`),
a builder here and one entry in :data:`METHODS` (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from mmalign.config import ADLConfig, RunConfig, flat_fields
from mmalign.validation import ConfigError, check_in

if TYPE_CHECKING:
    from mmalign.models.backbone import Backbone
    from mmalign.models.method import MissingModalityModel, PairDims
    from mmalign.models.pattern_backbone import PatternBackbone
    from mmalign.models.pattern_method import PatternDims, PatternModel

__all__ = [
    "MethodSpec",
    "METHODS",
    "get_method",
    "method_names",
    "upper_bound",
    "proposed_method",
    "method_specific_options",
    "check_options_apply",
    "options_for",
    "build_backbone",
    "build_pattern_backbone",
]


@dataclass(frozen=True)
class MethodSpec:
    """Everything the harness needs to know about one method.

    Attributes
    ----------
    name : str
        Registry key, lower case with hyphens (``"mm-align"``).
    label : str
        Name in tables and plots (``"MM-Align"``).
    build : callable
        ``build(dims, config) -> MissingModalityModel``.
    description : str
    complete_data : bool
        True for the upper bound: the victim is given for every sample of every split, so the
        survival rate does not apply and settings A and B coincide.
    proposed : bool
        The method the paper proposes: significance marks compare it against the others, and
        the ablation and window sweep vary its options.
    lr_options : dict[str, str]
        Optimiser group -> the option that sets its learning rate; groups not listed use
        ``lr_main``.
    options : tuple of str
        Method-specific options that apply to this method. An option that some method lists
        applies only to the methods that list it; every other option applies to all.
    inputs : {"source", "pair", "both"}
        What the method may use at test time, and so which sanity floor it is compared
        with: the source alone (LB), the source and the victim where present (imputation
        methods: the floor of the setting), or both modalities always (UB).
    own_axis : bool
        The method takes an unaligned victim on its own time axis (any length); False: the
        victim is resampled onto the source's steps (one shared axis).
    build_patterns : callable, optional
        ``build_patterns(dims, config) -> PatternModel`` for the random-missing protocol
        (any subset of modalities, dropped steps); None where the method does not take it.
    patterns_note : str
        Why a method without ``build_patterns`` does not take the random-missing protocol.
    """

    name: str
    label: str
    build: Callable[["PairDims", RunConfig], "MissingModalityModel"]
    description: str
    complete_data: bool = False
    proposed: bool = False
    lr_options: Mapping[str, str] = field(default_factory=dict)
    options: tuple[str, ...] = ()
    inputs: str = "pair"
    own_axis: bool = False
    build_patterns: Callable[["PatternDims", RunConfig], "PatternModel"] | None = None
    patterns_note: str = ""

    def floor_key(self, setting: str) -> str:
        """Key of the run's ``floor`` this method is compared with under ``setting``.

        >>> get_method("lb").floor_key("A"), get_method("mm-align").floor_key("B")
        ('source_only', 'pair_B')
        """
        return {"source": "source_only", "both": "both"}.get(self.inputs, f"pair_{setting}")

    def learning_rates(self, config: RunConfig) -> dict[str, float]:
        """Learning rate per optimiser group, ``{"*": lr_main}`` for every unlisted group."""
        values = {**vars(config.train)}
        return {"*": config.train.lr_main, **{g: values[o] for g, o in self.lr_options.items()}}


def build_backbone(dims: "PairDims", config: RunConfig) -> "Backbone":
    """Build the shared backbone, sized by ``config.model``."""
    from mmalign.models.backbone import Backbone

    return Backbone(dims.source_dim, dims.victim_dim, dims.output_dim, **_backbone_sizes(config))


def _backbone_sizes(config: RunConfig) -> dict[str, Any]:
    """Return the backbone sizes from ``config.model``, as keyword arguments of either backbone."""
    m = config.model
    return dict(
        d_model=m.d_model,
        n_heads=m.n_heads,
        n_layers=m.n_layers,
        n_fusion_layers=m.n_fusion_layers,
        dropout=m.dropout,
        ff_mult=m.ff_mult,
        pooling=m.pooling,
    )


def _mm_align(dims: "PairDims", config: RunConfig) -> "MissingModalityModel":
    from mmalign.models.mm_align import MMAlign

    return MMAlign(
        build_backbone(dims, config),
        dims.task,
        single_iteration=config.train.single_iteration,
        **_imputing_options(config),
        **_alignment_options(config),
    )


#: Options of every method that imputes the victim (MFM, SMIL, Modal-Trans, MM-Align).
_IMPUTING_OPTIONS = ("lambda_imputed", "victim_stream_dropout")


def _imputing_options(config: RunConfig) -> dict[str, Any]:
    """Return the imputing methods' shared training options, as keywords of their models."""
    return {name: getattr(config.train, name) for name in _IMPUTING_OPTIONS}


def _alignment_options(config: RunConfig) -> dict[str, Any]:
    """MM-Align's alignment options and contrastive weights, as keywords of its models."""
    return dict(adl=config.adl, lambda_con=config.train.lambda_con, tau=config.train.tau)


def build_pattern_backbone(dims: "PatternDims", config: RunConfig) -> "PatternBackbone":
    """Build the K-modality backbone of the random-missing protocol, sized by ``config.model``."""
    from mmalign.models.pattern_backbone import PatternBackbone

    return PatternBackbone(dims.input_dims, dims.output_dim, **_backbone_sizes(config))


def _mm_align_patterns(dims: "PatternDims", config: RunConfig) -> "PatternModel":
    from mmalign.models.mm_align_patterns import MMAlignPatterns

    return MMAlignPatterns(
        build_pattern_backbone(dims, config), dims.task, **_alignment_options(config)
    )


def _present_only(dims: "PatternDims", config: RunConfig) -> "PatternModel":
    from mmalign.models.baselines.present_only import PresentOnly

    return PresentOnly(build_pattern_backbone(dims, config), dims.task)


def _lb(dims: "PairDims", config: RunConfig) -> "MissingModalityModel":
    from mmalign.models.baselines.lb import SourceOnly

    return SourceOnly(build_backbone(dims, config), dims.task)


def _ub(dims: "PairDims", config: RunConfig) -> "MissingModalityModel":
    from mmalign.models.baselines.ub import BothModalities

    return BothModalities(build_backbone(dims, config), dims.task)


def _mfm(dims: "PairDims", config: RunConfig) -> "MissingModalityModel":
    from mmalign.models.baselines.mfm import MFM

    b = config.baselines
    return MFM(
        build_backbone(dims, config),
        dims.task,
        factor_dim=b.mfm_factor_dim or None,  # 0: the backbone width d
        recon_weight=b.recon_weight,
        **_imputing_options(config),
    )


def _smil(dims: "PairDims", config: RunConfig) -> "MissingModalityModel":
    from mmalign.models.baselines.smil import SMIL

    b = config.baselines
    return SMIL(
        build_backbone(dims, config),
        dims.task,
        n_clusters=b.smil_clusters,
        decay=b.smil_decay,
        recon_weight=b.recon_weight,
        kl_weight=b.smil_kl_weight,
        **_imputing_options(config),
    )


def _modal_trans(dims: "PairDims", config: RunConfig) -> "MissingModalityModel":
    from mmalign.models.baselines.modal_trans import ModalTrans

    m, b = config.model, config.baselines
    return ModalTrans(
        build_backbone(dims, config),
        dims.task,
        n_heads=m.n_heads,
        n_layers=b.mt_layers,
        dropout=m.dropout,
        ff_mult=m.ff_mult,
        recon_weight=b.recon_weight,
        cycle_weight=b.cycle_weight,
        **_imputing_options(config),
    )


#: MM-Align's alignment options: every field of the option table's ``adl`` section.
_ADL_OPTIONS = tuple(f.name for f in fields(ADLConfig))

_PAIR_GENERATOR = (
    "it is built for one source and one victim ({what}); any subset of three modalities would "
    "need one per ordered pair and a rule to combine them, which its paper does not give"
)

#: Every method, in the order of the paper's tables.
METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            "lb",
            "LB",
            _lb,
            "Supervised-Single: source modality only (lower bound)",
            inputs="source",
            own_axis=True,
            build_patterns=_present_only,
        ),
        MethodSpec(
            "ub",
            "UB",
            _ub,
            "Supervised-Both: both modalities always (upper bound)",
            complete_data=True,
            inputs="both",
            own_axis=True,
            build_patterns=_present_only,
        ),
        MethodSpec(
            "mfm",
            "MFM",
            _mfm,
            "MFM: factorised shared/specific factors, victim generated from the source",
            options=("recon_weight", "mfm_factor_dim", *_IMPUTING_OPTIONS),
            patterns_note=_PAIR_GENERATOR.format(what="its generator of the victim factors"),
        ),
        MethodSpec(
            "smil",
            "SMIL",
            _smil,
            "SMIL: victim as weighted cluster centres with learned Gaussian noise",
            options=(
                "recon_weight",
                "smil_clusters",
                "smil_decay",
                "smil_kl_weight",
                *_IMPUTING_OPTIONS,
            ),
            patterns_note=_PAIR_GENERATOR.format(what="its cluster prior of the victim"),
        ),
        MethodSpec(
            "modal-trans",
            "Modal-Trans",
            _modal_trans,
            "Modal-Trans: cyclic transformer translation, autoregressive decoding",
            options=("recon_weight", "cycle_weight", "mt_layers", *_IMPUTING_OPTIONS),
            patterns_note=_PAIR_GENERATOR.format(what="its cyclic source-to-victim translator"),
        ),
        MethodSpec(
            "mm-align",
            "MM-Align",
            _mm_align,
            "MM-Align: OT alignment dynamics + denoising training",
            proposed=True,
            own_axis=True,
            build_patterns=_mm_align_patterns,
            lr_options={"fitter": "lr_fit"},
            options=(
                *_ADL_OPTIONS,
                "lr_fit",
                "lambda_con",
                "tau",
                "single_iteration",
                *_IMPUTING_OPTIONS,
            ),
        ),
    )
}


def get_method(name: str) -> MethodSpec:
    """Look a method up by name (any case; ``mm_align`` and ``mm-align`` both work).

    >>> get_method("MM_Align").label
    'MM-Align'
    """
    key = str(name).strip().lower().replace("_", "-")
    check_in("method", key, list(METHODS))
    return METHODS[key]


def method_names() -> tuple[str, ...]:
    """List the registered method names in table order.

    >>> method_names()
    ('lb', 'ub', 'mfm', 'smil', 'modal-trans', 'mm-align')
    """
    return tuple(METHODS)


def upper_bound() -> str:
    """Name of the method that trains and tests with complete data (``"ub"``)."""
    return next(s.name for s in METHODS.values() if s.complete_data)


def proposed_method() -> str:
    """Name of the proposed method (``"mm-align"``)."""
    return next(s.name for s in METHODS.values() if s.proposed)


def method_specific_options() -> frozenset[str]:
    """Options that apply only to the methods that list them."""
    return frozenset(o for spec in METHODS.values() for o in spec.options)


def check_options_apply(method: str, given: Iterable[str]) -> None:
    """Raise :class:`ConfigError` when an option given explicitly does not apply to ``method``.

    >>> check_options_apply("lb", ["epochs"])
    >>> check_options_apply("lb", ["window"])
    Traceback (most recent call last):
    ...
    mmalign.validation.ConfigError: `window` does not apply to method 'lb'; it applies to ['mm-align'].
    """
    spec = get_method(method)
    specific = method_specific_options()
    for name in given:
        if name in specific and name not in spec.options:
            users = [s.name for s in METHODS.values() if name in s.options]
            raise ConfigError(
                f"`{name}` does not apply to method {spec.name!r}; it applies to {users}."
            )


def options_for(method: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return the overrides (flat names) that apply to ``method``; the others are dropped.

    A grid passes one ``--config`` / ``--set`` to every method; each run keeps only what
    applies to it, so e.g. an LB run's fingerprint does not depend on the window.

    >>> options_for("lb", {"window": 4, "epochs": 2})
    {'epochs': 2}
    """
    spec = get_method(method)
    specific = method_specific_options()
    known = flat_fields()
    return {
        k: v
        for k, v in overrides.items()
        if k not in known or k not in specific or k in spec.options
    }
