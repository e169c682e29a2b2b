"""A row's canonical text, hash and checksum as SQL, once for MySQL and once for the warehouse.

The two sides write the same value the same way (the type map's normalisation), so an
exact copy hashes equal: integers and decimals as plain digits, timestamps with six
fraction digits (MySQL zero dates as NULL, as the extraction makes them), booleans as
0/1, bytes as the MD5 of their lowercase hex, text as the MD5 of its UTF-8 bytes (which
keeps the row text short and free of separators: Redshift's text is at most 65,535 bytes).
Redshift's TO_HEX returns a VARCHAR, so a value over 32,767 bytes has no hex there: such
columns are written as the value's length and the MD5s of the hex of its first and last
32,767 bytes (every byte of a value up to 65,534 bytes; beyond, the middle is not compared). Floating-point values are compared to FLOAT_DIGITS
significant digits, computed in double precision on both sides. SUPER/JSONB values are
written differently by every engine (key order, spacing): they are compared NULL or not.

A range's checksum is its row count and the sums of two 28-bit slices of each row's MD5:
order-free, so each side aggregates in its own engine and only three numbers travel.
"""
from __future__ import annotations

from typing import Sequence

from common.model.naming import quote_ident, quote_mysql
from common.model import transforms
from common.model.types import ColumnSpec
from common.warehouse.sql import Dialect

FLOAT_DIGITS = 11
NULL_MARK = "~"
SLICES = ((1, 7), (8, 7))
"""(start, length) of the hex slices of a row's MD5 that are summed (7 hex digits = 28 bits,
so a sum over 2^35 rows still fits a BIGINT)."""


HEX_WINDOW = 32_767
"""Bytes whose hex fits Redshift's VARCHAR (TO_HEX: "converts a number or binary value to a
hexadecimal representation", a VARCHAR of at most 65,535 characters)."""


def _windowed(col: ColumnSpec) -> bool:
    """A binary (or geometry) column whose values may be too long to hex whole on Redshift."""
    return col.kind in ("binary", "geometry") and (col.max_bytes is None or col.max_bytes > HEX_WINDOW)


def mysql_ewkb(q: str) -> str:
    """A MySQL geometry column's value as EWKB, the bytes the extraction writes
    (convert.ewkb): MySQL stores the SRID (4 bytes) then little-endian WKB."""
    return (f"IF(SUBSTRING({q}, 1, 4) = 0x00000000, SUBSTRING({q}, 5),"
            f" CONCAT(SUBSTRING({q}, 5, 4), 0x20, SUBSTRING({q}, 1, 4), SUBSTRING({q}, 10)))")


def compared_loosely(col: ColumnSpec) -> str | None:
    """How a column is compared when not value for value, for the report; else None."""
    if _windowed(col) and (col.max_bytes is None or col.max_bytes > 2 * HEX_WINDOW):
        return (f"by length and the first and last {HEX_WINDOW:,} bytes (the middle of a longer value is "
                f"not compared: Redshift cannot hex it)")
    if col.kind == "json":
        return "NULL or not (JSON text differs between engines)"
    if col.kind == "float":
        return f"to {FLOAT_DIGITS} significant digits"
    return None


# ---- MySQL -----------------------------------------------------------------

def _mysql_float(q: str) -> str:
    v = f"({q} + 0E0)"
    e = f"FLOOR(LOG10(ABS({v})))"
    m = (f"(CASE WHEN ABS({v}) >= 1E-300 THEN ABS({v}) / POW(10E0, {e})"
         f" ELSE ABS({v}) * 1E300 / POW(10E0, {e} + 300) END)")
    return (f"CASE WHEN {v} IS NULL THEN NULL WHEN {v} = 0 THEN '0' ELSE CONCAT(IF({v} < 0, '-', ''),"
            f" CAST(ROUND({m} * 1E{FLOAT_DIGITS - 1}) AS SIGNED), 'e', CAST({e} AS SIGNED)) END")


def _mysql_zero_date(q: str) -> str:
    return f"YEAR({q}) = 0 OR MONTH({q}) = 0 OR DAYOFMONTH({q}) = 0"


def mysql_text(col: ColumnSpec) -> str:
    """The column's canonical text in MySQL (NULL stays NULL): of its value as the target
    holds it (its read, or its transform, written in MySQL)."""
    q = quote_mysql(col.source)
    if col.transform:
        q = transforms.mysql_value(col, q)
    elif col.read:
        q = col.read.format(q)
    kind = col.kind
    if kind in ("int", "bit"):
        return f"CAST({q} + 0 AS CHAR)"  # + 0: YEAR 0000 is 0, BIT a number
    if kind == "bool":
        return f"CASE WHEN {q} = 0 THEN '0' WHEN {q} IS NOT NULL THEN '1' END"
    if kind == "decimal":  # at the target's scale (an override may widen it: 1.50 -> 1.5000)
        return f"CAST(CAST({q} AS DECIMAL({col.precision},{col.scale})) AS CHAR)"
    if kind == "float":
        return _mysql_float(q)
    if kind == "timestamp":
        return f"CASE WHEN {_mysql_zero_date(q)} THEN NULL ELSE DATE_FORMAT({q}, '%Y-%m-%d %H:%i:%S.%f') END"
    if kind == "date":
        return f"CASE WHEN {_mysql_zero_date(q)} THEN NULL ELSE DATE_FORMAT({q}, '%Y-%m-%d') END"
    if kind == "geometry":
        q = mysql_ewkb(q)
    if _windowed(col):
        return (f"CONCAT(LENGTH({q}), ':', MD5(LOWER(HEX(SUBSTRING({q}, 1, {HEX_WINDOW})))),"
                f" MD5(LOWER(HEX(SUBSTRING({q}, GREATEST(LENGTH({q}) - {HEX_WINDOW - 1}, 1), {HEX_WINDOW})))))")
    if kind == "binary":
        return f"MD5(LOWER(HEX({q})))"
    if kind == "json":
        return f"CASE WHEN {q} IS NULL THEN NULL ELSE 'json' END"
    return f"MD5(CONVERT({q} USING utf8mb4))"


def mysql_row_text(columns: Sequence[ColumnSpec]) -> str:
    return "CONCAT_WS('|', " + ", ".join(f"COALESCE({mysql_text(c)}, '{NULL_MARK}')" for c in columns) + ")"


def mysql_sums(hash_expr: str) -> list[str]:
    return [f"COALESCE(SUM(CAST(CONV(SUBSTRING({hash_expr}, {s}, {n}), 16, 10) AS UNSIGNED)), 0)"
            for s, n in SLICES]


# ---- the warehouse -----------------------------------------------------------

def _double(literal: str) -> str:
    return f"CAST({literal} AS DOUBLE PRECISION)"


def _target_float(q: str) -> str:
    v = f"CAST({q} AS DOUBLE PRECISION)"
    e = f"FLOOR(LOG(ABS({v})))"
    ten, tiny, huge = _double("10"), _double("'1e-300'"), _double("'1e300'")
    m = (f"(CASE WHEN ABS({v}) >= {tiny} THEN ABS({v}) / POWER({ten}, {e})"
         f" ELSE ABS({v}) * {huge} / POWER({ten}, {e} + 300) END)")
    scale = _double(f"'1e{FLOAT_DIGITS - 1}'")
    return (f"CASE WHEN {v} IS NULL THEN NULL WHEN {v} = 0 THEN '0' ELSE"
            f" (CASE WHEN {v} < 0 THEN '-' ELSE '' END) || CAST(CAST(ROUND({m} * {scale}) AS BIGINT) AS VARCHAR)"
            f" || 'e' || CAST(CAST({e} AS BIGINT) AS VARCHAR) END")


def target_text(col: ColumnSpec, dialect: Dialect) -> str:
    """The column's canonical text in the warehouse, equal to mysql_text's for the same value."""
    q = quote_ident(col.name)
    kind = col.kind
    if kind in ("int", "bit", "decimal"):
        return f"CAST({q} AS VARCHAR)"
    if kind == "bool":
        return f"CASE WHEN {q} THEN '1' WHEN NOT {q} THEN '0' END"
    if kind == "float":
        return _target_float(q)
    if kind == "timestamp":
        return f"TO_CHAR({q}, 'YYYY-MM-DD HH24:MI:SS.US')"
    if kind == "date":
        return f"TO_CHAR({q}, 'YYYY-MM-DD')"
    if kind == "geometry":
        q = dialect.geometry_bytes.format(q)
    if _windowed(col):
        first = dialect.hex_bytes.format(f"SUBSTRING({q}, 1, {HEX_WINDOW})")
        last = dialect.hex_bytes.format(f"SUBSTRING({q}, GREATEST(OCTET_LENGTH({q}) - {HEX_WINDOW - 1}, 1), "
                                        f"{HEX_WINDOW})")
        return f"CAST(OCTET_LENGTH({q}) AS VARCHAR) || ':' || MD5({first}) || MD5({last})"
    if kind == "binary":
        return f"MD5({dialect.hex_bytes.format(q)})"
    if kind == "json":
        return f"CASE WHEN {q} IS NULL THEN NULL ELSE 'json' END"
    return f"MD5({q})"


def target_row_text(columns: Sequence[ColumnSpec], dialect: Dialect) -> str:
    return " || '|' || ".join(f"COALESCE({target_text(c, dialect)}, '{NULL_MARK}')" for c in columns)


def target_sums(hash_expr: str, dialect: Dialect) -> list[str]:
    return [f"COALESCE(SUM({dialect.hex_int.format(f'SUBSTRING({hash_expr}, {s}, {n})')}), 0)"
            for s, n in SLICES]
