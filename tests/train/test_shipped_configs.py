from pathlib import Path

import pytest

from mmalign.config import load_config

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads_and_validates(path):
    load_config(path).validate()


def test_paper_configs_exist():
    assert {"mosi.yaml", "mosei.yaml", "meld.yaml"} <= {p.name for p in CONFIGS}
