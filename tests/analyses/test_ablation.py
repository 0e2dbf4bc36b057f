import math
import re
from dataclasses import fields

import pytest

from mmalign.analyses.ablation import (
    _DEFAULTS,
    ABLATION_VARIANTS,
    VARIANT_LABELS,
    ablation_configs,
    ablation_records,
    ablation_tables,
    expand_ablation,
    variant_of_config,
)
from mmalign.config import ADLConfig, TrainConfig, config_from_dict
from mmalign.evaluate.tables import render
from mmalign.validation import ConfigError


def test_defaults_follow_run_config():
    defaults = {f.name: f.default for cls in (ADLConfig, TrainConfig) for f in fields(cls)}
    assert _DEFAULTS == {k: defaults[k] for k in _DEFAULTS}


def test_variant_of_config_names_each_ablation():
    assert variant_of_config({"epochs": 3, "lambda_con": 0.05}) == "full"
    assert variant_of_config({"lambda_con": 0.0}) == "no-contrastive"
    assert variant_of_config({"lambda_con": "0"}) == "no-contrastive"
    assert variant_of_config({"train_fitter": False}) == "no-fit"
    assert variant_of_config({"single_iteration": "no"}) == "no-si"
    assert variant_of_config({"lambda_con": 0, "train_fitter": False}) == "no-contrastive+no-fit"


def test_each_variant_is_recovered_from_its_own_config():
    for name, overrides in ablation_configs({"epochs": 2}).items():
        assert variant_of_config(overrides) == name
        config_from_dict(dict(overrides))  # every override is a valid RunConfig option


def test_ablation_configs_errors():
    with pytest.raises(ConfigError, match=r"`variant` must be one of .*'no-si'.*; got 'no-ot'"):
        ablation_configs({}, ["full", "no-ot"])
    with pytest.raises(ConfigError, match="must not ablate MM-Align itself.*'no-fit'"):
        ablation_configs({"train_fitter": False})
    with pytest.raises(ConfigError, match="at least one"):
        ablation_configs({}, [])


def test_expand_ablation_distinct_fingerprints_and_order():
    specs = expand_ablation("synthetic:n_train=64", "t:v,a:t", [0.1], [0, 3], {"epochs": 2})
    assert len(specs) == 4 * 2 * 2
    assert len({s.fingerprint() for s in specs}) == len(specs)
    assert [variant_of_config(s.config) for s in specs[::4]] == list(ABLATION_VARIANTS)
    assert {s.method for s in specs} == {"mm-align"}
    assert specs[0].config == {"epochs": 2}  # full shares the benchmark's config (and run)


def _row(variant, seed, mae, acc, p=0.1, method="mm-align", source="text", victim="vision"):
    config = {"epochs": 2, **ABLATION_VARIANTS[variant]}
    block = {"test": {"mae": mae, "acc2_nonzero": acc}, "valid": {"mae": mae}, "best_epoch": 1}
    return {
        "fingerprint": f"{variant}{seed}{p}",
        "data": "synthetic",
        "data_id": "synthetic",
        "method": method,
        "source": source,
        "victim": victim,
        "p": p,
        "seed": seed,
        "config": config,
        "result": {"A": block, "B": block, "meta": {}},
    }


def test_ablation_records_label_rows_and_skip_other_methods():
    rows = [_row("no-si", 0, 1.0, 0.7), _row("full", 0, 1.0, 0.7, method="lb")]
    records = ablation_records(rows)
    assert {r["method"] for r in records} == {"w/o SI"}
    assert {r["variant"] for r in records} == {"no-si"}
    # 2 settings x (2 test + 1 valid metrics); best_epoch is not a metric
    assert len(records) == 6


def test_ablation_table_cells_order_and_best():
    rows = []
    # hand-chosen maes per seed: full (1.0, 1.2), no-contrastive (1.1, 1.3), no-fit (1.5, 1.7),
    # no-si (0.9, 1.1) -> means 1.1, 1.2, 1.6, 1.0; std of each pair = 0.1414
    for variant, maes in {
        "no-fit": (1.5, 1.7),
        "full": (1.0, 1.2),
        "no-si": (0.9, 1.1),
        "no-contrastive": (1.1, 1.3),
    }.items():
        for seed, mae in enumerate(maes):
            rows.append(_row(variant, seed, mae, 0.8 - 0.1 * mae))
    rows.append(_row("full", 0, 2.0, 0.5, p=0.5))
    tables = ablation_tables(rows)
    assert len(tables) == 2  # one per p
    table = tables[0]
    assert table.methods == tuple(VARIANT_LABELS[v] for v in ABLATION_VARIANTS)
    j = next(i for i, c in enumerate(table.columns) if c.group == "A" and c.metric == "mae")
    cell = table.cells[("w/o L_fit", j)]
    assert math.isclose(cell.mean, 1.6) and math.isclose(cell.std, math.sqrt(0.02))
    assert cell.n == 2 and not cell.best
    assert table.cells[("w/o SI", j)].best
    text = render(table, "markdown")
    assert text.index("| MM-Align |") < text.index("| w/o L_con |") < text.index("| w/o SI |")
    assert "**1.000 ± 0.141**" in text and "MM-Align ablation" in text


def test_ablation_tables_need_mm_align_rows():
    with pytest.raises(ConfigError, match="finished mm-align runs"):
        ablation_tables([_row("full", 0, 1.0, 0.7, method="lb")])


def test_ablation_tables_refuse_two_runs_of_one_variant_and_seed():
    # two "full" runs of one seed that differ in another option would be averaged together
    other = {**_row("full", 0, 1.4, 0.6), "fingerprint": "full-lambda-imputed-0"}
    other["config"] = {**other["config"], "lambda_imputed": 0.0}
    rows = [_row("full", 0, 1.0, 0.7), _row("full", 1, 1.2, 0.7), other]
    message = "variant 'full' has two (full00.1 and full-lambda-imputed-0) for text->vision"
    with pytest.raises(ConfigError, match=re.escape(message)):
        ablation_tables(rows)
    assert ablation_tables(rows[:2])  # one run per cell: fine
