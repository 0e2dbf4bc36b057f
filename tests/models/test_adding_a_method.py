"""The worked example of docs/architecture.md: a new method is one module and one registry entry."""

import re
import warnings
from pathlib import Path

import torch

import mmalign
from mmalign.data.checks import DataQualityWarning
from mmalign.models import registry
from mmalign.models.method import Losses, MissingModalityModel

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def _example_class():
    """The MeanFill class exactly as the doc shows it (its first python block)."""
    block = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    source = next(b for b in block if "class MeanFill" in b)
    namespace = {"torch": torch, "Losses": Losses, "MissingModalityModel": MissingModalityModel}
    exec(compile(source, str(DOC), "exec"), namespace)  # noqa: S102 - our own doc
    return namespace["MeanFill"]


def test_the_documented_method_trains_and_loads(tmp_path, monkeypatch):
    mean_fill = _example_class()

    def build(dims, config):
        return mean_fill(registry.build_backbone(dims, config), dims.task)

    spec = registry.MethodSpec("mean-fill", "Mean-fill", build, "victim = mean source step")
    monkeypatch.setitem(registry.METHODS, "mean-fill", spec)
    data = "synthetic:n_train=48,n_valid=16,n_test=16,min_length=4,max_length=8"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        result = mmalign.run(
            data=data, method="mean-fill", epochs=1, d_model=8, n_heads=2, batch_size=16,
            p=0.5, progress=False, out=tmp_path / "r", log=lambda s: None,
        )  # fmt: skip
    assert result.meta.method == "mean-fill" and set(result.settings) == {"A", "B"}
    model = mmalign.load_run(tmp_path / "r")
    assert model.predict(mmalign.load_dataset(data).splits["test"]).shape == (16, 1)
