"""The import graph between kpibot's packages (ARCHITECTURE.md, "Layers"): no cycles, the chat
core imports no feature, features never import the web pages, the domain imports nothing of the
application. Read from the source (runtime imports, including those inside functions; imports
under `if TYPE_CHECKING:` are for the type checker only and are left out)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("bot", "adapters", "kpi_engine", "connectors", "config")
# The chat core: what every feature builds on.
CORE = ("bot.chat", "bot.outbox", "bot.core", "bot.jobs", "bot.runtime")
# The command line is one unit split over two modules (the shop commands import its helpers).
CLI = ("bot.cli", "bot.shop_cli")

Graph = dict[str, set[str]]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """The ids of import nodes under `if TYPE_CHECKING:`."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            found |= {id(n) for child in node.body for n in ast.walk(child)}
    return found


def own(package: str, module: str) -> bool:
    """True when `package` is one of the packages `module` is in."""
    return module.startswith(package + ".")


def imports(modules: dict[str, Path]) -> Graph:
    """Module → the project modules it imports at run time; importing `a.b.c` imports the
    packages `a` and `a.b` too (their `__init__` runs first), unless the importer is in them."""
    graph: Graph = defaultdict(set)
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        skipped = _type_checking_only(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            for target in targets:
                parts = target.split(".")
                for n in range(1, len(parts) + 1):
                    prefix = ".".join(parts[:n])
                    # A module's own packages are initialised before it: not an edge.
                    if prefix in modules and prefix != name and not own(prefix, name):
                        graph[name].add(prefix)
    return graph


def layer(module: str) -> str:
    """The package a module belongs to, for the graph between packages."""
    if module.startswith(CORE):
        return "core"
    if module in CLI:
        return "cli"
    parts = module.split(".")
    if parts[0] in ("bot", "adapters") and len(parts) > 1:
        if parts[:2] == ["bot", "features"] and len(parts) > 2:
            return ".".join(parts[:3])
        return ".".join(parts[:2])
    return parts[0]


def between_packages(graph: Graph) -> Graph:
    found: Graph = defaultdict(set)
    for source, targets in graph.items():
        for target in targets:
            if layer(source) != layer(target):
                found[layer(source)].add(layer(target))
    return found


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def project_graph() -> Graph:
    modules = {
        module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
    }
    assert "bot.chat.pipeline" in modules and "bot.features.figures" in modules
    return between_packages(imports(modules))


def test_no_import_cycle_between_packages() -> None:
    assert cycles(project_graph()) == []


def test_the_core_imports_no_feature_and_the_domain_nothing_of_the_application() -> None:
    graph = project_graph()
    assert not [t for t in graph["core"] if t.startswith("bot.features")], graph["core"]
    for feature in [p for p in graph if p.startswith("bot.features.")]:
        assert "bot.web" not in graph[feature], feature
    for adapter in [p for p in graph if p.startswith("adapters.")]:
        assert not [t for t in graph[adapter] if t.startswith("bot.features")], adapter
    for domain in ("kpi_engine", "connectors", "config"):
        assert not [t for t in graph.get(domain, ()) if t.startswith(("bot", "adapters"))]


def test_the_checks_find_a_cycle_and_a_parent_packages_init(tmp_path: Path) -> None:
    # The checks above must be able to fail.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "from bot.features.figures.handlers import x\n"
        "if TYPE_CHECKING:\n    from bot.web import y\n",
        encoding="utf-8",
    )
    graph = imports(
        {
            "bot.chat.m": module,
            "bot.features": module,
            "bot.features.figures": module,
            "bot.web": module,
        }
    )
    assert graph["bot.chat.m"] == {"bot.features", "bot.features.figures"}
    assert between_packages(graph)["core"] == {"bot.features", "bot.features.figures"}
