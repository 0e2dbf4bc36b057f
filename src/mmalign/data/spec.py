"""What a run's ``data`` option names: a data file or folder, or the built-in synthetic set.

:class:`DataSpec` is the one parser of ``"synthetic[:knob=value,...]"`` strings: commands,
runs and grids read the option through it, load through it (cached per process) and
identify the data through it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmalign.options import coerce, parse_assignments
from mmalign.validation import ConfigError

if TYPE_CHECKING:
    from mmalign.data.dataset import MultimodalDataset

__all__ = ["DataSpec", "SYNTHETIC", "load_dataset"]

#: The word that names the built-in synthetic benchmark in a ``data`` option.
SYNTHETIC = "synthetic"

_CACHE: dict[tuple, "MultimodalDataset"] = {}


@dataclass(frozen=True)
class DataSpec:
    """A parsed ``data`` option.

    Attributes
    ----------
    text : str
        The option as given.
    synthetic : bool
        Whether it names the built-in synthetic benchmark.
    knobs : tuple of (str, str)
        Synthetic generator knobs (fields of :class:`~mmalign.data.synthetic.SyntheticConfig`),
        sorted by name; values as given.
    """

    text: str
    synthetic: bool
    knobs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> "DataSpec":
        """Parse a ``data`` option.

        >>> DataSpec.parse("synthetic: seed=3 ,n_train=200").identity
        'synthetic:n_train=200,seed=3'
        >>> DataSpec.parse("/data/mosi.pkl").synthetic
        False
        """
        text = str(text).strip()
        if not text:
            raise ConfigError("`data` must name a data file or folder, or 'synthetic'; got ''.")
        head, sep, rest = text.partition(":")
        if head.strip() != SYNTHETIC:
            return cls(text, False)
        knobs = parse_assignments("data", rest) if sep else {}
        from mmalign.data.synthetic import SyntheticConfig

        fields = {f.name: f for f in dataclasses.fields(SyntheticConfig)}
        for name in knobs:
            if name not in fields:
                raise ConfigError(
                    f"unknown synthetic knob {name!r}; valid knobs are {sorted(fields)}."
                )
        return cls(text, True, tuple(sorted(knobs.items())))

    @property
    def identity(self) -> str:
        """The normalised synthetic string (knobs sorted, no spaces), or the text of a path."""
        if not self.synthetic:
            return self.text
        return SYNTHETIC + (
            "" if not self.knobs else ":" + ",".join(f"{k}={v}" for k, v in self.knobs)
        )

    def synthetic_config(self):
        """Return the :class:`~mmalign.data.synthetic.SyntheticConfig` the knobs describe."""
        from mmalign.data.synthetic import SyntheticConfig

        fields = {f.name: f for f in dataclasses.fields(SyntheticConfig)}
        return SyntheticConfig(**{k: coerce(fields[k], v) for k, v in self.knobs}).validate()

    def load(
        self,
        format: str = "",
        trusted: bool = False,
        *,
        task: str = "",
        label_key: str = "",
    ) -> "MultimodalDataset":
        """Load (and cache per process) the dataset; see :func:`~mmalign.data.formats.load_dataset`."""
        key = (self.identity, format, trusted, task, label_key)
        if key not in _CACHE:
            if self.synthetic:
                from mmalign.data.synthetic import make_synthetic

                if format or label_key:
                    raise ConfigError("`format` and `label_key` do not apply to synthetic data.")
                config = self.synthetic_config()
                if task and task != config.task:
                    config = dataclasses.replace(config, task=task).validate()
                dataset = make_synthetic(config)
            else:
                from mmalign.data.formats import load_dataset

                dataset = load_dataset(
                    self.text,
                    format=format or None,
                    trusted=trusted,
                    task=task or None,
                    label_key=label_key or None,
                )
            _CACHE[key] = dataset
        return _CACHE[key]

    def modalities(self) -> tuple[str, ...]:
        """Modality names, without generating the synthetic set (a data file is loaded)."""
        if self.synthetic:
            from mmalign.data.synthetic import SYNTHETIC_MODALITIES

            return tuple(SYNTHETIC_MODALITIES)
        return tuple(self.load().modalities)


def load_dataset(
    data: str,
    *,
    format: str | None = None,
    trusted: bool = False,
    task: str | None = None,
    label_key: str | None = None,
) -> "MultimodalDataset":
    """Load what a ``data`` option names: a feature file or folder, or ``"synthetic[:knobs]"``.

    This is ``mmalign.load_dataset``. Files go through
    :func:`mmalign.data.formats.load_dataset` (format detected unless given; pickles read
    with the restricted unpickler unless ``trusted``); results are cached per process.

    >>> load_dataset("synthetic:n_train=40,n_valid=10,n_test=10").modalities
    ('text', 'vision', 'audio')
    """
    return DataSpec.parse(data).load(
        format or "", trusted, task=task or "", label_key=label_key or ""
    )
