"""The small complete grid of issue #5: six methods, two pairs, p in {0.1, 0.5}, 3 seeds.

Marked slow (a few minutes on 2 cores): run with ``python -m pytest -m slow``.
"""

import pytest

from mmalign.evaluate.tables import build_tables, render
from mmalign.experiments import ResultStore, expand_grid, run_grid

DATA = "synthetic:n_train=96,n_valid=48,n_test=48,min_length=5,max_length=12"
METHODS = ["lb", "ub", "mfm", "smil", "modal-trans", "mm-align"]
CONFIG = {"epochs": 2, "patience": 2, "d_model": 8, "n_heads": 2, "window": 2}


@pytest.mark.slow
def test_small_complete_grid_runs_resumes_and_reports(tmp_path):
    specs = expand_grid(DATA, METHODS, ["t:v", "a:t"], [0.1, 0.5], 3, CONFIG)
    # ub ignores p: 2 pairs x (5 methods x 2 p + 1) x 3 seeds
    assert len(specs) == 2 * (5 * 2 + 1) * 3
    store = ResultStore(tmp_path / "store.sqlite")
    result = run_grid(
        specs,
        store,
        engine="local",
        workers=2,
        threads_per_worker=1,
        out_dir=tmp_path / "grid",
        progress=False,
    )
    assert not result.failures and result.n_done == len(specs)
    again = run_grid(specs, store, engine="serial", out_dir=tmp_path / "grid", progress=False)
    assert again.n_done == 0 and again.n_skipped == len(specs)
    tables = build_tables(store.to_records())
    assert len(tables) == 2  # one per survival rate
    text = render(tables[0], "markdown")
    for label in ("LB", "UB", "MFM", "SMIL", "Modal-Trans", "MM-Align"):
        assert label in text
