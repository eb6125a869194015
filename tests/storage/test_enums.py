"""Every closed vocabulary is an enum, and the code writes only its members.

The columns refuse other strings at write time (`storage.tables._enum`); this scan also catches a literal on a
path no test runs: a string literal given to an enum-typed column, in a model constructor, an assignment, an
`update(...).values(...)` or a comparison in a query. Write the enum member instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import Enum

from storage.tables import Base

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("storage", "campaigns", "bot", "service")


def enum_columns() -> dict[str, set[str]]:
    """Model class name -> its enum-typed attributes."""
    found: dict[str, set[str]] = {}
    for mapper in Base.registry.mappers:
        for attribute in mapper.column_attrs:
            if any(isinstance(column.type, Enum) for column in attribute.columns):
                found.setdefault(mapper.class_.__name__, set()).add(attribute.key)
    return found


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _texts(node: ast.AST) -> bool:
    """A literal string, or a tuple/list/set holding one."""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_is_text(element) for element in node.elts)
    return _is_text(node)


def literals_written(tree: ast.AST, columns: dict[str, set[str]]) -> list[tuple[int, str]]:
    attributes = set().union(*columns.values())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            method = node.func.attr if isinstance(node.func, ast.Attribute) else None
            wanted = columns.get(name or "", attributes if method == "values" else set())
            found += [
                (node.lineno, f"{k.arg}=") for k in node.keywords if k.arg in wanted and _is_text(k.value)
            ]
            owner = node.func.value if isinstance(node.func, ast.Attribute) else None
            if method in ("in_", "not_in") and _is_column(owner, columns) and any(map(_texts, node.args)):
                found.append((node.lineno, f"{ast.unparse(owner)}.{method}(...)"))  # type: ignore[arg-type]
        elif isinstance(node, ast.Compare):
            # `Model.kind == "..."` in a query, or `row.category == "..."` on a loaded row (for names that
            # only enum columns use: `token.kind` or `error.status` elsewhere are not ours).
            sides = [node.left, *node.comparators]
            named = [
                side for side in sides if _is_column(side, columns) or _is_row_attribute(side, attributes)
            ]
            if named and any(map(_is_text, sides)):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Assign):
            for target, value in _pairs(node.targets, node.value):
                if isinstance(target, ast.Attribute) and target.attr in attributes and _is_text(value):
                    found.append((node.lineno, f"{ast.unparse(target)} = {ast.unparse(value)}"))
    return sorted(found)


def _is_column(node: ast.AST | None, columns: dict[str, set[str]]) -> bool:
    """`Model.attribute` for an enum-typed column."""
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.attr in columns.get(node.value.id, set())
    )


# Attribute names too common to say, on an unknown object, that it is one of our rows.
_GENERIC = {"kind", "status", "state", "channel", "direction", "reason"}


def _is_row_attribute(node: ast.AST, attributes: set[str]) -> bool:
    return isinstance(node, ast.Attribute) and node.attr in attributes - _GENERIC


def _pairs(targets: list[ast.expr], value: ast.expr) -> list[tuple[ast.expr, ast.expr]]:
    pairs = []
    for target in targets:
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
            pairs += list(zip(target.elts, value.elts, strict=False))
        else:
            pairs.append((target, value))
    return pairs


def test_the_vocabularies_of_the_issue_are_enum_typed_columns() -> None:
    columns = enum_columns()
    assert {"purpose", "send_state", "delivery_status", "inbound_state"} <= columns["Message"]
    assert "category" in columns["Response"]
    assert "kind" in columns["SlackAlert"]
    assert "reason" in columns["Skip"]
    assert "claimed_for" in columns["Invitation"]


def test_the_scan_finds_each_way_of_writing_a_literal() -> None:
    source = """
Message(purpose="invitation", body="free text is fine")
message.send_state = "sent"
message.send_state, message.updated_at = "sent", now
update(Invitation).values(state="expired")
select(Message).where(Message.purpose == "reminder")
if seen.inbound_state == "processed": pass
select(Message).where(Message.send_state.not_in(("rejected", "failed")))
"""
    found = literals_written(ast.parse(source), enum_columns())
    assert [line for line, _ in found] == [2, 3, 4, 5, 6, 7, 8]


def test_no_code_writes_or_compares_a_literal_for_an_enum_column() -> None:
    columns = enum_columns()
    offences = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # migrations spell out the stored values on purpose
            for line, what in literals_written(ast.parse(path.read_text()), columns):
                offences.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert offences == []
