"""Parquet parts on a real S3 server: bounded size, one prefix per attempt, paginated listings."""
from __future__ import annotations

import io
import secrets

import pyarrow as pa
import pyarrow.parquet as pq

from common.model import naming
from common.store.parquet import PartWriter
from common.store.s3 import Store

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])


def _batch(start: int, n: int) -> pa.RecordBatch:
    return pa.record_batch([pa.array(range(start, start + n), pa.int64()),
                            pa.array([f"row {i}" for i in range(start, start + n)])], schema=SCHEMA)


def _write_chunk(store: Store, prefix: str, part_rows: int, attempt: str) -> list:
    writer = PartWriter(store, lambda i: naming.part_key(prefix, "r1", 0, attempt, i), SCHEMA, 64, part_rows,
                        {"run": "r1", "chunk": "0"})
    for start in range(0, 2500, 700):
        writer.write(_batch(start, min(700, 2500 - start)))
    return writer.close()


def test_parts_are_bounded_and_two_attempts_never_share_a_key(s3_store: Store) -> None:
    prefix = f"ferry/parts-{secrets.token_hex(3)}/"
    a1, a2 = naming.new_attempt_id(1), naming.new_attempt_id(1)
    assert a1 != a2
    first = _write_chunk(s3_store, prefix, part_rows=1000, attempt=a1)
    assert [p.rows for p in first] == [1000, 1000, 500]
    # A second attempt of the same chunk writes under its own prefix: the first attempt's
    # objects are untouched, whatever the second one writes.
    second = _write_chunk(s3_store, prefix, part_rows=2000, attempt=a2)
    assert [p.rows for p in second] == [2000, 500]
    assert not {p.key for p in first} & {p.key for p in second}
    listed = sorted(k for k, _ in s3_store.list(prefix))
    assert listed == sorted([p.key for p in first] + [p.key for p in second])
    assert s3_store.metadata(first[2].key)["rows"] == "500"
    ids = []
    for p in second:
        ids += pq.read_table(io.BytesIO(s3_store.get(p.key))).column("id").to_pylist()
    assert ids == list(range(2500))
    assert s3_store.metadata(second[1].key)["rows"] == "500"


def test_listing_is_paginated_past_1000_keys(s3_store: Store) -> None:
    prefix = f"ferry/many-{secrets.token_hex(3)}/"
    keys = [f"{prefix}{i:05d}" for i in range(1105)]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3_store.put(k, b"x"), keys))
    assert sorted(k for k, _ in s3_store.list(prefix)) == keys
    assert s3_store.delete(keys) == 1105
    assert list(s3_store.list(prefix)) == []
