"""The source reader against a real MariaDB: keys it refuses, and a stream that breaks."""
from __future__ import annotations

import pytest

from common.source import catalog, connection, probes, reads
from common.config.connections import SourceConfig
from common.config.pipeline import TableSettings
from common.errors import SchemaError, TransientError, classify
from tests.conftest import MYSQL, Pipe


def _settings(pipe: Pipe, table: str, **kw) -> TableSettings:
    base = dict(key=pipe.table(table), schema=pipe.db, name=table, primary_key=None, cursor=None,
                strategy="id", target_name=table, exclude_columns=(), chunk_rows=10, part_mb=64,
                part_rows=None, batch_rows=10, tinyint1_as_bool=True)
    base.update(kw)
    return TableSettings(**base)


def _connect() -> object:
    return connection.connect(SourceConfig(host=MYSQL["host"], port=MYSQL["port"], user=MYSQL["user"],
                                       password=MYSQL["password"]))


def test_enum_and_nullable_keys_are_refused(pipe: Pipe) -> None:
    pipe.execute("CREATE TABLE e (k ENUM('b','a') NOT NULL PRIMARY KEY, v INT)",
                 "CREATE TABLE n (id INT NOT NULL PRIMARY KEY, alt INT NULL)")
    conn = _connect()
    with pytest.raises(SchemaError, match="key column 'k' is an ENUM"):
        catalog.read_schema(conn, _settings(pipe, "e"))
    with pytest.raises(SchemaError, match="key column 'alt' is nullable"):
        catalog.read_schema(conn, _settings(pipe, "n", primary_key=("alt",)))
    with pytest.raises(SchemaError, match=f"table {pipe.db}.nope not found"):
        catalog.read_schema(conn, _settings(pipe, "nope"))


def test_composite_key_ranges_cover_every_row_once(pipe: Pipe) -> None:
    pipe.execute("CREATE TABLE fa (a INT NOT NULL, b VARCHAR(5) NOT NULL, PRIMARY KEY (a, b))")
    rows = [(a, b) for a in range(7) for b in ("x", "y", "z", "zz")]
    cur = pipe.mysql().cursor()
    cur.executemany("INSERT INTO fa VALUES (%s, %s)", rows)
    conn = _connect()
    schema = catalog.read_schema(conn, _settings(pipe, "fa"))
    top = probes.key_at(conn, pipe.table("fa"), schema.key, None, None, 0, desc=True)
    ranges = probes.plan_bounds(conn, pipe.table("fa"), schema.key, None, 5, top)
    seen = []
    for lo, hi in ranges:
        for batch in reads.read_range(conn, pipe.table("fa"), ["a", "b"], schema.key, lo, hi, 3):
            seen += [(int(a), b.decode()) for a, b in batch]
    assert seen == rows
    assert [len(r) for r in ranges] == [2] * len(ranges) and len(ranges) == 6  # 28 rows / 5


def test_a_connection_killed_mid_stream_is_a_transient_error(pipe: Pipe) -> None:
    pipe.execute("CREATE TABLE big (id INT PRIMARY KEY, pad CHAR(200))")
    pipe.mysql().cursor().execute(
        "INSERT INTO big SELECT seq, REPEAT('x', 200) FROM seq_1_to_200000")
    conn = _connect()
    cur = conn.cursor()
    cur.execute("SELECT CONNECTION_ID()")
    conn_id = cur.fetchone()[0]
    cur.close()
    stream = reads.read_range(conn, pipe.table("big"), ["id", "pad"], ["id"], None, None, 1000)
    next(stream)
    pipe.execute(f"KILL {conn_id}")
    with pytest.raises(Exception) as err:
        for _ in stream:
            pass
    assert isinstance(classify(err.value), TransientError), repr(err.value)
