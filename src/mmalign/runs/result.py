"""The typed result of one run: what ``metrics.json`` holds and what a grid's runner returns.

:meth:`RunResult.to_dict` is the JSON layout of ``metrics.json`` and of the grid runner
contract (``docs/experiments.md``): ``{"A": {"valid", "test", "best_epoch"}, "B": {...},
"floor": {...}, "meta": {...}, "warnings": [...], "warning_codes": [...]}``. A run of the
random-missing protocol has the one setting ``"random"`` and adds ``"test": {"overall": {"n",
<metrics>}, "patterns": {<pattern>: {"n", <metrics>}}}`` (patterns such as ``t``, ``tv``,
``tva``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmalign.data.checks import DataWarning
from mmalign.validation import DataError

__all__ = ["SettingResult", "PatternResult", "RunMeta", "RunResult", "RESULT_SETTINGS"]

#: Settings a result may hold: the pair protocol's A and B, the random-missing protocol's one.
RESULT_SETTINGS: tuple[str, ...] = ("A", "B", "random")


@dataclass(frozen=True)
class SettingResult:
    """Metrics of the checkpoint selected on validation under one test setting.

    Attributes
    ----------
    valid : dict[str, float]
        Validation metrics at the selected epoch, with ``"loss"``, the validation task loss
        (runs made before ``--selection`` existed lack it).
    test : dict[str, float]
        Test metrics of that checkpoint.
    best_epoch : int
    """

    valid: dict[str, float]
    test: dict[str, float]
    best_epoch: int


@dataclass(frozen=True)
class PatternResult:
    """Test metrics over the samples of one missingness pattern (or over all of them).

    Attributes
    ----------
    n : int
        Test samples with that pattern.
    metrics : dict[str, float]
        NaN where a metric is undefined for so few samples (e.g. a correlation of one).
    """

    n: int
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """``{"n": n, <metric>: value, ...}``."""
        return {"n": self.n, **self.metrics}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "PatternResult":
        """Inverse of :meth:`to_dict`."""
        return cls(int(values["n"]), {k: float(v) for k, v in values.items() if k != "n"})


@dataclass(frozen=True)
class RunMeta:
    """What identifies a run and what is needed to rebuild its model (``model.json``).

    Attributes
    ----------
    method, source, victim : str
        Registered method name and full modality names of the pair.
    p : float
    seed : int
    dataset : str
        The dataset's name.
    source_dim, victim_dim, output_dim : int
        Feature widths of the pair and the model's output width.
    task : str
    n_complete, n_missing : int
        Training samples with and without the victim.
    epochs_run : int
    wall_s : float
    device : str
    torch_threads : int
    protocol : {"pair", "random"}
        The paper's pair protocol or the random-missing protocol (then ``source`` and
        ``victim`` are empty and ``p`` is 0).
    missing_rate, frame_drop : float
        The random-missing protocol's options (0 for the pair protocol).
    modalities : tuple of str
        The modalities a random-missing model was built for, in order.
    input_dims : tuple of int
        Their feature widths.
    """

    method: str
    source: str
    victim: str
    p: float
    seed: int
    dataset: str
    source_dim: int
    victim_dim: int
    output_dim: int
    task: str
    n_complete: int = 0
    n_missing: int = 0
    epochs_run: int = 0
    wall_s: float = 0.0
    device: str = "cpu"
    torch_threads: int = 1
    protocol: str = "pair"
    missing_rate: float = 0.0
    frame_drop: float = 0.0
    modalities: tuple[str, ...] = ()
    input_dims: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples as lists, as JSON reads them back)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunMeta":
        """Rebuild from :meth:`to_dict` output (unknown keys are ignored).

        Run folders written before version 0.2 nest the widths under ``"dims"``; they are
        read too.
        """
        values = {**values, **values.get("dims", {})}
        for key in ("modalities", "input_dims"):  # JSON lists
            if key in values:
                values[key] = tuple(values[key])
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def warning_fields(found: list[DataWarning]) -> dict[str, tuple[str, ...]]:
    """Return :class:`RunResult`'s ``warnings`` and ``warning_codes`` of ``found``, in order."""
    return {
        "warnings": tuple(w.message for w in found),
        "warning_codes": tuple(w.code for w in found),
    }


@dataclass(frozen=True)
class RunResult:
    """What :func:`mmalign.run` returns.

    Attributes
    ----------
    run_dir : Path
    settings : dict[str, SettingResult]
        ``"A"`` and ``"B"`` (the upper bound reports its one setting under both); the
        random-missing protocol's ``"random"``.
    floor : dict
        The ridge/logistic sanity floor (``docs/metrics.md``).
    meta : RunMeta
    warnings : tuple of str
        Warnings raised while the run went (also in ``train.log``).
    patterns : dict[str, PatternResult]
        Random-missing protocol: test metrics per pattern (``"tv"``...) and ``"overall"``;
        empty for the pair protocol.
    warning_codes : tuple of str
        The code of each of ``warnings``, in the same order (``docs/warnings.md``); empty in
        runs written before codes were recorded.
    """

    run_dir: Path
    settings: dict[str, SettingResult]
    floor: dict[str, Any]
    meta: RunMeta
    warnings: tuple[str, ...] = field(default_factory=tuple)
    patterns: dict[str, PatternResult] = field(default_factory=dict)
    warning_codes: tuple[str, ...] = field(default_factory=tuple)

    def test(self, setting: str = "A") -> dict[str, float]:
        """Test metrics of ``setting``."""
        return self.settings[setting].test

    def to_dict(self) -> dict[str, Any]:
        """Return the ``metrics.json`` layout (also the grid runner's return value)."""
        out: dict[str, Any] = {s: dataclasses.asdict(r) for s, r in self.settings.items()}
        if self.patterns:
            overall = self.patterns["overall"].to_dict()
            groups = {k: r.to_dict() for k, r in self.patterns.items() if k != "overall"}
            out["test"] = {"overall": overall, "patterns": groups}
        out.update(
            floor=self.floor,
            meta=self.meta.to_dict(),
            warnings=list(self.warnings),
            warning_codes=list(self.warning_codes),
        )
        return out

    def to_json(self) -> str:
        """``metrics.json`` text."""
        return json.dumps(self.to_dict(), indent=2, default=float) + "\n"

    @classmethod
    def from_dict(cls, values: dict[str, Any], run_dir: str | Path) -> "RunResult":
        """Rebuild from :meth:`to_dict` output."""
        settings = {
            s: SettingResult(v["valid"], v["test"], int(v["best_epoch"]))
            for s, v in values.items()
            if s in RESULT_SETTINGS
        }
        patterns = {}
        if "test" in values:
            patterns = {"overall": PatternResult.from_dict(values["test"]["overall"])}
            for name, v in values["test"]["patterns"].items():
                patterns[name] = PatternResult.from_dict(v)
        return cls(
            Path(run_dir),
            settings,
            values.get("floor", {}),
            RunMeta.from_dict(values["meta"]),
            tuple(values.get("warnings", ())),
            patterns,
            tuple(values.get("warning_codes", ())),
        )

    @classmethod
    def load(cls, run_dir: str | Path) -> "RunResult":
        """Read ``run_dir/metrics.json``."""
        path = Path(run_dir) / "metrics.json"
        if not path.is_file():
            raise DataError(f"{run_dir}: not a finished run folder (metrics.json is missing).")
        return cls.from_dict(json.loads(path.read_text()), run_dir)
