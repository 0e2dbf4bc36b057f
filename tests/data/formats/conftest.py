import importlib.util
import warnings
from pathlib import Path

import pytest

# the suite runs with --import-mode=importlib: load the writer module by path
_SPEC = importlib.util.spec_from_file_location(
    "mmalign_test_fmt_writers", Path(__file__).with_name("fmt_writers.py")
)
_WRITERS = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_WRITERS)


@pytest.fixture
def fmt():
    """The fixture-file writers of fmt_writers.py (layouts of FORMATS.md)."""
    return _WRITERS


@pytest.fixture
def quiet():
    """Silence the (tested elsewhere) cleaning warning for tests about other behaviour."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield
