"""Raw MySQL rows (text-protocol bytes) -> Arrow record batches with the mapped types.

Values arrive as bytes exactly as the server formats them; Arrow parses them in bulk
(string -> int/decimal/timestamp casts run in C++), so no value becomes a float or a
Python number on the way.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from common.errors import SchemaError
from common.model.transforms import invalid_json
from common.model.types import ColumnSpec, TableSchema

# MySQL "zero" dates (0000-00-00, 2024-00-10, ...) have no Arrow/Redshift value.
_ZERO_DATE = r"^(0000-|\d{4}-00-|\d{4}-\d{2}-00)"


@dataclass
class BatchStats:
    """What conversion had to change: zero dates turned to NULL, per target column."""

    zero_dates: dict[str, int] = field(default_factory=dict)
    truncated: dict[str, int] = field(default_factory=dict)
    """Values cut to the target column's size (on_oversize: truncate), per target column."""
    nul_removed: dict[str, int] = field(default_factory=dict)
    """Text values whose NUL characters were removed, per target column."""
    reader: str = ""
    """Which reader read the rows: duckdb or connector."""

    def add(self, other: "BatchStats") -> None:
        for k, v in other.zero_dates.items():
            self.zero_dates[k] = self.zero_dates.get(k, 0) + v
        for k, v in other.nul_removed.items():
            self.nul_removed[k] = self.nul_removed.get(k, 0) + v
        for k, v in other.truncated.items():
            self.truncated[k] = self.truncated.get(k, 0) + v


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (rows are acyclic; reference counting frees them)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_RAW_STRUCTS: dict[int, pa.DataType] = {}


def _raw_struct(width: int) -> pa.DataType:
    if width not in _RAW_STRUCTS:
        _RAW_STRUCTS[width] = pa.struct([pa.field(f"c{i}", pa.binary()) for i in range(width)])
    return _RAW_STRUCTS[width]


def _text(arr: pa.Array, spec: ColumnSpec, table: str) -> pa.Array:
    try:
        return arr.cast(pa.string())
    except pa.ArrowInvalid as exc:
        raise SchemaError(f"table {table}, column {spec.source}: not valid UTF-8: {exc}") from None


def cast_to(arr: pa.Array, spec: ColumnSpec, table: str) -> pa.Array:
    """The array as the column's Arrow type, exactly, or an error naming the table and column."""
    try:
        return arr.cast(spec.arrow_type())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaError(f"table {table}, column {spec.source} ({spec.mysql_type}): value does not "
                          f"fit {spec.arrow}: {exc}") from None


def _temporal(arr: pa.Array, spec: ColumnSpec, table: str, stats: BatchStats) -> pa.Array:
    try:
        return arr.cast(spec.arrow_type())
    except pa.ArrowInvalid:
        pass  # rare: zero dates, found only when the fast cast fails
    zero = pc.match_substring_regex(arr, _ZERO_DATE)
    n_zero = pc.sum(zero).as_py() or 0
    if n_zero:
        stats.zero_dates[spec.name] = stats.zero_dates.get(spec.name, 0) + n_zero
        arr = pc.if_else(zero, pa.scalar(None, pa.string()), arr)
    return cast_to(arr, spec, table)


def _bit(arr: pa.Array, spec: ColumnSpec) -> pa.Array:
    ints = [None if v is None else int.from_bytes(v, "big") for v in arr.to_pylist()]
    if spec.arrow.startswith("decimal"):
        return pa.array([None if i is None else str(i) for i in ints], pa.string()).cast(spec.arrow_type())
    return pa.array(ints, pa.int64())


def _bool(text: pa.Array, spec: ColumnSpec, table: str) -> pa.Array:
    """TINYINT(1) as BOOLEAN, exactly: 0 and 1 only (MySQL lets the column hold -128..127)."""
    return bool_of(text.cast(pa.int16()), spec, table)


def bool_of(ints: pa.Array, spec: ColumnSpec, table: str) -> pa.Array:
    """TINYINT(1) values (as integers) as BOOLEAN, refused unless each is 0 or 1."""
    odd = pc.filter(ints, pc.and_(pc.not_equal(ints, 0), pc.not_equal(ints, 1)))
    if len(odd):
        raise SchemaError(
            f"table {table}, column {spec.source} ({spec.mysql_type}): value {odd[0].as_py()} is neither "
            f"0 nor 1 ({len(odd)} such in this batch) and would not survive as BOOLEAN; set "
            f"tinyint1_as_bool: false for this table to copy the column as SMALLINT (a target table "
            f"already created with a BOOLEAN column must then be dropped first)")
    return pc.equal(ints, 1)


class Oversize(Exception):
    """A value longer than its target column (raised by _fit_length, named by rows_to_batch)."""

    def __init__(self, spec: ColumnSpec, index: int, length: int) -> None:
        super().__init__(spec.source)
        self.spec, self.index, self.length = spec, index, length


def _cut(value: bytes, limit: int, text: bool) -> bytes:
    """At most `limit` bytes; text is cut at a character boundary (never half a UTF-8 sequence)."""
    head = value[:limit]
    return head.decode("utf-8", "ignore").encode() if text else head


def _fit_length(raw: pa.Array, spec: ColumnSpec, truncate: bool, stats: BatchStats) -> pa.Array:
    """A value longer than the target column would fail the whole warehouse COPY later:
    cut it (on_oversize: truncate, counted) or raise Oversize (fail)."""
    limit = spec.max_bytes
    if limit is None or len(raw) == 0:
        return raw
    lengths = pc.binary_length(raw)
    if (pc.max(lengths).as_py() or 0) <= limit:
        return raw
    over = pc.greater(lengths, limit)
    if not truncate:
        index = pc.index(over, True).as_py()
        raise Oversize(spec, index, lengths[index].as_py())
    values = raw.to_pylist()
    cut = 0
    for i, is_over in enumerate(over.to_pylist()):
        if is_over:
            values[i] = _cut(values[i], limit, spec.kind == "string")
            cut += 1
    stats.truncated[spec.name] = stats.truncated.get(spec.name, 0) + cut
    return pa.array(values, pa.binary())


def convert_column(raw: pa.Array, spec: ColumnSpec, table: str, stats: BatchStats,
                   truncate: bool = False) -> pa.Array:
    """One column of raw values (an Arrow binary array) -> an Arrow array of spec's type."""
    kind = spec.kind
    if kind in ("binary", "string", "json", "geometry"):
        raw = _fit_length(raw, spec, truncate and kind not in ("json", "geometry"), stats)
    if kind == "binary":
        return raw
    if kind == "geometry":
        return ewkb(raw, spec, table)
    if kind == "bit":
        return _bit(raw, spec)
    text = _text(raw, spec, table)
    if kind in ("string", "json"):
        text = _without_nul(text, spec, stats)
        if kind == "json" and spec.read_kind == "text":  # text copied as SUPER (a type override)
            _check_json(text, spec, table)
        return text
    return _typed(text, spec, table, stats)


def _check_json(text: pa.Array, spec: ColumnSpec, table: str) -> None:
    """Text a `types:` override copies as SUPER must be JSON, or the warehouse's JSON_PARSE
    would stop the whole load later: SchemaError names the column and the first bad value."""
    bad = invalid_json(text)
    if bad is not None:
        shown = text[bad].as_py()
        raise SchemaError(f"table {table}, column {spec.source}: types: SUPER, but a value is not JSON: "
                          f"{shown[:80]!r}{'...' if len(shown) > 80 else ''}")


_NO_SRID = pa.scalar(b"\x00\x00\x00\x00", pa.binary())
_END = 1 << 31


def ewkb(raw: pa.Array, spec: ColumnSpec, table: str) -> pa.Array:
    """MySQL's stored geometry (the SRID, 4 bytes little-endian, then little-endian WKB of a
    2D type) as EWKB, in bulk: the WKB with the SRID flag (0x20000000) set in its type and
    the SRID after it; SRID 0 leaves the WKB as it is (PostGIS's convention, which Redshift's
    ST_GeomFromEWKB reads). Same bytes as rowhash.mysql_ewkb computes in MySQL."""
    if len(raw) == 0 or raw.null_count == len(raw):
        return raw
    order, high = pc.binary_slice(raw, 4, 5), pc.binary_slice(raw, 8, 9)
    if (pc.any(pc.not_equal(order, pa.scalar(b"\x01"))).as_py()
            or pc.any(pc.not_equal(high, pa.scalar(b"\x00"))).as_py()):
        raise SchemaError(f"table {table}, column {spec.source}: a geometry value is not MySQL's little-endian "
                          f"2D form (SRID then WKB); ferry cannot convert it")
    srid = pc.binary_slice(raw, 0, 4)
    # (Every slice has its end: pyarrow 26's binary_slice without one fails beside a NULL.)
    flagged = pc.binary_join_element_wise(order, pc.binary_slice(raw, 5, 8), pa.scalar(b"\x20"), srid,
                                          pc.binary_slice(raw, 9, _END), pa.scalar(b""))
    return pc.if_else(pc.equal(srid, _NO_SRID), pc.binary_slice(raw, 4, _END), flagged)


def _without_nul(text: pa.Array, spec: ColumnSpec, stats: BatchStats) -> pa.Array:
    """NUL characters removed, counted: neither Redshift ("If you do not use NULL AS, null
    terminators will cause COPY to fail", t_preparing-input-data.html) nor PostgreSQL can
    store one in a VARCHAR, and a value the warehouse refuses would block its table."""
    has_nul = pc.match_substring(text, "\x00")
    n = pc.sum(has_nul).as_py() or 0
    if not n:
        return text
    stats.nul_removed[spec.name] = stats.nul_removed.get(spec.name, 0) + n
    return pc.replace_substring(text, "\x00", "")


def _typed(text: pa.Array, spec: ColumnSpec, table: str, stats: BatchStats) -> pa.Array:
    kind = spec.kind
    if kind in ("int", "decimal", "float"):
        return cast_to(text, spec, table)
    if kind == "bool":
        return _bool(text, spec, table)
    if kind in ("timestamp", "date"):
        return _temporal(text, spec, table, stats)
    raise SchemaError(f"table {table}, column {spec.source}: unknown conversion kind {kind!r}")


def rows_to_batch(rows: Sequence[tuple[Any, ...]], schema: TableSchema,
                  arrow_schema: pa.Schema, stats: BatchStats, truncate: bool = False) -> pa.RecordBatch:
    """Raw rows -> typed record batch.

    Arrow reads the row tuples straight into a struct of binary columns (one C++ pass,
    no per-column Python tuples), then each column is cast in bulk.
    """
    raw = pa.array(rows, type=_raw_struct(len(schema.columns))).flatten()
    try:
        arrays = [convert_column(col, spec, schema.table, stats, truncate)
                  for col, spec in zip(raw, schema.columns)]
    except Oversize as exc:
        names = [c.source for c in schema.columns]
        at = exc.index
        raise oversize_error(schema, exc, lambda k: raw[names.index(k)][at].as_py().decode(errors="replace")) from None
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema)


def oversize_error(schema: TableSchema, exc: Oversize, key_value: Callable[[str], str]) -> SchemaError:
    """The error of a value too long for its target column, naming the row by its key
    (key_value: a key column's value in the row at fault, as text)."""
    names = {c.source for c in schema.columns}
    key = ", ".join(f"{k}={key_value(k)}" for k in schema.key if k in names)
    return SchemaError(f"table {schema.table}, column {exc.spec.source}, row ({key}): a value of {exc.length} "
                       f"bytes exceeds the target's {exc.spec.target} (at most {exc.spec.max_bytes:,} bytes); "
                       f"set on_oversize: truncate, exclude the column, or shorten the value")
