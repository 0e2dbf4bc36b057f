"""The paper's pair protocol gives the numbers stored before the random-missing protocol.

``stored/paper_protocol_runs.json`` was written by ``stored/make_paper_protocol_runs.py``
before issue 12 added missingness masks, frame drops and three-modality methods; the same
seeds must give the same test metrics and predictions (to float round-off between machines).
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "stored"))
from make_paper_protocol_runs import METHODS, stored_run  # noqa: E402

STORED = json.loads((Path(__file__).parent / "stored" / "paper_protocol_runs.json").read_text())


def _table(rows: list[str]) -> tuple[list[tuple[str, ...]], np.ndarray]:
    """Split prediction rows into their key columns and their numbers (label, prediction)."""
    cells = [r.split(",") for r in rows[1:]]
    return [tuple(c[:3]) for c in cells], np.array([[float(x) for x in c[3:]] for c in cells])


@pytest.mark.parametrize("method", METHODS)
def test_same_seeds_give_the_stored_numbers(method):
    now, before = stored_run(method), STORED[method]
    assert now["predictions"][0] == before["predictions"][0]
    keys_now, values_now = _table(now["predictions"])
    keys_before, values_before = _table(before["predictions"])
    assert keys_now == keys_before
    np.testing.assert_allclose(values_now, values_before, rtol=1e-4, atol=1e-5)
    assert set(now["test"]) == set(before["test"])
    for setting, metrics in before["test"].items():
        for name, value in metrics.items():
            assert now["test"][setting][name] == pytest.approx(value, rel=1e-4, abs=1e-5), name
