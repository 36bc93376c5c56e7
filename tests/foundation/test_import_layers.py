"""Imports run one way: no circle between modules or packages, none from a lower layer to a higher one.

The layers are written down in ``orchestrator/_layers.py``. Every ``import`` is read with ``ast``, wherever
it stands (module level, inside a function, under ``TYPE_CHECKING``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator._layers import COMMAND_MODULE, COMMANDS_LAYER, LAYERS

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "orchestrator"
LAYER_OF = {name: index for index, (_, names) in enumerate(LAYERS) for name in names}
LAYER_NAMES = [layer for layer, _ in LAYERS]


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    imported: str  # dotted module name (a submodule where ``from pkg import submodule`` names one)
    line: int

    @property
    def where(self) -> str:
        return f"{self.importer} (line {self.line}) imports {self.imported}"


def module_name(path: Path, root: Path = PACKAGE_ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules(root: Path = PACKAGE_ROOT) -> dict[str, Path]:
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    """Every import of a package module in ``path``, resolved to the module it loads."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        for target in dict.fromkeys(targets):
            while target and target not in known:  # `import orchestrator.a.b` loads a.b; a name in a module
                target = target.rpartition(".")[0]
            if target and target != name and Import(name, target, node.lineno) not in found:
                found.append(Import(name, target, node.lineno))
    return found


def unit_of(module: str) -> str:
    """The package (or top-level module) a module belongs to, with a stage's cli.py as a unit of its own."""
    parts = module.split(".")[1:] or ["__init__"]
    if len(parts) > 1 and parts[-1] == COMMAND_MODULE and layer_of_unit(parts[0]) < LAYER_NAMES.index(
            COMMANDS_LAYER):
        return f"{parts[0]}.{COMMAND_MODULE}"
    return parts[0]


def layer_of_unit(unit: str) -> int:
    if unit.endswith(f".{COMMAND_MODULE}"):
        return LAYER_NAMES.index(COMMANDS_LAYER)
    return LAYER_OF.get(unit, -1)


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(edges.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def package_imports(root: Path = PACKAGE_ROOT) -> list[Import]:
    modules = all_modules(root)
    known = set(modules)
    return [found for name, path in modules.items() for found in imports_of(name, path, known)]


IMPORTS = package_imports()


def describe_circle(members: list[str], imports: list[Import], unit=lambda m: m) -> str:
    inside = set(members)
    ties = [i.where for i in imports if unit(i.importer) in inside and unit(i.imported) in inside
            and unit(i.importer) != unit(i.imported)]
    return " <-> ".join(members) + ":\n    " + "\n    ".join(ties)


def unplaced_units(root: Path = PACKAGE_ROOT) -> list[str]:
    units = {unit_of(name) for name in all_modules(root)} - {"__init__"}
    return sorted(u for u in units if layer_of_unit(u) < 0)


def test_a_new_package_outside_every_layer_is_named(tmp_path):
    for module in ("__init__.py", "common/__init__.py", "newstage/__init__.py", "newstage/cli.py"):
        (tmp_path / "orchestrator" / module).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "orchestrator" / module).write_text("")
    assert unplaced_units(tmp_path / "orchestrator") == ["newstage"]


def test_every_package_and_top_level_module_is_placed_in_a_layer():
    unplaced = unplaced_units()
    assert not unplaced, (
        f"not in any import layer: {unplaced}. Add each to LAYERS in orchestrator/_layers.py, in the layer "
        "above everything it imports and below everything that imports it.")


def test_no_module_imports_a_higher_layer():
    upward = [i for i in IMPORTS
              if layer_of_unit(unit_of(i.imported)) > layer_of_unit(unit_of(i.importer)) >= 0]
    assert not upward, "imports from a lower layer to a higher one (see orchestrator/_layers.py):\n" + "\n".join(
        f"  {i.where}: layer {LAYER_NAMES[layer_of_unit(unit_of(i.importer))]!r} -> "
        f"{LAYER_NAMES[layer_of_unit(unit_of(i.imported))]!r}" for i in upward)


def test_no_circle_between_modules():
    edges: dict[str, set[str]] = defaultdict(set)
    for found in IMPORTS:
        edges[found.importer].add(found.imported)
    found_circles = circles(edges)
    assert not found_circles, "modules that import each other:\n" + "\n".join(
        describe_circle(c, IMPORTS) for c in found_circles)


def package_of(module: str) -> str:
    return (module.split(".")[1:] or ["__init__"])[0]


def test_no_circle_between_packages():
    """A stage's cli.py counts with its package here: ``config`` may not use ``kohya`` that uses ``config``."""
    edges: dict[str, set[str]] = defaultdict(set)
    for found in IMPORTS:
        if package_of(found.importer) != package_of(found.imported):
            edges[package_of(found.importer)].add(package_of(found.imported))
    found_circles = circles(edges)
    assert not found_circles, "packages that import each other:\n" + "\n".join(
        describe_circle(c, IMPORTS, package_of) for c in found_circles)


@pytest.mark.parametrize("source, expected", [
    ("from orchestrator.b import thing\n", ["orchestrator.b"]),
    ("def late():\n    import orchestrator.b.inner\n", ["orchestrator.b.inner"]),
    ("from orchestrator.b import inner\n", ["orchestrator.b.inner"]),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..b.inner import Kind\n", ["orchestrator.b.inner"]),
    ("from ...b import inner\n", ["orchestrator.b.inner"]),
])
def test_the_walk_sees_every_kind_of_import(tmp_path, source, expected):
    root = tmp_path / "orchestrator"
    for folder in (root / "a" / "deep", root / "b"):
        folder.mkdir(parents=True)
    for path in (root / "__init__.py", root / "a" / "__init__.py", root / "a" / "deep" / "__init__.py",
                 root / "b" / "__init__.py", root / "b" / "inner.py"):
        path.write_text("")
    importer = root / "a" / "deep" / "mod.py" if source.startswith("from ...") else root / "a" / "mod.py"
    importer.write_text(source)
    modules = all_modules(root)
    found = imports_of(module_name(importer, root), importer, set(modules))
    assert [i.imported for i in found] == expected


def test_circles_finds_a_loop_and_not_a_chain():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": {"c"}}) == []
