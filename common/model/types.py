"""The type map: MySQL column -> Arrow/Parquet type -> warehouse type (DESIGN.md, Types)."""
from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from common.errors import SchemaError
from common.model.naming import column_name

if TYPE_CHECKING:
    import pyarrow as pa

MAX_DECIMAL_PRECISION = 38
MAX_VARCHAR = 65535
# Redshift, VARBYTE type: "The maximum number of bytes (n) can range from 1 – 16,777,216"
# (https://docs.aws.amazon.com/redshift/latest/dg/r_VARBYTE_type.html).
MAX_VARBYTE = 16_777_216

_SIGNED = {"tinyint": ("int8", "SMALLINT"), "smallint": ("int16", "SMALLINT"),
           "mediumint": ("int32", "INTEGER"), "int": ("int32", "INTEGER"),
           "integer": ("int32", "INTEGER"), "bigint": ("int64", "BIGINT")}
_UNSIGNED = {"tinyint": ("int16", "SMALLINT"), "smallint": ("int32", "INTEGER"),
             "mediumint": ("int32", "INTEGER"), "int": ("int64", "BIGINT"),
             "integer": ("int64", "BIGINT")}
_TEXT = {"tinytext", "text", "mediumtext", "longtext", "json"}
# JSON travels as Parquet text, staged as VARBYTE on Redshift (VARCHAR would stop at 65,535
# bytes) and JSON_PARSE'd into SUPER: "An individual SUPER object can hold up to 16 MB of
# data. ... Any string literal stored in a single SUPER object is limited to 16,000,000
# bytes" (https://docs.aws.amazon.com/redshift/latest/dg/limitations-super.html); JSON_PARSE
# takes "serialized JSON as a VARBYTE or VARCHAR type" (JSON_PARSE.html). The lower figure,
# so that no document ferry lets through is refused by the COPY.
MAX_JSON_BYTES = 16_000_000
JSON_STAGING_BYTES = MAX_JSON_BYTES
_BLOB = {"tinyblob": 255, "blob": 65535, "mediumblob": 16_777_215, "longblob": MAX_VARBYTE}
# MySQL's spatial types travel as EWKB (the SRID inside) and land as GEOMETRY on Redshift:
# "The maximum size of a GEOMETRY object is 1,048,447 bytes" (r_ALTER_TABLE.html, column_type).
_GEOMETRY = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
             "geometrycollection", "geomcollection"}
MAX_GEOMETRY = 1_048_447


@functools.cache
def _arrow(name: str) -> "pa.DataType":
    """The Arrow type of a type-map name (pyarrow is imported on first use: the CLI's
    commands that never touch Arrow start faster)."""
    import pyarrow as pa
    return {"int8": pa.int8, "int16": pa.int16, "int32": pa.int32, "int64": pa.int64, "bool": pa.bool_,
            "float32": pa.float32, "float64": pa.float64, "timestamp[us]": lambda: pa.timestamp("us"),
            "date32": pa.date32, "string": pa.string, "binary": pa.binary}[name]()


@dataclass(frozen=True)
class ColumnSpec:
    """One column's journey: its source name and type, how it is converted, where it lands."""

    source: str
    name: str
    mysql_type: str
    kind: str
    arrow: str
    target: str
    nullable: bool = True
    precision: int = 0
    scale: int = 0
    default: str | None = None
    """The source's constant DEFAULT as a warehouse SQL literal (None: NULL, or an expression
    such as CURRENT_TIMESTAMP that cannot be repeated); used when the column is added later."""
    read: str | None = None
    """The column's SELECT expression when it is not the column itself ('{}' stands for it): the
    server's text of the value, for a type override to text (common/model/overrides.py) or the
    input of a hash (common/model/transforms.py). Both readers and `ferry verify` use it."""
    read_kind: str | None = None
    """A transformed column: the kind of the value as read, before the transform."""
    transform: str | None = None
    """The column's transform as text (hash, hash_skip_first:N, mask, mask:<json>, null,
    truncate:N): applied by the worker to the Arrow batches (common/model/transforms.py)."""

    @property
    def max_bytes(self) -> int | None:
        """The byte limit of a VARCHAR(n)/VARBYTE(n) target (a JSON value: its staging
        VARCHAR's), else None."""
        if self.kind == "json":
            return JSON_STAGING_BYTES
        if self.kind == "geometry":
            return MAX_GEOMETRY
        m = re.fullmatch(r"(VARCHAR|VARBYTE)\((\d+)\)", self.target)
        return int(m.group(2)) if m else None

    def arrow_type(self) -> "pa.DataType":
        if self.arrow.startswith("decimal"):
            import pyarrow as pa
            return pa.decimal128(self.precision, self.scale)
        return _arrow(self.arrow)


@dataclass(frozen=True)
class TableSchema:
    """The recorded mapping of a table: columns in source order and the keyset columns."""

    table: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]

    def arrow_schema(self) -> "pa.Schema":
        # Every field is optional: a NOT NULL DATETIME can still hold a zero date -> NULL.
        import pyarrow as pa
        return pa.schema([pa.field(c.name, c.arrow_type()) for c in self.columns])

    def column(self, source: str) -> ColumnSpec:
        for c in self.columns:
            if c.source == source:
                return c
        raise SchemaError(f"table {self.table}: no column {source!r}")

    def shape(self) -> tuple[object, ...]:
        """What the target depends on: names, types and key (not nullability)."""
        return self.key, tuple((c.source, c.name, c.kind, c.arrow, c.target, c.read, c.transform)
                               for c in self.columns)

    @property
    def transformed(self) -> bool:
        return any(c.transform for c in self.columns)

    def key_only(self) -> "TableSchema":
        """The mapping cut to its key columns (a reconcile's deletes hold only keys)."""
        return TableSchema(table=self.table, columns=tuple(self.column(k) for k in self.key), key=self.key)

    @property
    def key_targets(self) -> tuple[str, ...]:
        return tuple(self.column(k).name for k in self.key)

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "key": list(self.key),
                "columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TableSchema":
        return cls(table=data["table"], key=tuple(data["key"]),
                   columns=tuple(ColumnSpec(**c) for c in data["columns"]))


_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
_TEMPORAL = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2}(\.\d+)?)?$")


def default_literal(info: dict[str, Any], kind: str) -> str | None:
    """The column's constant DEFAULT as a SQL literal, or None for NULL and for expressions.

    MariaDB quotes literal defaults ('abc') and writes expressions bare (current_timestamp());
    MySQL writes literals bare and marks expressions DEFAULT_GENERATED in `extra`."""
    raw = info.get("column_default")
    if raw is None or kind in ("binary", "bit") or "DEFAULT_GENERATED" in str(info.get("extra") or "").upper():
        return None
    text = str(raw)
    quoted = len(text) >= 2 and text[0] == text[-1] == "'"
    value = text[1:-1].replace("''", "'") if quoted else text
    if not quoted and text.upper() == "NULL":
        return None
    if kind in ("int", "decimal", "float"):
        return value if _NUMBER.match(value) else None
    if kind == "bool":
        return {"0": "FALSE", "1": "TRUE"}.get(value)
    if kind in ("timestamp", "date"):
        return f"'{value}'" if _TEMPORAL.match(value) and not value.startswith("0000") else None
    if not quoted and "(" in value:  # MariaDB writes expressions bare: uuid(), concat(...)
        return None
    return "'" + value.replace("'", "''") + "'"


def _members(column_type: str) -> list[str]:
    """Members of enum('a','b''c') / set(...)."""
    body = column_type[column_type.index("(") + 1: column_type.rindex(")")]
    return [m.replace("''", "'") for m in re.findall(r"'((?:[^']|'')*)'", body)]


def map_column(table: str, info: dict[str, Any], tinyint1_as_bool: bool = True,
               json_as: str = "super") -> ColumnSpec:
    """Map one information_schema.COLUMNS row (lowercase keys) to a ColumnSpec.

    (A little over a screen: the type map is one chain over MySQL's types, read top to
    bottom; split, a reader would lose which test comes first.)"""
    src = info["column_name"]
    dtype = info["data_type"].lower()
    ctype = info["column_type"].lower()
    unsigned = "unsigned" in ctype
    where = f"table {table}, column {src} ({ctype})"

    def spec(kind: str, arrow: str, target: str, precision: int = 0, scale: int = 0) -> ColumnSpec:
        return ColumnSpec(source=src, name=column_name(src), mysql_type=ctype, kind=kind,
                          arrow=arrow, target=target, nullable=info["is_nullable"] == "YES",
                          precision=precision, scale=scale, default=default_literal(info, kind))

    if dtype == "tinyint" and ctype.startswith("tinyint(1)") and not unsigned and tinyint1_as_bool:
        return spec("bool", "bool", "BOOLEAN")
    if dtype == "bigint" and unsigned:
        return spec("decimal", "decimal(20,0)", "DECIMAL(20,0)", 20, 0)
    if dtype in _SIGNED:
        arrow, target = (_UNSIGNED if unsigned else _SIGNED)[dtype]
        return spec("int", arrow, target)
    if dtype in ("decimal", "numeric"):
        p, s = int(info["numeric_precision"]), int(info["numeric_scale"] or 0)
        if p > MAX_DECIMAL_PRECISION:
            raise SchemaError(f"{where}: precision {p} exceeds Redshift's maximum of "
                              f"{MAX_DECIMAL_PRECISION}; exclude the column, narrow it, or copy it as text "
                              f"(types: {{{src}: VARCHAR}})")
        return spec("decimal", f"decimal({p},{s})", f"DECIMAL({p},{s})", p, s)
    if dtype == "float":
        return spec("float", "float32", "REAL")
    if dtype in ("double", "real"):
        return spec("float", "float64", "DOUBLE PRECISION")
    if dtype in ("datetime", "timestamp"):
        return spec("timestamp", "timestamp[us]", "TIMESTAMP")
    if dtype == "date":
        return spec("date", "date32", "DATE")
    if dtype == "time":
        fsp = int(info.get("datetime_precision") or 0)
        return spec("string", "string", f"VARCHAR({max(16, 10 + (fsp + 1 if fsp else 0))})")
    if dtype == "year":
        return spec("int", "int16", "SMALLINT")
    if dtype in ("char", "varchar"):
        n = int(info["character_maximum_length"] or 0)
        return spec("string", "string", f"VARCHAR({min(max(4 * n, 4), MAX_VARCHAR)})")
    if (dtype == "json" or info.get("is_json")) and json_as == "super":
        return spec("json", "string", "SUPER")
    if dtype in _TEXT:
        return spec("string", "string", f"VARCHAR({MAX_VARCHAR})")
    if dtype in ("enum", "set"):
        members = _members(info["column_type"])
        chars = (max(map(len, members), default=1) if dtype == "enum"
                 else sum(map(len, members)) + max(len(members) - 1, 0))
        return spec("string", "string", f"VARCHAR({min(max(4 * chars, 4), MAX_VARCHAR)})")
    if dtype in ("binary", "varbinary"):
        n = int(info["character_maximum_length"] or 1)
        return spec("binary", "binary", f"VARBYTE({min(max(n, 1), MAX_VARBYTE)})")
    if dtype in _BLOB:
        return spec("binary", "binary", f"VARBYTE({_BLOB[dtype]})")
    if dtype in _GEOMETRY:
        return spec("geometry", "binary", "GEOMETRY")
    if dtype == "bit":
        width = int(info["numeric_precision"] or 1)
        if width == 64:
            return spec("bit", "decimal(20,0)", "DECIMAL(20,0)", 20, 0)
        return spec("bit", "int64", "BIGINT")
    raise SchemaError(f"{where}: type {dtype} is not supported; list the column in "
                      f"exclude_columns to skip it")
