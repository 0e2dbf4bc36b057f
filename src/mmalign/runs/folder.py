"""The run folder: its default name, its files, and the rule that a run never overwrites another.

A run folder holds ``config.yaml`` (resolved), ``split.json``, ``model.json``, ``train.log``
and ``history.json`` (written as the run goes), ``resume.pt`` (after every epoch),
``checkpoint.pt`` (best weights per setting), ``metrics.json`` and ``predictions.csv``.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from mmalign.config import RunConfig, config_from_dict, flatten
from mmalign.runs.result import RunMeta
from mmalign.train.checkpoint import atomic_write_bytes, load_checkpoint
from mmalign.validation import ConfigError, DataError

__all__ = [
    "RunFolder",
    "default_run_dir",
    "default_random_run_dir",
    "check_finished_run",
    "read_finished_run",
    "RUN_MARKERS",
]

#: Files whose presence means a folder already holds a run.
RUN_MARKERS = ("config.yaml", "model.json", "metrics.json", "checkpoint.pt", "resume.pt")


def default_run_dir(method: str, source: str, victim: str, p: float, seed: int) -> Path:
    """``runs/<method>_<src>-<victim>_p<p>_s<seed>_<timestamp>``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{method}_{source[0]}-{victim[0]}_p{p:g}_s{seed}_{stamp}"


def default_random_run_dir(method: str, missing_rate: float, seed: int) -> Path:
    """``runs/<method>_r<missing rate>_s<seed>_<timestamp>`` (random-missing protocol)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{method}_r{missing_rate:g}_s{seed}_{stamp}"


class RunFolder:
    """One run's folder.

    Parameters
    ----------
    path : Path
    resume : bool
        The folder must hold the run being resumed; otherwise it must not hold any run
        (a reused ``--out`` never overwrites an earlier run).
    """

    def __init__(self, path: str | Path, *, resume: bool = False) -> None:
        self.path = Path(path)
        held = [m for m in RUN_MARKERS if (self.path / m).exists()]
        if resume and not (self.path / "resume.pt").is_file():
            raise ConfigError(
                f"`resume` needs {self.path / 'resume.pt'}, written after every epoch; "
                "it does not exist."
            )
        if not resume and held:
            raise ConfigError(
                f"`out` must be a new or empty folder; {str(self.path)!r} already holds a run "
                f"({', '.join(held)}). Choose another --out, delete it, or continue it with "
                "--resume."
            )
        self.created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def write_text(self, name: str, text: str) -> None:
        """Write ``name`` atomically (a crash leaves the old file or the new, never half)."""
        atomic_write_bytes(self.path / name, lambda f: f.write(text.encode()))

    def discard_if_unused(self) -> None:
        """Remove the folder when this run created it and wrote nothing lasting into it.

        Called when a run fails before its first epoch, so that a validation error does
        not leave an empty or half-started folder behind.
        """
        if self.created and not (self.path / "resume.pt").exists():
            shutil.rmtree(self.path, ignore_errors=True)


def check_finished_run(run_dir: str | Path) -> Path:
    """Return ``run_dir`` as a path; raise :class:`DataError` unless it holds a finished run."""
    run_dir = Path(run_dir)
    for name in ("config.yaml", "model.json", "checkpoint.pt"):
        if not (run_dir / name).is_file():
            raise DataError(f"{run_dir}: not a finished run folder ({name} is missing).")
    return run_dir


def read_finished_run(
    run_dir: str | Path, missing_options: Mapping[str, Any] | None = None
) -> tuple[RunConfig, dict[str, dict], RunMeta]:
    """Read a finished run folder: its config, its selected states per setting, its meta.

    ``missing_options`` are the values of options that the folder's ``config.yaml`` lacks
    (what older runs meant). Raises :class:`DataError` naming the folder when it is not a
    finished run.
    """
    run_dir = check_finished_run(run_dir)
    values = flatten(yaml.safe_load((run_dir / "config.yaml").read_text()) or {})
    for key, old in (missing_options or {}).items():
        values.setdefault(key, old)
    states, saved = load_checkpoint(run_dir / "checkpoint.pt")
    if saved.get("partial"):
        raise DataError(f"{run_dir}: the run did not finish (its checkpoint is partial).")
    return config_from_dict(values), states, RunMeta.from_dict(saved)
