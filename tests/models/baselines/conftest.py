"""Fixtures of the baseline tests: tiny configs, models built via the registry, short training."""

from dataclasses import replace

import pytest
import torch

from mmalign.config import ModelConfig, RunConfig, TrainConfig
from mmalign.models.method import PairDims
from mmalign.models.registry import get_method
from mmalign.train.loop import build_optimizers, train_step

TINY = RunConfig(
    model=ModelConfig(d_model=8, n_heads=2, n_layers=1, n_fusion_layers=1, dropout=0.0, ff_mult=2),
    train=TrainConfig(lr_main=3e-3, lr_fit=3e-3, batch_size=8, grad_clip=1.0),
)
DIMS = PairDims(source_dim=6, victim_dim=5, output_dim=1, task="regression")


def build(name, seed=0, dims=DIMS, **train):
    torch.manual_seed(seed)
    config = replace(TINY, train=replace(TINY.train, **train)) if train else TINY
    return get_method(name).build(dims, config)


def train_steps(model, batches, n_steps):
    """Run the real optimiser over ``batches`` [(batch, phase)] for ``n_steps`` rounds.

    Returns the 'backbone' loss of every round (summed over the batches).
    """
    optimizers = build_optimizers(
        model, {"*": TINY.train.lr_main, "fitter": TINY.train.lr_fit}, log=lambda _: None
    )
    model.train()
    history = []
    for _ in range(n_steps):
        total = 0.0
        for batch, phase in batches:
            losses = model.compute_losses(batch, phase)
            total += float(losses.step["backbone"].detach())
            train_step(model, losses, optimizers, tuple(optimizers), TINY.train.grad_clip)
        history.append(total)
    return history


@pytest.fixture
def build_method():
    """``build_method(name, seed=0, dims=DIMS, **train_overrides)`` -> model (dropout 0, d = 8)."""
    return build


@pytest.fixture
def run_steps():
    """``run_steps(model, [(batch, phase), ...], n_steps)`` -> loss per round."""
    return train_steps
