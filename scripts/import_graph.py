"""Module counts per package and the import arrows between packages of harness and adapters (parsed with ast).

Usage: python scripts/import_graph.py [ROOT]   (ROOT defaults to the repository; point it at an old checkout to
compare).  A package is ``harness`` (its top-level modules), ``harness.X`` for each subpackage, and ``adapters``;
an arrow A -> B counts the modules of A that import something of B (lazy imports inside functions included).
"""
from __future__ import annotations

import ast
import sys
from collections import Counter, defaultdict
from pathlib import Path


_PACKAGES: set[str] = set()


def _is_package(name: str) -> bool:
    return name in _PACKAGES


def package_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "adapters":
        return "adapters"
    if parts[0] != "harness":
        return None
    if len(parts) == 1:
        return "harness"
    # harness.X is a subpackage (its __init__ counts with it) or a top-level module of harness
    return f"harness.{parts[1]}" if _is_package(parts[1]) else "harness"


def main(root: Path) -> None:
    modules: dict[str, Path] = {}
    for top in ("harness", "adapters"):
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    subpackages = {m for m, p in modules.items() if p.name == "__init__.py"}
    _PACKAGES.clear()
    _PACKAGES.update(m.split(".")[1] for m in subpackages if m.startswith("harness.") and m.count(".") == 1)
    counts: Counter[str] = Counter()
    arrows: dict[tuple[str, str], set[str]] = defaultdict(set)
    for name, path in modules.items():
        src = package_of(name)
        assert src is not None
        if path.name != "__init__.py":
            counts[src] += 1
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for target in targets:
                if target in modules or target in subpackages:
                    dst = package_of(target)
                    if dst and dst != src:
                        arrows[(src, dst)].add(name)
    print("modules per package (without __init__):")
    for package, n in sorted(counts.items()):
        print(f"  {package:22s} {n:3d}")
    print(f"  {'total':22s} {sum(counts.values()):3d}")
    print("import arrows (importing package -> imported package: number of importing modules):")
    for (src, dst), who in sorted(arrows.items()):
        back = " (CYCLE)" if (dst, src) in arrows else ""
        print(f"  {src:22s} -> {dst:22s} {len(who):3d}{back}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
