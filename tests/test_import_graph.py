"""Imports run one way: base < data/ot < models < evaluate < train < runs < experiments < analyses < commands.

Every ``import mmalign.X`` and ``from mmalign.X import ...`` in the package counts, including
those inside functions (a lazy import is still a dependency).
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mmalign"

# package (first component under mmalign) -> layer; a module may import its own layer or lower
LAYERS = {
    "validation": 0,
    "options": 1,
    "config": 2,
    "data": 3,
    "ot": 3,
    "models": 4,
    "evaluate": 5,
    "train": 6,
    "runs": 7,
    "experiments": 8,
    "analyses": 9,
    "commands": 10,
    "cli": 11,
    "__main__": 12,
    "__init__": 11,
}


def _component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _target_layer(module: str) -> int:
    # `from mmalign import __version__`: every submodule loads mmalign/__init__.py anyway, and
    # it imports nothing at import time (its public names are resolved lazily)
    return -1 if module == "mmalign" else LAYERS[_component(module)]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("mmalign.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "mmalign":  # a subpackage, or a name of mmalign/__init__.py
                found += [
                    (node.lineno, f"mmalign.{a.name}" if a.name in LAYERS else "mmalign")
                    for a in node.names
                ]
            elif node.module.startswith("mmalign."):
                found.append((node.lineno, node.module))
    return found


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        name = rel.parts[0].removesuffix(".py")
        yield path, name


def test_every_package_has_a_layer():
    assert {name for _, name in _modules()} <= set(LAYERS)


@pytest.mark.parametrize("path,own", list(_modules()), ids=lambda x: str(x)[-40:])
def test_no_import_runs_upward(path, own):
    upward = [
        f"{path.relative_to(SRC)}:{line} imports {target}"
        for line, target in _imports(path)
        if _target_layer(target) > LAYERS[own]
    ]
    assert not upward, "\n".join(upward)


def test_the_checker_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from mmalign.runs import run\n")
    assert _imports(bad) == [(2, "mmalign.runs")]
    assert _target_layer("mmalign.runs") > LAYERS["models"]
