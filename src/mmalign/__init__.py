"""mmalign: MM-Align and baselines for multimodal sequences with a missing modality."""

__version__ = "0.1.0"

__all__ = ["__version__"]
