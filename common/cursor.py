"""Cursor strategies: which keyset a table's runs walk, and where a run starts and ends.

- id: the primary key; a run reads keys after the committed cursor.
- timestamp: (cursor column, *primary key), so rows sharing one timestamp split across
  chunks without loss or repeat; a run stops `lag_s` before the source's clock and
  starts `lookback_s` before the cursor.
- full: the primary key, from the start, every run.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from common import source
from common.bounds import Key
from common.config import TableSettings
from common.errors import SchemaError
from common.types import TableSchema


@dataclass(frozen=True)
class RunRange:
    """A run's lower bound (exclusive, possibly a key prefix) and its ceiling (a prefix)."""

    lo: Key | None
    ceiling: Key | None


def keyset(table: TableSettings, schema: TableSchema) -> tuple[str, ...]:
    if table.strategy == "timestamp":
        assert table.cursor is not None
        return (table.cursor, *schema.key)
    return schema.key


def validate(table: TableSettings, schema: TableSchema) -> None:
    """The cursor column must suit the strategy; SchemaError names table and column."""
    if table.strategy == "id" and table.cursor and table.cursor != schema.key[0]:
        raise SchemaError(f"table {table.key}: cursor {table.cursor!r} must be the first key column "
                          f"({schema.key[0]!r}) for the id strategy")
    if table.strategy == "timestamp":
        col = schema.column(table.cursor or "")
        if col.kind != "timestamp":
            raise SchemaError(f"table {table.key}: cursor {table.cursor!r} is {col.mysql_type}; the "
                              f"timestamp strategy needs a DATETIME or TIMESTAMP column")
        if table.cursor in schema.key:
            raise SchemaError(f"table {table.key}: cursor {table.cursor!r} is part of the key; use "
                              f"the id strategy")


def run_range(conn: Any, table: TableSettings, schema: TableSchema, cursor: Key | None,
              datetime_zone: str | None = None) -> RunRange:
    if table.strategy == "full":
        return RunRange(lo=None, ceiling=None)
    if table.strategy == "id":
        return RunRange(lo=cursor, ceiling=None)
    col = schema.column(table.cursor or "")
    now = source.clock(conn, col.mysql_type.startswith("timestamp"), datetime_zone)
    ceiling = (now - timedelta(seconds=table.lag_s),)
    lo = cursor
    if cursor is not None and table.lookback_s > 0:
        lo = (cursor[0] - timedelta(seconds=table.lookback_s),)
    return RunRange(lo=lo, ceiling=ceiling)


def run_end(conn: Any, table_key: str, keys: tuple[str, ...], committed: Key | None, span: RunRange,
            limit: int | None) -> Key | None:
    """The run's fixed upper key: the last key up to the ceiling, or the limit-th key after
    the committed cursor (not after the lookback, or a limited run would re-read the same
    rows forever). Never behind the committed cursor: the cursor must not move back."""
    run_hi = None
    if limit is not None:
        run_hi = source.key_at(conn, table_key, keys, committed, span.ceiling, limit - 1)
    if run_hi is None:
        run_hi = source.key_at(conn, table_key, keys, span.lo, span.ceiling, 0, desc=True)
    if committed is not None and len(committed) == len(keys) and (run_hi is None or run_hi < committed):
        # Only the lookback window has rows (the newest row moved past the ceiling):
        # end the run at the committed cursor.
        return committed if span.lo != committed else None
    return run_hi
