"""evaluate."""

__all__: list[str] = []
