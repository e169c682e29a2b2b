"""The rows a reconcile range found only in the target: their keys as a small Parquet
object beside the range's repair parts (one more part of its chunk, so the load that merges
the repairs deletes them in the same transaction, and the ledger keeps it from being
applied twice), read back by that load, which asks the source again just before it deletes
(common/source/probes.existing_keys): a key written again in the source since the range was
compared is kept."""
from __future__ import annotations

import io
from typing import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from common.model.bounds import Key
from common.model.records import Part
from common.model.types import TableSchema
from common.store.s3 import Store


def write(store: Store, key: str, schema: TableSchema, keys: Sequence[Key],
          metadata: dict[str, str]) -> Part:
    """Upload the keys (target values) as Parquet with the key columns' types. Counted as 0
    rows: a part's rows are the rows it loads, and these load none."""
    cols = schema.key_only().columns
    arrays = [pa.array([k[i] for k in keys], type=c.arrow_type()) for i, c in enumerate(cols)]
    table = pa.Table.from_arrays(arrays, names=[c.name for c in cols])
    out = io.BytesIO()
    pq.write_table(table, out)
    body = out.getvalue()
    store.put(key, body, metadata=metadata)
    return Part(key=key, rows=0, bytes=len(body))


def read(store: Store, key: str) -> list[Key]:
    """The keys of a deletes object, as Python values in key order of columns."""
    table = pq.read_table(io.BytesIO(store.get(key)))
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [tuple(row) for row in zip(*columns)]
