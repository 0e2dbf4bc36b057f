"""``python -m mmalign``: the same command line as the ``mmalign`` script."""

import sys

from mmalign.cli import main

if __name__ == "__main__":
    sys.exit(main())
