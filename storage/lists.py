"""`column IN (a batch of values)`, written so that the database driver keeps the statement parsed.

A batch statement about 100-200 invitations, contacts or numbers would carry one parameter per value. psycopg
converts a statement's placeholders for PostgreSQL once and keeps the result, but only for statements of at
most 4,096 bytes and 50 parameters (psycopg._queries); every longer one is parsed again on every execution,
which was a tenth of a dispatching worker's CPU. PostgreSQL itself prepares a statement only when its text
repeats, and an IN list's text changes with the batch's size. So on PostgreSQL the values travel as one array:
`column = ANY(:values)`, one parameter and one text for a batch of any size. SQLite's driver keeps every
statement parsed by its text and takes no arrays, so it keeps the plain IN list.

The array's type is the column's without a length: an explicit cast to `varchar(n)` cuts a longer value short
without an error, so a value too long for the column would match the row holding its first n characters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Enum, String, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine


def among(column: Any, values: Iterable[Any], *, session: Session) -> ColumnElement[bool]:
    """`column` is one of `values` (none: false), as one array parameter on PostgreSQL."""
    values = list(values)
    if session.get_bind().dialect.name != "postgresql":
        return column.in_(values)
    expression = column.expression if hasattr(column, "expression") else column
    array = bindparam(None, values, type_=array_of(expression.type))
    return column == any_(array)


def array_of(item: TypeEngine[Any]) -> ARRAY[Any]:
    """A PostgreSQL array of `item`'s values, with no length to cut them to (an enum's values are checked)."""
    if isinstance(item, String) and not isinstance(item, Enum) and item.length is not None:
        item = String()
    return ARRAY(item)
