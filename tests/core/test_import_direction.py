"""Arrows run one way: plugins (``adapters``) build on ``harness``, never the reverse, and the contracts in
``harness.core`` build on nothing above them.

Checked by parsing every module with ``ast`` (imports inside functions count too: a lazy import is still an
arrow), so the test holds without importing anything heavy.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "harness"

#: what each layer of harness may not import (prefixes of module names)
FORBIDDEN = {
    "harness": ("adapters",),
    "harness.core": ("adapters", "harness.run", "harness.publish", "harness.cli", "harness.io", "harness.datasets",
                     "harness.metrics", "harness.tasks", "harness.submissions", "harness.embedded",
                     "harness.file_eval"),
    "harness.labels": ("adapters", "harness.run", "harness.publish", "harness.cli", "harness.datasets",
                       "harness.embedded"),
    "harness.io": ("adapters", "harness.run", "harness.publish", "harness.cli"),
    "harness.embedded": ("adapters", "harness.datasets", "harness.run", "harness.publish", "harness.cli"),
    # publishing reads run records; running calls publishing (reports, leaderboard), never the reverse
    "harness.publish": ("adapters", "harness.run", "harness.cli"),
    "harness.run": ("adapters", "harness.cli"),
    # plugins build on the contracts; a model never imports a data generator
    "adapters": ("harness.embedded", "harness.cli"),
    "harness.datasets": ("adapters", "harness.run", "harness.publish", "harness.cli"),
    "harness.metrics": ("adapters", "harness.run", "harness.publish", "harness.cli"),
    "harness.submissions": ("adapters", "harness.run", "harness.publish", "harness.cli"),
    "harness.file_eval": ("adapters", "harness.run", "harness.publish", "harness.cli"),
    "harness.tasks": ("adapters", "harness.run", "harness.publish", "harness.cli"),
}

#: the few downward exceptions, each with its reason: (importing file, imported module)
ALLOWED = {
    # a Sample decodes its image on first use; imageio is a leaf (Pillow + harness.core.errors)
    ("harness/core/structures.py", "harness.io.imageio"),
    ("harness/core/structures.py", "harness.io.imageio.read_rgb"),
    # RunRecord.dump writes through the one atomic JSON writer (jsonio: stdlib + orjson + harness.core.errors)
    ("harness/core/run_record.py", "harness.io.jsonio"),
    ("harness/core/run_record.py", "harness.io.jsonio.atomic_write_json"),
}


def module_name(path: Path, repo: Path) -> str:
    parts = list(path.relative_to(repo).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, repo: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement in the file, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = module_name(path, repo)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # ``from harness import run`` imports the module harness.run
            found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
    return sorted(found)


def violations(layer: str, forbidden: tuple[str, ...], repo: Path = REPO) -> list[str]:
    root = repo.joinpath(*layer.split("."))
    bad = []
    for path in sorted(root.rglob("*.py")):
        for line, target in imported_modules(path, repo):
            where = path.relative_to(repo).as_posix()
            if (where, target) in ALLOWED:
                continue
            if any(target == f or target.startswith(f + ".") for f in forbidden):
                bad.append(f"{where}:{line} imports {target}")
    return bad


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downwards(layer: str) -> None:
    assert violations(layer, FORBIDDEN[layer]) == []


def test_the_checker_sees_lazy_relative_and_from_imports(tmp_path: Path) -> None:
    """A checker that misses an import form would pass vacuously: plant each form and expect each caught."""
    fake = tmp_path / "harness" / "core"
    fake.mkdir(parents=True)
    (tmp_path / "harness" / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "bad.py").write_text(
        "import adapters.torchvision\n"
        "from harness import run\n"
        "def f():\n    from ..publish import site\n"
        "from adapters import ADAPTERS\n"
    )
    found = violations("harness.core", FORBIDDEN["harness.core"], tmp_path)
    assert found == [
        "harness/core/bad.py:1 imports adapters.torchvision",
        "harness/core/bad.py:2 imports harness.run",
        "harness/core/bad.py:4 imports harness.publish",
        "harness/core/bad.py:4 imports harness.publish.site",
        "harness/core/bad.py:5 imports adapters",
        "harness/core/bad.py:5 imports adapters.ADAPTERS",
    ]
