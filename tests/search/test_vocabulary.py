"""Every attribute name the study stores is a constant of ``search/vocabulary.py``, never a literal."""

from __future__ import annotations

import ast
from pathlib import Path

from orchestrator.search import vocabulary

SEARCH = Path(__file__).resolve().parents[2] / "orchestrator" / "search"
_SETTERS = {"set_user_attr", "set_system_attr", "set_trial_user_attr", "set_trial_system_attr",
            "set_study_user_attr", "set_study_system_attr"}
_STORES = {"user_attrs", "system_attrs"}


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _literal_keys(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name, owner = node.func.attr, node.func.value
            args = node.args[1:] if name.startswith("set_trial") or name.startswith("set_study") else node.args
            reads = name in ("get", "pop") and isinstance(owner, ast.Attribute) and owner.attr in _STORES
            if (name in _SETTERS or reads) and args and _is_text(args[0]):
                found.append((node.lineno, args[0].value))
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and \
                node.value.attr in _STORES and _is_text(node.slice):
            found.append((node.lineno, node.slice.value))
        if isinstance(node, ast.Compare) and _is_text(node.left) and any(
                isinstance(c, ast.Attribute) and c.attr in _STORES for c in node.comparators):
            found.append((node.lineno, node.left.value))
    return found


def test_no_module_of_the_search_spells_a_stored_attribute_name_out() -> None:
    literals = [f"{path.name}:{line}: {key!r}" for path in sorted(SEARCH.glob("*.py"))
                for line, key in _literal_keys(ast.parse(path.read_text(encoding="utf-8")))]
    assert not literals, f"name these in orchestrator/search/vocabulary.py: {literals}"


def test_the_vocabulary_names_each_stored_attribute_once() -> None:
    names = [value for key, value in vars(vocabulary).items() if key.endswith("_ATTR")]
    assert len(names) == len(set(names)), names
    assert set(vocabulary.ATTEMPT_ATTRS) <= set(names)
