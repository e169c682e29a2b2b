"""Row-by-row comparison of a MySQL source table with its warehouse target.

Both sides are read through their own drivers and turned into one canonical text
form per column, so a difference in any value of any row is seen.
"""
from __future__ import annotations

import hashlib
import json
import struct
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Iterator, Sequence

import numpy as np

from common.model.naming import quote_ident, quote_mysql, split_table_key
from common.source.reads import select_expression
from common.model.types import ColumnSpec, TableSchema


def _time_text(td: timedelta) -> str:
    total = int(td.total_seconds() * 1_000_000)
    sign = "-" if total < 0 else ""
    total = abs(total)
    secs, micros = divmod(total, 1_000_000)
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{sign}{h:02d}:{m:02d}:{s:02d}" + (f".{micros:06d}".rstrip("0") if micros else "")


def _ewkb_text(ewkb: bytes) -> str:
    """EWKB (the target's) as `srid:wkb-hex`, read with struct: the SRID flag 0x20000000 in
    the type says an SRID follows it."""
    order = "<" if ewkb[0] == 1 else ">"
    (kind,) = struct.unpack(order + "I", ewkb[1:5])
    if not kind & 0x20000000:
        return f"0:{ewkb.hex()}"
    (srid,) = struct.unpack(order + "I", ewkb[5:9])
    return f"{srid}:{(ewkb[:1] + struct.pack(order + 'I', kind & ~0x20000000) + ewkb[9:]).hex()}"


def canonical(value: Any, col: ColumnSpec) -> str | None:
    """One value from either side in a form both sides agree on exactly."""
    if value is None:
        return None
    if col.kind == "geometry":
        return value if isinstance(value, str) else _ewkb_text(bytes(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if col.kind in ("binary",):
            return raw.hex()
        if col.kind == "bit":
            return str(int.from_bytes(raw, "big"))
        value = raw.decode("utf-8")
    if col.kind == "json":  # JSON text on both sides, written differently: compare it parsed
        return json.dumps(json.loads(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if col.kind == "bool":
        return "1" if int(value) else "0"
    if col.kind in ("int", "bit"):
        return str(int(value))
    if col.kind == "decimal":
        return format(Decimal(str(value)).normalize(), "f")
    if col.kind == "float":
        f = np.float32(value) if col.arrow == "float32" else np.float64(value)
        return repr(f.item())
    if col.kind == "timestamp":
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.isoformat(sep=" ", timespec="microseconds")
    if col.kind == "date":
        return (value if isinstance(value, date) else date.fromisoformat(str(value))).isoformat()
    if isinstance(value, timedelta):
        return _time_text(value)
    if isinstance(value, (set, frozenset)):
        return ",".join(sorted(value))
    if "set(" in col.mysql_type and isinstance(value, str):
        return ",".join(sorted(v for v in value.split(",") if v))
    if col.mysql_type.startswith("time") and isinstance(value, str):
        return value if "." not in value else value.rstrip("0").rstrip(".")
    return str(value)


def source_rows(conn: Any, table_key: str, schema: TableSchema,
                where: str | None = None) -> Iterator[tuple[str | None, ...]]:
    """The source's rows (those `where` selects), canonical; a transformed column is not
    transformed here: tests compare those by their own means."""
    schema_name, name = split_table_key(table_key)
    # FLOAT through DOUBLE, as ferry reads it: the driver's own FLOAT text has 6 digits.
    # Geometry by MySQL's own writer (ST_SRID, ST_AsWKB), not by ferry's EWKB conversion.
    cols = ", ".join(f"CONCAT(ST_SRID({quote_mysql(c.source)}), ':', LOWER(HEX(ST_AsWKB({quote_mysql(c.source)}))))"
                     if c.kind == "geometry" else select_expression(c) for c in schema.columns)
    # A table without a key (load: append) is compared as a sorted multiset of rows.
    order = ", ".join(quote_mysql(k) for k in schema.key) or cols
    cur = conn.cursor()
    cur.execute(f"SELECT {cols} FROM {quote_mysql(schema_name)}.{quote_mysql(name)}"
                f"{f' WHERE ({where})' if where else ''} ORDER BY {order}")
    for row in cur:
        yield tuple(canonical(v, c) for v, c in zip(row, schema.columns))
    cur.close()


def target_rows(conn: Any, target_schema: str, table: str, schema: TableSchema,
                json_text: str = "{}::text") -> Iterator[tuple[str | None, ...]]:
    """The target's rows; JSON columns read back as JSON text (Redshift SUPER: pass
    json_text="JSON_SERIALIZE({})")."""
    cols = ", ".join(json_text.format(quote_ident(c.name)) if c.kind == "json" else quote_ident(c.name)
                     for c in schema.columns)
    order = ", ".join(quote_ident(k) for k in schema.key_targets) or cols
    with conn.transaction(), conn.cursor(name="ferry_compare") as cur:
        cur.execute(f"SELECT {cols} FROM {quote_ident(target_schema)}.{quote_ident(table)} ORDER BY {order}")
        for row in cur:
            yield tuple(canonical(v, c) for v, c in zip(row, schema.columns))


def assert_same_rows(src: Sequence[tuple[Any, ...]] | Iterator[Any], dst: Sequence[tuple[Any, ...]] | Iterator[Any],
                     schema: TableSchema) -> int:
    """Assert equal row sequences; on a difference, name the row's key and the column."""
    names = [c.name for c in schema.columns]
    count = 0
    if not schema.key:  # no key (load: append): the same multiset of rows, in any order
        def order(row: tuple[Any, ...]) -> tuple[str, ...]:
            return tuple("" if v is None else str(v) for v in row)
        src, dst = sorted(src, key=order), sorted(dst, key=order)
    src_it, dst_it = iter(src), iter(dst)
    while True:
        a, b = next(src_it, None), next(dst_it, None)
        if a is None and b is None:
            return count
        if a is None or b is None:
            raise AssertionError(f"row {count}: source has {a!r}, target has {b!r}")
        if a != b:
            diffs = [f"{n}: source={x!r} target={y!r}" for n, x, y in zip(names, a, b) if x != y]
            raise AssertionError(f"row {count} differs: " + "; ".join(diffs))
        count += 1


def checksum(rows: Iterator[tuple[Any, ...]]) -> tuple[int, str]:
    """Row count and a SHA-256 over every column of every row, in key order."""
    h = hashlib.sha256()
    n = 0
    for row in rows:
        h.update(repr(row).encode())
        n += 1
    return n, h.hexdigest()
