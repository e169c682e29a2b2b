"""Cursor strategies: which keyset a table's runs walk, and where a run starts and ends.

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

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Sequence

from common.model import naming, zones
from common.source import mysql as source
from common.model.bounds import Key
from common.config.pipeline import TableSettings
from common.errors import SchemaError
from common.model.types import TableSchema

log = logging.getLogger(__name__)

_TIMESTAMP_HINT = ("use strategy: timestamp with a last-modified column (cursor: updated_at), or "
                   "strategy: full")


@dataclass(frozen=True)
class RunPlan:
    """A run's chunks, and which of them may move the cursor.

    Chunks before `advance_from` re-read the lookback window behind the committed cursor
    and end at or before it: committing them never writes the cursor, so it never moves
    back. For the full strategy advance_from is the chunk count: it keeps no cursor."""

    lo: Key | None
    ceiling: Key | None
    ranges: list[tuple[Key | None, Key]]
    advance_from: int
    hi: Key | None = None
    """The run's fixed upper key (None: nothing to read)."""
    done: bool = True
    """False when `ranges` stop short of hi: the rest is planned by next_ranges()."""
    rows_left: int | None = None
    """For an unfinished plan with a --limit: the rows its remaining chunks may hold."""


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
    if source.indexes_leading_with(conn, table, table.cursor):
        return
    columns = [table.cursor, *(k for k in schema.key if k != table.cursor)]
    raise SchemaError(f"table {table.key}: no index starts with the cursor {table.cursor!r}; planning would scan "
                      f"the table once per chunk. Create one: CREATE INDEX ix_{table.name}_{table.cursor} ON "
                      f"{source.qualified(table.key)} ({', '.join(naming.quote_mysql(c) for c in columns)})")


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


def _lower_bound(conn: Any, table: TableSettings, schema: TableSchema, committed: Key | None,
                 datetime_zone: str | None) -> tuple[Key | None, Key | None]:
    """(where the run starts, the ceiling) for the table's strategy."""
    if table.strategy == "full":
        return None, None
    if table.strategy == "id":
        return committed, None
    col = schema.column(table.cursor or "")
    is_timestamp = col.mysql_type.startswith("timestamp")
    now = source.clock(conn, is_timestamp, datetime_zone)
    ceiling = (now - timedelta(seconds=table.lag_s),)
    if committed is None:
        return None, ceiling
    lookback = timedelta(seconds=table.lookback_s)
    if is_timestamp:
        start = committed[0] - lookback  # read in UTC: no wall-clock hour repeats
    else:
        name, zone = source.datetime_zone(conn, datetime_zone)
        if zone is None:
            log.warning("table %s: DATETIME cursor in zone %s, which ferry cannot resolve: the hour "
                        "repeated when clocks go back is not re-read; set datetime_time_zone",
                        table.key, name)
        start = zones.widen_for_repeats(zone, committed[0], lookback)
    if start == committed[0]:
        return committed, ceiling
    return (start,), ceiling


def _last_key(conn: Any, table_key: str, keys: Sequence[str], start: Key | None, ceiling: Key | None) -> Key | None:
    """The last key after start up to the ceiling (the run's upper key without a --limit);
    None if no key follows start."""
    return source.key_at(conn, table_key, keys, start, ceiling, 0, desc=True)


def plan_run(conn: Any, table: TableSettings, schema: TableSchema, committed: Key | None,
             datetime_zone: str | None, limit: int | None, deadline: float | None = None) -> RunPlan:
    """Split the run into chunks of about chunk_rows rows by probing the key index.

    With a lookback, the window behind the committed cursor and the rows after it are
    planned separately, so a chunk boundary falls exactly on the committed cursor. A
    --limit counts rows after the committed cursor (not after the lookback, or a limited
    run would re-read the same rows forever): the chunks after it stop at the limit-th key.

    With a deadline (time.monotonic()), the chunks after the cursor are planned only until
    then (at least one), so a big table's first chunks are read while the rest is planned
    by next_ranges() (done=False; `hi` is then the last key up to the ceiling, where the
    plan ends unless a --limit (rows_left) stops it earlier)."""
    keys = keyset(table, schema)
    lo, ceiling = _lower_bound(conn, table, schema, committed, datetime_zone)
    start = None if table.strategy == "full" else committed
    behind: list[tuple[Key | None, Key]] = []
    if lo != start and start is not None:
        behind = source.plan_bounds(conn, table.key, keys, lo, table.chunk_rows, start)
    hi = _last_key(conn, table.key, keys, start, ceiling)
    ahead: list[tuple[Key | None, Key]] = []
    done = True
    if hi is not None:
        ahead, done = source.next_bounds(conn, table.key, keys, start, table.chunk_rows, hi, deadline, limit)
    ranges = behind + ahead
    advance_from = len(ranges) if table.strategy == "full" else len(behind)
    if ranges and done:
        hi = ranges[-1][1]
    return RunPlan(lo=lo, ceiling=ceiling, ranges=ranges, advance_from=advance_from,
                   hi=hi if hi is not None else (behind[-1][1] if behind else None), done=done,
                   rows_left=None if limit is None or done else limit - table.chunk_rows * len(ahead))


def next_ranges(conn: Any, table: TableSettings, schema: TableSchema, after: Key, hi: Key,
                deadline: float | None, rows_left: int | None = None) -> tuple[list[tuple[Key | None, Key]], bool]:
    """The next chunks of a run whose plan stopped at `after` (see plan_run), up to its upper
    key or, for a --limit, its rows_left-th key."""
    return source.next_bounds(conn, table.key, keyset(table, schema), after, table.chunk_rows, hi, deadline,
                              rows_left)
