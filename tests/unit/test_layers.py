"""The layers hold, per package: the model imports nothing, the platform only the model, each feature only those
below it; web, mqtt and cli call features but never a store; SQL runs only in stores; Litestar only in web."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent.parent / "app"
# Bottom to top. A package may import itself and any package before it in this order, never one after it.
LAYERS = ("model", "platform", "auth", "rollups", "telemetry", "alerts", "fleet", "mqtt", "web", "cli")
FEATURES = ("auth", "rollups", "telemetry", "alerts", "fleet")
CALLERS = ("mqtt", "web", "cli")  # they call features' public functions, never a store
# Platform modules that talk to PostgreSQL themselves: the migration runner and the LISTEN connection.
SQL_IN_PLATFORM = ("app.platform.migrations", "app.platform.notices", "app.platform.pool")
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
            # "from app.platform import sql" imports the module app.platform.sql
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def package_of(module: str) -> str | None:
    """The layer a module belongs to: app.telemetry.store -> "telemetry"; app itself (its version) -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "app" and parts[1] in LAYERS else None


def is_store(module: str) -> bool:
    return module.split(".")[-1] == "store"


def upward_imports(modules: dict[str, ast.Module]) -> list[str]:
    """Imports of a package above the importer's, or beside it among the features' order."""
    offenders = []
    for name, tree in modules.items():
        own = package_of(name)
        if own is None:
            continue
        for target in sorted(imports_of(tree)):
            other = package_of(target)
            if other is not None and target in modules and LAYERS.index(other) > LAYERS.index(own):
                offenders.append(f"{name} -> {target}")
    return offenders


def stores_called_from_outside(modules: dict[str, ast.Module]) -> list[str]:
    """A store imported by web, mqtt or cli, or by another feature than its own."""
    offenders = []
    for name, tree in modules.items():
        own = package_of(name)
        for target in sorted(imports_of(tree)):
            if target in modules and is_store(target) and package_of(target) != own:
                offenders.append(f"{name} -> {target}")
    return offenders


def sql_outside_stores(modules: dict[str, ast.Module]) -> list[str]:
    offenders = []
    for name, tree in modules.items():
        if is_store(name) or name in SQL_IN_PLATFORM:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_METHODS:
                offenders.append(f"{name}:{node.lineno} .{node.func.attr}()")
    return offenders


def litestar_outside_web(modules: dict[str, ast.Module]) -> list[str]:
    return sorted(
        name
        for name, tree in modules.items()
        if package_of(name) != "web" and any(i == "litestar" or i.startswith("litestar.") for i in imports_of(tree))
    )


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


def test_every_module_is_in_a_layer(modules: dict[str, ast.Module]) -> None:
    assert [name for name in modules if package_of(name) is None and name not in ("app", "app.__main__")] == []


def test_no_package_imports_one_above_it(modules: dict[str, ast.Module]) -> None:
    assert upward_imports(modules) == []


def test_only_a_feature_itself_uses_its_store(modules: dict[str, ast.Module]) -> None:
    assert stores_called_from_outside(modules) == []


def test_sql_is_executed_only_in_stores(modules: dict[str, ast.Module]) -> None:
    assert sql_outside_stores(modules) == []


def test_litestar_is_imported_only_by_the_web_layer(modules: dict[str, ast.Module]) -> None:
    assert litestar_outside_web(modules) == []


def test_no_import_cycle(modules: dict[str, ast.Module]) -> None:
    assert import_cycle(modules) is None


def test_every_module_opens_with_a_docstring(modules: dict[str, ast.Module]) -> None:
    assert [name for name, tree in modules.items() if not ast.get_docstring(tree)] == []


# The checks above must be able to fail: each is run on a small tree that breaks its rule.
def test_the_checks_catch_what_they_guard() -> None:
    broken = {
        "app.model.reading": ast.parse("from app.platform import settings\n"),
        "app.platform.settings": ast.parse(""),
        "app.telemetry.decoding": ast.parse("import litestar\nasync def f(pool):\n    await pool.fetch('SELECT 1')\n"),
        "app.telemetry.store": ast.parse("async def f(pool):\n    await pool.fetch('SELECT 1')\n"),
        "app.auth.tokens": ast.parse("from app.alerts import rules\n"),
        "app.alerts.rules": ast.parse("from app.telemetry import store\n"),
        "app.web.routes": ast.parse("from app.telemetry.store import f\n"),
        "app.a": ast.parse("from app import b\n"),
        "app.b": ast.parse("import app.a\n"),
    }
    assert upward_imports(broken) == [
        "app.auth.tokens -> app.alerts.rules",
        "app.model.reading -> app.platform.settings",
    ] or sorted(upward_imports(broken)) == sorted(
        ["app.auth.tokens -> app.alerts.rules", "app.model.reading -> app.platform.settings"]
    )
    assert stores_called_from_outside(broken) == [
        "app.alerts.rules -> app.telemetry.store",
        "app.web.routes -> app.telemetry.store",
    ]
    assert sql_outside_stores(broken) == ["app.telemetry.decoding:3 .fetch()"]
    assert litestar_outside_web(broken) == ["app.telemetry.decoding"]
    assert import_cycle(broken) in (["app.a", "app.b", "app.a"], ["app.b", "app.a", "app.b"])
