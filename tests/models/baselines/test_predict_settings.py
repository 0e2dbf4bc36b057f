"""Validation encodes and imputes once for both settings and gives what predict gives."""

import pytest
import torch

from mmalign.models.registry import method_names


@pytest.mark.parametrize("method", method_names())
def test_predict_settings_equals_predict_per_pattern(batch_factory, build_method, method):
    model = build_method(method).eval()
    batch = batch_factory(b=5, has_victim=True, seed=3)
    patterns = {
        "A": torch.zeros(5, dtype=torch.bool),
        "B": torch.tensor([True, False, True, False, False]),
        "all": torch.ones(5, dtype=torch.bool),
    }
    if method == "ub":  # the upper bound is always given the victim
        patterns = {"all": patterns["all"], "again": patterns["all"]}
    with torch.no_grad():
        together = model.predict_settings(batch, patterns)
        for name, has in patterns.items():
            batch.has_victim = has
            alone = model.predict(batch)
            batch.has_victim = torch.ones(5, dtype=torch.bool)
            torch.testing.assert_close(together[name], alone, atol=1e-5, rtol=1e-5)
    assert set(together) == set(patterns)


def test_validation_imputes_once_per_batch(batch_factory, build_method, monkeypatch):
    model = build_method("mm-align").eval()
    calls = []
    original = model.impute_victim
    monkeypatch.setattr(model, "impute_victim", lambda *a: calls.append(1) or original(*a))
    batch = batch_factory(b=4, seed=1)
    with torch.no_grad():
        model.predict_settings(
            batch, {"A": torch.zeros(4, dtype=torch.bool), "B": batch.has_victim}
        )
    assert len(calls) == 1
