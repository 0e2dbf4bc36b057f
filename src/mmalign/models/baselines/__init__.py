"""models/baselines."""

__all__: list[str] = []
