"""The paper's pair protocol gives the numbers stored for it, now and before issue 12.

Two stores, both written by ``stored/make_paper_protocol_runs.py``:

- ``paper_protocol_runs_torch_modules.json`` was written at e090cc9, before issue 12 added
  missingness masks, frame drops and three-modality methods, and before bd55752 replaced the
  backbone's ``nn.MultiheadAttention`` and ``nn.Dropout`` by faster drop-ins that draw another
  dropout stream. With those torch modules swapped back in, today's code must reproduce it:
  neither change altered the paper protocol beyond the dropout stream.
- ``paper_protocol_runs.json`` is the same runs with today's modules (regenerated at bd55752).

Same test metrics and predictions, to float round-off between machines.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "stored"))
from make_paper_protocol_runs import METHODS, stored_run  # noqa: E402

HERE = Path(__file__).parent / "stored"
STORED = json.loads((HERE / "paper_protocol_runs.json").read_text())
BEFORE = json.loads((HERE / "paper_protocol_runs_torch_modules.json").read_text())


def _table(rows: list[str]) -> tuple[list[tuple[str, ...]], np.ndarray]:
    """Split prediction rows into their key columns and their numbers (label, prediction)."""
    cells = [r.split(",") for r in rows[1:]]
    return [tuple(c[:3]) for c in cells], np.array([[float(x) for x in c[3:]] for c in cells])


def _assert_same(now: dict, before: dict) -> None:
    assert now["predictions"][0] == before["predictions"][0]
    keys_now, values_now = _table(now["predictions"])
    keys_before, values_before = _table(before["predictions"])
    assert keys_now == keys_before
    np.testing.assert_allclose(values_now, values_before, rtol=1e-4, atol=1e-5)
    assert set(now["test"]) == set(before["test"])
    for setting, metrics in before["test"].items():
        for name, value in metrics.items():
            assert now["test"][setting][name] == pytest.approx(value, rel=1e-4, abs=1e-5), name


@pytest.mark.parametrize("method", METHODS)
def test_same_seeds_give_the_stored_numbers(method):
    _assert_same(stored_run(method), STORED[method])


@pytest.mark.parametrize("method", METHODS)
def test_with_the_torch_modules_the_numbers_from_before_issue_12_come_back(method, torch_modules):
    _assert_same(stored_run(method), BEFORE[method])
