"""The Parquet contract: for every MySQL type of the type map, the physical and logical
Parquet type ferry writes, next to the Redshift column it is loaded into.

Redshift's COPY from Parquet matches columns by position and needs the same number of
columns ("COPY inserts values into the target table's columns in the same order as the
columns occur in the columnar data files. The number of columns in the target table and
the number of columns in the data file must match." - COPY from columnar data formats,
https://docs.aws.amazon.com/redshift/latest/dg/copy-usage_notes-copy-from-columnar.html).
No AWS page lists which Parquet physical/logical type COPY accepts for which column type:
each pair below is pinned here and proven only by the live smoke test (`make
test-redshift`). DECIMAL(p,s) must match the column's precision and scale exactly, and
BIGINT UNSIGNED as DECIMAL(20,0) loads into NUMERIC(20,0), not BIGINT (DESIGN, field notes)."""
from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.store.parquet import PartWriter
from common.model.types import TableSchema, map_column

# (data_type, column_type, precision, scale, length) -> (physical, logical, Redshift column);
# plain INT32/INT64 carry no logical annotation (a signed 32/64-bit integer).
CONTRACT = [
    (("tinyint", "tinyint(4)", 3, 0, None), ("INT32", "Int(bitWidth=8, isSigned=true)", "SMALLINT")),
    (("tinyint", "tinyint(1)", 3, 0, None), ("BOOLEAN", "None", "BOOLEAN")),
    (("tinyint", "tinyint(3) unsigned", 3, 0, None), ("INT32", "Int(bitWidth=16, isSigned=true)", "SMALLINT")),
    (("smallint", "smallint(6)", 5, 0, None), ("INT32", "Int(bitWidth=16, isSigned=true)", "SMALLINT")),
    (("smallint", "smallint(5) unsigned", 5, 0, None), ("INT32", "None", "INTEGER")),
    (("mediumint", "mediumint(9)", 7, 0, None), ("INT32", "None", "INTEGER")),
    (("int", "int(11)", 10, 0, None), ("INT32", "None", "INTEGER")),
    (("int", "int(10) unsigned", 10, 0, None), ("INT64", "None", "BIGINT")),
    (("bigint", "bigint(20)", 19, 0, None), ("INT64", "None", "BIGINT")),
    (("bigint", "bigint(20) unsigned", 20, 0, None),
     ("FIXED_LEN_BYTE_ARRAY", "Decimal(precision=20, scale=0)", "DECIMAL(20,0)")),
    (("decimal", "decimal(12,2)", 12, 2, None), ("FIXED_LEN_BYTE_ARRAY", "Decimal(precision=12, scale=2)", "DECIMAL(12,2)")),
    (("decimal", "decimal(38,10)", 38, 10, None),
     ("FIXED_LEN_BYTE_ARRAY", "Decimal(precision=38, scale=10)", "DECIMAL(38,10)")),
    (("float", "float", 12, None, None), ("FLOAT", "None", "REAL")),
    (("double", "double", 22, None, None), ("DOUBLE", "None", "DOUBLE PRECISION")),
    (("datetime", "datetime(6)", None, None, None),
     ("INT64", "Timestamp(isAdjustedToUTC=false, timeUnit=microseconds", "TIMESTAMP")),
    (("timestamp", "timestamp", None, None, None),
     ("INT64", "Timestamp(isAdjustedToUTC=false, timeUnit=microseconds", "TIMESTAMP")),
    (("date", "date", None, None, None), ("INT32", "Date", "DATE")),
    (("time", "time(6)", None, None, None), ("BYTE_ARRAY", "String", "VARCHAR(17)")),
    (("year", "year(4)", None, None, None), ("INT32", "Int(bitWidth=16, isSigned=true)", "SMALLINT")),
    (("varchar", "varchar(10)", None, None, 10), ("BYTE_ARRAY", "String", "VARCHAR(40)")),
    (("char", "char(3)", None, None, 3), ("BYTE_ARRAY", "String", "VARCHAR(12)")),
    (("text", "text", None, None, 65535), ("BYTE_ARRAY", "String", "VARCHAR(65535)")),
    # JSON: Parquet text, staged as VARBYTE(16777216) on Redshift, JSON_PARSE'd into SUPER by the merge.
    (("json", "json", None, None, None), ("BYTE_ARRAY", "String", "SUPER")),
    (("enum", "enum('a','bb')", None, None, 2), ("BYTE_ARRAY", "String", "VARCHAR(8)")),
    (("set", "set('a','bb')", None, None, 4), ("BYTE_ARRAY", "String", "VARCHAR(16)")),
    (("varbinary", "varbinary(16)", None, None, 16), ("BYTE_ARRAY", "None", "VARBYTE(16)")),
    (("blob", "blob", None, None, 65535), ("BYTE_ARRAY", "None", "VARBYTE(65535)")),
    (("longblob", "longblob", None, None, 4294967295), ("BYTE_ARRAY", "None", "VARBYTE(16777216)")),
    # Geometry: EWKB bytes, staged as VARBYTE(1048447) on Redshift, ST_GeomFromEWKB'd into GEOMETRY.
    (("point", "point", None, None, None), ("BYTE_ARRAY", "None", "GEOMETRY")),
    (("geometry", "geometry", None, None, None), ("BYTE_ARRAY", "None", "GEOMETRY")),
    (("bit", "bit(8)", 8, None, None), ("INT64", "None", "BIGINT")),
    (("bit", "bit(64)", 64, None, None), ("FIXED_LEN_BYTE_ARRAY", "Decimal(precision=20, scale=0)", "DECIMAL(20,0)")),
]


class _Sink:
    """A Store stand-in that keeps the bytes: only the file layout is under test here."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, body: Any, metadata: dict[str, str] | None = None) -> None:
        self.objects[key] = body if isinstance(body, bytes) else body.read()


@pytest.mark.parametrize("source, expected", CONTRACT, ids=[c[0][1] for c in CONTRACT])
def test_parquet_type_written_for_each_mysql_type(source: tuple, expected: tuple) -> None:
    dtype, ctype, precision, scale, length = source
    spec = map_column("s.t", {"column_name": "c", "data_type": dtype, "column_type": ctype, "is_nullable": "YES",
                              "numeric_precision": precision, "numeric_scale": scale,
                              "character_maximum_length": length,
                              "datetime_precision": 6 if ctype.endswith("(6)") else 0})
    physical, logical, redshift = expected
    assert spec.target == redshift
    schema = TableSchema(table="s.t", columns=(spec,), key=())
    sink = _Sink()
    writer = PartWriter(sink, lambda i: f"p{i}", schema.arrow_schema(), 64, None, {})  # type: ignore[arg-type]
    writer.write(pa.record_batch([pa.nulls(1, spec.arrow_type())], schema=schema.arrow_schema()))
    writer.close()
    column = pq.ParquetFile(io.BytesIO(sink.objects["p0"])).schema.column(0)
    assert column.physical_type == physical
    assert str(column.logical_type).startswith(logical)
