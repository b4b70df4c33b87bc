"""The package reads top-down: no module imports one that imports it back, and no package of
ecgfusion (data, models, training, experiments, benchmarks, ...) depends on itself through
others. Imports inside functions count too: they are cycles that only wait to be called."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def _imports() -> dict[str, set[str]]:
    modules = {}
    for file in (SRC / "ecgfusion").rglob("*.py"):
        name = ".".join(file.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = file
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, file in modules.items():
        for node in ast.walk(ast.parse(file.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reached = {node: reach(node) for node in graph}
    groups = {
        frozenset(n for n in reached[node] if node in reached[n])
        for node in graph
        if node in reached[node]
    }
    return sorted(sorted(g) for g in groups)


def test_no_module_imports_itself_back():
    assert _cycles(_imports()) == []


def test_no_package_depends_on_itself():
    packages: dict[str, set[str]] = {}
    for module, targets in _imports().items():
        top = module.split(".")[1] if "." in module else module
        packages.setdefault(top, set()).update(
            t.split(".")[1] for t in targets if "." in t and t.split(".")[1] != top
        )
    assert _cycles(packages) == []
