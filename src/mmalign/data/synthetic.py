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
6. *Privileged part* (``info_privileged > 0``; off by default). Every modality ``m`` gets
   one more latent sequence ``p_m`` of width ``unique_dim`` (a per-sample level plus an
   AR(1) fluctuation, as in step 1) on the latent time axis, and the label score gains
   ``info_privileged`` times the time mean of ``p_m`` (over latent time, along its own
   unit-norm direction). Modality ``m`` reads ``p_m[w_m]`` *cleanly*: it joins step 4's
   hidden vector and is read out linearly. Every other modality ``o`` carries it only as the
   *view* ``v_mo[t] = p_m[w_o[t]] * c_o[t] + privileged_noise * eps[t]``, at ``o``'s own
   warped time, where the *carrier* ``c_o[t] = sign(|u_o[t]| - theta)`` is ``+1`` or ``-1``
   from ``o``'s own unique sequence ``u_o`` (step 3; ``theta`` is the median of ``|u_o|``).
   ``c_o`` has mean 0 and is uncorrelated with ``u_o``, so every moment of degree <= 2 of
   ``o``'s steps (hence the pooled mean and mean of squares of any linear read-out of them)
   has zero covariance with ``p_m``'s time mean: a pooled linear model on ``o`` gets none of
   it, while the step-level product ``v_mo * c_o = p_m[w_o] + noise`` recovers it. A model
   trained with ``m`` present on the complete split can learn where to look in ``o``: this
   is the privileged-information regime, :data:`PRIVILEGED_PRESET`. Step 4's read-out is
   rescaled so that each feature's signal variance is unchanged. The draws of this step
   come from a second generator seeded with ``[seed, 1]``, so every other draw, and the
   whole dataset when ``info_privileged == 0``, is exactly what it was without it.
   ``privileged_noise`` defaults to 1.0, the per-step noise of vision and audio: a
   cross-modal cue in CMU-MOSI (a frown that turns a word's polarity) is no more reliable
   per step than a FACET or COVAREP frame, while the latent's per-step std is
   ``sqrt(1 + event_scale**2)`` (1.4 by default), so time-averaging over a 10-50 step
   utterance still recovers most of it.
7. *Unaligned variant* (``unaligned``; off by default, and then nothing above changes).
   Text is drawn exactly as in steps 1-5 (word level, with its warp ``w_text``; the
   lengths, the events and every text array are those of the aligned dataset of the same
   seed). Vision and audio become frame-level sequences on one shared frame clock: latent
   step ``tau`` lasts ``d[i, tau]`` frames and every frame of it observes latent step
   ``tau`` (its events, and its privileged part in step 6). The duration depends partly on
   the word, as in speech: with ``g`` a fixed random unit vector of width ``shared_dim``,
   ``a[i, tau] = g . e[i, tau] / sqrt(1 + event_scale**2)`` (a standard normal) and
   ``eps[i, tau]`` an independent standard normal,

   ``z = sqrt(1/2) * a + sqrt(1/2) * eps``,
   ``d = frames_min + min(floor((frames_max - frames_min + 1) * Phi(z)), frames_max - frames_min)``

   with ``Phi`` the standard normal CDF: ``d`` is uniform on ``frames_min .. frames_max``
   (mean ``(frames_min + frames_max) / 2``, 11 frames by default), and the events explain
   0.48 of its variance (half of ``z``'s, less the loss in the monotone step function). The
   formula was fixed before any model was run on this variant. A sample has ``sum_tau d``
   frames; frames past ``max_frames`` are cut (as MMSA's 500-frame files cut long clips),
   and the frame modalities are padded to the longest cut sequence of the dataset. Their
   unique sequences (step 3) run at frame level: an AR(1) with coefficient
   ``event_smoothness ** (1 / mean duration)``, so that the correlation one mean word apart
   is ``event_smoothness``, as one word apart in the aligned variant. Labels are defined as
   in step 5 (time means over latent time for events and privileged parts, over the
   modality's own time for unique parts, there over all frames before the cut), so the
   label distribution is comparable. The draws of this step (durations, and every draw of
   vision and audio) come from a third generator seeded with ``[seed, 2]``. Features get
   the per-frame noise ``noise_<m>``; averaged over a word's frames it is smaller than the
   aligned variant's per-word noise. ``synthetic:unaligned=1`` selects the variant.

*Ground truth.* Every step of every modality has a latent position, the latent step it
observes (``w_m[i, t]``, or the frame's latent step). The true steps in modality ``b`` of a
step of modality ``a`` are the valid steps of ``b`` whose latent position is nearest to its
own, all ties included; they are contiguous because warps are monotone.
:attr:`~mmalign.data.dataset.Split.spans` holds them as ``[start, end)`` for every ordered
pair, ``(-1, -1)`` past the length. In the unaligned variant every latent step has frames,
so a word's true frames are exactly the frames of its latent step (nearest at distance 0);
a word whose frames were all cut by ``max_frames`` gets ``(-1, -1)`` (a word cut in part
keeps the frames left), a frame's true words are the words nearest to its latent step, and
a vision frame's true audio frames are all frames of its latent step (the shared clock).

A model that sees only one modality misses the other's unique part of the label, so
source-only models are clearly worse than models that see the pair.
:func:`information_budget` states, per modality subset, the share of the label score's
variance each can reach: any function of it (the ceiling of a source-only predictor, and so
of every method in setting A), its linearly visible parts, and what the pooled ridge floor
reaches. It does not apply to the unaligned variant (it raises :class:`ConfigError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import NamedTuple

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
    "PRIVILEGED_PRESET",
    "SYNTHETIC_MODALITIES",
    "InformationBudget",
    "SyntheticConfig",
    "SyntheticData",
    "UNALIGNED_PRESET",
    "generate_synthetic",
    "information_budget",
    "make_synthetic",
    "monotone_warps",
]

SYNTHETIC_MODALITIES: tuple[str, ...] = ("text", "vision", "audio")

#: The ``data`` option of the privileged-information regime (module docstring, step 6):
#: each modality's privileged part reaches the others only nonlinearly, warped and noisy.
PRIVILEGED_PRESET = "synthetic:info_privileged=1.0"
#: The ``data`` option of the unaligned variant (module docstring, step 7): text at word
#: level, vision and audio at frame level on a shared clock with word-dependent durations.
UNALIGNED_PRESET = "synthetic:unaligned=1"

# 3 tanh(0.7 z) of a standard normal z has std ~1.6 and leaves ~10% of labels beyond
# |2.5|, close to CMU-MOSI's spread; a gain of 1 piles labels up at +-3.
_TANH_GAIN = 0.7
# Number of bias-correction rounds that tune the class frequencies (converges in ~10).
_CLASS_BIAS_ROUNDS = 30
# Median of |z| for a standard normal z (Phi^-1(0.75)): the carrier's threshold.
_MEDIAN_ABS_NORMAL = 0.6744897501960817


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
    info_privileged: float = field(
        default=0.0,
        metadata=_help(
            "label weight of each modality's privileged part: read linearly by its own "
            "modality, carried by every other one only as a noisy sign-modulated product at "
            "that modality's warped time (0 = off, the dataset is then unchanged; 1.0 is the "
            "privileged-information regime)"
        ),
    )
    privileged_noise: float = field(
        default=1.0,
        metadata=_help(
            "per-step noise std of the nonlinear view of a privileged part in the other "
            "modalities (the latent's own per-step std is sqrt(1 + event_scale**2))"
        ),
    )
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
    unaligned: bool = field(
        default=False,
        metadata=_help(
            "unaligned variant: vision and audio at frame level on a shared frame clock, "
            "text at word level (off = the aligned dataset, unchanged)"
        ),
    )
    frames_min: int = field(
        default=3,
        metadata=_help("unaligned variant: fewest frames per word (latent step)"),
    )
    frames_max: int = field(
        default=19,
        metadata=_help(
            "unaligned variant: most frames per word; durations are uniform on "
            "frames_min..frames_max (default mean 11: a 30-word sample has ~330 frames, the "
            "order of MMSA's unaligned CMU-MOSI, 375 audio and 500 vision steps)"
        ),
    )
    max_frames: int = field(
        default=500,
        metadata=_help(
            "unaligned variant: frames past this are cut (MMSA's unaligned files hold 500 "
            "vision steps); words whose frames are all cut get no true span"
        ),
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
            "frames_min",
            "max_frames",
        ):
            _check_int(name, getattr(self, name), low=2 if name == "n_classes" else 1)
        if isinstance(self.frames_max, bool) or not isinstance(self.frames_max, int):
            raise ConfigError(f"`frames_max` must be an integer; got {self.frames_max!r}.")
        if self.frames_max < self.frames_min:
            raise ConfigError(
                f"`frames_max` must be an integer >= frames_min={self.frames_min}; "
                f"got {self.frames_max!r}."
            )
        if not isinstance(self.unaligned, (bool, int)) or self.unaligned not in (0, 1):
            raise ConfigError(
                f"`unaligned` must be true or false (1 or 0); got {self.unaligned!r}."
            )
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
            "info_privileged",
            "privileged_noise",
            "label_noise",
            "label_step",
        ):
            check_non_negative(name, getattr(self, name))
        check_probability("class_imbalance", self.class_imbalance)
        smooth = self.event_smoothness
        if isinstance(smooth, bool) or not isinstance(smooth, (int, float)) or not 0 <= smooth < 1:
            raise ConfigError(f"`event_smoothness` must be in [0, 1); got {smooth!r}.")
        check_in("task", self.task, ["regression", "classification"])
        total = (
            self.info_shared
            + self.info_text
            + self.info_vision
            + self.info_audio
            + self.info_privileged
        )
        check_positive(
            "info_shared + info_text + info_vision + info_audio + info_privileged", total
        )
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
        ``warps[split][modality]``, int64 of shape ``(N, L_m)``: the latent step that step
        ``t`` of the modality observes (monotone, ``|w - t| <= warp_band``); 0 on padding.
        For the frame modalities of the unaligned variant, the latent step of each frame.
    config : SyntheticConfig
    latents : dict[str, dict[str, ndarray]]
        ``latents[split][name]``, float32 of shape ``(N, L, Z)``, 0 on padding: the latent
        sequences of the module docstring. ``"events"`` (latent time, ``Z = shared_dim``);
        ``"unique/<m>"`` (``m``'s time, ``Z = unique_dim``); with ``info_privileged > 0``
        also ``"privileged/<m>"`` (``p_m`` on latent time), ``"carrier/<o>"`` (``c_o``,
        +-1 on ``o``'s time) and ``"view/<m>/<o>"`` (``v_mo``, the noisy view of ``p_m``
        that modality ``o`` carries, on ``o``'s time). ``L`` is the modality's own padded
        length (frames for vision and audio in the unaligned variant).
    durations : dict[str, ndarray]
        Unaligned variant only (else empty): ``durations[split]``, int64 of shape
        ``(N, L)``, the frames of each latent step before the ``max_frames`` cut; 0 on
        padding.

    The ground-truth alignment spans are in ``dataset.splits[split].spans`` (see
    :meth:`truth_spans`).
    """

    dataset: MultimodalDataset
    warps: dict[str, dict[str, np.ndarray]]
    config: SyntheticConfig
    latents: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    durations: dict[str, np.ndarray] = field(default_factory=dict)

    def truth_spans(self, split: str, a: str, b: str) -> np.ndarray:
        """Return the true steps of modality ``b`` for each step of ``a`` (module docstring).

        Parameters
        ----------
        split : str
            ``"train"``, ``"valid"`` or ``"test"``.
        a, b : str
            Two different modality names.

        Returns
        -------
        ndarray, shape (N, L_a, 2)
            int64 half-open ranges ``[start, end)`` of ``b``'s steps; ``(-1, -1)`` past
            ``a``'s length or where unknown. The same array as
            ``dataset.splits[split].spans[f"{a}_{b}"]``.
        """
        check_in("split", split, list(SPLIT_NAMES))
        check_in("a", a, list(SYNTHETIC_MODALITIES))
        check_in("b", b, [m for m in SYNTHETIC_MODALITIES if m != a])
        return self.dataset.splits[split].spans[f"{a}_{b}"]

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

        Raises
        ------
        ConfigError
            In the unaligned variant, for text against a frame modality: the two have no
            common time axis (use :meth:`truth_spans`).
        """
        check_in("split", split, list(SPLIT_NAMES))
        check_in("source", source, list(SYNTHETIC_MODALITIES))
        check_in("victim", victim, list(SYNTHETIC_MODALITIES))
        if self.config.unaligned and (source == "text") != (victim == "text"):
            raise ConfigError(
                f"true_offsets needs one time axis, but {source!r} and {victim!r} run on "
                "different clocks in the unaligned variant (words vs frames); use truth_spans."
            )
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


def _class_labels(score: np.ndarray, imbalance: float) -> np.ndarray:
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


class _Draw(NamedTuple):
    """One draw of ``n`` samples: what :func:`generate_synthetic` then cuts into splits."""

    lengths: dict[str, np.ndarray]  # m -> (N,) int64
    features: dict[str, np.ndarray]  # m -> (N, L_m, D_m) float32, 0 on padding
    warps: dict[str, np.ndarray]  # m -> (N, L_m) int64 latent step of each step
    score: np.ndarray  # (N, S) standardised label score, label noise included
    latents: dict[str, np.ndarray]  # name -> (N, L, Z) float32, 0 on padding
    durations: np.ndarray | None  # (N, L) int64 frames per latent step (unaligned only)
    framed: tuple[str, ...]  # modalities on the frame clock (unaligned only)


class _FrameClock(NamedTuple):
    """The shared frame clock of the unaligned variant (module docstring, step 7)."""

    durations: np.ndarray  # (N, L) int64 frames per latent step, 0 past the length
    tau: np.ndarray  # (N, F_all) int64 latent step of each frame before the cut, 0 after
    total: np.ndarray  # (N,) int64 frames before the cut
    kept: np.ndarray  # (N,) int64 frames after the cut, <= max_frames
    rho: float  # frame-level AR(1) coefficient of the unique sequences
    rng: np.random.Generator  # the step-7 generator

    @property
    def steps(self) -> int:
        """Padded frame length: the longest cut sequence."""
        return int(self.kept.max())


def _frame_clock(
    cfg: SyntheticConfig, events: np.ndarray, lengths: np.ndarray, rng: np.random.Generator
) -> _FrameClock:
    """Draw the word durations and lay the frames out (module docstring, step 7).

    Parameters
    ----------
    cfg : SyntheticConfig
    events : ndarray, shape (N, L, Z_s)
        The latent event sequence ``e``.
    lengths : ndarray, shape (N,)
        Latent steps per sample.
    rng : numpy.random.Generator
        The step-7 generator (seeded ``[seed, 2]``); also kept for the frame modalities.

    Returns
    -------
    _FrameClock
    """
    from scipy.special import ndtr

    n, max_len = events.shape[:2]
    valid = np.arange(max_len)[None, :] < lengths[:, None]  # (N, L)
    direction = _unit_columns(rng.standard_normal((cfg.shared_dim, 1)))[:, 0]  # (Z_s,)
    # e = level + event_scale * AR(1), both unit variance: the projection is standard normal
    known = events @ direction / np.sqrt(1.0 + cfg.event_scale**2)  # (N, L)
    z = np.sqrt(0.5) * known + np.sqrt(0.5) * rng.standard_normal((n, max_len))  # (N, L)
    spread = cfg.frames_max - cfg.frames_min
    extra = np.minimum(np.floor((spread + 1) * ndtr(z)), spread).astype(np.int64)  # (N, L)
    durations = np.where(valid, cfg.frames_min + extra, 0)  # (N, L)
    total = durations.sum(axis=1)  # (N,)
    # scatter each sample's frames (latent step tau repeated d_tau times) into rows
    tau_flat = np.repeat(np.tile(np.arange(max_len), n), durations.ravel())  # (sum total,)
    rows = np.repeat(np.arange(n), total)  # (sum total,)
    cols = np.arange(tau_flat.shape[0]) - np.repeat(np.cumsum(total) - total, total)
    tau = np.zeros((n, int(total.max())), dtype=np.int64)  # (N, F_all)
    tau[rows, cols] = tau_flat
    # one mean word apart, frames correlate as adjacent words do in the aligned variant
    rho = float(cfg.event_smoothness) ** (2.0 / (cfg.frames_min + cfg.frames_max))
    kept = np.minimum(total, cfg.max_frames)  # (N,)
    return _FrameClock(durations, tau, total, kept, rho, rng)


def _carrier(unique: np.ndarray, event_scale: float) -> np.ndarray:
    """``sign(|u| - median |u|)`` of unique latents ``u`` (N, L, Z): +-1, mean 0."""
    theta = _MEDIAN_ABS_NORMAL * np.sqrt(1.0 + event_scale**2)  # u ~ N(0, 1 + scale^2)
    return np.where(np.abs(unique) > theta, 1.0, -1.0)  # (N, L, Z)


def _time_owner(name: str) -> str:
    """Whose time axis a latent lives on: ``"latent"`` or a modality name (its last part)."""
    return "latent" if name == "events" or name.startswith("privileged/") else name.split("/")[-1]


def _draw(cfg: SyntheticConfig, n: int) -> _Draw:
    """Draw ``n`` samples of the generative story (module docstring) from ``cfg.seed``."""
    rng = np.random.default_rng(cfg.seed)
    # step 6 draws from its own stream, so the main stream is the same with or without it
    rng_priv = np.random.default_rng([cfg.seed, 1])
    max_len = cfg.max_length
    lengths = rng.integers(cfg.min_length, max_len + 1, size=n).astype(np.int64)  # (N,)
    valid = np.arange(max_len)[None, :] < lengths[:, None]  # (N, L)

    def latent(
        width: int,
        gen: np.random.Generator = rng,
        steps: int = max_len,
        rho: float = cfg.event_smoothness,
    ) -> np.ndarray:
        level = gen.standard_normal((n, 1, width))  # (N, 1, Z)
        wiggle = _ar1(gen, (n, steps, width), rho)  # (N, L, Z)
        return level + cfg.event_scale * wiggle  # (N, L, Z)

    events = latent(cfg.shared_dim)  # (N, L, Z_s), on latent time
    n_scores = cfg.n_classes if cfg.task == "classification" else 1
    # label read-out directions, unit norm per score so every part has the same scale
    event_dirs = _unit_columns(rng.standard_normal((cfg.shared_dim, n_scores)))
    score = cfg.info_shared * _masked_mean(events, valid) @ event_dirs  # (N, S)
    parts = cfg.info_shared**2
    latents = {"events": events}
    privileged = cfg.info_privileged > 0 and cfg.unique_dim > 0
    if privileged:
        for m in SYNTHETIC_MODALITIES:
            latents[f"privileged/{m}"] = latent(cfg.unique_dim, rng_priv)  # (N, L, Z_u)
    # step 7 draws from a third stream: lengths, events and text match the aligned variant
    clock = None
    if cfg.unaligned:
        clock = _frame_clock(cfg, events, lengths, np.random.default_rng([cfg.seed, 2]))
    framed = () if clock is None else ("vision", "audio")
    features: dict[str, np.ndarray] = {}
    warps: dict[str, np.ndarray] = {}
    own_lengths: dict[str, np.ndarray] = {}
    step_valid = {"latent": valid}  # time axis -> (N, L_m) valid steps
    for m, width in cfg.feature_dims().items():  # loop over the three modalities
        if clock is not None and m in framed:
            gen, steps = clock.rng, clock.steps
            warp = clock.tau[:, :steps]  # (N, F), the frame's latent step
            own_lengths[m] = clock.kept
            # labels average the unique sequence over all frames, the cut ones included
            full = latent(cfg.unique_dim, gen, clock.tau.shape[1], clock.rho)  # (N, F_all, Z_u)
            full_valid = np.arange(full.shape[1])[None, :] < clock.total[:, None]  # (N, F_all)
            unique = full[:, :steps]  # (N, F, Z_u)
        else:
            gen, steps = rng, max_len
            warp = monotone_warps(rng, lengths, max_len, cfg.warp_band, cfg.warp_strength)
            own_lengths[m] = lengths
            full = unique = latent(cfg.unique_dim)  # (N, L, Z_u)
            full_valid = valid
        m_valid = np.arange(steps)[None, :] < own_lengths[m][:, None]  # (N, L_m)
        step_valid[m] = m_valid
        seen = np.take_along_axis(events, warp[:, :, None], axis=1)  # (N, L_m, Z_s)
        latents[f"unique/{m}"] = unique
        hidden = np.concatenate([seen, unique], axis=2)  # (N, L_m, Z_s + Z_u)
        readout = gen.standard_normal((hidden.shape[2], width)) / np.sqrt(hidden.shape[2])
        offset = 0.5 * gen.standard_normal(width)
        noise_std = getattr(cfg, f"noise_{m}")
        signal = hidden @ readout  # (N, L_m, D_m)
        if privileged:
            extra = _privileged_hidden(cfg, m, warp, unique, latents, rng_priv)  # (N, L_m, H_p)
            total = hidden.shape[2] + extra.shape[2]
            readout_priv = rng_priv.standard_normal((extra.shape[2], width)) / np.sqrt(total)
            signal = signal * np.sqrt(hidden.shape[2] / total) + extra @ readout_priv
        # in place: frame sequences are large (the same values as signal + offset + noise)
        signal += offset
        noise = gen.standard_normal((n, steps, width))  # (N, L_m, D_m)
        noise *= noise_std
        signal += noise
        signal[~m_valid] = 0.0  # (N, L_m) mask over (N, L_m, D_m)
        features[m] = signal.astype(np.float32)  # (N, L_m, D_m)
        del noise, signal, hidden
        warps[m] = np.where(m_valid, warp, 0)  # (N, L_m)
        info = getattr(cfg, f"info_{m}")
        if cfg.unique_dim:
            dirs = _unit_columns(gen.standard_normal((cfg.unique_dim, n_scores)))
            score = score + info * _masked_mean(full, full_valid) @ dirs  # (N, S)
            parts += info**2
    if privileged:
        for m in SYNTHETIC_MODALITIES:
            dirs = _unit_columns(rng_priv.standard_normal((cfg.unique_dim, n_scores)))
            p_mean = _masked_mean(latents[f"privileged/{m}"], valid)  # (N, Z_u)
            score = score + cfg.info_privileged * p_mean @ dirs  # (N, S)
            parts += cfg.info_privileged**2
    score = score + cfg.label_noise * rng.standard_normal(score.shape)  # (N, S)
    # standardise by the theoretical scale of the parts (not the sample std): a split's
    # label distribution does not depend on how many samples were drawn
    score = score / np.sqrt(parts + cfg.label_noise**2)  # (N, S)
    latents = {
        k: np.where(step_valid[_time_owner(k)][:, :, None], z, 0.0).astype(np.float32)
        for k, z in latents.items()
    }
    durations = None if clock is None else clock.durations
    return _Draw(own_lengths, features, warps, score, latents, durations, framed)


def _nearest_spans(
    pos_a: np.ndarray,
    len_a: np.ndarray,
    pos_b: np.ndarray,
    len_b: np.ndarray,
    n_latent: int,
    exact: bool = False,
) -> np.ndarray:
    """For each step of ``a``, the steps of ``b`` whose latent position is nearest to its own.

    The nearest steps (all ties included) form one range because ``pos_b`` is
    non-decreasing over ``b``'s valid steps. Computed from per-sample cumulative counts of
    ``b``'s positions, so no ``(N, L_a, L_b)`` array is built.

    Parameters
    ----------
    pos_a : ndarray, shape (N, L_a)
        Latent position (step) of each step of ``a``, in ``[0, n_latent)`` on valid steps.
    len_a : ndarray, shape (N,)
        Valid steps of ``a``.
    pos_b : ndarray, shape (N, L_b)
        Latent positions of ``b``, non-decreasing over its valid steps.
    len_b : ndarray, shape (N,)
        Valid steps of ``b``.
    n_latent : int
        Number of latent steps (upper bound of every position, exclusive).
    exact : bool
        Give ``(-1, -1)`` where no valid step of ``b`` shares the position (``b`` observes
        every latent step, so those are cut away), instead of the nearest ones.

    Returns
    -------
    ndarray, shape (N, L_a, 2)
        int64 ``[start, end)``; ``(-1, -1)`` past ``len_a`` (or where unknown).

    Examples
    --------
    >>> a = np.array([[0, 1, 3]]); b = np.array([[0, 0, 2, 3]])
    >>> _nearest_spans(a, np.array([3]), b, np.array([4]), 4)[0].tolist()
    [[0, 2], [0, 3], [3, 4]]
    """
    n, steps_a = pos_a.shape
    steps_b = pos_b.shape[1]
    valid_a = np.arange(steps_a)[None, :] < len_a[:, None]  # (N, L_a)
    valid_b = np.arange(steps_b)[None, :] < len_b[:, None]  # (N, L_b)
    # count[i, v]: valid steps of b at latent position v; le / lt: at or before / before v
    flat = (np.arange(n)[:, None] * n_latent + pos_b)[valid_b]  # (valid steps of b,)
    count = np.bincount(flat, minlength=n * n_latent).reshape(n, n_latent)  # (N, n_latent)
    le = np.cumsum(count, axis=1)  # (N, n_latent)
    lt = le - count  # (N, n_latent)
    x = np.clip(pos_a, 0, n_latent - 1)  # (N, L_a)
    lo = np.take_along_axis(lt, x, axis=1)  # (N, L_a), first b step at position >= x
    hi = np.take_along_axis(le, x, axis=1)  # (N, L_a), first b step at position > x
    hit = hi > lo  # some b step sits exactly at x
    below = np.take_along_axis(pos_b, np.clip(lo - 1, 0, steps_b - 1), axis=1)  # (N, L_a)
    above = np.take_along_axis(pos_b, np.clip(lo, 0, steps_b - 1), axis=1)  # (N, L_a)
    far = 2 * n_latent  # farther than any real gap
    gap_below = np.where(lo > 0, x - below, far)  # (N, L_a)
    gap_above = np.where(lo < len_b[:, None], above - x, far)  # (N, L_a)
    start = np.where(
        gap_below <= gap_above, np.take_along_axis(lt, np.clip(below, 0, n_latent - 1), axis=1), lo
    )
    end = np.where(
        gap_above <= gap_below, np.take_along_axis(le, np.clip(above, 0, n_latent - 1), axis=1), lo
    )
    start, end = np.where(hit, lo, start), np.where(hit, hi, end)  # (N, L_a) each
    unknown = ~valid_a | (len_b[:, None] == 0) | (exact & ~hit)  # (N, L_a)
    span = np.stack([start, end], axis=2)  # (N, L_a, 2)
    return np.where(unknown[:, :, None], -1, span).astype(np.int64)  # (N, L_a, 2)


def _truth_spans(draw: _Draw, n_latent: int) -> dict[str, np.ndarray]:
    """``spans["<a>_<b>"]`` (N, L_a, 2) for every ordered pair of modalities (module docstring)."""
    return {
        f"{a}_{b}": _nearest_spans(
            draw.warps[a],
            draw.lengths[a],
            draw.warps[b],
            draw.lengths[b],
            n_latent,
            exact=b in draw.framed,
        )
        for a in SYNTHETIC_MODALITIES
        for b in SYNTHETIC_MODALITIES
        if a != b
    }


def _privileged_hidden(
    cfg: SyntheticConfig,
    m: str,
    warp: np.ndarray,
    unique: np.ndarray,
    latents: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray:
    """Step 6's extra hidden columns of modality ``m``: ``[p_m[w_m], v_om for o != m]``.

    Parameters
    ----------
    cfg : SyntheticConfig
    m : str
        The modality whose hidden vector this extends.
    warp : ndarray, shape (N, L)
        ``m``'s warp ``w_m``.
    unique : ndarray, shape (N, L, Z_u)
        ``m``'s unique sequence ``u_m`` (on ``m``'s time), the source of its carrier.
    latents : dict[str, ndarray]
        Holds ``"privileged/<o>"`` of shape (N, L, Z_u) for every modality; this function
        adds ``"carrier/<m>"`` and ``"view/<o>/<m>"`` to it.
    rng : numpy.random.Generator
        The step-6 generator (draws the view noise).

    Returns
    -------
    ndarray, shape (N, L, 3 * Z_u)
        ``m``'s own privileged sequence at its warped time, then the views of the others'.
    """
    index = warp[:, :, None]  # (N, L, 1)
    carrier = _carrier(unique, cfg.event_scale)  # (N, L, Z_u)
    latents[f"carrier/{m}"] = carrier
    columns = [np.take_along_axis(latents[f"privileged/{m}"], index, axis=1)]
    for o in SYNTHETIC_MODALITIES:  # the other modalities' privileged parts
        if o == m:
            continue
        seen = np.take_along_axis(latents[f"privileged/{o}"], index, axis=1)  # (N, L, Z_u)
        view = seen * carrier + cfg.privileged_noise * rng.standard_normal(seen.shape)
        latents[f"view/{o}/{m}"] = view
        columns.append(view)
    return np.concatenate(columns, axis=2)  # (N, L, 3 * Z_u)


def generate_synthetic(config: SyntheticConfig | None = None) -> SyntheticData:
    """Generate the synthetic benchmark and its ground-truth warps and latents.

    All splits are drawn together from one ``numpy.random.Generator`` seeded with
    ``config.seed`` (step 6 of the module docstring from a second one seeded with
    ``[seed, 1]``, step 7 from a third seeded with ``[seed, 2]``) and then cut in order
    (train, valid, test), so they are identically distributed. Every split carries the
    ground-truth spans of every ordered modality pair (``Split.spans``).

    Parameters
    ----------
    config : SyntheticConfig, optional
        Defaults to ``SyntheticConfig()``.

    Returns
    -------
    SyntheticData
        ``dataset`` holds, per split, ``(N, L, D_m)`` float32 features (``L = max_length``)
        with one shared ``(N,)`` length for all modalities, labels and spans ``(N, L, 2)``.
        In the unaligned variant vision and audio have ``L_m`` = the longest frame
        sequence (``<= max_frames``) and their own (shared) frame lengths.
    """
    cfg = (config or SyntheticConfig()).validate()
    sizes = {"train": cfg.n_train, "valid": cfg.n_valid, "test": cfg.n_test}
    n = sum(sizes.values())
    draw = _draw(cfg, n)
    score, lengths, features = draw.score, draw.lengths, draw.features
    spans = _truth_spans(draw, cfg.max_length)
    if cfg.task == "regression":
        y = 3.0 * np.tanh(_TANH_GAIN * score[:, 0])
        if cfg.label_step > 0:
            y = np.round(y / cfg.label_step) * cfg.label_step
        labels = np.clip(y, -3.0, 3.0).astype(np.float32)
    else:
        labels = _class_labels(1.5 * score, cfg.class_imbalance)
    ids = np.array([f"{cfg.name}-{i:05d}" for i in range(n)], dtype=object)

    splits: dict[str, Split] = {}
    split_warps: dict[str, dict[str, np.ndarray]] = {}
    split_latents: dict[str, dict[str, np.ndarray]] = {}
    split_durations: dict[str, np.ndarray] = {}
    start = 0
    for s in SPLIT_NAMES:
        rows = slice(start, start + sizes[s])
        start += sizes[s]
        splits[s] = Split(
            features={m: x[rows] for m, x in features.items()},
            lengths={m: lengths[m][rows].copy() for m in features},
            labels=labels[rows],
            ids=ids[rows],
            spans={k: span[rows] for k, span in spans.items()},
        )
        split_warps[s] = {m: w[rows] for m, w in draw.warps.items()}
        split_latents[s] = {k: z[rows] for k, z in draw.latents.items()}
        if draw.durations is not None:
            split_durations[s] = draw.durations[rows]
    dataset = MultimodalDataset(
        splits=splits,
        task=cfg.task,  # type: ignore[arg-type]
        n_classes=cfg.n_classes if cfg.task == "classification" else None,
        name=cfg.name,
        source=f"synthetic(seed={cfg.seed})",
    ).validate()
    return SyntheticData(
        dataset=dataset,
        warps=split_warps,
        config=cfg,
        latents=split_latents,
        durations=split_durations,
    )


def make_synthetic(config: SyntheticConfig | None = None) -> MultimodalDataset:
    """Generate the synthetic benchmark (see the module docstring for the model).

    Parameters
    ----------
    config : SyntheticConfig, optional
        Defaults to ``SyntheticConfig()`` (CMU-MOSI-like sizes, regression).

    Returns
    -------
    MultimodalDataset
        Validated; modalities ``text``, ``vision``, ``audio`` share each sample's length
        (vision and audio share their frame lengths in the unaligned variant). Splits carry
        the ground-truth ``spans``.

    Examples
    --------
    >>> ds = make_synthetic(SyntheticConfig(n_train=8, n_valid=4, n_test=4))
    >>> ds.splits["train"].features["vision"].shape
    (8, 50, 20)
    >>> ds.splits["train"].spans["audio_text"].shape
    (8, 50, 2)
    """
    return generate_synthetic(config).dataset


_BUDGET_FOLDS = 4
#: Modality subsets in table order: singles, pairs, all three.
_SUBSETS: tuple[tuple[str, ...], ...] = tuple(
    c for k in (1, 2, 3) for c in combinations(SYNTHETIC_MODALITIES, k)
)


@dataclass(frozen=True)
class InformationBudget:
    """Which share of the label can each modality subset explain, by construction and in practice.

    All shares are of the variance of the standardised label *score* (label noise included),
    before the regression squashing ``3 tanh(.)`` and rounding (or the classification
    arg-max); for classification they are averaged over the ``n_classes`` scores. Keys of
    ``oracle``, ``clean`` and ``pooled`` are modality tuples in :data:`SYNTHETIC_MODALITIES`
    order: the three singles, the three pairs, all three.

    Attributes
    ----------
    parts : dict[str, float]
        Share of each part: ``"shared"``, ``"unique/<m>"``, ``"privileged/<m>"`` (present
        when their weight and width are non-zero) and ``"label_noise"``; sums to 1.
    oracle : dict[tuple[str, ...], float]
        Share of the parts the subset observes in any form (step 6's nonlinear views
        included), ignoring observation noise, warps and too narrow read-outs: an upper
        bound on any function of the subset. For a single source this is the ceiling of
        every method in setting A.
    clean : dict[tuple[str, ...], float]
        Share of the parts the subset reads out linearly (shared, its unique and its
        privileged parts).
    pooled : dict[tuple[str, ...], float]
        Out-of-fold R^2 (4 folds, clipped at 0) of ridge regression on pooled features (mean
        and mean of squares of each feature over valid steps), the sanity floor's model,
        estimated on a generated sample; its sampling error is about 0.01 at 4000 samples,
        so it may exceed ``oracle`` by that much.
    n_samples : int
        Size of the generated sample behind ``pooled``.
    """

    parts: dict[str, float]
    oracle: dict[tuple[str, ...], float]
    clean: dict[tuple[str, ...], float]
    pooled: dict[tuple[str, ...], float]
    n_samples: int

    def table(self) -> str:
        """Render the budget as a small text table (no trailing newline).

        Returns
        -------
        str
            A title line, one row per modality subset (``oracle``, ``clean``, ``pooled``
            columns) and a legend.
        """
        noise = self.parts.get("label_noise", 0.0)
        lines = [
            "information budget (share of label-score variance before squashing; "
            f"label noise {noise:.2f})",
            f"  {'modalities':<20} {'oracle':>7} {'clean':>7} {'pooled':>7}",
        ]
        for subset in self.oracle:
            name = "+".join(subset)
            lines.append(
                f"  {name:<20} {self.oracle[subset]:>7.3f} {self.clean[subset]:>7.3f} "
                f"{self.pooled[subset]:>7.3f}"
            )
        lines += [
            "  oracle: parts the modalities carry in any form (ceiling of any model on them;",
            "    a source's row caps every method in setting A); clean: parts read out",
            "    linearly; pooled: held-out R^2 of ridge on pooled mean + mean of squares",
            f"    (the sanity floor), 4-fold out-of-fold on {self.n_samples} generated samples",
        ]
        return "\n".join(lines)


def _time_mean_variance(cfg: SyntheticConfig) -> float:
    """Variance of one latent coordinate's time mean over a sample's valid steps.

    A latent is a unit-variance level plus ``event_scale`` times a stationary AR(1)
    (coefficient ``rho``); over ``L`` steps its mean has variance
    ``1 + event_scale**2 * (L + 2 sum_k (L - k) rho**k) / L**2``, averaged over the
    uniform lengths ``min_length .. max_length``.
    """
    rho = float(cfg.event_smoothness)
    lengths = np.arange(cfg.min_length, cfg.max_length + 1)
    ar = []
    for length in lengths:  # loop over the possible lengths (at most a few hundred)
        k = np.arange(1, length)
        ar.append((length + 2.0 * np.sum((length - k) * rho**k)) / length**2)
    return 1.0 + cfg.event_scale**2 * float(np.mean(ar))


def _part_visibility(
    cfg: SyntheticConfig,
) -> tuple[dict[str, float], dict[str, set[str]], dict[str, set[str]]]:
    """Label weight of each part and the modalities that see it cleanly / in any form."""
    weights = {"shared": cfg.info_shared}
    clean = {"shared": set(SYNTHETIC_MODALITIES)}
    if cfg.unique_dim:
        for m in SYNTHETIC_MODALITIES:
            weights[f"unique/{m}"] = getattr(cfg, f"info_{m}")
            clean[f"unique/{m}"] = {m}
        if cfg.info_privileged > 0:
            for m in SYNTHETIC_MODALITIES:
                weights[f"privileged/{m}"] = cfg.info_privileged
                clean[f"privileged/{m}"] = {m}
    seen = {k: set(v) for k, v in clean.items()}
    for k in seen:
        if k.startswith("privileged/"):
            seen[k] = set(SYNTHETIC_MODALITIES)  # the others carry its nonlinear view
    return weights, clean, seen


def _pooled_features(
    features: dict[str, np.ndarray], lengths: dict[str, np.ndarray], mods
) -> np.ndarray:
    """Mean and mean of squares over valid steps, per feature: ``(N, 2 * sum D_m)``."""
    cols = []
    for m in mods:
        counts = lengths[m][:, None].astype(np.float64)  # (N, 1); padding is exactly 0
        x = features[m].astype(np.float64)  # (N, L, D_m)
        cols += [x.sum(axis=1) / counts, (x * x).sum(axis=1) / counts]
    return np.concatenate(cols, axis=1)  # (N, 2 * sum D_m)


def information_budget(
    config: SyntheticConfig | None = None, n_samples: int = 4000, alpha: float = 1.0
) -> InformationBudget:
    """Share of the label each modality subset can explain (see :class:`InformationBudget`).

    ``oracle`` and ``clean`` follow from the generative story: a part with label weight
    ``w`` contributes ``w**2 * V`` to the score variance, ``V`` the variance of a latent's
    time mean (:func:`_time_mean_variance`), and the label noise ``label_noise**2``.
    ``pooled`` is estimated: ``n_samples`` samples are drawn with ``config`` (its seed;
    sizes ignored) and ridge (``alpha``, standardised features) is scored out of fold over
    4 folds.

    Parameters
    ----------
    config : SyntheticConfig, optional
        Defaults to ``SyntheticConfig()``.
    n_samples : int
        Size of the generated sample for the ridge estimate (>= 8).
    alpha : float
        Ridge penalty.

    Returns
    -------
    InformationBudget

    Raises
    ------
    ConfigError
        For the unaligned variant: its frame-level parts have other time-mean variances
        than the formula assumes, so the budget is not defined there.

    Examples
    --------
    >>> cfg = SyntheticConfig(event_scale=0.0, info_vision=0.0, info_audio=0.0, label_noise=1.0)
    >>> b = information_budget(cfg, n_samples=200)
    >>> round(b.oracle[("text",)], 3), round(b.oracle[("vision",)], 3)
    (0.667, 0.333)
    """
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cfg = (config or SyntheticConfig()).validate()
    if cfg.unaligned:
        raise ConfigError(
            "the information budget does not apply to the unaligned variant (unaligned=1): "
            "its frame-level unique parts break the equal-variance formula; use unaligned=0."
        )
    _check_int("n_samples", n_samples, low=8)
    variance = _time_mean_variance(cfg)
    weights, clean_by, seen_by = _part_visibility(cfg)
    var = {k: w**2 * variance for k, w in weights.items()}
    total = sum(var.values()) + cfg.label_noise**2
    parts = {k: v / total for k, v in var.items()}
    parts["label_noise"] = cfg.label_noise**2 / total
    oracle = {c: sum(parts[k] for k in var if seen_by[k] & set(c)) for c in _SUBSETS}
    clean = {c: sum(parts[k] for k in var if clean_by[k] & set(c)) for c in _SUBSETS}

    draw = _draw(cfg, n_samples)
    pooled_by = {m: _pooled_features(draw.features, draw.lengths, [m]) for m in draw.features}
    folds = np.arange(n_samples) % _BUDGET_FOLDS  # (N,), samples are iid: no shuffle needed
    pooled = {}
    for c in _SUBSETS:  # seven subsets x four folds of small ridge fits
        x = np.concatenate([pooled_by[m] for m in c], axis=1)  # (N, F)
        pred = np.empty_like(draw.score)  # (N, S), out-of-fold predictions
        for k in range(_BUDGET_FOLDS):
            fit, held = folds != k, folds == k
            model = make_pipeline(StandardScaler(), Ridge(alpha=alpha))
            model.fit(x[fit], draw.score[fit])
            pred[held] = model.predict(x[held]).reshape(int(held.sum()), -1)
        pooled[c] = max(0.0, float(r2_score(draw.score, pred)))
    return InformationBudget(
        parts=parts,
        oracle=oracle,
        clean=clean,
        pooled=pooled,
        n_samples=n_samples,
    )
