"""Write the stored paper-protocol runs that ``test_paper_protocol_unchanged.py`` compares with.

Run from the repository root when a change is *meant* to alter the paper protocol's numbers
(say so in the commit): ``python tests/runs/stored/make_paper_protocol_runs.py``.
"""

import json
import sys
import tempfile
import warnings
from pathlib import Path

import mmalign
from mmalign.data.checks import DataQualityWarning

HERE = Path(__file__).parent
DATA = "synthetic:n_train=64,n_valid=24,n_test=24,min_length=5,max_length=10"
OPTIONS = dict(
    data=DATA, epochs=2, warmup_epochs=1, batch_size=16, d_model=8, n_heads=2, window=2,
    progress=False, p=0.5, threads=1, pair="t:v",
)  # fmt: skip
METHODS = ("mm-align", "lb", "ub")
#: Per method: the runs were stored with Algorithm 1, before MM-Align's default
#: ``lambda_imputed`` became 1 (docs/method.md, "Defaults")
METHOD_OPTIONS = {"mm-align": dict(lambda_imputed=0.0)}


def stored_run(method: str) -> dict:
    """Train ``method`` with :data:`OPTIONS`; return its test metrics and predictions."""
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        options = {**OPTIONS, **METHOD_OPTIONS.get(method, {})}
        result = mmalign.run(out=Path(tmp) / "r", method=method, log=lambda s: None, **options)
        rows = (Path(tmp) / "r" / "predictions.csv").read_text().splitlines()
    return {
        "test": {s: r.test for s, r in result.settings.items()},
        "predictions": rows,
    }


if __name__ == "__main__":
    out = {m: stored_run(m) for m in METHODS}
    path = HERE / "paper_protocol_runs.json"
    path.write_text(json.dumps(out, indent=1, default=float) + "\n")
    print(f"wrote {path}", file=sys.stderr)
