"""The package has no import cycle: every import statement, top level or inside a function, counts."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ganspacesynth"


def module_graph() -> dict[str, set[str]]:
    """Module name -> the package's modules it imports (a package's own parents excluded)."""
    mods = {}
    for p in PACKAGE.rglob("*.py"):
        name = ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = p

    def targets(cur: str, node) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        base = cur if mods[cur].name == "__init__.py" else cur.rsplit(".", 1)[0]
        for _ in range(max(node.level - 1, 0)):
            base = base.rsplit(".", 1)[0]
        if node.level:
            base += "." + node.module if node.module else ""
        else:
            base = node.module
        subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
        return subs if len(subs) == len(node.names) else [base, *subs]  # `from . import sub` imports only sub

    graph = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[m].update(t for t in targets(m, node) if t in mods and t != m and not m.startswith(t + "."))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle():
    graph = module_graph()
    assert len(graph) > 50 and "ganspacesynth.model.inference.native" in graph["ganspacesynth.model.inference.generator"]
    assert cycles(graph) == []


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
