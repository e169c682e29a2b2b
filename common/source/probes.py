"""Keyset probes on the source's key index: range predicates, the key at an offset, chunk
bounds, and counts."""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from common.model.bounds import Key
from common.model.naming import quote_mysql
from common.source.connection import fetch
from common.errors import SchemaError
from common.model import row_filter as filters
from common.source.catalog import qualified


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
                quote: Callable[[str], str] = quote_mysql, where: str | None = None) -> tuple[str, list[Any]]:
    """WHERE clause for keys in (lo, hi]; an open side is None. `quote` quotes a column name
    (`ferry verify` builds the same clause for the warehouse). `where`: the table's filter
    (common/model/row_filter.py), ANDed as one parenthesised term.

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
    if where:
        parts.append(filters.term(where))
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


def order_by(cols: Sequence[str], desc: bool = False) -> str:
    return ", ".join(quote_mysql(c) + (" DESC" if desc else "") for c in cols)


def key_at(conn: Any, table_key: str, cols: Sequence[str], lo: Key | None, hi: Key | None,
           offset: int, desc: bool = False, where: str | None = None) -> Key | None:
    """The key `offset` rows into (lo, hi] in key order (or from the top with desc), among the
    rows the filter `where` selects."""
    clause, params = range_where(cols, lo, hi, where=where)
    sql = (f"SELECT {', '.join(quote_mysql(c) for c in cols)} FROM {qualified(table_key)}{clause}"
           f" ORDER BY {order_by(cols, desc)} LIMIT 1 OFFSET {int(offset)}")
    rows = fetch(conn, sql, params)
    return tuple(rows[0]) if rows else None


def plan_bounds(conn: Any, table_key: str, cols: Sequence[str], lo: Key | None,
                chunk_rows: int, run_hi: Key | None, where: str | None = None) -> list[tuple[Key | None, Key]]:
    """Chunk ranges (lo, hi] of about chunk_rows rows each up to the run's fixed upper
    bound run_hi, found by probing the key index (no MIN/MAX stride)."""
    if run_hi is None or key_at(conn, table_key, cols, lo, run_hi, 0, where=where) is None:
        return []
    return next_bounds(conn, table_key, cols, lo, chunk_rows, run_hi, where=where)[0]


def next_bounds(conn: Any, table_key: str, cols: Sequence[str], lo: Key | None, chunk_rows: int,
                run_hi: Key, deadline: float | None = None,
                rows_left: int | None = None, where: str | None = None) -> tuple[list[tuple[Key | None, Key]], bool]:
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
        edge = key_at(conn, table_key, cols, cur, run_hi, (rows_left if last else chunk_rows) - 1, where=where)
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


def count_null(conn: Any, table_key: str, column: str, where: str | None = None) -> int:
    """Rows (that the filter selects) whose cursor column is NULL: never in a keyset range,
    so reported instead."""
    also = f" AND {filters.term(where)}" if where else ""
    rows = fetch(conn, f"SELECT COUNT(*) FROM {qualified(table_key)} WHERE {quote_mysql(column)} IS NULL{also}", ())
    return int(rows[0][0])




def existing_keys(conn: Any, table_key: str, cols: Sequence[str], keys: Sequence[Key],
                  batch: int = 500, where: str | None = None) -> set[int]:
    """The positions in `keys` of those the source has now (among the rows the filter selects:
    a row that left it counts as gone). The candidates are joined to the
    table in MySQL, so MySQL's own comparison (its collation, its types) decides what is the
    same key, never Python's."""
    found: set[int] = set()
    table = qualified(table_key)
    for start in range(0, len(keys), batch):
        some = keys[start:start + batch]
        rows = " UNION ALL ".join(
            "SELECT %s AS ferry_i, " + ", ".join(f"%s AS ferry_k{j}" for j in range(len(cols))) for _ in some)
        match = " AND ".join(f"t.{quote_mysql(c)} = c.ferry_k{j}" for j, c in enumerate(cols))
        params: list[Any] = []
        for i, key in enumerate(some):
            params += [start + i, *key]
        sql = f"SELECT c.ferry_i FROM ({rows}) c JOIN {table} t ON {match}" + (
            f" WHERE {filters.term(where)}" if where else "")
        found.update(int(r[0]) for r in fetch(conn, sql, params))
    return found


def check_filter(conn: Any, table_key: str, where: str) -> None:
    """Run the filter once on the server (LIMIT 0: no row is read); SchemaError names the table
    and quotes the server's message if it fails (an unknown column, a syntax error...)."""
    import mysql.connector

    cur = conn.cursor()
    try:
        cur.execute(f"SELECT 1 FROM {qualified(table_key)} WHERE {filters.term(where)} LIMIT 0")
        cur.fetchall()
    except mysql.connector.Error as exc:
        raise SchemaError(f"table {table_key}: where: {where!r} fails on the source: "
                          f"{getattr(exc, 'msg', None) or exc}") from None
    finally:
        cur.close()
