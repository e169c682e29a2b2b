"""Cursor strategies: which keyset a table's runs walk, and the keys and indexes each refuses.

- id: the primary key (or, with `cursor_increasing`, the cursor column then the key); a
  run reads keys after the committed cursor. Refused where it would lose rows silently:
  a composite key, or a text key, unless the cursor column is declared increasing.
- timestamp: (cursor column, *primary key), so rows sharing one timestamp split across
  chunks without loss or repeat; a run stops `lag_s` before the source's clock and
  starts `lookback_s` before the cursor (earlier when a repeated autumn hour is near).
- full: the primary key, from the start, every run; it keeps no cursor.

Every key comparison happens in MySQL (its collation, its types), never in Python.
"""
from __future__ import annotations

from typing import Any

from common.source import catalog
from common.config.pipeline import TableSettings
from common.errors import SchemaError
from common.model.types import TableSchema

_TIMESTAMP_HINT = ("use strategy: timestamp with a last-modified column (cursor: updated_at), or "
                   "strategy: full")


def keyset(table: TableSettings, schema: TableSchema) -> tuple[str, ...]:
    if table.strategy == "timestamp":
        assert table.cursor is not None
        return (table.cursor, *schema.key)
    if not schema.key:  # load: append without a key walks the cursor's values
        return (table.cursor,) if table.cursor else ()
    if table.strategy == "id" and table.cursor and table.cursor_increasing:
        return (table.cursor, *(k for k in schema.key if k != table.cursor))
    return schema.key


def validate(table: TableSettings, schema: TableSchema) -> None:
    """The strategy must suit the table; SchemaError names table and column and what to do."""
    if not schema.key:
        _validate_keyless(table, schema)
        return
    if table.strategy == "id":
        _validate_id(table, schema)
    if table.strategy == "timestamp":
        col = schema.column(table.cursor or "")
        if col.kind != "timestamp":
            raise SchemaError(f"table {table.key}: cursor {table.cursor!r} is {col.mysql_type}; the "
                              f"timestamp strategy needs a DATETIME or TIMESTAMP column")
        if table.cursor in schema.key:
            raise SchemaError(f"table {table.key}: cursor {table.cursor!r} is part of the key; use "
                              f"the id strategy")


def require_cursor_index(conn: Any, table: TableSettings, schema: TableSchema) -> None:
    """A timestamp cursor needs an index that starts with it: every plan probe and every
    chunk's read seeks by (cursor, key); without one each probe scans the whole table, so a
    big table would wait minutes before its first read. SchemaError says which index to create."""
    if table.strategy != "timestamp" or not table.cursor:
        return
    if catalog.indexes_leading_with(conn, table, table.cursor):
        return
    raise SchemaError(f"table {table.key}: no index starts with the cursor {table.cursor!r}; planning would scan "
                      f"the table once per chunk. Create one: "
                      f"{catalog.cursor_index_sql(table.key, table.cursor, schema.key)}")


def _validate_keyless(table: TableSettings, schema: TableSchema) -> None:
    """load: append on a table without a key: chunks are ranges of the cursor's values."""
    if table.strategy == "full":
        raise SchemaError(f"table {table.key}: load: append without a key needs the id or timestamp strategy "
                          f"(a cursor); the full strategy replaces the table by key")
    if not table.cursor:
        raise SchemaError(f"table {table.key} has no key: load: append needs a cursor column (cursor: "
                          f"an increasing id or a last-modified timestamp)")
    col = schema.column(table.cursor)
    if table.strategy == "timestamp" and col.kind != "timestamp":
        raise SchemaError(f"table {table.key}: cursor {table.cursor!r} is {col.mysql_type}; the timestamp "
                          f"strategy needs a DATETIME or TIMESTAMP column")
    if table.strategy == "id" and col.nullable:
        raise SchemaError(f"table {table.key}: cursor {table.cursor!r} is nullable; rows with a NULL cursor "
                          f"would never be read")


def _validate_id(table: TableSettings, schema: TableSchema) -> None:
    if table.cursor_increasing:
        if not table.cursor:
            raise SchemaError(f"table {table.key}: cursor_increasing needs the cursor column it is "
                              f"about (cursor: id)")
        col = schema.column(table.cursor)
        if col.nullable:
            raise SchemaError(f"table {table.key}: cursor {table.cursor!r} is nullable; rows with a "
                              f"NULL cursor would never be read")
        return
    if table.cursor and table.cursor != schema.key[0]:
        raise SchemaError(f"table {table.key}: cursor {table.cursor!r} must be the first key column "
                          f"({schema.key[0]!r}) for the id strategy, or declare it increasing for the "
                          f"whole table with cursor_increasing: true")
    if len(schema.key) > 1:
        raise SchemaError(
            f"table {table.key}: the id strategy on the composite key ({', '.join(schema.key)}) would "
            f"never read a row added later under a smaller {schema.key[0]!r} than the cursor's; "
            f"{_TIMESTAMP_HINT}; or, if one column alone increases for the whole table, set "
            f"cursor: <that column> and cursor_increasing: true")
    first = schema.column(schema.key[0])
    if first.kind in ("string", "binary"):
        raise SchemaError(
            f"table {table.key}: key column {first.source!r} is {first.mysql_type}; text keys do not "
            f"grow in insertion order, so the id strategy would miss new rows; {_TIMESTAMP_HINT}; "
            f"or set cursor_increasing: true (cursor: {first.source}) if it does only increase")


