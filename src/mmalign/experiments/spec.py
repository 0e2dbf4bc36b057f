"""Run specifications and their fingerprints.

A :class:`RunSpec` names one training run of a grid: data, method, directed pair, survival
rate ``p``, split seed and the resolved hyperparameter overrides. A run of the random-missing
protocol (its config sets ``missing_rate``) has no pair and no ``p``: its ``source``,
``victim`` and ``p`` are ``None`` (:meth:`RunSpec.random_missing`). Its *fingerprint* is a
short sha256 of everything that determines the result, so a results store can tell which runs
of a grid are already done, whatever machine or folder they ran in:

- the data identity: the *content* hash of a data file or folder (a moved or renamed file
  keeps its fingerprint), or the normalised ``"synthetic[:knob=value,...]"`` string;
- the method, the pair ``(source, victim)`` and ``p`` (random-missing runs: the protocol
  name instead; the missing rate is an option of the config) and ``seed``;
- a hash of the config as canonical JSON (sorted keys, no whitespace).

Content hashes of files are cached per process by ``(path, size, mtime)`` so that a grid of
hundreds of runs over one multi-GB pickle reads it once.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from mmalign.config import (
    LATER_OPTIONS,
    PAIR_ONLY_OPTIONS,
    check_option,
    config_from_dict,
    execution_options,
    flat_fields,
    missing_rate_in,
)
from mmalign.data.dataset import canonical_modality
from mmalign.data.spec import DataSpec
from mmalign.models.registry import METHODS, method_specific_options, options_for
from mmalign.validation import ConfigError, DataError

__all__ = [
    "FINGERPRINT_LENGTH",
    "PROTOCOLS",
    "RunSpec",
    "canonical_json",
    "applicable_config",
    "config_hash",
    "data_identity",
    "file_content_hash",
    "run_fingerprint",
    "unread_later_options",
]

#: Hex digits kept from the sha256 (64 bits: collisions are negligible for any grid).
FINGERPRINT_LENGTH = 16

#: The protocols a run can follow: the paper's source:victim pair, or random missing.
PROTOCOLS: tuple[str, ...] = ("pair", "random")

# (absolute path, size, mtime_ns) -> sha256 hex of the file's bytes
_FILE_HASH_CACHE: dict[tuple[str, int, int], str] = {}
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RunSpec:
    """One run of an experiment grid.

    A run follows the pair protocol (the paper's: ``source``, ``victim`` and ``p`` set) or,
    when ``config`` sets ``missing_rate``, the random-missing protocol, where ``source``,
    ``victim`` and ``p`` are ``None`` (build it with :meth:`random_missing`).

    Attributes
    ----------
    data : str
        A data file or folder path, or ``"synthetic[:knob=value,...]"``.
    method : str
        Registered method name (``lb``, ``ub``, ``mfm``, ``smil``, ``modal-trans``,
        ``mm-align``, ...).
    source, victim : str or None
        Full modality names of the directed pair ``source -> victim``; ``None`` in the
        random-missing protocol.
    p : float or None
        Survival rate of the victim in training; ``1.0`` for the upper bound ``ub``; ``None``
        in the random-missing protocol.
    seed : int
        Split seed.
    config : dict
        Resolved hyperparameter overrides, plain JSON-able values; ``missing_rate`` (and
        ``frame_drop``, ``drop_burst``) select the random-missing protocol.
    """

    data: str
    method: str
    source: str | None
    victim: str | None
    p: float | None
    seed: int
    config: dict = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for name in ("data", "method"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"`{name}` must be a non-empty string; got {value!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"`seed` must be an integer >= 0; got {self.seed!r}.")
        if not isinstance(self.config, dict):
            raise ConfigError(f"`config` must be a dict; got {self.config!r}.")
        canonical_json(self.config)  # fail now, not in a worker, on a non-JSON value
        rate = missing_rate_in(self.config)
        if rate is not None:
            check_option("missing_rate", rate)
            for name in ("source", "victim", "p"):
                value = getattr(self, name)
                if value is not None:
                    raise ConfigError(
                        f"`{name}` must be None in the random-missing protocol "
                        f"(missing_rate={rate!r}); got {value!r}."
                    )
            return
        for name in ("source", "victim"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"`{name}` must be a non-empty string; got {value!r}.")
        if self.source == self.victim:
            raise ConfigError(
                f"`victim` must differ from the source {self.source!r}; got {self.victim!r}."
            )
        check_option("p", self.p)

    @classmethod
    def random_missing(cls, data: str, method: str, seed: int, config: dict) -> "RunSpec":
        """Build a run of the random-missing protocol (``config`` must set ``missing_rate``).

        >>> spec = RunSpec.random_missing("synthetic", "lb", 0, {"missing_rate": 0.3})
        >>> spec.protocol, spec.source, spec.p, spec.label
        ('random', None, None, 'lb random missing_rate=0.3 seed=0')
        """
        if missing_rate_in(config) is None:
            raise ConfigError(
                f"`config` must set missing_rate for the random-missing protocol; got {config!r}."
            )
        return cls(data, method, None, None, None, seed, dict(config))

    @property
    def protocol(self) -> Literal["pair", "random"]:
        """``"random"`` when the config sets ``missing_rate``, else ``"pair"``."""
        return "pair" if self.missing_rate is None else "random"

    @property
    def missing_rate(self) -> float | None:
        """The random-missing rate (``None`` for the pair protocol)."""
        rate = missing_rate_in(self.config)
        return None if rate is None else float(rate)

    @property
    def pair(self) -> str:
        """The pair as ``"source->victim"`` (``"random"`` in the random-missing protocol)."""
        if self.protocol == "random":
            return "random"
        return f"{self.source}->{self.victim}"

    @property
    def label(self) -> str:
        """A short human-readable name: ``"mm-align text->vision p=0.1 seed=0"``."""
        if self.protocol == "random":
            return f"{self.method} random missing_rate={self.missing_rate:g} seed={self.seed}"
        return f"{self.method} {self.pair} p={self.p:g} seed={self.seed}"

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain dict (JSON-able)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunSpec":
        """Build a spec from :meth:`to_dict` output."""
        p = values.get("p")
        return cls(
            data=values["data"],
            method=values["method"],
            source=values.get("source"),
            victim=values.get("victim"),
            p=None if p is None else float(p),
            seed=int(values["seed"]),
            config=dict(values.get("config") or {}),
        )

    def fingerprint(self) -> str:
        """Return the run's fingerprint (see :func:`run_fingerprint`)."""
        return run_fingerprint(self)


def canonical_json(value: Any) -> str:
    """Serialise ``value`` as canonical JSON: sorted keys, no spaces, NaN rejected.

    >>> canonical_json({"b": 1, "a": [1.5, "x"]})
    '{"a":[1.5,"x"],"b":1}'
    """
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"`config` must hold plain JSON values; got {value!r} ({err}).") from err


def config_hash(config: dict, ignore: frozenset[str] = frozenset()) -> str:
    """Return the sha256 hex of the *resolved* run configuration, execution options left out.

    When every key is an option of :class:`~mmalign.config.RunConfig`, the overrides
    are resolved against the defaults first, so ``{}`` and ``{"epochs": 30}`` (the default)
    are one configuration, and a changed default gives new fingerprints. A config with other
    keys (a custom runner's) is hashed as given.

    >>> config_hash({"lr": 1e-3, "epochs": 5}) == config_hash({"epochs": 5, "lr": 0.001})
    True
    >>> config_hash({"epochs": 5, "device": "cuda"}) == config_hash({"epochs": 5})
    True
    >>> config_hash({}) == config_hash({"window": 8})  # 8 is the default window
    True

    ``ignore``: options of :data:`~mmalign.config.LATER_OPTIONS` that the run does not read
    (:func:`unread_later_options`), hashed as if at their earlier value whatever they are.
    """
    kept = {k: v for k, v in config.items() if k.split(".")[-1] not in execution_options()}
    return hashlib.sha256(canonical_json(_resolved(kept, ignore)).encode()).hexdigest()


def unread_later_options(method: str, protocol: str) -> frozenset[str]:
    """Later options (:data:`~mmalign.config.LATER_OPTIONS`) that a run does not read.

    Those of another method, and the pair protocol's under the random-missing one. Their
    value, a default included, then changes nothing in the run and nothing in its hash.
    Only later options qualify: others were always hashed, and older hashes must stay.

    >>> sorted(unread_later_options("lb", "pair")) == sorted(
    ...     n for n in LATER_OPTIONS if n in method_specific_options()
    ... )
    True
    >>> sorted(unread_later_options("mm-align", "random"))
    ['lambda_imputed', 'victim_stream_dropout']
    """
    reads = set(METHODS[method].options) if method in METHODS else set(method_specific_options())
    unread = {n for n in LATER_OPTIONS if n in method_specific_options() and n not in reads}
    if protocol == "random":
        unread |= PAIR_ONLY_OPTIONS & set(LATER_OPTIONS)
    return frozenset(unread)


def _resolved(config: dict, ignore: frozenset[str] = frozenset()) -> dict:
    """Every training option with its value (defaults filled in), or ``config`` unchanged."""
    known = flat_fields()
    if not all(k.split(".")[-1].replace("-", "_") in known for k in config):
        return config  # a custom runner's options: hashed as given
    resolved = config_from_dict(dict(config))
    skip = execution_options() | {"data", "method", "pair", "p", "seed"}
    out = {}
    for name, (section, _field) in known.items():
        if name in skip:  # per-run identity is hashed separately; execution options never
            continue
        value = getattr(getattr(resolved, section) if section else resolved, name)
        if name in LATER_OPTIONS and (value == LATER_OPTIONS[name] or name in ignore):
            continue  # what runs made before the option did: their hashes stay as they were
        out[name] = value
    return out


def file_content_hash(path: str | os.PathLike) -> str:
    """Return the sha256 hex of a file's bytes, cached by ``(path, size, mtime)``.

    Raises
    ------
    DataError
        The file cannot be read.
    """
    path = Path(path).resolve()
    try:
        stat = path.stat()
    except OSError as err:
        raise DataError(f"{path}: cannot read the data file ({err.strerror}).") from err
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    cached = _FILE_HASH_CACHE.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
    except OSError as err:
        raise DataError(f"{path}: cannot read the data file ({err.strerror}).") from err
    _FILE_HASH_CACHE[key] = digest.hexdigest()
    return _FILE_HASH_CACHE[key]


def data_identity(data: str) -> str:
    """Return what identifies the data in a fingerprint.

    ``"synthetic..."`` strings identify themselves (normalised); a file gives its content hash;
    a folder gives a hash over its files' relative paths and content hashes (hidden files are
    skipped).

    >>> data_identity("synthetic:seed=1,n_train=64")
    'synthetic:n_train=64,seed=1'

    Raises
    ------
    DataError
        The path does not exist or cannot be read.
    """
    spec = DataSpec.parse(data)
    if spec.synthetic:
        return spec.identity
    path = Path(data)
    if path.is_file():
        return "sha256:" + file_content_hash(path)
    if path.is_dir():
        digest = hashlib.sha256()
        files = sorted(
            f
            for f in path.rglob("*")
            if f.is_file() and not any(p.startswith(".") for p in f.relative_to(path).parts)
        )
        for file in files:
            digest.update(f"{file.relative_to(path).as_posix()}\0".encode())
            digest.update(file_content_hash(file).encode())
        return "sha256-dir:" + digest.hexdigest()
    raise DataError(f"{data}: no such data file or folder (nor a 'synthetic[:...]' string).")


def applicable_config(method: str, config: dict) -> dict:
    """Return the options of ``config`` that apply to ``method`` (all for an unknown method).

    A grid gives every method the same ``config`` (so the store groups one grid under one
    ``config_hash``); a run's fingerprint hashes only what applies to its method, so an LB
    run does not depend on MM-Align's window.

    >>> applicable_config("lb", {"window": 4, "epochs": 2})
    {'epochs': 2}
    """
    if method not in METHODS:
        return config
    return options_for(method, config)


def run_fingerprint(spec: RunSpec) -> str:
    """Return the fingerprint of ``spec``: a shortened sha256 of what determines its result.

    Two specs that differ only in the order of config keys, or in the path of identical data
    files, share a fingerprint. A random-missing run hashes ``"protocol": "random"`` in place
    of the pair and ``p`` (its missing rate is in the config hash); the payload of a pair run
    is the one stores were written with before the random-missing protocol existed.

    >>> a = RunSpec("synthetic", "lb", "text", "vision", 0.1, 0, {"lr": 0.1, "epochs": 2})
    >>> b = RunSpec("synthetic", "lb", "text", "vision", 0.1, 0, {"epochs": 2, "lr": 0.1})
    >>> run_fingerprint(a) == run_fingerprint(b), len(run_fingerprint(a))
    (True, 16)
    """
    if spec.protocol == "random":
        identity: dict[str, Any] = {"protocol": "random"}
    else:
        identity = {
            "source": canonical_modality(spec.source),
            "victim": canonical_modality(spec.victim),
            "p": float(spec.p),
        }
    payload = canonical_json(
        {
            "data": data_identity(spec.data),
            "method": spec.method,
            **identity,
            "seed": int(spec.seed),
            "config": config_hash(
                applicable_config(spec.method, spec.config),
                unread_later_options(spec.method, spec.protocol),
            ),
        }
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:FINGERPRINT_LENGTH]
