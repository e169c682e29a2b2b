"""Source schema changes followed without a manual step, compared value by value with the
source (old rows included), on the PostgreSQL stand-in; the Redshift statements are the
golden ones of test_sql.py::test_schema_change_statements."""
from __future__ import annotations

import threading

from tests.conftest import Pipe
from tests.services import wait_for
from tests.test_readers import readers_of


def test_added_widened_and_dropped_columns_and_a_dba_column(pipe: Pipe, workers: list) -> None:
    pipe.execute("CREATE TABLE items (id INT NOT NULL PRIMARY KEY, name VARCHAR(10), qty INT, gone INT)",
                 "INSERT INTO items SELECT seq, CONCAT('n', seq), seq * 10, seq FROM seq_1_to_300",
                 "CREATE TABLE other (id INT NOT NULL PRIMARY KEY, code INT)",
                 "INSERT INTO other SELECT seq, seq FROM seq_1_to_5")
    pipe.write({"items": {}, "other": {}}, chunk_rows=100)
    assert pipe.sync("--wait").code == 0

    pipe.execute("ALTER TABLE items ADD COLUMN status VARCHAR(8) NOT NULL DEFAULT 'new',"
                 " ADD COLUMN note TEXT NULL, ADD COLUMN score DECIMAL(6,2) DEFAULT 1.50,"
                 " MODIFY name VARCHAR(30), MODIFY qty BIGINT, DROP COLUMN gone",
                 "INSERT INTO items SELECT seq, REPEAT('x', 25), 9000000000 + seq, 'paid', 'hello', 2.25"
                 " FROM seq_301_to_400",
                 # A type the target cannot follow stops this table only.
                 "ALTER TABLE other MODIFY code VARCHAR(5)", "INSERT INTO other VALUES (6, 'six')")
    pipe.pg().execute(f'ALTER TABLE "{pipe.db}".items ADD COLUMN inserted_at TIMESTAMP DEFAULT now()')
    second = pipe.sync("--wait")
    assert second.code == 1
    assert second.report["table_metrics"][pipe.table("items")]["status"] == "succeeded"
    other = second.report["table_metrics"][pipe.table("other")]
    assert other["status"] == "failed" and "column code" in other["error"] and "int" in other["error"] \
        and "varchar(5)" in other["error"]

    # Old rows got the source's defaults, new rows their values, in every mapped column.
    assert pipe.assert_synced("items") == 400
    pg = pipe.pg()
    assert pg.execute(f'SELECT count(*) FROM "{pipe.db}".items WHERE gone IS NOT NULL').fetchone()[0] == 300
    assert pg.execute(f'SELECT count(*) FROM "{pipe.db}".items WHERE inserted_at IS NOT NULL').fetchone()[0] == 400
    types = dict(pg.execute("SELECT column_name, data_type FROM information_schema.columns"
                            " WHERE table_schema = %s AND table_name = 'items'", (pipe.db,)))
    assert types["qty"] == "bigint" and types["status"] == "character varying"
    changes = [e["change"] for e in pipe.state("items").schema_events()]
    assert "source: column status added (VARCHAR(32) DEFAULT 'new')" in changes
    assert "source: column gone dropped in the source (kept in the target, NULL in new rows)" in changes
    assert any(c.startswith("target: ALTER TABLE") and 'ADD COLUMN "score" DECIMAL(6,2) DEFAULT CAST(1.50 AS DECIMAL(6,2))' in c
               for c in changes)
    assert any('ALTER COLUMN "qty" TYPE BIGINT' in c for c in changes)
    # The next sync is quiet: nothing left to change.
    assert pipe.sync("--wait", "-t", pipe.table("items")).code == 0
    assert len(pipe.state("items").schema_events()) == len(changes)


def test_a_column_added_during_a_run_fails_it_and_the_next_run_plans_again(pipe: Pipe, workers: list) -> None:
    from common.state import faults

    pipe.execute("CREATE TABLE evens (id INT NOT NULL PRIMARY KEY, v INT)",
                 "INSERT INTO evens SELECT seq * 2, seq FROM seq_1_to_3000")
    pipe.write({"evens": {}}, chunk_rows=1000)
    state = pipe.state("evens")
    faults.inject(state.r, pipe.name, pipe.table("evens"), 1, 1, "sleep", 4)
    result: list = []
    runner = threading.Thread(target=lambda: result.append(pipe.sync("--wait")))
    runner.start()
    wait_for(lambda: bool(state.runs()) and state.chunk(state.runs()[-1], 0).state != "pending", 60,
             "chunk 0 committed")
    # Chunk 1 has not read yet: the column arrives, with a row that has its own value.
    pipe.execute("ALTER TABLE evens ADD COLUMN c INT NOT NULL DEFAULT 5",
                 "INSERT INTO evens VALUES (2001, -1, 9)")
    runner.join(120)
    first = result[0]
    assert first.code == 1 and "schema changed during run" in first.stderr
    second = pipe.sync("--wait")
    assert second.code == 0, second.stderr
    assert second.report["run_id"] != first.report["run_id"]
    assert pipe.state("evens").run_meta(first.report["run_id"])["status"] == "replanned"
    assert pipe.assert_synced("evens") == 3001
    assert dict(pipe.pg().execute(f'SELECT id, c FROM "{pipe.db}".evens WHERE id IN (2, 2001)')) == {2: 5, 2001: 9}
    # (read by DuckDB, the default reader: the check after each read is the same for both)
    assert readers_of(workers, pipe.table("evens")) == {"duckdb"}
