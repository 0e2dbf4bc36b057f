"""House-style checks that are cheap to automate (shared/STYLE.md)."""

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import mmalign

SRC = Path(mmalign.__file__).parent


def modules_under(package: str):
    pkg = importlib.import_module(package)
    return [m.name for m in pkgutil.walk_packages(pkg.__path__, prefix=package + ".")]


@pytest.mark.parametrize("name", modules_under("mmalign.ot") + modules_under("mmalign.models"))
def test_algorithm_modules_name_their_source_with_a_year(name):
    module = importlib.import_module(name)
    if name.endswith("__init__") or module.__file__.endswith("__init__.py"):
        return
    assert module.__doc__ and re.search(r"\b(19|20)\d\d\b", module.__doc__), name


@pytest.mark.parametrize(
    "init", sorted(SRC.rglob("__init__.py")), ids=lambda p: str(p.relative_to(SRC))
)
def test_every_package_declares_all(init):
    tree = ast.parse(init.read_text())
    names = {
        t.id
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Name)
    }
    assert "__all__" in names


def test_no_assert_and_no_star_imports_in_src():
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            assert not isinstance(node, ast.Assert), f"assert in {path}:{node.lineno}"
            if isinstance(node, ast.ImportFrom):
                assert all(a.name != "*" for a in node.names), f"import * in {path}"


def test_parameters_are_never_selected_by_position():
    for path in SRC.rglob("*.py"):
        assert "parameters())[" not in path.read_text(), path
