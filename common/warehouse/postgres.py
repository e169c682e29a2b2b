"""PostgreSQL, the local stand-in for Redshift: reads the same Parquet parts from S3 and
streams them into the staging table with COPY FROM STDIN."""
from __future__ import annotations

import io
import tempfile
from typing import BinaryIO, Iterator, Sequence

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy.engine import Connection

from common.config.settings import settings
from common.model.types import TableSchema
from common.warehouse import sql
from common.warehouse.base import Warehouse
from common.warehouse.request import LoadRequest
from common.model.records import PendingPart

_CSV = pacsv.WriteOptions(include_header=False)


def _bytea_text(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Binary values as PostgreSQL bytea hex text (\\x...), which CSV can carry."""
    return pa.array([None if v is None else "\\x" + v.hex() for v in arr.to_pylist()], pa.string())


CSV_BATCH_BYTES = 8 * 1024 * 1024
"""About this many bytes of a part are turned into CSV at a time (the load streams)."""


def parquet_to_csv(data: bytes | BinaryIO) -> Iterator[bytes]:
    """A Parquet part (its bytes, or a file) as CSV rows in the part's column order (NULL
    unquoted, '' quoted), in pieces of about CSV_BATCH_BYTES of values, so a part of wide
    rows is never held whole as text."""
    part = pq.ParquetFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    rows = max(part.metadata.num_rows, 1)
    size = sum(part.metadata.row_group(i).total_byte_size for i in range(part.metadata.num_row_groups))
    batch_rows = max(1, int(CSV_BATCH_BYTES / max(size / rows, 1)))
    for batch in part.iter_batches(batch_size=batch_rows):
        for i, fld in enumerate(batch.schema):
            if pa.types.is_binary(fld.type) or pa.types.is_large_binary(fld.type):
                batch = batch.set_column(i, fld.name, _bytea_text(batch.column(i)))
        out = io.BytesIO()
        pacsv.write_csv(batch, out, _CSV)
        yield out.getvalue()


class PostgresWarehouse(Warehouse):
    dialect = sql.POSTGRES

    def stage(self, conn: Connection, into: str, schema: TableSchema, request: LoadRequest,
              parts: Sequence[PendingPart]) -> None:
        columns = [c.name for c in schema.columns]
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(sql.copy_csv_stdin(into, columns)) as copy:
            for part in parts:
                # Spooled to a local file, read a batch at a time: a part is never whole in memory.
                with tempfile.TemporaryFile(prefix="ferry-load-", dir=settings().spool_dir) as f:
                    self.store.download(part.key, f)
                    f.seek(0)
                    for piece in parquet_to_csv(f):
                        copy.write(piece)
