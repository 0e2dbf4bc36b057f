"""data/formats."""

__all__: list[str] = []
