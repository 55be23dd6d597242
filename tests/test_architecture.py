"""The house rules of docs/architecture.md, measured on the code: imports never go in a circle,
nothing imports the package root, lower layers never import higher ones, and modules stay small
unless the architecture document says why."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hubtools"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
#: the lowest layer: imports nothing of hubtools but each other
BASE = {"hubtools.records", "hubtools.errors", "hubtools.config", "hubtools.redact", "hubtools.text", "hubtools.shapes",
        "hubtools._version", "hubtools._bundled", "hubtools.hub_ids"}
#: what no stage, data or base module may import
TOP = ("hubtools.app", "hubtools.cli", "hubtools.pipeline")
LINE_LIMIT = 450


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path, *, module_level: bool) -> set[str]:
    """The hubtools modules ``name`` imports (at module level only, or anywhere)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    nodes = tree.body if module_level else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add(full if full in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in MODULES and m != name}


def test_no_module_level_import_cycle():
    graph = {name: _imports(name, path, module_level=True) for name, path in MODULES.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_nothing_imports_the_package_root():
    offenders = {name for name, path in MODULES.items() if name != "hubtools"
                 and "hubtools" in _imports(name, path, module_level=False)}
    assert offenders == set()


@pytest.mark.parametrize("name", sorted(BASE & set(MODULES)))
def test_the_base_layer_imports_only_the_base_layer(name):
    assert _imports(name, MODULES[name], module_level=False) <= BASE


def test_no_lower_layer_imports_the_app_the_cli_or_the_pipeline():
    offenders = {}
    for name, path in MODULES.items():
        if name.startswith(TOP) or name == "hubtools":
            continue
        upward = {m for m in _imports(name, path, module_level=False) if m.startswith(TOP)}
        if upward:
            offenders[name] = upward
    assert offenders == {}


def test_modules_over_the_line_limit_are_named_in_the_architecture_document():
    document = ARCHITECTURE.read_text(encoding="utf-8")
    long = {str(path.relative_to(PACKAGE.parent)): len(path.read_text(encoding="utf-8").splitlines())
            for path in MODULES.values()}
    unexplained = {f: n for f, n in long.items()
                   if n > LINE_LIMIT and f"`{Path(f).relative_to('hubtools').as_posix()}`" not in document}
    assert unexplained == {}
