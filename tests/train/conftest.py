import pytest

TINY = "synthetic:n_train=96,n_valid=48,n_test=48,min_length=5,max_length=12"
TINY_CLS = TINY + ",task=classification"


@pytest.fixture
def tiny_config():
    from mmalign.config import RunConfig, apply_overrides

    def make(**overrides):
        base = {
            "data": TINY,
            "epochs": 3,
            "warmup_epochs": 1,
            "patience": 5,
            "batch_size": 16,
            "d_model": 8,
            "n_heads": 2,
            "window": 2,
            "progress": False,
            "p": 0.5,
        }
        base.update(overrides)
        return apply_overrides(RunConfig(), base)

    return make
