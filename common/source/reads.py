"""A chunk's rows streamed from the source in batches bounded in rows and bytes, raw
(the driver converts nothing: common/source/convert.py does, in bulk); and rows read by
key (reconcile's repairs)."""
from __future__ import annotations

from itertools import islice
from typing import Any, Callable, Iterator, Sequence

import mysql.connector
from mysql.connector.errors import get_mysql_exception

from common.model.bounds import Key
from common.model.naming import quote_mysql
from common.model.types import ColumnSpec
from common.model import row_filter as filters
from common.source.catalog import qualified
from common.source.probes import order_by, range_where


try:  # the C extension's raw error type; absent on the pure-Python protocol
    from _mysql_connector import MySQLInterfaceError
except ImportError:  # pragma: no cover
    class MySQLInterfaceError(Exception):  # type: ignore[no-redef]
        """Stand-in so the except clause below stays valid without the C extension."""


Rows = list[tuple[Any, ...]]


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
               select: Sequence[str] | None = None, batch_bytes: int | None = None,
               where: str | None = None) -> Iterator[Rows]:
    """Stream the rows of (lo, hi] as raw bytes, batches of at most batch_rows rows (unbuffered
    cursor) and, with batch_bytes, of about that many bytes of values: the first batches are
    small and grow while rows are narrow, so a table of 1 MB values never holds batch_rows of
    them at once.

    `select` gives the SELECT expression of each column (default: the column itself);
    `where` is the table's filter. If the stream fails or is abandoned, the connection is
    left mid-result: the caller must close it, not reuse it.
    """
    clause, params = range_where(cols, lo, hi, where=where)
    exprs = select or [quote_mysql(c) for c in columns]
    sql = f"SELECT {', '.join(exprs)} FROM {qualified(table_key)}{clause} ORDER BY {order_by(cols)}"
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


def read_keys(conn: Any, table_key: str, select: Sequence[str], key: Sequence[str],
              keys: Sequence[Key], batch_rows: int, where: str | None = None) -> Iterator[Rows]:
    """The rows with these keys (any order) that the filter `where` selects, raw, in batches
    of at most batch_rows keys (reconcile's repairs). Each batch is one query and is read whole."""
    table = qualified(table_key)
    match = "(" + " AND ".join(f"{quote_mysql(c)} = %s" for c in key) + ")"
    for start in range(0, len(keys), batch_rows):
        some = keys[start:start + batch_rows]
        match_any = (f"{quote_mysql(key[0])} IN ({', '.join(['%s'] * len(some))})" if len(key) == 1
                     else " OR ".join([match] * len(some)))
        cur = conn.cursor(raw=True)
        try:
            also = f" AND {filters.term(where)}" if where else ""
            cur.execute(f"SELECT {', '.join(select)} FROM {table} WHERE ({match_any}){also}",
                        tuple(v for k in some for v in k))
            rows = cur.fetchall()
        finally:
            cur.close()
        if rows:
            yield rows


def _next_batch_size(rows: Rows, size: int, batch_rows: int, batch_bytes: int) -> int:
    """Rows for the next batch: batch_bytes over the widest row of a sample of this batch (as
    held in memory), growing at most 8-fold a batch, never above batch_rows."""
    sample = rows[:: max(1, len(rows) // 64)]
    # A value costs its bytes plus a Python bytes object (about 41 bytes) while it is held.
    widest = max((sum(41 + len(v) if v is not None else 8 for v in row) for row in sample), default=1)
    return max(1, min(batch_rows, size * 8, batch_bytes // max(widest, 1)))


def select_expression(col: ColumnSpec) -> str:
    """How a column is selected for extraction: its own read (`col.read`: a type override's
    or a hash's text), else the column.

    FLOAT goes through DOUBLE: the text protocol prints a FLOAT with 6 significant
    digits (123456792 arrives as 123457000), a DOUBLE with all of them.
    """
    q = quote_mysql(col.source)
    if col.read:
        return col.read.format(q)
    return f"({q} + 0E0)" if col.kind == "float" and col.arrow == "float32" else q
