"""The single registry of methods: name -> everything the harness needs to run it.

Builders are the only code that reads a :class:`~mmalign.train.config.RunConfig`; modules
take explicit arguments (house style rule 5). Registry introduced for this toolkit (2026).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmalign.models.backbone import Backbone
from mmalign.models.method import MissingModalityModel, PairDims
from mmalign.validation import check_in

if TYPE_CHECKING:
    from mmalign.train.config import RunConfig

__all__ = ["MethodSpec", "METHODS", "get_method", "build_backbone"]


@dataclass(frozen=True)
class MethodSpec:
    """How to build and run one method.

    Attributes
    ----------
    name : str
    build : callable
        ``build(dims, config) -> MissingModalityModel``.
    description : str
    complete_data : bool
        True for the upper bound: the victim is given for every sample of every split.
    """

    name: str
    build: Callable[[PairDims, "RunConfig"], MissingModalityModel]
    description: str
    complete_data: bool = False


def build_backbone(dims: PairDims, config: "RunConfig") -> Backbone:
    """Build the shared backbone, sized by ``config.model``."""
    m = config.model
    return Backbone(
        dims.source_dim,
        dims.victim_dim,
        dims.output_dim,
        d_model=m.d_model,
        n_heads=m.n_heads,
        n_layers=m.n_layers,
        n_fusion_layers=m.n_fusion_layers,
        dropout=m.dropout,
        ff_mult=m.ff_mult,
    )


def _mm_align(dims: PairDims, config: "RunConfig") -> MissingModalityModel:
    from mmalign.models.mm_align import MMAlign

    a, t = config.adl, config.train
    return MMAlign(
        build_backbone(dims, config),
        dims.task,
        window=a.window,
        reg=a.reg,
        max_iter=a.max_iter,
        tol=a.tol,
        lambda_con=t.lambda_con,
        tau=t.tau,
        convention=a.convention,  # type: ignore[arg-type]
        fit_normalisation=a.fit_normalisation,
        train_fitter=a.train_fitter,
    )


def _lb(dims: PairDims, config: "RunConfig") -> MissingModalityModel:
    from mmalign.models.baselines.lb import SourceOnly

    return SourceOnly(build_backbone(dims, config), dims.task)


def _ub(dims: PairDims, config: "RunConfig") -> MissingModalityModel:
    from mmalign.models.baselines.ub import BothModalities

    return BothModalities(build_backbone(dims, config), dims.task)


def _mfm(dims: PairDims, config: "RunConfig") -> MissingModalityModel:
    from mmalign.models.baselines.mfm import MFM

    b = config.baselines
    return MFM(
        build_backbone(dims, config),
        dims.task,
        factor_dim=b.mfm_factor_dim or None,  # 0: the backbone width d
        recon_weight=b.recon_weight,
    )


def _smil(dims: PairDims, config: "RunConfig") -> MissingModalityModel:
    from mmalign.models.baselines.smil import SMIL

    b = config.baselines
    return SMIL(
        build_backbone(dims, config),
        dims.task,
        n_clusters=b.smil_clusters,
        decay=b.smil_decay,
        recon_weight=b.recon_weight,
        kl_weight=b.smil_kl_weight,
    )


def _modal_trans(dims: PairDims, config: "RunConfig") -> MissingModalityModel:
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
    )


METHODS: dict[str, MethodSpec] = {
    "lb": MethodSpec("lb", _lb, "Supervised-Single: source modality only (lower bound)"),
    "ub": MethodSpec(
        "ub", _ub, "Supervised-Both: both modalities always (upper bound)", complete_data=True
    ),
    "mm-align": MethodSpec(
        "mm-align", _mm_align, "MM-Align: OT alignment dynamics + denoising training"
    ),
    "mfm": MethodSpec(
        "mfm", _mfm, "MFM: factorised shared/specific factors, victim generated from the source"
    ),
    "smil": MethodSpec(
        "smil", _smil, "SMIL: victim as weighted cluster centres with learned Gaussian noise"
    ),
    "modal-trans": MethodSpec(
        "modal-trans",
        _modal_trans,
        "Modal-Trans: cyclic transformer translation, autoregressive decoding",
    ),
}


def get_method(name: str) -> MethodSpec:
    """Look a method up by name (``mm_align`` and ``mm-align`` both work)."""
    key = name.lower().replace("_", "-")
    check_in("method", key, list(METHODS))
    return METHODS[key]
