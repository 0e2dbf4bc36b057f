"""Grid throughput of this tree against an earlier commit's engine, on the same small grid.

Run ``python -m benchmarks.grid_throughput [--baseline REV] [--seeds 1] [--workers 2] [--keep DIR]``
from the repository root (about 30 minutes with the defaults on a 2-core machine). ``REV``
(default 434d4e6, the main branch when issue 13 was filed) is checked out into a temporary
git worktree. The same ``mmalign benchmark`` grid (every method, T->V, p in {0.1, 0.5},
default budget, the built-in synthetic data, which both trees generate identically) then runs
once with the baseline's code and once with this tree's, one after the other, each into a
fresh results store, ``--workers`` runs at a time with ``--threads-per-worker`` threads each.

It prints, for each tree, the grid's wall time, the load average before and after, and each
method's mean run time from its store; then the throughput ratio (baseline grid wall time /
this tree's). Each tree runs its own default options: the models are the same methods, but
defaults that changed between the commits (docs/method.md, "Defaults") change the work per
run too, and the table says so. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks._worktree import REPOSITORY, worktree
from mmalign.experiments.store import ResultStore

__all__ = ["main"]

#: The main branch when issue 13 ("5x the official code per epoch ... several runs per
#: process") was filed: the last commit before the Modal-Trans key/value cache.
ISSUE_13_BASELINE = "434d4e6"

_CLI = "import sys; from mmalign.cli import main; sys.exit(main(sys.argv[1:]))"


def _run_grid(src: Path, store: Path, args: argparse.Namespace) -> tuple[float, float, float]:
    """Run the grid with the code under `src`; return (wall s, load before, load after)."""
    command = [
        sys.executable, "-c", _CLI, "benchmark", "--data", "synthetic",
        "--methods", args.methods, "--pairs", args.pairs, "--ps", args.ps,
        "--seeds", str(args.seeds), "--workers", str(args.workers),
        "--threads-per-worker", str(args.threads_per_worker),
        "--store", str(store), "--no-progress",
    ] + [flag for option in args.set for flag in ("--set", option)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(src)}
    load = os.getloadavg()[0]
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=store.parent, check=True, capture_output=True)
    return time.perf_counter() - start, load, os.getloadavg()[0]


def _git(*command: str) -> str:
    done = subprocess.run(["git", "-C", str(REPOSITORY), *command], capture_output=True, text=True)
    return done.stdout.strip()


def _run_times(store: Path) -> dict[str, list[float]]:
    walls: dict[str, list[float]] = defaultdict(list)
    for row in ResultStore(store).rows():
        walls[row["method"]].append(float(row["wall_s"]))
    return walls


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=ISSUE_13_BASELINE, help="git revision")
    parser.add_argument("--methods", default="lb,ub,mfm,smil,modal-trans,mm-align")
    parser.add_argument("--pairs", default="t:v")
    parser.add_argument("--ps", default="0.1,0.5")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="an option for every run of both trees (e.g. epochs=1 for a quick check)",
    )  # fmt: skip
    parser.add_argument(
        "--keep", metavar="DIR",
        help="copy both results stores there (baseline.sqlite, this_tree.sqlite), e.g. for "
        "`benchmarks.grid_estimate --store DIR/this_tree.sqlite`; default: discarded",
    )  # fmt: skip
    args = parser.parse_args(argv)
    grids: dict[str, tuple[float, float, float]] = {}
    runs: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, worktree(args.baseline) as tree:
        for label, src in (("baseline", tree / "src"), ("this tree", REPOSITORY / "src")):
            folder = Path(tmp) / label.replace(" ", "_")
            folder.mkdir()
            store = folder / "grid.sqlite"
            grids[label] = _run_grid(src, store, args)
            runs[label] = _run_times(store)
            print(f"{label}: grid done in {grids[label][0]:.0f} s", flush=True)
            if args.keep:
                Path(args.keep).mkdir(parents=True, exist_ok=True)
                shutil.copy2(store, Path(args.keep) / f"{folder.name}.sqlite")
    head = _git("rev-parse", "--short", "HEAD")
    if _git("status", "--porcelain", "--untracked-files=no"):
        head += " with uncommitted changes"
    print(
        f"\ngrid: {args.methods} | pairs {args.pairs} | p {args.ps} | {args.seeds} seed(s) | "
        f"{args.workers} workers x {args.threads_per_worker} thread(s) | default options of "
        f"each tree, set: {args.set or 'none'} | baseline {args.baseline}, this tree {head}"
    )
    print("\n| tree | runs | grid wall s | load before | load after | runs per hour |")
    print("|---|---|---|---|---|---|")
    for label, (wall, before, after) in grids.items():
        count = sum(len(v) for v in runs[label].values())
        print(
            f"| {label} | {count} | {wall:.0f} | {before:.2f} | {after:.2f} | "
            f"{count * 3600 / wall:.0f} |"
        )
    print("\n| method | baseline mean run s | this tree mean run s | baseline / this |")
    print("|---|---|---|---|")
    for name in args.methods.split(","):
        old, new = runs["baseline"].get(name), runs["this tree"].get(name)
        if not old or not new:
            continue
        print(f"| {name} | {np.mean(old):.1f} | {np.mean(new):.1f} | "
              f"{np.mean(old) / np.mean(new):.2f}x |")  # fmt: skip
    ratio = grids["baseline"][0] / grids["this tree"][0]
    print(f"\ngrid throughput, this tree / baseline: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
