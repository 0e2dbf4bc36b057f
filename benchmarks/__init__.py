"""Benchmarks of mmalign (run as ``python -m benchmarks.<name>`` from the repository root)."""

__all__: list[str] = []
