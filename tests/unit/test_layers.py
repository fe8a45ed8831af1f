"""The layers hold: Litestar only in the web code, SQL executed only in app/db, and no import cycle in app/."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent.parent / "app"
WEB_MODULES = ("app.api", "app.ui", "app.web.app", "app.web.lifespan")
SQL_METHODS = frozenset(
    {"execute", "executemany", "fetch", "fetchrow", "fetchval", "copy_records_to_table", "copy_from_query"}
    | {"copy_to_table", "copy_from_table", "cursor", "prepare"}
)


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def app_modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(APP.rglob("*.py")):
        yield module_name(path), ast.parse(path.read_text(), str(path))


def imports_of(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            # "from app.db import sql" imports the module app.platform.sql
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def in_package(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def litestar_outside_web(modules: dict[str, ast.Module]) -> list[str]:
    return sorted(
        name
        for name, tree in modules.items()
        if not in_package(name, WEB_MODULES) and any(in_package(i, ("litestar",)) for i in imports_of(tree))
    )


def sql_outside_db(modules: dict[str, ast.Module]) -> list[str]:
    offenders = []
    for name, tree in modules.items():
        if in_package(name, ("app.db",)):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_METHODS:
                offenders.append(f"{name}:{node.lineno} .{node.func.attr}()")
    return offenders


def import_cycle(modules: dict[str, ast.Module]) -> list[str] | None:
    graph = {name: sorted(i for i in imports_of(tree) if i in modules and i != name) for name, tree in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for child in graph[node]:
            if state.get(child) == 1:
                return [*path[path.index(child) :], child]
            if child not in state and (cycle := visit(child)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for name in graph:
        if name not in state and (cycle := visit(name)):
            return cycle
    return None


@pytest.fixture(scope="module")
def modules() -> dict[str, ast.Module]:
    return dict(app_modules())


def test_litestar_is_imported_only_by_the_web_layer(modules: dict[str, ast.Module]) -> None:
    assert litestar_outside_web(modules) == []


def test_sql_is_executed_only_in_app_db(modules: dict[str, ast.Module]) -> None:
    assert sql_outside_db(modules) == []


def test_no_import_cycle(modules: dict[str, ast.Module]) -> None:
    assert import_cycle(modules) is None


def test_every_module_opens_with_a_docstring(modules: dict[str, ast.Module]) -> None:
    assert [name for name, tree in modules.items() if not ast.get_docstring(tree)] == []


# The checks above must be able to fail: each is run on a small tree that breaks its rule.
def test_the_checks_catch_what_they_guard() -> None:
    broken = {
        "app.ingest.bad": ast.parse("import litestar\nasync def f(pool):\n    await pool.fetch('SELECT 1')\n"),
        "app.a": ast.parse("from app import b\n"),
        "app.b": ast.parse("import app.a\n"),
    }
    assert litestar_outside_web(broken) == ["app.ingest.bad"]
    assert sql_outside_db(broken) == ["app.ingest.bad:3 .fetch()"]
    assert import_cycle(broken) in (["app.a", "app.b", "app.a"], ["app.b", "app.a", "app.b"])
