"""Seeded synthetic benchmark: parallel, locally warped modality sequences with labels.

The embedded default dataset. It imitates the structure MM-Align (Han et al., EMNLP 2022)
exploits and the statistics of CMU-MOSI (Zadeh et al., 2016): word-aligned sequences of
10-50 steps, 1284 / 229 / 686 samples, text / vision / audio widths 32 / 20 / 5.

Generative story, per sample ``i`` of length ``L_i``:

1. A *latent event sequence* ``e[i, tau]`` of width ``shared_dim`` on a latent time axis
   ``tau = 0 .. L_i - 1``: a per-sample level plus an AR(1) fluctuation (``event_smoothness``).
2. Every modality ``m`` observes the events through its own monotone time warping
   ``w_m[i, t]`` (step ``t`` of ``m`` sees latent step ``w_m[i, t]``): a random, smoothly
   varying speed (log-speed std ``warp_strength``) whose cumulative time is clipped to
   ``|w_m[i, t] - t| <= warp_band``. The true cross-modal alignment is therefore banded,
   ``|i - j| <= 2 * warp_band``, but not the identity.
3. Every modality also carries a *unique* latent sequence of width ``unique_dim`` (a
   per-sample level plus its own AR(1) fluctuation) that no other modality sees.
4. Features are a fixed random linear read-out of ``[events at w_m, unique]`` plus a
   per-modality offset and Gaussian noise of std ``noise_<m>``; zero after the length.
5. The label mixes the time means of the event sequence (weight ``info_shared``) and of
   each modality's unique sequence (weight ``info_<m>``, text largest by default), plus
   label noise. Regression squashes the standardised score to ``3 tanh(.)`` and rounds it
   to multiples of ``label_step`` (so some labels are exactly 0, as in CMU-MOSI);
   classification takes the arg-max of ``n_classes`` such scores plus class biases tuned
   to geometric class frequencies (``class_imbalance``), like MELD's skewed emotions.

A model that sees only one modality misses the other's unique part of the label, so
source-only models are clearly worse than models that see the pair.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mmalign.data.dataset import SPLIT_NAMES, MultimodalDataset, Split
from mmalign.validation import (
    ConfigError,
    check_in,
    check_non_negative,
    check_positive,
    check_probability,
)

__all__ = [
    "SYNTHETIC_MODALITIES",
    "SyntheticConfig",
    "SyntheticData",
    "generate_synthetic",
    "make_synthetic",
    "monotone_warps",
]

SYNTHETIC_MODALITIES: tuple[str, ...] = ("text", "vision", "audio")

# 3 tanh(0.7 z) of a standard normal z has std ~1.6 and leaves ~10% of labels beyond
# |2.5|, close to CMU-MOSI's spread; a gain of 1 piles labels up at +-3.
_TANH_GAIN = 0.7
# Number of bias-correction rounds that tune the class frequencies (converges in ~10).
_CLASS_BIAS_ROUNDS = 30


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the synthetic benchmark; the defaults imitate CMU-MOSI (aligned features).

    Every field carries ``metadata["help"]``: ``mmalign data synth`` builds its flags from
    these fields.
    """

    n_train: int = field(default=1284, metadata=_help("training samples (CMU-MOSI: 1284)"))
    n_valid: int = field(default=229, metadata=_help("validation samples (CMU-MOSI: 229)"))
    n_test: int = field(default=686, metadata=_help("test samples (CMU-MOSI: 686)"))
    min_length: int = field(default=10, metadata=_help("shortest sequence, in steps"))
    max_length: int = field(
        default=50, metadata=_help("longest sequence, in steps (also the padded length)")
    )
    dim_text: int = field(default=32, metadata=_help("text feature width"))
    dim_vision: int = field(default=20, metadata=_help("vision feature width (CMU-MOSI: 20)"))
    dim_audio: int = field(default=5, metadata=_help("audio feature width (CMU-MOSI: 5)"))
    shared_dim: int = field(
        default=4, metadata=_help("width of the latent event sequence seen by all modalities")
    )
    unique_dim: int = field(
        default=4, metadata=_help("width of each modality's unique latent sequence")
    )
    event_smoothness: float = field(
        default=0.7, metadata=_help("AR(1) coefficient of the latent sequences, in [0, 1)")
    )
    event_scale: float = field(
        default=1.0, metadata=_help("std of the per-step latent fluctuation around its level")
    )
    warp_band: int = field(
        default=3,
        metadata=_help(
            "max distance of each modality's time warp from the identity; the true "
            "cross-modal alignment lies within |i - j| <= 2 * warp_band"
        ),
    )
    warp_strength: float = field(
        default=0.5, metadata=_help("std of each modality's log speed (0 = identity warps)")
    )
    noise_text: float = field(default=0.5, metadata=_help("per-step noise std of text"))
    noise_vision: float = field(default=1.0, metadata=_help("per-step noise std of vision"))
    noise_audio: float = field(default=1.0, metadata=_help("per-step noise std of audio"))
    info_shared: float = field(
        default=1.0, metadata=_help("label weight of the shared event sequence")
    )
    info_text: float = field(default=1.0, metadata=_help("label weight of text's unique part"))
    info_vision: float = field(default=0.7, metadata=_help("label weight of vision's unique part"))
    info_audio: float = field(default=0.6, metadata=_help("label weight of audio's unique part"))
    label_noise: float = field(
        default=0.3, metadata=_help("std of the label noise, relative to a unit-weight part")
    )
    task: str = field(
        default="regression", metadata=_help("'regression' (sentiment) or 'classification'")
    )
    label_step: float = field(
        default=0.2,
        metadata=_help("regression labels are rounded to multiples of this (0 = no rounding)"),
    )
    n_classes: int = field(default=7, metadata=_help("classes of the classification task"))
    class_imbalance: float = field(
        default=0.6,
        metadata=_help("class k has frequency proportional to class_imbalance**k, in (0, 1]"),
    )
    seed: int = field(default=0, metadata=_help("seed of the generator"))
    name: str = field(default="synthetic", metadata=_help("dataset name"))

    def validate(self) -> "SyntheticConfig":
        """Raise :class:`ConfigError` on an invalid value; return ``self``.

        >>> SyntheticConfig(n_test=10).validate().n_test
        10
        """
        for name in (
            "n_train",
            "n_valid",
            "n_test",
            "min_length",
            "dim_text",
            "dim_vision",
            "dim_audio",
            "shared_dim",
            "n_classes",
        ):
            _check_int(name, getattr(self, name), low=2 if name == "n_classes" else 1)
        for name in ("unique_dim", "warp_band", "seed"):
            _check_int(name, getattr(self, name), low=0)
        if not isinstance(self.max_length, int) or self.max_length < self.min_length:
            raise ConfigError(
                f"`max_length` must be an integer >= min_length={self.min_length}; "
                f"got {self.max_length!r}."
            )
        for name in (
            "event_scale",
            "warp_strength",
            "noise_text",
            "noise_vision",
            "noise_audio",
            "info_shared",
            "info_text",
            "info_vision",
            "info_audio",
            "label_noise",
            "label_step",
        ):
            check_non_negative(name, getattr(self, name))
        check_probability("class_imbalance", self.class_imbalance)
        smooth = self.event_smoothness
        if isinstance(smooth, bool) or not isinstance(smooth, (int, float)) or not 0 <= smooth < 1:
            raise ConfigError(f"`event_smoothness` must be in [0, 1); got {smooth!r}.")
        check_in("task", self.task, ["regression", "classification"])
        total = self.info_shared + self.info_text + self.info_vision + self.info_audio
        check_positive("info_shared + info_text + info_vision + info_audio", total)
        return self

    def feature_dims(self) -> dict[str, int]:
        """Feature width per modality, in :data:`SYNTHETIC_MODALITIES` order."""
        return {"text": self.dim_text, "vision": self.dim_vision, "audio": self.dim_audio}


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"`{name}` must be an integer >= {low}; got {value!r}.")


@dataclass(frozen=True)
class SyntheticData:
    """A generated dataset together with its ground truth.

    Attributes
    ----------
    dataset : MultimodalDataset
        The benchmark itself (what :func:`make_synthetic` returns).
    warps : dict[str, dict[str, ndarray]]
        ``warps[split][modality]``, int64 of shape ``(N, L)``: the latent step that step
        ``t`` of the modality observes (monotone, ``|w - t| <= warp_band``); 0 on padding.
    config : SyntheticConfig
    """

    dataset: MultimodalDataset
    warps: dict[str, dict[str, np.ndarray]]
    config: SyntheticConfig

    def true_offsets(self, split: str, source: str, victim: str) -> np.ndarray:
        """Offset ``j - i`` of the victim step ``j`` that truly matches source step ``i``.

        The match is the victim step whose latent step is nearest to the source step's
        latent step; among equally near ones the one closest to ``i``.

        Parameters
        ----------
        split : str
            ``"train"``, ``"valid"`` or ``"test"``.
        source, victim : str
            Modality names.

        Returns
        -------
        ndarray, shape (N, L)
            int64 offsets, within ``[-2 * warp_band, 2 * warp_band]``; 0 on padding.
        """
        check_in("split", split, list(SPLIT_NAMES))
        check_in("source", source, list(SYNTHETIC_MODALITIES))
        check_in("victim", victim, list(SYNTHETIC_MODALITIES))
        w_src = self.warps[split][source]  # (N, L)
        w_vic = self.warps[split][victim]  # (N, L)
        lengths = self.dataset.splits[split].lengths[source]  # (N,)
        steps = np.arange(w_src.shape[1])
        valid = steps[None, :] < lengths[:, None]  # (N, L)
        gap = np.abs(w_vic[:, None, :] - w_src[:, :, None]).astype(np.float64)  # (N, L, M)
        # the latent gap decides; the step distance (< 1 after scaling) only breaks ties
        shift = np.abs(steps[None, :] - steps[:, None]) / (2.0 * w_src.shape[1])  # (L, M)
        score = gap + shift[None]  # (N, L, M)
        score = np.where(valid[:, None, :], score, np.inf)  # (N, L, M)
        best = np.argmin(score, axis=2)  # (N, L)
        return np.where(valid, best - steps[None, :], 0).astype(np.int64)  # (N, L)


def monotone_warps(
    rng: np.random.Generator, lengths: np.ndarray, max_length: int, band: int, strength: float
) -> np.ndarray:
    """Draw one monotone time warp per sample, within ``band`` steps of the identity.

    The speed at each step is ``exp(strength * a_t)`` with ``a`` a smooth (AR(1), 0.8)
    standard normal sequence; the cumulative time is rescaled so that the first and last
    valid steps map to themselves, clipped to ``[t - band, t + band]`` and rounded. Each
    operation keeps the map non-decreasing.

    Parameters
    ----------
    rng : numpy.random.Generator
    lengths : ndarray, shape (N,)
        Valid steps per sample (>= 1).
    max_length : int
        Padded length ``L``.
    band : int
        Largest allowed ``|w[i, t] - t|``.
    strength : float
        Std of the log speed; 0 gives the identity.

    Returns
    -------
    ndarray, shape (N, L)
        int64 warp ``w[i, t]`` in ``[0, lengths[i] - 1]``; 0 on padding.

    Examples
    --------
    >>> w = monotone_warps(np.random.default_rng(0), np.array([5, 3]), 5, 1, 0.0)
    >>> w.tolist()
    [[0, 1, 2, 3, 4], [0, 1, 2, 0, 0]]
    """
    n = lengths.shape[0]
    steps = np.arange(max_length, dtype=np.float64)
    log_speed = _ar1(rng, (n, max_length), 0.8)  # (N, L)
    speed = np.exp(strength * log_speed)  # (N, L)
    speed[:, 0] = 0.0  # step 0 sits at latent time 0
    clock = np.cumsum(speed, axis=1)  # (N, L)
    last = np.take_along_axis(clock, (lengths - 1)[:, None], axis=1)  # (N, 1)
    span = (lengths - 1)[:, None].astype(np.float64)  # (N, 1)
    tau = np.divide(clock * span, last, out=np.zeros_like(clock), where=last > 0)  # (N, L)
    tau = np.clip(tau, steps[None, :] - band, steps[None, :] + band)  # (N, L)
    tau = np.clip(tau, 0.0, span)  # (N, L)
    warp = np.floor(tau + 0.5).astype(np.int64)  # (N, L)
    valid = steps[None, :] < lengths[:, None]  # (N, L)
    return np.where(valid, warp, 0)  # (N, L)


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], rho: float) -> np.ndarray:
    """Stationary unit-variance AR(1) sequences along axis 1 of ``shape`` (N, L, ...)."""
    eps = rng.standard_normal(shape)
    out = np.empty(shape)
    out[:, 0] = eps[:, 0]
    scale = np.sqrt(1.0 - rho * rho)
    for t in range(1, shape[1]):  # loop over time steps, vectorised over samples
        out[:, t] = rho * out[:, t - 1] + scale * eps[:, t]
    return out


def _unit_columns(w: np.ndarray) -> np.ndarray:
    """Scale each column of ``w`` (Z, S) to unit norm."""
    return w / np.linalg.norm(w, axis=0, keepdims=True)  # (Z, S)


def _masked_mean(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean over valid steps: ``x`` (N, L, Z), ``valid`` (N, L) -> (N, Z)."""
    counts = valid.sum(axis=1, keepdims=True)  # (N, 1)
    return (x * valid[:, :, None]).sum(axis=1) / counts  # (N, Z)


def _class_labels(rng: np.random.Generator, score: np.ndarray, imbalance: float) -> np.ndarray:
    """Arg-max labels whose frequencies follow ``imbalance**k`` (bias tuned to match)."""
    n_classes = score.shape[1]
    target = imbalance ** np.arange(n_classes)
    target = target / target.sum()
    bias = np.log(target)
    for _ in range(_CLASS_BIAS_ROUNDS):
        labels = np.argmax(score + bias[None, :], axis=1)  # (N,)
        freq = np.bincount(labels, minlength=n_classes) / labels.shape[0]
        bias = bias + 0.5 * (np.log(target) - np.log(np.maximum(freq, 0.5 / labels.shape[0])))
    return np.argmax(score + bias[None, :], axis=1).astype(np.int64)  # (N,)


def generate_synthetic(config: SyntheticConfig | None = None) -> SyntheticData:
    """Generate the synthetic benchmark and its ground-truth warps.

    All splits are drawn together from one ``numpy.random.Generator`` seeded with
    ``config.seed`` and then cut in order (train, valid, test), so they are identically
    distributed.

    Parameters
    ----------
    config : SyntheticConfig, optional
        Defaults to ``SyntheticConfig()``.

    Returns
    -------
    SyntheticData
        ``dataset`` holds, per split, ``(N, L, D_m)`` float32 features (``L = max_length``)
        with one shared ``(N,)`` length for all modalities, and labels.
    """
    cfg = (config or SyntheticConfig()).validate()
    rng = np.random.default_rng(cfg.seed)
    sizes = {"train": cfg.n_train, "valid": cfg.n_valid, "test": cfg.n_test}
    n = sum(sizes.values())
    max_len = cfg.max_length
    lengths = rng.integers(cfg.min_length, max_len + 1, size=n).astype(np.int64)  # (N,)
    valid = np.arange(max_len)[None, :] < lengths[:, None]  # (N, L)

    def latent(width: int) -> np.ndarray:
        level = rng.standard_normal((n, 1, width))  # (N, 1, Z)
        wiggle = _ar1(rng, (n, max_len, width), cfg.event_smoothness)  # (N, L, Z)
        return level + cfg.event_scale * wiggle  # (N, L, Z)

    events = latent(cfg.shared_dim)  # (N, L, Z_s), on latent time
    n_scores = cfg.n_classes if cfg.task == "classification" else 1
    # label read-out directions, unit norm per score so every part has the same scale
    event_dirs = _unit_columns(rng.standard_normal((cfg.shared_dim, n_scores)))
    score = cfg.info_shared * _masked_mean(events, valid) @ event_dirs  # (N, S)
    parts = cfg.info_shared**2
    features: dict[str, np.ndarray] = {}
    warps: dict[str, np.ndarray] = {}
    for m, width in cfg.feature_dims().items():  # loop over the three modalities
        warp = monotone_warps(rng, lengths, max_len, cfg.warp_band, cfg.warp_strength)
        seen = np.take_along_axis(events, warp[:, :, None], axis=1)  # (N, L, Z_s)
        unique = latent(cfg.unique_dim)  # (N, L, Z_u)
        hidden = np.concatenate([seen, unique], axis=2)  # (N, L, Z_s + Z_u)
        readout = rng.standard_normal((hidden.shape[2], width)) / np.sqrt(hidden.shape[2])
        offset = 0.5 * rng.standard_normal(width)
        noise_std = getattr(cfg, f"noise_{m}")
        x = hidden @ readout + offset + noise_std * rng.standard_normal((n, max_len, width))
        features[m] = np.where(valid[:, :, None], x, 0.0).astype(np.float32)  # (N, L, D_m)
        warps[m] = warp
        info = getattr(cfg, f"info_{m}")
        if cfg.unique_dim:
            dirs = _unit_columns(rng.standard_normal((cfg.unique_dim, n_scores)))
            score = score + info * _masked_mean(unique, valid) @ dirs  # (N, S)
            parts += info**2
    score = score + cfg.label_noise * rng.standard_normal(score.shape)  # (N, S)
    # standardise by the theoretical scale of the parts (not the sample std): a split's
    # label distribution does not depend on how many samples were drawn
    score = score / np.sqrt(parts + cfg.label_noise**2)  # (N, S)
    if cfg.task == "regression":
        y = 3.0 * np.tanh(_TANH_GAIN * score[:, 0])
        if cfg.label_step > 0:
            y = np.round(y / cfg.label_step) * cfg.label_step
        labels = np.clip(y, -3.0, 3.0).astype(np.float32)
    else:
        labels = _class_labels(rng, 1.5 * score, cfg.class_imbalance)
    ids = np.array([f"{cfg.name}-{i:05d}" for i in range(n)], dtype=object)

    splits: dict[str, Split] = {}
    split_warps: dict[str, dict[str, np.ndarray]] = {}
    start = 0
    for s in SPLIT_NAMES:
        rows = slice(start, start + sizes[s])
        start += sizes[s]
        splits[s] = Split(
            features={m: x[rows] for m, x in features.items()},
            lengths={m: lengths[rows].copy() for m in features},
            labels=labels[rows],
            ids=ids[rows],
        )
        split_warps[s] = {m: w[rows] for m, w in warps.items()}
    dataset = MultimodalDataset(
        splits=splits,
        task=cfg.task,  # type: ignore[arg-type]
        n_classes=cfg.n_classes if cfg.task == "classification" else None,
        name=cfg.name,
        source=f"synthetic(seed={cfg.seed})",
    ).validate()
    return SyntheticData(dataset=dataset, warps=split_warps, config=cfg)


def make_synthetic(config: SyntheticConfig | None = None) -> MultimodalDataset:
    """Generate the synthetic benchmark (see the module docstring for the model).

    Parameters
    ----------
    config : SyntheticConfig, optional
        Defaults to ``SyntheticConfig()`` (CMU-MOSI-like sizes, regression).

    Returns
    -------
    MultimodalDataset
        Validated; modalities ``text``, ``vision``, ``audio`` share each sample's length.

    Examples
    --------
    >>> ds = make_synthetic(SyntheticConfig(n_train=8, n_valid=4, n_test=4))
    >>> ds.splits["train"].features["vision"].shape
    (8, 50, 20)
    """
    return generate_synthetic(config).dataset
