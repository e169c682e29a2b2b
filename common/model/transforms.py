"""Column transforms (`transform:` of a table): what each does to a column's target type,
how the worker applies it to Arrow batches before anything reaches S3, and the same
transform written in MySQL, so that `ferry verify` and `ferry reconcile` compare the
source's rows as the target holds them.

- hash: SHA-256 (lowercase hex, VARCHAR(64)) of the salt's bytes followed by the value's
  canonical bytes: the server's own text of it (the `read` expression, the same in the
  extraction and in verify), or a binary value's bytes. The salt comes from the environment
  variable the table's `salt_env` names; it is never written in a file. NULL stays NULL.
- hash_skip_first: N (text): the first N characters kept, the rest hashed as above.
- mask / mask: VALUE: every non-NULL value replaced by a constant of the column's type (0,
  FALSE, '****', 1970-01-01, an empty byte string; or VALUE). NULL stays NULL.
- null: every value NULL.
- truncate: N (text): the first N characters.

In the worker each is one vectorised step over the batch (pyarrow compute; SHA-256 by
DuckDB's sha256 over the whole column): no Python call per value.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from common.errors import ConfigError, SchemaError, TerminalError
from common.model.types import ColumnSpec, TableSchema

if TYPE_CHECKING:
    import pyarrow as pa

SALT_VARIABLE = "ferry_salt"
"""The MySQL session variable verify and reconcile set to the salt (as bytes)."""
HASH_CHARS = 64
TEXT_KINDS = ("string",)
_CANONICAL = {"int": "CAST({} + 0 AS CHAR)", "bit": "CAST({} + 0 AS CHAR)", "bool": "CAST({} AS CHAR)",
              "decimal": "CAST({} AS CHAR)", "float": "CAST({} AS CHAR)", "timestamp": "CAST({} AS CHAR)",
              "date": "CAST({} AS CHAR)", "string": "CONVERT({} USING utf8mb4)", "json": "CONVERT({} USING utf8mb4)"}
"""The text a hash reads of a value, by kind: the server's own (binary and geometry: the bytes)."""
_MASKS: dict[str, Any] = {"int": 0, "bit": 0, "decimal": 0, "float": 0, "bool": False, "string": "****",
                          "json": "{}", "date": "1970-01-01", "timestamp": "1970-01-01 00:00:00", "binary": ""}


def parse(table: str, column: str, value: Any) -> str:
    """A `transform:` entry as canonical text; ValueError-free: ConfigError names the table and
    column."""
    where = f"table {table}, transform of column {column!r}"
    if value in ("hash", "mask", "null"):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        (name, arg), = value.items()
        if name in ("hash_skip_first", "truncate"):
            if isinstance(arg, bool) or not isinstance(arg, int) or arg < (0 if name == "hash_skip_first" else 1):
                raise ConfigError(f"{where}: {name} takes a whole number of characters, not {arg!r}")
            return f"{name}:{arg}"
        if name == "mask":
            return "mask:" + json.dumps(arg)
    raise ConfigError(f"{where}: {value!r} is not a transform (hash, {{hash_skip_first: N}}, mask, "
                      f"{{mask: value}}, null, {{truncate: N}})")


_DEFAULT = object()
"""A `mask` without a value: the kind's own constant (_MASKS)."""


def _split(transform: str) -> tuple[str, Any]:
    name, _, arg = transform.partition(":")
    if name == "mask":
        return name, json.loads(arg) if arg else _DEFAULT
    return name, int(arg) if arg else None


def _text_target(chars: int, col: ColumnSpec) -> str:
    """VARCHAR of `chars` characters (4 bytes each), never wider than the column's own."""
    limit = col.max_bytes if col.kind == "string" and col.max_bytes else 65535
    return f"VARCHAR({min(max(4 * chars, 4), limit)})"


def shape(table: str, col: ColumnSpec, transform: str) -> ColumnSpec:
    """The column as the target holds it after `transform`; SchemaError names the table, the
    column and what the transform cannot do to it."""
    name, arg = _split(transform)
    where = f"table {table}, column {col.source} ({col.mysql_type})"
    base = replace(col, transform=transform, default=None)
    if name in ("hash", "hash_skip_first"):
        if name == "hash_skip_first" and col.kind not in TEXT_KINDS:
            raise SchemaError(f"{where}: hash_skip_first keeps characters of text; use hash for a {col.kind} column")
        binary = col.kind in ("binary", "geometry")
        target = f"VARCHAR({HASH_CHARS})" if name == "hash" else f"VARCHAR({4 * arg + HASH_CHARS})"
        return replace(base, kind="string", arrow="string", target=target, precision=0, scale=0,
                       read=col.read or (None if binary else _CANONICAL[col.kind]),
                       read_kind="binary" if binary else "string")
    if name == "truncate":
        if col.kind not in TEXT_KINDS:
            raise SchemaError(f"{where}: truncate cuts text; a {col.kind} column cannot be truncated")
        return replace(base, target=_text_target(arg, col))
    if name == "null":
        return replace(base, nullable=True)
    if col.kind == "geometry":
        raise SchemaError(f"{where}: a geometry has no constant to mask it with; use null or hash")
    value = _MASKS[col.kind] if arg is _DEFAULT else arg
    try:
        scalar = _mask_scalar(col, value)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise SchemaError(f"{where}: mask value {value!r} is not a {col.target} value: {exc}") from None
    if col.max_bytes is not None and isinstance(scalar, (str, bytes)) and len(
            scalar.encode() if isinstance(scalar, str) else scalar) > col.max_bytes:
        raise SchemaError(f"{where}: mask value {value!r} is longer than the column's {col.target}")
    return replace(base, transform="mask:" + json.dumps(value))


def _mask_scalar(col: ColumnSpec, value: Any) -> Any:
    """The mask as a Python value of the column's kind (ValueError if it is none)."""
    import pyarrow as pa

    kind = col.kind
    if kind in ("int", "bit"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("a whole number is needed")
        pa.scalar(value).cast(col.arrow_type())
        return value
    if kind == "decimal":
        d = Decimal(str(value))
        pa.scalar(d).cast(col.arrow_type())
        return d
    if kind == "float":
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError("true or false is needed")
        return value
    if kind == "date":
        return date.fromisoformat(str(value))
    if kind == "timestamp":
        return datetime.fromisoformat(str(value))
    if kind == "binary":
        if not isinstance(value, str):
            raise ValueError("hex text is needed")
        return bytes.fromhex(value)
    if kind == "json":
        json.loads(value if isinstance(value, str) else json.dumps(value))
        return value if isinstance(value, str) else json.dumps(value)
    if not isinstance(value, str):
        raise ValueError("text is needed")
    return value


def read_spec(col: ColumnSpec) -> ColumnSpec:
    """The column as the extraction reads and converts it, before its transform."""
    if not col.transform:
        return col
    name, _ = _split(col.transform)
    if name in ("hash", "hash_skip_first"):
        kind = col.read_kind or "string"
        return replace(col, kind=kind, arrow=kind if kind == "binary" else "string", target="",
                       transform=None, read_kind=None)
    if name == "truncate":
        return replace(col, target="", transform=None)
    return replace(col, transform=None)


def read_schema(schema: TableSchema) -> TableSchema:
    """The table as the extraction reads it (its columns before their transforms)."""
    if not schema.transformed:
        return schema
    return TableSchema(table=schema.table, columns=tuple(read_spec(c) for c in schema.columns), key=schema.key)


def needs_salt(col: ColumnSpec) -> bool:
    return bool(col.transform) and _split(col.transform)[0] in ("hash", "hash_skip_first")


def salt(table: Any, schema: TableSchema, environment: str = "") -> bytes | None:
    """The table's salt (its salt_env variable's value, as UTF-8 bytes), or None when no column
    of `schema` is hashed; TerminalError names the variable and the table when it is unset or
    empty (`environment` says whose environment was looked in)."""
    hashed = [c.source for c in schema.columns if needs_salt(c)]
    if not hashed:
        return None
    if not table.salt_env:
        raise TerminalError(f"table {table.key}: column {hashed[0]!r} is hashed, which needs a salt: set "
                            f"salt_env to the name of an environment variable that holds it")
    value = os.environ.get(table.salt_env)
    if not value:
        raise TerminalError(f"table {table.key}: column {hashed[0]!r} is hashed with the salt in environment "
                            f"variable {table.salt_env}, which is {'empty' if value == '' else 'not set'}"
                            f"{environment}")
    return value.encode()


# ---- in the worker: Arrow ------------------------------------------------------

_DUCK: list[Any] = []


def _duck() -> Any:
    """An in-memory DuckDB connection of this process (it hashes columns, nothing else)."""
    if not _DUCK:
        import duckdb
        con = duckdb.connect(":memory:", config={"threads": 1, "enable_external_access": False})
        _DUCK.append(con)
    return _DUCK[0]


def _column_query(sql: str, params: list[Any], values: "pa.Array") -> "pa.Table":
    """`sql` over the column `values` (as table t, column v) in this process's DuckDB."""
    import pyarrow as pa

    con = _duck()
    con.register("t", pa.table({"v": values}))
    try:
        return con.execute(sql, params).to_arrow_table()
    finally:
        con.unregister("t")


def _sha256(values: "pa.Array", salt: bytes, skip: int | None) -> "pa.Array":
    import pyarrow as pa

    if skip is None:
        data = "v" if pa.types.is_binary(values.type) else "encode(v)"
        sql = f"SELECT sha256(CAST(? AS BLOB) || {data}) FROM t"
    else:  # the first `skip` characters kept; the rest hashed
        sql = f"SELECT left(v, {int(skip)}) || sha256(CAST(? AS BLOB) || encode(substr(v, {int(skip) + 1}))) FROM t"
    return _column_query(sql, [salt], values).column(0).combine_chunks().cast(pa.string())


def invalid_json(text: "pa.Array") -> int | None:
    """The position of the first value of `text` that is not JSON (NULLs are fine), or None."""
    rows = _column_query("SELECT i FROM (SELECT row_number() OVER () - 1 AS i, v FROM t)"
                         " WHERE v IS NOT NULL AND NOT json_valid(v) ORDER BY i LIMIT 1", [], text)
    return rows.column(0)[0].as_py() if rows.num_rows else None


def apply_column(arr: "pa.Array", col: ColumnSpec, salt: bytes | None) -> "pa.Array":
    """One converted column (of read_spec(col)'s type) with col's transform applied."""
    import pyarrow as pa
    import pyarrow.compute as pc

    name, arg = _split(col.transform or "")
    if name in ("hash", "hash_skip_first"):
        if salt is None:
            raise TerminalError(f"column {col.source}: hashed without a salt")
        return _sha256(arr, salt, arg if name == "hash_skip_first" else None)
    if name == "truncate":
        return pc.utf8_slice_codeunits(arr, 0, arg)
    if name == "null":
        return pa.nulls(len(arr), col.arrow_type())
    if name == "mask":
        value = _mask_scalar(col, _MASKS[col.kind] if arg is _DEFAULT else arg)
        scalar = pa.scalar(value).cast(col.arrow_type())
        return pc.if_else(pc.is_null(arr), pa.scalar(None, col.arrow_type()), scalar)
    return arr


def apply(batch: "pa.RecordBatch", schema: TableSchema, salt: bytes | None) -> "pa.RecordBatch":
    """A batch read with read_schema(schema) as the table's own batch (its transforms applied)."""
    import pyarrow as pa

    if not schema.transformed:
        return batch
    arrays = [apply_column(batch.column(i), c, salt) if c.transform else batch.column(i)
              for i, c in enumerate(schema.columns)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema.arrow_schema())


# ---- in MySQL: verify and reconcile ---------------------------------------------

def _mysql_literal(col: ColumnSpec, value: Any) -> str:
    v = _mask_scalar(col, value)
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, Decimal):
        return f"CAST({v} AS DECIMAL({col.precision},{col.scale}))"
    if isinstance(v, (int, float)):
        return repr(v) if isinstance(v, float) else str(v)
    if isinstance(v, bytes):
        return f"X'{v.hex()}'"
    if isinstance(v, datetime):
        return f"CAST('{v.isoformat(sep=' ')}' AS DATETIME(6))"
    if isinstance(v, date):
        return f"CAST('{v.isoformat()}' AS DATE)"
    return "_utf8mb4 X'" + str(v).encode().hex() + "'"


def mysql_value(col: ColumnSpec, q: str) -> str:
    """The transformed value in MySQL, from `q` (the column, quoted), as the target holds it:
    what rowhash's canonical text is then computed from."""
    name, arg = _split(col.transform or "")
    canon = col.read.format(q) if col.read else q
    if name in ("hash", "hash_skip_first", "truncate") and (col.read_kind or "string") == "string":
        canon = f"REPLACE({canon}, CHAR(0 USING utf8mb4), '')"  # the extraction removes NULs from text
    salted = f"@{SALT_VARIABLE}"
    if name == "hash":
        return f"SHA2(CONCAT({salted}, {canon}), 256)"
    if name == "hash_skip_first":
        return (f"CONCAT(LEFT({canon}, {int(arg)}), SHA2(CONCAT({salted}, SUBSTRING({canon}, {int(arg) + 1})), 256))")
    if name == "truncate":
        return f"LEFT({canon}, {int(arg)})"
    if name == "null":
        return "NULL"
    if name == "mask":
        empty = f"{q} IS NULL"
        if col.kind in ("timestamp", "date"):  # a zero date is read as NULL, and stays NULL
            empty += f" OR YEAR({q}) = 0 OR MONTH({q}) = 0 OR DAYOFMONTH({q}) = 0"
        return f"CASE WHEN {empty} THEN NULL ELSE {_mysql_literal(col, _MASKS[col.kind] if arg is _DEFAULT else arg)} END"
    return canon


def describe(transform: str | None) -> str:
    return "no transform" if not transform else re.sub(r"^(\w+):", r"\1 ", transform)
