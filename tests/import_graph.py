"""The import graph of a package, read with ``ast`` from its source: the house's layer and cycle rules check it.

An import inside a function (or under ``TYPE_CHECKING``) is an edge like one at the top: a lazy import still
ties two modules together. Used by tests/sm_pipeline/test_structure.py and tests/test_structure.py.
"""

from __future__ import annotations

import ast
from pathlib import Path


def module_name(path: Path, root: Path) -> str:
    """The dotted name of the module at ``path`` when ``root`` is on sys.path."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(package: Path, root: Path) -> dict[str, Path]:
    """Every module of the package directory ``package`` (importable from ``root``) by dotted name."""
    return {module_name(path, root): path for path in sorted(package.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> tuple[set[str], set[str]]:
    """(modules of ``known`` it imports, top-level names of everything it imports), anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    internal: set[str] = set()
    external: set[str] = set()

    def add(target: str) -> None:
        external.add(target.split(".")[0])
        while target and target not in known:
            target = target.rpartition(".")[0]  # `import a.b.c` binds the modules it names, deepest known
        if target:
            internal.add(target)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                # `from pkg import module` is an edge to the module; `from pkg import name` to pkg
                add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    internal.discard(name)
    return internal, external


def import_graph(package: Path, root: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(internal edges by module, external top-level names by module) of the package."""
    found = modules(package, root)
    known = set(found)
    graph, external = {}, {}
    for name, path in found.items():
        graph[name], external[name] = imports_of(name, path, known)
    return graph, external


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), as sorted names."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in sorted(graph.get(node, ())):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or not."""
    seen, todo = set(), [start]
    while todo:
        for child in graph.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen
