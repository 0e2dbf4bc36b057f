from mmalign.commands.run import _SHORT_HELP
from mmalign.train.config import flat_fields


def test_every_config_option_has_help_text():
    assert set(flat_fields()) <= set(_SHORT_HELP)
