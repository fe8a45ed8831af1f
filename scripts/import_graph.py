"""Counts app/'s import graph: modules, `from app... import` edges, links between folders, folders importing
each other, and the longest chain of modules and of folders. ``python scripts/import_graph.py [checkout]``."""

from __future__ import annotations

import ast
import collections
import functools
import sys
from pathlib import Path

PACKAGE_ROOT = "(app/__init__: the version)"  # imports nothing; a folder of its own, or it would join every cycle
LOOSE = "(loose in app/)"


def count_graph(checkout: Path) -> str:
    root = checkout / "app"
    modules: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(checkout).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    edges: dict[str, set[str]] = collections.defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "app":
                for target in [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]:
                    if target in modules and target != name:
                        edges[name].add(target)

    def folder(module: str) -> str:
        parts = module.split(".")
        if module == "app":
            return PACKAGE_ROOT
        return parts[1] if len(parts) > 2 or (root / parts[1]).is_dir() else LOOSE

    links = collections.Counter((folder(a), folder(b)) for a, bs in edges.items() for b in bs if folder(a) != folder(b))
    mutual = sorted({tuple(sorted(pair)) for pair in links if (pair[1], pair[0]) in links})
    by_folder: dict[str, set[str]] = collections.defaultdict(set)
    for a, b in links:
        by_folder[a].add(b)

    @functools.cache
    def module_chain(module: str) -> int:
        return 1 + max((module_chain(b) for b in edges.get(module, ())), default=0)

    def folder_chain(name: str, seen: tuple[str, ...] = ()) -> float:
        if name in seen:
            return float("inf")  # a cycle of folders: no layering
        return 1 + max((folder_chain(b, (*seen, name)) for b in by_folder.get(name, ())), default=0)

    loose = sum(1 for module in modules if folder(module) == LOOSE)
    chain = max(folder_chain(name) for name in by_folder)
    return "\n".join(
        [
            f"modules {len(modules)} ({loose} loose in app/), import edges {sum(map(len, edges.values()))}",
            f"links between folders {sum(links.values())} over {len(links)} pairs of folders",
            f"pairs of folders importing each other {len(mutual)}: {mutual}",
            f"longest import chain {max(map(module_chain, modules))} modules; longest chain of folders "
            + ("none (the folders import in a cycle)" if chain == float("inf") else f"{chain:.0f}"),
        ]
    )


if __name__ == "__main__":
    print(count_graph(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
