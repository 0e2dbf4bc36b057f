"""Training: configuration, the one training loop, checkpoints, and the run entry point."""

from mmalign.train.config import ADLConfig, ModelConfig, RunConfig, TrainConfig, load_config

__all__ = ["ADLConfig", "ModelConfig", "RunConfig", "TrainConfig", "load_config"]
