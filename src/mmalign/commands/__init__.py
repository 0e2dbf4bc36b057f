"""Sub-commands of the ``mmalign`` command line, one module each (``register(subparsers)``)."""

__all__: list[str] = []
