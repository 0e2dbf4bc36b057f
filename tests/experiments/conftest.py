"""Make ``grid_fakes`` importable by name (pytest runs with --import-mode=importlib).

Pool workers are spawned with this process's ``sys.path``, so they can unpickle the fake
runners too.
"""

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
