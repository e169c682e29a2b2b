"""Type overrides (`types:` of a table): the target type a user chooses instead of the type
map's, accepted only where every value stays exact, or where the entry says `lossy: true`
and the loss is one the README names. Anything else is refused naming the column and both
types.

Exact (accepted as they are):
- any number, date, time, ENUM/SET or text -> VARCHAR[(n)]: the server's own text of the value
  (n at least the longest text the type can print; DECIMAL(65,30) fits nowhere else);
- JSON -> VARCHAR: the document's text;
- TINYINT (any width), BIT(1) -> BOOLEAN: a value other than 0 or 1 stops the read, naming it;
- CHAR/VARCHAR/TEXT -> SUPER: every value is checked to be JSON by the worker;
- an integer -> a wider integer, or DECIMAL(p,0) with room for its digits;
- DECIMAL(p,s) -> DECIMAL(p',s') with s' >= s and p' - s' >= p - s;
- FLOAT -> DOUBLE PRECISION; an integer of at most 24 bits -> REAL, of at most 32 -> DOUBLE PRECISION;
- DATE -> TIMESTAMP (midnight).

Lossy (`lossy: true`):
- DECIMAL, BIGINT -> DOUBLE PRECISION or REAL; DOUBLE -> REAL: rounded to the float's precision;
- DATETIME/TIMESTAMP -> DATE: the time of day is dropped;
- text -> a VARCHAR(n) shorter than the type map's: longer values follow on_oversize.
"""
from __future__ import annotations

import re
from typing import Any

from common.errors import SchemaError
from common.model.naming import column_name
from common.model.types import MAX_DECIMAL_PRECISION, MAX_VARCHAR, ColumnSpec, default_literal

_ALIASES = {"INT": "INTEGER", "INT2": "SMALLINT", "INT4": "INTEGER", "INT8": "BIGINT", "BOOL": "BOOLEAN",
            "FLOAT8": "DOUBLE PRECISION", "FLOAT": "DOUBLE PRECISION", "DOUBLE": "DOUBLE PRECISION",
            "FLOAT4": "REAL", "TEXT": "VARCHAR", "CHARACTER VARYING": "VARCHAR", "NUMERIC": "DECIMAL",
            "DATETIME": "TIMESTAMP"}
_INT_BITS = {"SMALLINT": 16, "INTEGER": 32, "BIGINT": 64}
_ARROW_INT = {"SMALLINT": "int16", "INTEGER": "int32", "BIGINT": "int64"}
_SOURCE_BITS = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64, "year": 16}
_DIGITS = {"tinyint": 3, "smallint": 5, "mediumint": 8, "int": 10, "integer": 10, "bigint": 20, "year": 4}
_TEXT_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext")
_NUMBER_TYPES = tuple(_SOURCE_BITS) + ("decimal", "numeric", "float", "double", "real", "bit")
_TEMPORAL = ("date", "datetime", "timestamp", "time")


def parse(value: Any) -> tuple[str, bool]:
    """(type as written, normalised; lossy) of a `types:` entry; ValueError says what is wrong."""
    lossy = False
    if isinstance(value, dict):
        if "type" not in value:
            raise ValueError("an override as a mapping needs type: (and lossy: true if it loses anything)")
        lossy = value.get("lossy", False)
        if not isinstance(lossy, bool):
            raise ValueError(f"lossy is true or false, not {lossy!r}")
        value = value["type"]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a type")
    text = re.sub(r"\s+", " ", value.strip().upper())
    text = re.sub(r"\s*\(\s*", "(", re.sub(r"\s*,\s*", ",", re.sub(r"\s*\)", ")", text)))
    m = re.fullmatch(r"([A-Z0-9 ]+?)(\([\d,]+\))?", text)
    if not m:
        raise ValueError(f"{value!r} is not a type")
    name = _ALIASES.get(m.group(1), m.group(1))
    return name + (m.group(2) or ""), lossy


def _text_chars(dtype: str, info: dict[str, Any]) -> int | None:
    """The most characters the server's text of a number or a date can have (None: not one)."""
    if dtype in _DIGITS:
        return _DIGITS[dtype] + 1  # a sign
    if dtype in ("decimal", "numeric"):
        return int(info["numeric_precision"]) + 2  # sign and point
    if dtype in ("float", "double", "real"):
        return 24
    if dtype == "bit":
        return 20
    if dtype == "date":
        return 10
    if dtype in ("datetime", "timestamp"):
        fsp = int(info.get("datetime_precision") or 0)
        return 19 + (fsp + 1 if fsp else 0)
    return None


def apply(table: str, info: dict[str, Any], spec: ColumnSpec | None, value: Any, key: bool = False) -> ColumnSpec:
    """The column with its override; SchemaError names the table, the column and both types
    when the override is not one ferry can make (spec: the type map's mapping, None where the
    type map refuses the column)."""
    src = info["column_name"]
    dtype, ctype = info["data_type"].lower(), info["column_type"].lower()
    try:
        target, lossy = parse(value)
    except ValueError as exc:
        raise SchemaError(f"table {table}, column {src} ({ctype}): types: {exc}") from None
    where = f"table {table}, column {src}: types: {target} for {ctype}"
    if key:
        raise SchemaError(f"{where}: a key or cursor column keeps the type map's type (its values are compared "
                          f"on both sides)")
    is_json = dtype == "json" or bool(info.get("is_json"))

    def made(kind: str, arrow: str, tgt: str, read: str | None = None, precision: int = 0, scale: int = 0,
             read_kind: str | None = None) -> ColumnSpec:
        return ColumnSpec(source=src, name=column_name(src), mysql_type=ctype, kind=kind, arrow=arrow, target=tgt,
                          nullable=info["is_nullable"] == "YES", precision=precision, scale=scale,
                          default=default_literal(info, kind), read=read, read_kind=read_kind)

    def refuse(why: str) -> SchemaError:
        return SchemaError(f"{where}: {why}")

    name, size = re.fullmatch(r"([A-Z ]+?)(?:\(([\d,]+)\))?", target).groups()  # type: ignore[union-attr]
    nums = tuple(int(n) for n in size.split(",")) if size else ()
    if name == "VARCHAR":
        if dtype in ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob") or (
                spec is not None and spec.kind in ("binary", "geometry")):
            raise refuse("bytes have no text; keep VARBYTE, or hash the column (transform: hash)")
        if nums and nums[0] > MAX_VARCHAR:
            raise refuse(f"VARCHAR holds at most {MAX_VARCHAR} bytes")
        if is_json:
            need = MAX_VARCHAR
        elif spec is not None and spec.kind == "string" and spec.max_bytes:
            need = spec.max_bytes  # text, ENUM/SET, TIME: the type map's own width
        else:
            need = min(MAX_VARCHAR, _text_chars(dtype, info) or MAX_VARCHAR)  # digits and dates: 1 byte each
        n = nums[0] if nums else need
        if n < need and not lossy:
            raise refuse(f"VARCHAR({n}) is shorter than the {need} bytes a value can take; VARCHAR({need}) keeps "
                         f"every value, or say lossy: true (longer values then follow on_oversize)")
        read = None if dtype in _TEXT_TYPES + ("enum", "set", "time") or is_json else (
            "CAST({} + 0 AS CHAR)" if dtype == "bit" else "CAST({} AS CHAR)")
        return made("string", "string", f"VARCHAR({n})", read)
    if name == "SUPER":
        if is_json:
            return made("json", "string", "SUPER")
        if dtype not in _TEXT_TYPES:
            raise refuse("only text can be copied as SUPER (each value is checked to be JSON)")
        return made("json", "string", "SUPER", read_kind="text")
    if name == "BOOLEAN":
        if dtype == "tinyint":
            return made("bool", "bool", "BOOLEAN")
        if dtype == "bit" and int(info.get("numeric_precision") or 1) == 1:
            return made("bool", "bool", "BOOLEAN", read="CAST({} + 0 AS CHAR)")
        raise refuse("only TINYINT and BIT(1) become BOOLEAN (a value other than 0 or 1 stops the read)")
    if name in _INT_BITS:
        bits = _SOURCE_BITS.get(dtype)
        unsigned = "unsigned" in ctype
        if bits is None or (spec is not None and spec.kind not in ("int", "bool")):
            raise refuse("only integers become integers")
        if bits + (1 if unsigned else 0) > _INT_BITS[name]:
            raise refuse(f"{name} cannot hold every {ctype} value; a wider integer, or DECIMAL, can")
        return made("int", _ARROW_INT[name], name)
    if name == "DECIMAL":
        p, s = (nums + (0, 0))[:2] if nums else (18, 0)
        if p > MAX_DECIMAL_PRECISION or s > p:
            raise refuse(f"DECIMAL({p},{s}) is not a warehouse type (precision at most {MAX_DECIMAL_PRECISION}, "
                         f"scale at most the precision)")
        if dtype in _DIGITS:
            digits = _DIGITS[dtype]
            if p - s < digits:
                raise refuse(f"DECIMAL({p},{s}) cannot hold every {ctype} value (it needs {digits} integer digits)")
            return made("decimal", f"decimal({p},{s})", f"DECIMAL({p},{s})", precision=p, scale=s)
        if dtype in ("decimal", "numeric"):
            sp, ss = int(info["numeric_precision"]), int(info["numeric_scale"] or 0)
            if s < ss or p - s < sp - ss:
                raise refuse(f"DECIMAL({p},{s}) cannot hold every DECIMAL({sp},{ss}) value; VARCHAR keeps every "
                             f"one exactly, or DOUBLE PRECISION with lossy: true")
            return made("decimal", f"decimal({p},{s})", f"DECIMAL({p},{s})", read="CAST({} AS CHAR)",
                        precision=p, scale=s)
        raise refuse("only integers and decimals become DECIMAL")
    if name in ("DOUBLE PRECISION", "REAL"):
        mantissa = 53 if name == "DOUBLE PRECISION" else 24
        arrow = "float64" if name == "DOUBLE PRECISION" else "float32"
        if dtype in _SOURCE_BITS:
            if _SOURCE_BITS[dtype] + (1 if "unsigned" in ctype else 0) > mantissa + 1 and not lossy:
                raise refuse(f"{name} rounds {ctype} values beyond {mantissa} bits; say lossy: true to accept that")
            return made("float", arrow, name, read="CAST({} AS CHAR)")
        if dtype in ("decimal", "numeric"):
            if not lossy:
                raise refuse(f"{name} rounds decimals to about {15 if mantissa == 53 else 6} digits; say "
                             f"lossy: true to accept that, or use VARCHAR (exact)")
            return made("float", arrow, name, read="CAST({} AS CHAR)")
        if dtype == "float":
            return made("float", arrow, name, read="CAST(({} + 0E0) AS CHAR)")
        if dtype in ("double", "real"):
            if name == "REAL" and not lossy:
                raise refuse("REAL rounds DOUBLE values to 24 bits; say lossy: true to accept that")
            return made("float", arrow, name)
        raise refuse("only numbers become floating-point")
    if name == "TIMESTAMP":
        if dtype == "date":
            return made("timestamp", "timestamp[us]", "TIMESTAMP", read="CAST({} AS CHAR)")
        if dtype in ("datetime", "timestamp"):
            return made("timestamp", "timestamp[us]", "TIMESTAMP")
        raise refuse("only dates and times become TIMESTAMP")
    if name == "DATE":
        if dtype == "date":
            return made("date", "date32", "DATE")
        if dtype in ("datetime", "timestamp"):
            if not lossy:
                raise refuse("DATE drops the time of day; say lossy: true to accept that")
            return made("date", "date32", "DATE", read="CAST(DATE({}) AS CHAR)")
        raise refuse("only dates and times become DATE")
    raise refuse("not a type ferry can load into (VARCHAR, SUPER, BOOLEAN, SMALLINT, INTEGER, BIGINT, DECIMAL, "
                 "REAL, DOUBLE PRECISION, TIMESTAMP, DATE)")

