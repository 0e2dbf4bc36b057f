"""The typed result of one run: what ``metrics.json`` holds and what a grid's runner returns.

:meth:`RunResult.to_dict` is the JSON layout of ``metrics.json`` and of the grid runner
contract (``docs/experiments.md``): ``{"A": {"valid", "test", "best_epoch"}, "B": {...},
"floor": {...}, "meta": {...}, "warnings": [...]}``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmalign.validation import DataError

__all__ = ["SettingResult", "RunMeta", "RunResult"]


@dataclass(frozen=True)
class SettingResult:
    """Metrics of the checkpoint selected on validation under one test setting.

    Attributes
    ----------
    valid : dict[str, float]
        Validation metrics at the selected epoch.
    test : dict[str, float]
        Test metrics of that checkpoint.
    best_epoch : int
    """

    valid: dict[str, float]
    test: dict[str, float]
    best_epoch: int


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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunMeta":
        """Rebuild from :meth:`to_dict` output (unknown keys are ignored).

        Run folders written before version 0.2 nest the widths under ``"dims"``; they are
        read too.
        """
        values = {**values, **values.get("dims", {})}
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


@dataclass(frozen=True)
class RunResult:
    """What :func:`mmalign.run` returns.

    Attributes
    ----------
    run_dir : Path
    settings : dict[str, SettingResult]
        ``"A"`` and ``"B"`` (the upper bound reports its one setting under both).
    floor : dict
        The ridge/logistic sanity floor (``docs/metrics.md``).
    meta : RunMeta
    warnings : tuple of str
        Warnings raised while the run went (also in ``train.log``).
    """

    run_dir: Path
    settings: dict[str, SettingResult]
    floor: dict[str, Any]
    meta: RunMeta
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def test(self, setting: str = "A") -> dict[str, float]:
        """Test metrics of ``setting``."""
        return self.settings[setting].test

    def to_dict(self) -> dict[str, Any]:
        """Return the ``metrics.json`` layout (also the grid runner's return value)."""
        out: dict[str, Any] = {s: dataclasses.asdict(r) for s, r in self.settings.items()}
        out.update(floor=self.floor, meta=self.meta.to_dict(), warnings=list(self.warnings))
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
            if s in ("A", "B")
        }
        return cls(
            Path(run_dir),
            settings,
            values.get("floor", {}),
            RunMeta.from_dict(values["meta"]),
            tuple(values.get("warnings", ())),
        )

    @classmethod
    def load(cls, run_dir: str | Path) -> "RunResult":
        """Read ``run_dir/metrics.json``."""
        path = Path(run_dir) / "metrics.json"
        if not path.is_file():
            raise DataError(f"{run_dir}: not a finished run folder (metrics.json is missing).")
        return cls.from_dict(json.loads(path.read_text()), run_dir)
