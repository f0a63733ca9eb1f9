"""The layout's promises (shared/STYLE.md), checked on the source: SQL only in the store, no import cycle, each
layer importing only those below it, a pure core, and platform differences asked of simulator.platforms."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "simulator"
STORE = PACKAGE / "store"
SQL = re.compile(
    r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|PRAGMA|BEGIN|COMMIT|ROLLBACK|WITH)\s+[\w*(]"  # a statement
    r"|\b(FROM|INTO|UPDATE|JOIN)\s+(jobs|attempts|subscriptions|redeliveries|sim_settings)\b"
)


def _strings(tree: ast.AST):
    """String constants, f-strings' literal parts included (each with its line)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def sql_outside_the_store(root: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.is_relative_to(STORE):
            continue
        for line, text in _strings(ast.parse(path.read_text(), str(path))):
            if SQL.search(text):
                found.append(f"{path.relative_to(root.parent)}:{line}: {text.strip()[:80]!r}")
    return found


def test_no_sql_outside_the_store():
    assert sql_outside_the_store() == [], "SQL belongs in simulator/store/ (call a Store method instead)"


def test_the_check_sees_sql_where_it_is(tmp_path):
    (tmp_path / "edge.py").write_text(
        'def f(store, i):\n    return store.run(f"SELECT * FROM jobs WHERE id = {i}")\n'
        'NOTE = "select a job from the list"\n'
        'METHOD = "DELETE"  # an HTTP method, not a statement\n'
        'def g(db):\n    return db.execute("DELETE FROM attempts WHERE job_id = ?")\n'
    )
    assert sorted(hit.split(":")[1] for hit in sql_outside_the_store(tmp_path)) == ["2", "6"]


# Private names still imported across modules, each to be fixed where it lives (not a place to add more).
KNOWN_PRIVATE_IMPORTS: set[str] = set()


def test_no_module_imports_a_private_name_from_another():
    """A module's `_name` is its own: another module of the package that needs it asks for a public name."""
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("simulator")):
                found |= {
                    f"{path.relative_to(PACKAGE.parent)}: {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                }
    assert found - KNOWN_PRIVATE_IMPORTS == set()


# -- imports: no cycle ----------------------------------------------------------------------------------------
def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, from its __init__.py)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules `name` imports, wherever the import stands (functions too). `from pkg import x`
    counts as importing the submodule pkg.x when there is one, else pkg itself."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:
                    out.add(f"{source}.{alias.name}")
                elif source in modules:
                    out.add(source)
    out.discard(name)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def import_groups(graph: dict[str, set[str]]) -> list[set[str]]:
    """The groups of modules that import each other, directly or not (strongly connected, Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def _cycle_in(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """The shortest way from the group's first module back to itself, staying inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        step = []
        for node in frontier:
            for nxt in sorted(graph[node] & group):
                if nxt == start:
                    return paths[node] + [start]
                if nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    step.append(nxt)
        frontier = step
    raise AssertionError(f"no cycle in {sorted(group)}")


def test_the_cycle_check_names_the_modules_of_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "e"}, "d": {"a"}, "e": set()}
    assert [_cycle_in(group, graph) for group in import_groups(graph)] == [["a", "b", "c", "a"]]
    assert import_groups({"a": {"b"}, "b": set()}) == []


def test_import_graph_has_no_cycle():
    graph = import_graph()
    assert "simulator.cli" in graph and "simulator.delivery" in graph  # the walk found the package
    groups = import_groups(graph)
    assert not groups, "import cycles:\n" + "\n".join(
        f"{' -> '.join(_cycle_in(group, graph))}  (modules in this cycle: {', '.join(sorted(group))})"
        for group in groups
    )


# -- imports: each layer uses only the layers below it -------------------------------------------------------------
# The path of an event (docs/architecture.md): pure leaves, then credentials and events, platforms, records, one
# attempt, storage and the things that run scenarios or load, the running simulator, its HTTP edges, the CLI.
LAYERS = [
    {"simulator", "limits", "guard", "signing", "rules", "envelopes", "config"},
    {"auth", "transport", "catalogue"},
    {"platforms"},
    {"models"},
    {"delivery", "subscriptions"},
    {"store", "load", "sign_process", "receiver", "scenarios"},
    {"queue", "scheduler", "testing", "runs"},
    {"services", "pytest_plugin"},
    {"api"},
    {"dashboard"},
    {"app"},
    {"cli"},
]
PURE = {
    "auth",
    "catalogue",
    "delivery",
    "models",
    "platforms",
    "rules",
    "scenarios",
    "signing",
    "store",
    "load",
    "subscriptions",
    "limits",
    "guard",
    "envelopes",
    "transport",
    "config",
}  # never Flask, Click or waitress


def _unit(module: str) -> str:
    """The top-level module or package a module belongs to (`simulator.store.jobs` → `store`)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _layer(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def test_every_module_has_a_layer():
    units = {_unit(name) for name in import_graph()}
    assert units - set().union(*LAYERS) == set(), "add the new module to LAYERS (and to docs/architecture.md)"


def test_no_module_imports_one_above_its_layer():
    wrong = sorted(
        f"{name} imports {dep} ({_unit(dep)} is above {_unit(name)})"
        for name, deps in import_graph().items()
        for dep in deps
        if _unit(dep) != _unit(name) and _layer(_unit(dep)) >= _layer(_unit(name))
    )
    assert wrong == []


def test_the_pure_core_never_imports_a_web_or_cli_framework():
    found = []
    for name, path in _modules().items():
        if _unit(name) not in PURE:
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            found += [f"{name}: {n}" for n in names if n.split(".")[0] in ("flask", "click", "waitress", "werkzeug")]
    assert found == []


# -- platforms: one place knows which is which ----------------------------------------------------------------------
PLATFORM_NAMES = ("accessrc", "accredit", "reachfive")


def platform_comparisons(root: Path = PACKAGE) -> list[str]:
    """`x == "accessrc"`, `x != "reachfive"`, `x in ("accredit", …)` outside simulator/platforms/."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.is_relative_to(root / "platforms"):
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            if not isinstance(node, ast.Compare):
                continue
            for operand in [node.left, *node.comparators]:
                values = (
                    [operand]
                    if isinstance(operand, ast.Constant)
                    else list(operand.elts)
                    if isinstance(operand, (ast.Tuple, ast.List, ast.Set))
                    else []
                )
                if any(isinstance(v, ast.Constant) and v.value in PLATFORM_NAMES for v in values):
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return found


def test_no_platform_name_comparisons_outside_platforms():
    assert platform_comparisons() == [], "ask simulator.platforms.get(name) for the behaviour instead"


def test_the_comparison_check_finds_one(tmp_path):
    (tmp_path / "x.py").write_text('def f(p):\n    return p == "accredit" or p in ("reachfive",)\n')
    assert platform_comparisons(tmp_path) == [f"{tmp_path.name}/x.py:2"] * 2  # both comparisons


def test_docs_architecture_names_every_module_at_its_layer():
    """docs/architecture.md's map matches LAYERS: each top-level module or package in its row, at its layer."""
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text("utf-8")
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            for name in re.findall(r"`([a-z_]+)/?`", cells[1]):
                rows[name] = int(cells[0])
    expected = {unit: i for i, layer in enumerate(LAYERS) for unit in layer if unit != "simulator"}
    assert rows == expected
