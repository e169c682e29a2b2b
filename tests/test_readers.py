"""The two chunk readers, DuckDB's mysql extension (the default) and mysql-connector-python,
against a real MariaDB: the same Arrow and Parquet from both, the fallback decided from the
type map and the source's settings, the versions checked at worker start, and syncs through
each reader that land exactly the source's rows. (The rest of the suite reads through DuckDB,
the default: the tunnel, outage, KILL QUERY and restart tests assert it did.)"""
from __future__ import annotations

import dataclasses
import io
import json
import sys
from pathlib import Path

import mysql.connector
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.config.connections import SourceConfig
from common.errors import ConfigError, SchemaError, TerminalError, TransientError
from common.model.types import TableSchema
from common.source import catalog, connection, duck, reads
from common.source.convert import BatchStats, rows_to_batch
from tests.conftest import MYSQL, Pipe
from tests.services import Worker
from tests.test_source import _settings
from tests.test_types_roundtrip import DDL, INSERT, ROWS

SOURCE = SourceConfig(host=MYSQL["host"], port=MYSQL["port"], user=MYSQL["user"], password=MYSQL["password"])
LOTS = 1 << 60
"""batch_bytes that bounds nothing: the exactness tests read tables whose rows DuckDB would
not be given under the default batch_mb."""

AWKWARD = """CREATE TABLE awkward (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  d DATE NULL, dn DATE NOT NULL, dt DATETIME(6) NULL, dtn DATETIME NOT NULL, ts TIMESTAMP(6) NULL DEFAULT NULL,
  tm TIME(6) NULL, tm0 TIME NULL, b1 BIT(1) NULL, b64 BIT(64) NULL, ub BIGINT UNSIGNED NULL,
  d38 DECIMAL(38,10) NULL, y YEAR NULL, e ENUM('a','b''c') NULL, s SET('x','y') NULL, j JSON NULL,
  bl BLOB NULL, u VARCHAR(10) NULL, f FLOAT NULL, dbl DOUBLE NULL, t1 TINYINT(1) NULL, t1n TINYINT(1) NOT NULL
)"""
AWKWARD_ROWS = [
    (1, "0000-00-00", "0000-00-00", "0000-00-00 00:00:00", "0000-00-00 00:00:00", None, "-838:59:59", "-838:59:59",
     1, 2 ** 64 - 1, 2 ** 64 - 1, "9999999999999999999999999999.9999999999", 1901, "a", "x,y", '{"a": [1, 2.5]}',
     b"\x00\xff\x00", "😀x\x00y", 3.4028235e38, 1.7976931348623157e308, 1, 0),
    (2, "2024-00-10", "2024-01-00", "2024-00-10 10:00:00", "2024-01-00 00:00:00", "2024-02-29 23:59:59.999999",
     "838:59:59", "838:59:59", 0, 0, 0, "-9999999999999999999999999999.9999999999", 2155, "b'c", "",
     "null", b"", "", 0.1, 0.1, 0, 1),
    (3, "0000-01-01", "2024-05-06", "0000-01-01 00:00:00", "2024-05-06 07:08:09", "1970-01-01 00:00:01",
     "00:00:00.000001", "-00:00:01", None, None, None, "0.0000000001", 0, None, None, None, None, None, -0.0,
     -0.0, None, 1),
    (4,) + (None, "2024-05-06", None, "2024-05-06 07:08:09") + (None,) * 16 + (0,),
]


def _both(pipe: Pipe, table: str, batch_bytes: int = LOTS) -> tuple[TableSchema, pa.Table, pa.Table,
                                                                       BatchStats, BatchStats]:
    conn = connection.connect(SOURCE)
    schema = catalog.read_schema(conn, _settings(pipe, table, batch_rows=3))
    key = list(schema.key)
    plain, columnar = BatchStats(), BatchStats()
    arrow_schema = schema.arrow_schema()
    a = pa.Table.from_batches(
        [rows_to_batch(rows, schema, arrow_schema, plain) for rows in reads.read_range(
            conn, pipe.table(table), [c.source for c in schema.columns], key, None, None, 3,
            select=[reads.select_expression(c) for c in schema.columns])],
        schema=arrow_schema)
    con = duck.connect(SOURCE, MYSQL["host"], MYSQL["port"])
    b = pa.Table.from_batches(list(duck.read_range(con, pipe.table(table), schema, key, None, None, 3, batch_bytes,
                                                   columnar, mariadb=True)), schema=arrow_schema)
    con.close()
    conn.close()
    return schema, a, b, plain, columnar


def _parquet_schema(table: pa.Table) -> str:
    out = io.BytesIO()
    pq.write_table(table, out)
    return str(pq.ParquetFile(io.BytesIO(out.getvalue())).schema).split("\n", 1)[1]  # (line 1: its address)


def test_the_extension_is_the_pinned_pair_and_the_connector_keeps_its_c_extension() -> None:
    import duckdb  # (imported after mysql.connector, as the workers do)

    assert duck.versions() == (duckdb.__version__, "1.5.5") == ("1.5.5", "1.5.5")
    assert mysql.connector.HAVE_CEXT
    con = duck.connect(SOURCE, MYSQL["host"], MYSQL["port"])
    # The extension was loaded from the wheel, with unsigned extensions still refused.
    assert con.execute("SELECT current_setting('allow_unsigned_extensions')").fetchone()[0] is False
    assert con.execute("SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'mysql_scanner'"
                       ).fetchone()[0] is True
    con.close()


@pytest.mark.parametrize("ddl, insert, rows, table", [
    (DDL, INSERT, ROWS, "every_type"),
    (AWKWARD, "INSERT INTO awkward VALUES (" + ", ".join(["%s"] * 22) + ")", AWKWARD_ROWS, "awkward"),
], ids=["every_type", "awkward"])
def test_both_readers_give_the_same_arrow_and_parquet(pipe: Pipe, ddl: str, insert: str, rows: list,
                                                      table: str) -> None:
    pipe.execute("SET SESSION sql_mode = ''", ddl)
    conn = pipe.mysql()
    cur = conn.cursor()
    cur.execute("SET SESSION sql_mode = ''")
    cur.executemany(insert, rows)
    schema, a, b, plain, columnar = _both(pipe, table)
    assert duck.why_not(SOURCE, schema, LOTS) is None  # every column has an exact DuckDB read
    assert a.num_rows == len(rows)
    for name in a.column_names:
        assert a.column(name).equals(b.column(name)), (name, a.column(name), b.column(name))
    assert a.equals(b)
    assert _parquet_schema(a) == _parquet_schema(b)
    assert plain == dataclasses.replace(columnar, reader=plain.reader)
    if table == "awkward":  # the zero dates, counted alike; the NUL removed alike
        assert columnar.zero_dates == {"d": 3, "dn": 2, "dt": 3, "dtn": 2}
        assert columnar.nul_removed == {"u": 1}


def test_a_bool_that_is_not_0_or_1_and_an_oversize_value_are_refused_alike(pipe: Pipe) -> None:
    pipe.execute("CREATE TABLE odd (id INT PRIMARY KEY, flag TINYINT(1))", "INSERT INTO odd VALUES (1, 0), (2, 7)",
                 "CREATE TABLE wide (id INT PRIMARY KEY, t MEDIUMTEXT)",
                 "INSERT INTO wide VALUES (1, 'x'), (2, REPEAT('y', 70000))")
    con = duck.connect(SOURCE, MYSQL["host"], MYSQL["port"])
    for table, match in (("odd", "column flag .* value 7 is neither 0 nor 1"),
                         ("wide", r"column t, row \(id=2\): a value of 70000 bytes exceeds")):
        conn = connection.connect(SOURCE)  # (a read stopped mid-stream leaves it unusable)
        schema = catalog.read_schema(conn, _settings(pipe, table))
        cols = [c.source for c in schema.columns]
        with pytest.raises(SchemaError, match=match) as plain:
            for rows in reads.read_range(conn, pipe.table(table), cols, ["id"], None, None, 10):
                rows_to_batch(rows, schema, schema.arrow_schema(), BatchStats())
        with pytest.raises(SchemaError, match=match) as columnar:
            list(duck.read_range(con, pipe.table(table), schema, ["id"], None, None, 10, LOTS, BatchStats(),
                                 mariadb=True))
        assert str(plain.value) == str(columnar.value)
        conn.close()
    con.close()


def test_the_connector_reads_what_duckdb_cannot_and_says_why(pipe: Pipe) -> None:
    pipe.execute("CREATE TABLE narrow (id INT PRIMARY KEY, v VARCHAR(100), n DECIMAL(12,2))",
                 "CREATE TABLE texty (id INT PRIMARY KEY, body LONGTEXT)")
    conn = connection.connect(SOURCE)
    narrow = catalog.read_schema(conn, _settings(pipe, "narrow"))
    texty = catalog.read_schema(conn, _settings(pipe, "texty"))
    mb16 = 16 * 1024 * 1024
    assert duck.why_not(SOURCE, narrow, mb16) is None
    assert "DuckDB holds 2,048 rows at once" in duck.why_not(SOURCE, texty, mb16)
    assert "read_timeout_s" in duck.why_not(SOURCE.model_copy(update={"read_timeout_s": 30}), narrow, mb16)
    assert "max_execution_time_ms" in duck.why_not(SOURCE.model_copy(update={"max_execution_time_ms": 9}),
                                                   narrow, mb16)
    odd = SOURCE.model_copy(update={"options": {"ssl_ca": "/ca.pem", "allow_local_infile": True}})
    assert duck.why_not(odd, narrow, mb16) == "the source's option(s) allow_local_infile have no counterpart " \
                                              "in the extension"
    conn.close()


def test_duckdb_errors_are_told_transient_or_terminal(pipe: Pipe) -> None:
    with pytest.raises(TerminalError, match="Access denied for user 'nobody'"):
        duck.connect(SOURCE.model_copy(update={"user": "nobody", "password": "wrong"}), MYSQL["host"], MYSQL["port"])
    with pytest.raises(TransientError, match=f"source {MYSQL['user']}@"):
        duck.connect(SOURCE, MYSQL["host"], 1)  # nothing listens there
    pipe.execute("CREATE TABLE gone (id INT PRIMARY KEY)")
    conn = connection.connect(SOURCE)
    schema = catalog.read_schema(conn, _settings(pipe, "gone"))
    pipe.execute("DROP TABLE gone")
    con = duck.connect(SOURCE, MYSQL["host"], MYSQL["port"])
    with pytest.raises(TerminalError, match=f"table {pipe.table('gone')}.*doesn't exist"):
        list(duck.read_range(con, pipe.table("gone"), schema, ["id"], None, None, 10, LOTS, BatchStats(), True))
    con.close()


def test_a_mismatched_extension_stops_the_worker_at_start_naming_both(tmp_path: Path, ferry_env: dict,
                                                                     log_dir: Path) -> None:
    """A stale duckdb-extension-mysql 1.5.4 ahead on the path (what a partial upgrade leaves)."""
    info = tmp_path / "site" / "duckdb_extension_mysql-1.5.4.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: duckdb-extension-mysql\nVersion: 1.5.4\n")
    env = dict(ferry_env, PYTHONPATH=str(tmp_path / "site"))
    with pytest.raises(RuntimeError, match="exited") as got:
        Worker("mismatch", env, log_dir, concurrency=1)
    assert "DuckDB 1.5.5 with duckdb-extension-mysql 1.5.4" in str(got.value)
    duck.check_versions()  # here, the pair installed from requirements.txt: no error
    with pytest.raises(ConfigError, match="DuckDB 1.5.5 with duckdb-extension-mysql 1.5.4"):
        sys.path.insert(0, str(tmp_path / "site"))
        try:
            duck.check_versions()
        finally:
            sys.path.remove(str(tmp_path / "site"))


def readers_in_log(log_path: Path, table: str) -> set[str]:
    """The readers that committed the table's chunks, from a worker's log."""
    found = set()
    for line in log_path.read_text(errors="replace").splitlines():
        if "chunk committed:" in line and f"table {table} " in line:
            text = json.loads(line)["message"] if line.startswith("{") else line
            found.add(text.rsplit(" reader ", 1)[1].split()[0].strip('"'))
    return found


def readers_of(workers: list[Worker], table: str) -> set[str]:
    """The readers that committed the table's chunks, from every worker's log."""
    return set().union(*(readers_in_log(w.log_path, table) for w in workers))


@pytest.mark.parametrize("reader", ["duckdb", "connector"])
def test_a_sync_through_each_reader_is_exact(pipe: Pipe, workers: list, log_dir: Path, reader: str) -> None:
    pipe.execute("CREATE TABLE orders (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, amount DECIMAL(12,2) NOT NULL,"
                 " note VARCHAR(50), at DATETIME(6) NOT NULL, ts TIMESTAMP(6) NULL DEFAULT NULL, t TIME,"
                 " flag TINYINT(1) NOT NULL, f FLOAT, b BIT(3))")
    pipe.execute("INSERT INTO orders SELECT seq, seq * 1.25, IF(seq % 3 = 0, NULL, CONCAT('n', seq, '😀')),"
                 " '2024-01-01' + INTERVAL seq SECOND, FROM_UNIXTIME(1700000000 + seq), SEC_TO_TIME(CAST(seq AS SIGNED) - 500),"
                 " seq % 2, seq / 7, seq % 8 FROM seq_1_to_2000")
    pipe.write({"orders": {"reader": reader}}, chunk_rows=500)
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    assert pipe.assert_synced("orders") == 2000
    assert readers_of(workers, pipe.table("orders")) == {reader}


def test_duckdb_ranges_on_a_text_key_cover_the_same_rows(pipe: Pipe) -> None:
    """Bounds are written into DuckDB's statement as literals: quotes, backslashes and 4-byte
    UTF-8 in a composite key compare as the connector's parameters do, under any sql_mode."""
    pipe.execute("CREATE TABLE k (a INT NOT NULL, b VARCHAR(10) NOT NULL, v INT, PRIMARY KEY (a, b))")
    conn = pipe.mysql()
    names = ["x", "o'k", "back\\slash", "😀", "Z", "é"]
    conn.cursor().executemany("INSERT INTO k VALUES (%s, %s, %s)",
                              [(a, b, a * 10 + i) for a in range(3) for i, b in enumerate(names)])
    src = connection.connect(SOURCE)
    src.cursor().execute("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'")  # (the DuckDB side has its own)
    schema = catalog.read_schema(src, _settings(pipe, "k"))
    con = duck.connect(SOURCE, MYSQL["host"], MYSQL["port"])
    for lo, hi in (((0, "o'k"), (2, "back\\slash")), ((1, "😀"), None), (None, (0, "é"))):
        a = [r for rows in reads.read_range(src, pipe.table("k"), ["a", "b", "v"], ["a", "b"], lo, hi, 100)
             for r in rows]
        b = pa.Table.from_batches(list(duck.read_range(con, pipe.table("k"), schema, ["a", "b"], lo, hi, 100, LOTS,
                                                       BatchStats(), mariadb=True)), schema=schema.arrow_schema())
        assert [(int(x), y.decode(), int(z)) for x, y, z in a] == [tuple(r.values()) for r in b.to_pylist()], (lo, hi)
        assert b.num_rows > 0
    con.close()


class _Counting:
    """The real DuckDB connection, counting the statements sent through it."""

    def __init__(self, con: object) -> None:
        self.con, self.statements = con, 0

    def execute(self, *args: object) -> object:
        self.statements += 1
        return self.con.execute(*args)


def test_a_range_longer_than_a_page_is_read_in_keyset_pages_with_the_same_rows(pipe: Pipe) -> None:
    """The extension stores a statement's whole result before handing on a row, so a chunk
    is read in pages (a batch's worth at the declared widths, here 2,048 rows): every page
    starts after the last key of the one before, on a composite text key whose groups a
    page boundary cuts, and the rows are the connector's, once each and in order."""
    pipe.execute("CREATE TABLE k (a INT NOT NULL, b VARCHAR(10) NOT NULL, v INT, PRIMARY KEY (a, b))")
    names = ["x", "o'k", "back\\slash", "😀", "Z", "é", "ab", "a b"]
    pipe.mysql().cursor().executemany("INSERT INTO k VALUES (%s, %s, %s)",
                                      [(a, b, a * 10 + i) for a in range(700) for i, b in enumerate(names)])
    src = connection.connect(SOURCE)
    schema = catalog.read_schema(src, _settings(pipe, "k"))
    con = _Counting(duck.connect(SOURCE, MYSQL["host"], MYSQL["port"]))
    for lo, hi in ((None, None), ((3, "é"), (690, "o'k")), ((100, "Z"), (355, "x"))):
        a = [r for rows in reads.read_range(src, pipe.table("k"), ["a", "b", "v"], ["a", "b"], lo, hi, 1000)
             for r in rows]
        con.statements = 0
        b = pa.Table.from_batches(list(duck.read_range(con, pipe.table("k"), schema, ["a", "b"], lo, hi, 100, 1,
                                                       BatchStats(), mariadb=True)), schema=schema.arrow_schema())
        assert [(int(x), y.decode(), int(z)) for x, y, z in a] == [tuple(r.values()) for r in b.to_pylist()], (lo, hi)
        assert con.statements == len(a) // duck.VECTOR_ROWS + 1, (lo, hi, len(a), con.statements)
    assert len(a) < duck.VECTOR_ROWS < 5_600  # (the last range is one page, the others three)
    con.con.close()
    src.close()
