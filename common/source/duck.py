"""The columnar chunk reader: DuckDB's mysql extension reads a key range over the binary
protocol into Arrow record batches in C++ (no Python object per value, and the server
formats nothing as text), and each column becomes the type map's Arrow type with the same
checks as the connector's path (common/source/convert.py), so both readers write the same
Parquet.

How each column is read is data (READS, by the type map's kind, and TYPE_READS, by MySQL
type where a kind's types differ): the SELECT expression sent to the server and the
conversion of what DuckDB returns. A table with a column the tables do not cover, or rows
that could outgrow batch_mb in one DuckDB vector (2,048 rows), or a source with a setting
the extension cannot honour, is read by the connector (`why_not` says which).

The extension is the `duckdb-extension-mysql` wheel pinned beside `duckdb` in
requirements.txt, loaded from the package's own file (signed by DuckDB: unsigned
extensions stay disallowed, nothing is downloaded at run time).
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from importlib import metadata
from typing import Any, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from common.config.connections import SourceConfig
from common.errors import ConfigError, TerminalError, TransientError
from common.model.bounds import Key
from common.model.naming import quote_mysql
from common.model.types import ColumnSpec, TableSchema
from common.source.catalog import qualified
from common.source.convert import BatchStats, Oversize, bool_of, cast_to, convert_column, oversize_error
from common.source.probes import order_by, range_where

VECTOR_ROWS = 2048
"""DuckDB fills a vector of this many rows before it hands any on: the most it holds."""
PAGE_BATCHES = 8
"""A page (one statement, whose whole result the extension stores before handing on a row)
holds at most this many batches' worth of rows at their declared widths."""


@dataclass(frozen=True)
class Read:
    """How DuckDB reads one kind of column: the SELECT expression ({} is the quoted column)
    and how its Arrow array becomes the type map's (`as_raw`: the connector's own
    conversion of the values as bytes; `cast`: an Arrow cast, exact or an error; `bool`:
    0/1 checked as the connector's path does; `temporal`: zero dates counted, year 0 too)."""

    select: str
    convert: str


READS: dict[str, Read] = {
    "int": Read("{}", "cast"),
    "decimal": Read("{}", "cast"),  # decimal128 as declared; BIGINT UNSIGNED (uint64) -> decimal(20,0)
    "float": Read("{}", "cast"),  # FLOAT arrives as float32, DOUBLE as float64: exact
    "bool": Read("{}", "bool"),  # TINYINT(1) as int8 (mysql_tinyint1_as_boolean off)
    "timestamp": Read("{}", "temporal"),
    "date": Read("{}", "temporal"),
    "string": Read("{}", "as_raw"),  # NUL removal, oversize, UTF-8 as the connector's path
    "json": Read("{}", "as_raw"),  # DuckDB gives JSON as bytes
    "binary": Read("{}", "as_raw"),
    "geometry": Read("{}", "as_raw"),  # DuckDB gives MySQL's stored geometry as a BLOB
    "bit": Read("{} + 0", "cast"),  # a number (DuckDB gives BIT as big-endian bytes)
}
TYPE_READS: dict[str, Read] = {
    # DuckDB drops a TIME's zero fraction ('12:00:00' for TIME(6) '12:00:00.000000'):
    # the server's own text is the connector path's value.
    "time": Read("CAST({} AS CHAR)", "as_raw"),
}
FIXED_BYTES = 16
"""A fixed-width value's bytes, at most (numbers, dates, times) in the row-size bound."""
TEXT_BYTES = {"tinytext": 255, "text": 65_535, "mediumtext": 16_777_215, "longtext": 4_294_967_295,
              "json": 4_294_967_295, "tinyblob": 255, "blob": 65_535, "mediumblob": 16_777_215,
              "longblob": 4_294_967_295}
"""The most bytes one value of a MySQL type can hold (utf8mb4: 4 bytes a character)."""
OPTIONS = {"ssl_ca": "ssl_ca", "ssl_cert": "ssl_cert", "ssl_key": "ssl_key", "ssl_cipher": "ssl_cipher",
           "ssl_capath": "ssl_capath", "ssl_crl": "ssl_crl", "ssl_crlpath": "ssl_crlpath"}
"""mysql.connector options of a source that the extension's connection takes, by its name."""
SSL_MODES = ("ssl_disabled", "ssl_verify_cert", "ssl_verify_identity")


def read_of(col: ColumnSpec) -> Read | None:
    """How DuckDB reads the column (None: it cannot, exactly). A column with its own read (a
    type override's or a hash's text: `col.read`) is read as the server writes it."""
    if col.read:
        return Read(col.read, "as_raw")
    base = re.match(r"[a-z]+", col.mysql_type)
    return TYPE_READS.get(base.group(0) if base else "") or READS.get(col.kind)


def value_bytes(col: ColumnSpec) -> int:
    """The most bytes one value of the column can take in DuckDB's vector."""
    base = re.match(r"([a-z]+)(?:\((\d+)\))?", col.mysql_type)
    name, n = (base.group(1), base.group(2)) if base else ("", None)
    if name in TEXT_BYTES:
        return TEXT_BYTES[name]
    if name in ("char", "varchar") and n:
        return 4 * int(n)
    if name in ("binary", "varbinary") and n:
        return int(n)
    if name in ("enum", "set") or col.kind in ("string", "geometry"):
        return col.max_bytes or FIXED_BYTES
    return FIXED_BYTES


def why_not(src: SourceConfig, schema: TableSchema, batch_bytes: int) -> str | None:
    """Why the connector reads this table instead (None: DuckDB reads it)."""
    if src.read_timeout_s:
        return "the source sets read_timeout_s, which the extension has no counterpart for"
    if src.max_execution_time_ms:
        return ("the source sets max_execution_time_ms: the extension reports a statement the server "
                "stopped with no error code, so it could not be told from a KILL QUERY")
    other = sorted(set(src.options) - set(OPTIONS) - set(SSL_MODES))
    if other:
        return f"the source's option(s) {', '.join(other)} have no counterpart in the extension"
    for col in schema.columns:
        if read_of(col) is None:
            return f"column {col.source} ({col.mysql_type}) has no exact DuckDB read"
    widest = sum(value_bytes(c) for c in schema.columns)
    if widest * VECTOR_ROWS > batch_bytes:
        return (f"a row can hold {widest:,} bytes and DuckDB holds {VECTOR_ROWS:,} rows at once, more than "
                f"batch_mb allows")
    return None


# ---- the extension ---------------------------------------------------------------

def versions() -> tuple[str, str]:
    """(DuckDB's version, the mysql extension package's version)."""
    import duckdb

    try:
        ext = metadata.version("duckdb-extension-mysql")
    except metadata.PackageNotFoundError:
        ext = "not installed"
    return duckdb.__version__, ext


def check_versions() -> None:
    """The extension is built for one DuckDB version: a mismatch is a configuration error
    naming both (raised at worker start)."""
    duck, ext = versions()
    if duck != ext:
        raise ConfigError(f"DuckDB {duck} with duckdb-extension-mysql {ext}: the mysql extension must be built "
                          f"for the DuckDB in use; install the pair pinned in requirements.txt")


_EXT_DIR: str | None = None


def extension_file() -> str:
    """The extension's file, under the name DuckDB derives its entry point from
    (mysql_scanner), linked once per process into a private directory."""
    global _EXT_DIR
    import duckdb_extension_mysql

    duck, _ = versions()
    shipped = os.path.join(os.path.dirname(duckdb_extension_mysql.__file__), "extensions", f"v{duck}",
                           "mysql.duckdb_extension")
    if not os.path.exists(shipped):
        check_versions()
        raise ConfigError(f"duckdb-extension-mysql has no extension for DuckDB {duck} ({shipped} is missing)")
    if _EXT_DIR is None or not os.path.exists(os.path.join(_EXT_DIR, "mysql_scanner.duckdb_extension")):
        _EXT_DIR = tempfile.mkdtemp(prefix="ferry-duckdb-")
        os.symlink(shipped, os.path.join(_EXT_DIR, "mysql_scanner.duckdb_extension"))
    return os.path.join(_EXT_DIR, "mysql_scanner.duckdb_extension")


SETTINGS = {
    "mysql_session_time_zone": "'+00:00'",  # as the connector's sessions: TIMESTAMP unshifted
    "mysql_tinyint1_as_boolean": "false",  # ferry checks TINYINT(1) is 0/1 itself
    "mysql_bit1_as_boolean": "false",
    "mysql_incomplete_dates_as_nulls": "true",  # 2024-00-10 and 0000-00-00 as NULL (counted here)
    "mysql_query_timeout_enabled": "false",  # no MAX_EXECUTION_TIME hint of its own
    "mysql_sql_buffer_result": "false",  # no server-side temporary copy of the result
    "mysql_enable_transactions": "false",  # autocommit reads, as the connector's
    "mysql_pool_size": "1",  # one read at a time per process
}


def _literal(v: Any) -> str:
    return "'" + str(v).replace("'", "''") + "'"


def connect(src: SourceConfig, host: str, port: int) -> Any:
    """A DuckDB connection with the source attached as `src` (through host:port: the source,
    or the local end of its tunnel); credentials in a session secret, not the ATTACH string."""
    import duckdb

    con = duckdb.connect(config={"threads": 1, "allow_unsigned_extensions": False,
                                 "autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        con.execute(f"LOAD {_literal(extension_file())}")
        for name, value in SETTINGS.items():
            con.execute(f"SET {name} = {value}")
        fields = {"HOST": host, "PORT": int(port), "USER": src.user, "PASSWORD": src.password}
        if src.database:
            fields["DATABASE"] = src.database
        for opt, name in OPTIONS.items():
            if opt in src.options:
                fields[name.upper()] = src.options[opt]
        if src.options.get("ssl_disabled"):
            fields["SSL_MODE"] = "disabled"
        elif src.options.get("ssl_verify_identity"):
            fields["SSL_MODE"] = "verify_identity"
        elif src.options.get("ssl_verify_cert"):
            fields["SSL_MODE"] = "verify_ca"
        body = ", ".join(f"{k} {v if isinstance(v, int) else _literal(v)}" for k, v in fields.items())
        con.execute(f"CREATE SECRET ferry_source (TYPE mysql, {body})")
        # compress off: compression cost the server about 5x the CPU of the read itself.
        con.execute("ATTACH 'compress=0' AS src (TYPE mysql, SECRET ferry_source, READ_ONLY)")
    except Exception as exc:
        con.close()
        raise classify(exc, f"source {src.user}@{src.host}:{src.port}") from exc
    return con


_TERMINAL = re.compile(r"access denied|unknown database|command denied|unknown column|doesn't exist|"
                       r"syntax|authentication", re.IGNORECASE)


def classify(exc: BaseException, where: str) -> BaseException:
    """A DuckDB error as ferry's: the extension reports the server's message, not its code.
    What retrying cannot fix (access, a missing table or column) is terminal; the rest (a lost
    connection, a killed query, a server restarting) transient."""
    module = type(exc).__module__ or ""
    if not module.startswith(("duckdb", "_duckdb")):
        return exc
    text = str(exc).strip()
    if _TERMINAL.search(text):
        return TerminalError(f"MySQL (DuckDB reader), {where}: {text}")
    return TransientError(f"MySQL (DuckDB reader), {where}: {text or type(exc).__name__}")


# ---- a chunk's read ----------------------------------------------------------------

def _flag(col: ColumnSpec) -> bool:
    """A nullable date or time column is read with its IS NULL beside it: DuckDB gives a
    zero date as NULL, and the count of zero dates is told from real NULLs by it."""
    return col.kind in ("timestamp", "date") and col.nullable


def range_sql(table_key: str, schema: TableSchema, cols: Sequence[str], lo: Key | None, hi: Key | None,
              mariadb: bool, where: str | None = None) -> tuple[str, list[Any]]:
    """The chunk's SELECT as the server gets it, with ferry's session settings in the
    statement (the extension's pooled connection is not ferry's to set up)."""
    exprs = []
    for c in schema.columns:
        read = read_of(c)
        assert read is not None  # why_not() said so
        q = quote_mysql(c.source)
        exprs.append(read.select.format(q))
        if _flag(c):
            exprs.append(f"{q} IS NULL")
    # (The filter's own % signs doubled: _inline reads %% as one.)
    clause, params = range_where(cols, lo, hi, where=where.replace("%", "%%") if where else None)
    sql = f"SELECT {', '.join(exprs)} FROM {qualified(table_key)}{clause} ORDER BY {order_by(cols)}"
    if mariadb:
        sql = f"SET STATEMENT net_write_timeout = 600 FOR {sql}"
    return sql, params


def _inline(sql: str, params: Sequence[Any]) -> str:
    """The range's bounds written into the statement (mysql_query takes no parameters)."""
    values = iter(params)
    text = re.sub(r"%([%s])", lambda m: "%" if m.group(1) == "%" else _mysql_literal(next(values)), sql)
    if next(values, _END) is not _END:
        raise ValueError(f"more parameters than placeholders in {sql!r}")
    return text


_END = object()


def _mysql_literal(v: Any) -> str:
    """A bound as a MySQL literal that means the same under any sql_mode: numbers bare (a
    DECIMAL exact, never through a string), text as hex with its character set (no escaping
    to get wrong; the column's collation compares it), times quoted."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, Decimal)):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return "X'" + bytes(v).hex() + "'"
    if isinstance(v, str):
        return "_utf8mb4 X'" + v.encode().hex() + "'"
    if isinstance(v, datetime):
        return "'" + v.isoformat(sep=" ") + "'"
    if isinstance(v, date):
        return "'" + v.isoformat() + "'"
    return "_utf8mb4 X'" + str(v).encode().hex() + "'"


def read_range(con: Any, table_key: str, schema: TableSchema, cols: Sequence[str], lo: Key | None,
               hi: Key | None, batch_rows: int, batch_bytes: int, stats: BatchStats, mariadb: bool,
               truncate: bool = False, where: str | None = None) -> Iterator[pa.RecordBatch]:
    """Stream the rows of (lo, hi] that the filter `where` selects as record batches of the
    table's Arrow schema, at most batch_rows rows and about batch_bytes of values each.

    The extension stores a statement's whole result in the client before it hands on a
    row (mysql_stmt_store_result), so the range is read in keyset pages (`... ORDER BY key
    LIMIT n`, the next page after the last key read): a worker holds one page of at most
    PAGE_BATCHES x batch_bytes at the columns' declared widths, not the chunk, whatever
    chunk_rows is. (Each page costs a few statements: pages of one batch read bench.orders
    at about half the speed; at 8 batches a chunk of bench.orders is one page.)"""
    widest = max(1, sum(value_bytes(c) for c in schema.columns))
    rows = max(VECTOR_ROWS, min(batch_rows, batch_bytes // widest))
    page = max(rows, PAGE_BATCHES * batch_bytes // widest)
    arrow_schema = schema.arrow_schema()
    at = _positions(schema)
    key_at = [at[[c.source for c in schema.columns].index(k)] for k in cols]
    page_lo = lo
    try:
        while True:
            sql, params = range_sql(table_key, schema, cols, page_lo, hi, mariadb, where)
            reader = con.execute("SELECT * FROM mysql_query('src', ?)",
                                 [_inline(f"{sql} LIMIT {page}", params)]).to_arrow_reader(rows)
            got, last = 0, None
            for batch in reader:
                if batch.num_rows:
                    got, last = got + batch.num_rows, batch
                    yield to_batch(batch, schema, arrow_schema, at, stats, truncate)
            if got < page:  # (a full page has a last batch)
                return
            page_lo = tuple(last.column(i)[last.num_rows - 1].as_py() for i in key_at)
    except Exception as exc:
        raise classify(exc, f"table {table_key}") from exc


def to_batch(batch: pa.RecordBatch, schema: TableSchema, arrow_schema: pa.Schema, at: Sequence[int],
             stats: BatchStats, truncate: bool = False) -> pa.RecordBatch:
    """One DuckDB batch (a column per SELECT expression; `at`: _positions) as the table's record batch."""
    try:
        arrays = [_convert(batch.column(i), batch.column(i + 1) if _flag(spec) else None, spec, schema.table,
                           stats, truncate) for i, spec in zip(at, schema.columns)]
    except Oversize as exc:
        row, names = exc.index, [c.source for c in schema.columns]
        raise oversize_error(schema, exc, lambda k: str(batch.column(at[names.index(k)])[row].as_py())) from None
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema)


def _positions(schema: TableSchema) -> list[int]:
    """Where each column's values are in DuckDB's batch (a flagged column's IS NULL follows it)."""
    out, i = [], 0
    for c in schema.columns:
        out.append(i)
        i += 2 if _flag(c) else 1
    return out


def _convert(arr: pa.Array, flag: pa.Array | None, spec: ColumnSpec, table: str, stats: BatchStats,
             truncate: bool) -> pa.Array:
    how = read_of(spec).convert  # type: ignore[union-attr]
    if how == "as_raw":
        raw = arr if pa.types.is_binary(arr.type) else arr.cast(pa.binary())
        return convert_column(raw, spec, table, stats, truncate)
    if how == "bool":
        return bool_of(arr.cast(pa.int16()), spec, table)
    if how == "temporal":
        return _temporal(arr, flag, spec, table, stats)
    return cast_to(arr, spec, table)


def _temporal(arr: pa.Array, flag: pa.Array | None, spec: ColumnSpec, table: str, stats: BatchStats) -> pa.Array:
    """Zero dates (DuckDB gives NULL; a year 0 with a month and day it keeps) become NULL and
    are counted, as the connector's path does."""
    zero = 0
    if arr.null_count:
        if flag is None:  # NOT NULL: every NULL was a zero date
            zero += arr.null_count
        else:
            zero += pc.sum(pc.and_(pc.is_null(arr), pc.equal(flag, 0))).as_py() or 0
    year0 = pc.equal(pc.year(arr), 0)
    n0 = pc.sum(year0).as_py() or 0
    if n0:
        zero += n0
        arr = pc.if_else(year0, pa.scalar(None, arr.type), arr)
    if zero:
        stats.zero_dates[spec.name] = stats.zero_dates.get(spec.name, 0) + zero
    return cast_to(arr, spec, table)
