"""Progress display of a running grid on stderr: runs done / running / left and time left.

The bar's estimate of the time left is tqdm's: the wall time per finished run so far
(averaged over the whole grid, so it already includes the parallelism of the workers) times
the runs left. Since the bar is off with ``--no-progress`` or a log file instead of a
terminal, the first finished run also prints one line with its time and a rough estimate:
that time x the runs left / the workers.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

__all__ = ["GridProgress", "format_duration"]


def format_duration(seconds: float) -> str:
    """Return a short human-readable duration.

    >>> format_duration(4.25), format_duration(200), format_duration(7530)
    ('4.2 s', '3 min 20 s', '2 h 05 min')
    """
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f} s"
    total = int(round(seconds))
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    return f"{total // 3600} h {total % 3600 // 60:02d} min"


class GridProgress:
    """A tqdm bar over the runs of a grid that still have to run.

    Parameters
    ----------
    total : int
        Runs to execute (already finished runs are not counted).
    skipped : int, default 0
        Runs skipped because the store has them; shown in the description.
    workers : int, default 1
        Concurrent runs at most, for the "running" count.
    file : text stream, default sys.stderr
    disable : bool, default False
        No output at all (the counters still work).

    Examples
    --------
    >>> import io
    >>> bar = GridProgress(3, skipped=1, workers=2, file=io.StringIO())
    >>> bar.started(); bar.started(); bar.finished(ok=True)
    >>> bar.done, bar.running, bar.left, bar.failed
    (1, 1, 2, 0)
    >>> bar.close()

    The first run finished with its ``wall_s`` prints the estimate line, bar or no bar:

    >>> out = io.StringIO()
    >>> bar = GridProgress(5, workers=2, file=out, disable=True)
    >>> bar.started(2); bar.finished(ok=True, wall_s=30.0); bar.finished(ok=True, wall_s=31.0)
    >>> print(out.getvalue().strip())
    mmalign grid: first run took 30.0 s; estimated 1 min 00 s for the 4 left with 2 workers
    """

    def __init__(
        self,
        total: int,
        *,
        skipped: int = 0,
        workers: int = 1,
        file: TextIO | None = None,
        disable: bool = False,
    ) -> None:
        self.total = int(total)
        self.skipped = int(skipped)
        self.workers = max(1, int(workers))
        self.done = 0
        self.failed = 0
        self._started = 0
        self._estimated = False
        self._file = file if file is not None else sys.stderr
        self._bar = tqdm(
            total=self.total,
            desc=f"grid ({self.skipped} already done)" if self.skipped else "grid",
            unit="run",
            file=self._file,
            disable=disable,
            dynamic_ncols=True,
            smoothing=0.0,  # average over all finished runs: run times vary a lot by method
        )
        self._refresh()

    @property
    def running(self) -> int:
        """Runs started and not yet finished."""
        return self._started - self.done - self.failed

    @property
    def left(self) -> int:
        """Runs not finished yet (running ones included)."""
        return self.total - self.done - self.failed

    def started(self, n: int = 1) -> None:
        """Count ``n`` runs as started."""
        self._started += n
        self._refresh()

    def finished(self, *, ok: bool, wall_s: float | None = None) -> None:
        """Count one run as finished (``ok=False``: failed).

        ``wall_s``, the seconds the run took: the first successful run's gives the estimate
        line (a failed run is no measure of the others).
        """
        if ok:
            self.done += 1
        else:
            self.failed += 1
        if self._started < self.done + self.failed:
            self._started = self.done + self.failed
        self._bar.update(1)
        self._refresh()
        if ok and wall_s is not None and not self._estimated:
            self._estimated = True
            if self.left:
                workers = min(self.workers, self.left)
                self.write(
                    f"mmalign grid: first run took {format_duration(wall_s)}; estimated "
                    f"{format_duration(wall_s * self.left / workers)} for the {self.left} "
                    f"left with {workers} workers"
                )

    def write(self, message: str) -> None:
        """Print a line above the bar (failures, notes)."""
        tqdm.write(message, file=self._file)

    def _refresh(self) -> None:
        postfix = {"running": self.running, "left": self.left}
        if self.failed:
            postfix["failed"] = self.failed
        self._bar.set_postfix(postfix, refresh=True)

    def close(self) -> None:
        """Close the bar."""
        self._bar.close()

    def __enter__(self) -> "GridProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
