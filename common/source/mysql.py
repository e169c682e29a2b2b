"""Reading the MySQL source: connection, schema, keyset probes and streamed chunk reads."""
from __future__ import annotations

import re
import time
from datetime import timezone
from itertools import islice
from typing import Any, Callable, Iterator, Sequence

import mysql.connector
from mysql.connector.errors import get_mysql_exception

try:  # the C extension's raw error type; absent on the pure-Python protocol
    from _mysql_connector import MySQLInterfaceError
except ImportError:  # pragma: no cover
    class MySQLInterfaceError(Exception):  # type: ignore[no-redef]
        """Stand-in so the except clause below stays valid without the C extension."""

from common.model.bounds import Key
from common.model import zones
from common.config.pipeline import SourceConfig, TableSettings
from common.errors import SchemaError
from common.model.naming import quote_mysql, split_table_key
from common.model.types import TableSchema, map_column

Rows = list[tuple[Any, ...]]


def connect(src: SourceConfig, **overrides: Any) -> Any:
    """Open a connection (C extension) in UTC with autocommit: each SELECT is its own snapshot.
    `overrides` replace connect arguments (a tunnel's local host and port)."""
    args: dict[str, Any] = dict(host=src.host, port=src.port, user=src.user, password=src.password,
                                charset="utf8mb4", use_pure=False, autocommit=True)
    if src.database:
        args["database"] = src.database
    if src.read_timeout_s:
        args["read_timeout"] = src.read_timeout_s
    args.update(src.options)
    args.update(overrides)
    conn = mysql.connector.connect(**args)
    cur = conn.cursor()
    # UTC so TIMESTAMP values arrive unshifted; a generous write timeout because
    # the server waits on us while a batch is converted and uploaded.
    settings = "SET time_zone = '+00:00', net_write_timeout = 600, net_read_timeout = 600"
    if src.max_execution_time_ms:
        limit = int(src.max_execution_time_ms)
        # MariaDB names it max_statement_time (seconds); MySQL max_execution_time (ms, SELECTs).
        settings += (f", max_statement_time = {limit / 1000:.3f}" if "mariadb" in str(conn.server_info).lower()
                     else f", max_execution_time = {limit}")
    cur.execute(settings)
    cur.close()
    return conn


def server_version(conn: Any) -> str:
    return str(_fetch(conn, "SELECT VERSION()", ())[0][0])


def qualified(table_key: str) -> str:
    schema, name = split_table_key(table_key)
    return f"{quote_mysql(schema)}.{quote_mysql(name)}"


# ---- schema ----------------------------------------------------------------

_COLUMNS_SQL = (
    "SELECT column_name AS column_name, data_type AS data_type, column_type AS column_type,"
    " is_nullable AS is_nullable, numeric_precision AS numeric_precision,"
    " numeric_scale AS numeric_scale, character_maximum_length AS character_maximum_length,"
    " datetime_precision AS datetime_precision, column_default AS column_default, extra AS extra"
    " FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
    " ORDER BY ordinal_position")
_PK_SQL = (
    "SELECT column_name FROM information_schema.statistics"
    " WHERE table_schema = %s AND table_name = %s AND index_name = 'PRIMARY'"
    " ORDER BY seq_in_index")


def _fetch(conn: Any, sql: str, params: Sequence[Any], dictionary: bool = False) -> list[Any]:
    cur = conn.cursor(dictionary=dictionary)
    try:
        cur.execute(sql, tuple(params))
        return cur.fetchall()
    finally:
        cur.close()


def _mariadb_json_columns(conn: Any, table: TableSettings) -> set[str]:
    """MariaDB's JSON is LONGTEXT with a CHECK (json_valid(`col`)) it adds itself: the
    columns that carry one. (MySQL says data_type 'json'; its CHECK_CONSTRAINTS has no
    table_name, so the query fails there and finds nothing.)"""
    try:
        rows = _fetch(conn, "SELECT check_clause FROM information_schema.check_constraints"
                      " WHERE constraint_schema = %s AND table_name = %s", (table.schema, table.name))
    except mysql.connector.Error:
        return set()
    found = set()
    for (clause,) in rows:
        text = clause.decode() if isinstance(clause, (bytes, bytearray)) else str(clause)
        m = re.fullmatch(r"\s*json_valid\(`((?:[^`]|``)+)`\)\s*", text, re.IGNORECASE)
        if m:
            found.add(m.group(1).replace("``", "`"))
    return found


def read_schema(conn: Any, table: TableSettings) -> TableSchema:
    """Map the table's columns and find its keyset; SchemaError names what is wrong."""
    rows = _fetch(conn, _COLUMNS_SQL, (table.schema, table.name), dictionary=True)
    if not rows:
        raise SchemaError(f"table {table.key} not found in the source (or no privilege on it)")
    rows = [{k.lower(): (v.decode() if isinstance(v, (bytes, bytearray)) else v) for k, v in r.items()}
            for r in rows]
    names = [r["column_name"] for r in rows]
    for col in table.exclude_columns:
        if col not in names:
            raise SchemaError(f"table {table.key}: exclude_columns names {col!r}, which the table lacks")
    pk = list(table.primary_key or [r[0] for r in _fetch(conn, _PK_SQL, (table.schema, table.name))])
    pk = [c.decode() if isinstance(c, (bytes, bytearray)) else c for c in pk]
    if not pk and table.load != "append":
        raise SchemaError(f"table {table.key} has no primary key: set primary_key to NOT NULL columns that "
                          f"are unique, or load: append with a cursor (at-least-once)")
    for col in pk:
        if col not in names:
            raise SchemaError(f"table {table.key}: primary_key column {col!r} is not in the table")
        if col in table.exclude_columns:
            raise SchemaError(f"table {table.key}: key column {col!r} cannot be excluded")
    by_name = {r["column_name"]: r for r in rows}
    for col in pk:
        info = by_name[col]
        if info["data_type"].lower() in ("enum", "set"):
            raise SchemaError(f"table {table.key}: key column {col!r} is an {info['data_type'].upper()}, "
                              f"which sorts by member number but compares as text; choose another key")
        if info["is_nullable"] == "YES":
            raise SchemaError(f"table {table.key}: key column {col!r} is nullable; rows with NULL "
                              f"keys would be skipped, choose NOT NULL key columns")
    json_columns = _mariadb_json_columns(conn, table)
    columns, unmapped = [], []
    for r in rows:
        if r["column_name"] in table.exclude_columns:
            continue
        try:
            columns.append(map_column(table.key, {**r, "is_json": r["column_name"] in json_columns},
                                      table.tinyint1_as_bool, table.json_as))
        except SchemaError as exc:
            unmapped.append(str(exc))
    if unmapped:  # every column that cannot be copied, not just the first
        raise SchemaError("\n".join(unmapped))
    seen: dict[str, str] = {}
    for c in columns:
        if c.name in seen:
            raise SchemaError(f"table {table.key}: columns {seen[c.name]!r} and {c.source!r} "
                              f"both map to target column {c.name!r}")
        seen[c.name] = c.source
    return TableSchema(table=table.key, columns=tuple(columns), key=tuple(pk))


# ---- keyset predicates -----------------------------------------------------

def _keyset(cols: Sequence[str], key: Key, strict: str, last: str, lead: str,
            quote: Callable[[str], str]) -> tuple[str, list[Any]]:
    """`cols <op> key` in expanded form: a row-constructor comparison may skip the index."""
    q = [quote(c) for c in cols]
    if len(q) == 1:
        return f"{q[0]} {last} %s", [key[0]]
    terms, params = [], []
    for i in range(len(q)):
        eqs = [f"{q[j]} = %s" for j in range(i)]
        op = strict if i < len(q) - 1 else last
        terms.append("(" + " AND ".join(eqs + [f"{q[i]} {op} %s"]) + ")")
        params += list(key[: i + 1])
    # The redundant leading-column bound lets the optimizer choose a range scan.
    return f"({q[0]} {lead} %s AND ({' OR '.join(terms)}))", [key[0]] + params


def range_where(cols: Sequence[str], lo: Key | None, hi: Key | None,
                quote: Callable[[str], str] = quote_mysql) -> tuple[str, list[Any]]:
    """WHERE clause for keys in (lo, hi]; an open side is None. `quote` quotes a column name
    (`ferry verify` builds the same clause for the warehouse).

    A bound may be a prefix of the key: (ts,) as a lower bound means every key whose
    first column is above ts, whatever the rest (the lookback and `watermark set` use it).
    A NULL never satisfies a comparison, so rows whose cursor is NULL are never in a range.
    """
    parts: list[str] = []
    params: list[Any] = []
    if lo is not None:
        sql, p = _keyset(cols[:len(lo)], lo, ">", ">", ">=", quote)
        parts.append(sql)
        params += p
    if hi is not None:
        sql, p = _keyset(cols[:len(hi)], hi, "<", "<=", "<=", quote)
        parts.append(sql)
        params += p
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


def _order(cols: Sequence[str], desc: bool = False) -> str:
    return ", ".join(quote_mysql(c) + (" DESC" if desc else "") for c in cols)


def key_at(conn: Any, table_key: str, cols: Sequence[str], lo: Key | None, hi: Key | None,
           offset: int, desc: bool = False) -> Key | None:
    """The key `offset` rows into (lo, hi] in key order (or from the top with desc)."""
    where, params = range_where(cols, lo, hi)
    sql = (f"SELECT {', '.join(quote_mysql(c) for c in cols)} FROM {qualified(table_key)}{where}"
           f" ORDER BY {_order(cols, desc)} LIMIT 1 OFFSET {int(offset)}")
    rows = _fetch(conn, sql, params)
    return tuple(rows[0]) if rows else None


def plan_bounds(conn: Any, table_key: str, cols: Sequence[str], lo: Key | None,
                chunk_rows: int, run_hi: Key | None) -> list[tuple[Key | None, Key]]:
    """Chunk ranges (lo, hi] of about chunk_rows rows each up to the run's fixed upper
    bound run_hi, found by probing the key index (no MIN/MAX stride)."""
    if run_hi is None or key_at(conn, table_key, cols, lo, run_hi, 0) is None:
        return []
    return next_bounds(conn, table_key, cols, lo, chunk_rows, run_hi)[0]


def next_bounds(conn: Any, table_key: str, cols: Sequence[str], lo: Key | None, chunk_rows: int,
                run_hi: Key, deadline: float | None = None,
                rows_left: int | None = None) -> tuple[list[tuple[Key | None, Key]], bool]:
    """The next chunk ranges after lo, up to run_hi: all of them, or (with a deadline, a
    time.monotonic() value) those found by then, at least one. With rows_left (a --limit),
    the ranges stop after that many rows: the last one ends at the rows_left-th key. Returns
    (ranges, done): done when the last range ends the plan. The ranges tile their span
    without gap or overlap whatever rows are written or deleted meanwhile: every key falls
    in exactly one."""
    found: list[tuple[Key | None, Key]] = []
    cur = lo
    while True:
        last = rows_left is not None and rows_left <= chunk_rows
        edge = key_at(conn, table_key, cols, cur, run_hi, (rows_left if last else chunk_rows) - 1)
        if edge is None or edge == run_hi:
            found.append((cur, run_hi))
            return found, True
        found.append((cur, edge))
        if last:
            return found, True
        cur = edge
        if rows_left is not None:
            rows_left -= chunk_rows
        if deadline is not None and time.monotonic() >= deadline:
            return found, False


def indexes_leading_with(conn: Any, table: TableSettings, column: str) -> list[str]:
    """Names of the table's indexes whose first column is `column`."""
    rows = _fetch(conn, "SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema = %s"
                  " AND table_name = %s AND seq_in_index = 1 AND column_name = %s",
                  (table.schema, table.name, column))
    return [r[0].decode() if isinstance(r[0], (bytes, bytearray)) else r[0] for r in rows]


def count_null(conn: Any, table_key: str, column: str) -> int:
    """Rows whose cursor column is NULL: never in a keyset range, so reported instead."""
    rows = _fetch(conn, f"SELECT COUNT(*) FROM {qualified(table_key)} WHERE {quote_mysql(column)} IS NULL", ())
    return int(rows[0][0])


def datetime_zone(conn: Any, configured: str | None) -> tuple[str, Any]:
    """(name, tzinfo) of the zone DATETIME values are written in: the configured one, else
    the server's @@global.time_zone. tzinfo is None when Python cannot resolve the name,
    and always for SYSTEM: @@system_time_zone is only an abbreviation ('CET', 'EDT') that
    does not say which rules apply. Then MySQL converts the clock (see clock())."""
    if configured:
        return configured, zones.resolve(configured)
    name, system = _fetch(conn, "SELECT @@global.time_zone, @@system_time_zone", ())[0]
    name = name.decode() if isinstance(name, (bytes, bytearray)) else str(name)
    if name.upper() == "SYSTEM":
        system = system.decode() if isinstance(system, (bytes, bytearray)) else str(system or "")
        return f"SYSTEM ({system})", timezone.utc if system.upper() in ("UTC", "GMT") else None
    return name, zones.resolve(name)


def clock(conn: Any, for_timestamp_column: bool, configured_zone: str | None = None) -> Any:
    """The source's current time as its cursor values are written.

    TIMESTAMP values arrive in the session's zone (UTC); DATETIME values are naive, written
    in the zone the source config names (datetime_time_zone), else the server's zone.
    """
    if for_timestamp_column:
        return _fetch(conn, "SELECT NOW(6)", ())[0][0]
    name, zone = datetime_zone(conn, configured_zone)
    if zone is not None:
        return zones.to_local(_fetch(conn, "SELECT UTC_TIMESTAMP(6)", ())[0][0], zone)
    # A name only the server knows (its time zone tables): let it convert.
    target = "@@global.time_zone" if configured_zone is None else "%s"
    now = _fetch(conn, f"SELECT CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', {target})",
                 (configured_zone,) if configured_zone else ())[0][0]
    if now is None:
        raise SchemaError(f"source cannot convert to time zone {name}: use an offset like "
                          f"'+01:00' or an IANA name like 'Europe/Paris' in datetime_time_zone")
    return now


def _row_fetcher(conn: Any) -> Callable[[], Any] | None:
    """The C extension's own fetch_row, or None on the pure-Python protocol.

    CMySQLConnection.get_rows (behind fetchmany) copies every row into a list and back
    into a tuple; calling fetch_row directly, in a C-level islice loop, halves the
    fetch time. The cursor still owns the result: it sees the end and frees it.
    """
    cmysql = getattr(conn, "_cmysql", None)
    fetch_row = getattr(cmysql, "fetch_row", None)
    return fetch_row if callable(fetch_row) else None


def _connector_error(exc: Exception) -> Exception:
    """The C extension's raw MySQLInterfaceError as the connector's own error class."""
    if hasattr(exc, "errno"):
        return get_mysql_exception(exc.errno, msg=getattr(exc, "msg", str(exc)),
                                   sqlstate=getattr(exc, "sqlstate", None))
    return mysql.connector.errors.InterfaceError(msg=str(exc))


def read_range(conn: Any, table_key: str, columns: Sequence[str], cols: Sequence[str],
               lo: Key | None, hi: Key | None, batch_rows: int,
               select: Sequence[str] | None = None, batch_bytes: int | None = None) -> Iterator[Rows]:
    """Stream the rows of (lo, hi] as raw bytes, batches of at most batch_rows rows (unbuffered
    cursor) and, with batch_bytes, of about that many bytes of values: the first batches are
    small and grow while rows are narrow, so a table of 1 MB values never holds batch_rows of
    them at once.

    `select` gives the SELECT expression of each column (default: the column itself).
    If the stream fails or is abandoned, the connection is left mid-result: the caller
    must close it, not reuse it.
    """
    where, params = range_where(cols, lo, hi)
    exprs = select or [quote_mysql(c) for c in columns]
    sql = f"SELECT {', '.join(exprs)} FROM {qualified(table_key)}{where} ORDER BY {_order(cols)}"
    cur = conn.cursor(raw=True)
    cur.execute(sql, tuple(params))
    fetch_row = _row_fetcher(conn)
    size = 1 if batch_bytes else batch_rows  # grows 8-fold a batch while rows are narrow
    while True:
        try:
            rows = list(islice(iter(fetch_row, None), size)) if fetch_row else cur.fetchmany(size)
        except MySQLInterfaceError as exc:
            raise _connector_error(exc) from exc
        if not rows:
            break
        yield rows
        if batch_bytes:
            size = _next_batch_size(rows, size, batch_rows, batch_bytes)
    if fetch_row:
        cur.fetchall()  # reaches the end through the connector, which frees the result
    cur.close()


def _next_batch_size(rows: Rows, size: int, batch_rows: int, batch_bytes: int) -> int:
    """Rows for the next batch: batch_bytes over the widest row of a sample of this batch (as
    held in memory), growing at most 8-fold a batch, never above batch_rows."""
    sample = rows[:: max(1, len(rows) // 64)]
    # A value costs its bytes plus a Python bytes object (about 41 bytes) while it is held.
    widest = max((sum(41 + len(v) if v is not None else 8 for v in row) for row in sample), default=1)
    return max(1, min(batch_rows, size * 8, batch_bytes // max(widest, 1)))


def select_expression(column: str, kind: str, arrow: str) -> str:
    """How a column is selected for extraction.

    FLOAT goes through DOUBLE: the text protocol prints a FLOAT with 6 significant
    digits (123456792 arrives as 123457000), a DOUBLE with all of them.
    """
    q = quote_mysql(column)
    return f"({q} + 0E0)" if kind == "float" and arrow == "float32" else q
