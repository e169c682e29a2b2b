"""PostgreSQL, the local stand-in for Redshift: reads the same Parquet parts from S3 and
streams them into the staging table with COPY FROM STDIN."""
from __future__ import annotations

import io
from typing import Sequence

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy.engine import Connection

from common.types import TableSchema
from common.warehouse import sql
from common.warehouse.base import LoadRequest, Warehouse
from common.watermark import PendingPart

_CSV = pacsv.WriteOptions(include_header=False)


def _bytea_text(arr: pa.ChunkedArray) -> pa.Array:
    """Binary values as PostgreSQL bytea hex text (\\x...), which CSV can carry."""
    return pa.array([None if v is None else "\\x" + v.hex() for v in arr.to_pylist()], pa.string())


def parquet_to_csv(data: bytes) -> bytes:
    """A Parquet part as CSV rows in the part's column order (NULL unquoted, '' quoted)."""
    table = pq.read_table(io.BytesIO(data))
    for i, fld in enumerate(table.schema):
        if pa.types.is_binary(fld.type) or pa.types.is_large_binary(fld.type):
            table = table.set_column(i, fld.name, _bytea_text(table.column(i)))
    out = io.BytesIO()
    pacsv.write_csv(table, out, _CSV)
    return out.getvalue()


class PostgresWarehouse(Warehouse):
    dialect = sql.POSTGRES

    def stage(self, conn: Connection, into: str, schema: TableSchema, request: LoadRequest,
              parts: Sequence[PendingPart]) -> None:
        columns = [c.name for c in schema.columns]
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(sql.copy_csv_stdin(into, columns)) as copy:
            for part in parts:
                copy.write(parquet_to_csv(self.store.get(part.key)))
