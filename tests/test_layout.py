"""The package's shape: no import cycles, leaves that import nothing, a config that imports no store or service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "proxy"
LEAVES = {"proxy.addresses", "proxy.schema", "proxy.errors"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(path: Path, known: set[str]) -> set[str]:
    """Every module of the package that ``path`` imports, at run time or only for type checking."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [source] + [f"{source}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target in known:
                found.add(target)
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    names = set(known)
    edges = {name: imported(path, names) for name, path in known.items()}
    # a module imports its packages' __init__ first; that is not an edge of its own making
    for name, targets in edges.items():
        for target in list(targets):
            if name.startswith(target + "."):
                targets.discard(target)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycles_even_for_type_checking():
    assert find_cycle(graph()) is None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaf_modules_import_nothing_from_the_package(leaf):
    assert graph()[leaf] == set()


def test_config_imports_only_leaves_and_itself():
    edges = graph()
    for name, targets in edges.items():
        if name == "proxy.config" or name.startswith("proxy.config."):
            outside = {t for t in targets if t not in LEAVES and not t.startswith("proxy.config")}
            assert outside == set(), f"{name} imports {sorted(outside)}"


def test_the_classifier_does_no_input_or_output():
    """classify/ is pure: no store, no IMAP, no SMTP, no service."""
    for name, targets in graph().items():
        if name.startswith("proxy.classify"):
            bad = {t for t in targets if t.split(".")[1] in {"store", "watcher", "relay", "outbound", "service", "cli"}}
            assert bad == set(), f"{name} imports {sorted(bad)}"
