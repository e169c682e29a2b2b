"""End to end: the CLI enqueues, real workers extract to S3 and load into PostgreSQL."""
from __future__ import annotations

from demo.seed import seed
from tests.conftest import MYSQL, Pipe


def _seed(pipe: Pipe, table: str, rows: int, append: bool = False) -> int:
    return seed(pipe.table(table), rows, append=append, host=MYSQL["host"], port=MYSQL["port"],
                user=MYSQL["user"], password=MYSQL["password"])


def test_sparse_table_with_nulls_then_new_rows(pipe: Pipe, workers: list) -> None:
    assert _seed(pipe, "orders", 12_000) == 12_000
    pipe.write({"orders": {"primary_key": ["id"], "cursor": "id"}}, chunk_rows=1000)

    first = pipe.sync("--wait")
    assert first.code == 0, first.stderr
    metrics = first.report["table_metrics"][pipe.table("orders")]
    assert first.report["status"] == "succeeded"
    assert metrics["rows_processed"] == 12_000 and metrics["files_created"] == 12
    assert pipe.assert_synced("orders") == 12_000

    # Probing the key index gives every chunk exactly chunk_rows rows, however sparse the ids.
    chunks = pipe.state("orders").chunks(first.report["run_id"])
    assert [c.rows for c in chunks] == [1000] * 12
    assert all(c.state == "loaded" for c in chunks)
    # The seeded ids jump: a MIN/MAX stride would have made uneven chunks.
    ids = [c.hi[0] for c in chunks]
    gaps = [b - a for a, b in zip(ids, ids[1:])]
    assert max(gaps) > 3 * min(gaps)

    # New rows: the next sync copies exactly those.
    assert _seed(pipe, "orders", 2_345, append=True) == 14_345
    second = pipe.sync("--wait")
    assert second.code == 0, second.stderr
    assert second.report["table_metrics"][pipe.table("orders")]["rows_processed"] == 2_345
    assert pipe.assert_synced("orders") == 14_345
    state = pipe.state("orders").state()
    assert state["rows_extracted"] == state["rows_loaded"] == "14345"

    # Nothing new: a sync plans no chunk and changes nothing.
    third = pipe.sync("--wait")
    assert third.code == 0, third.stderr
    assert third.report["table_metrics"][pipe.table("orders")]["rows_processed"] == 0
    assert pipe.assert_synced("orders") == 14_345


def test_two_workers_share_one_run(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 9_000)
    pipe.write({"orders": {}}, chunk_rows=250)
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    chunks = pipe.state("orders").chunks(result.report["run_id"])
    assert len(chunks) == 36
    names = {c.worker.split("@")[0] for c in chunks}
    assert names == {"w1", "w2"}, names
    assert pipe.assert_synced("orders") == 9_000


def test_limit_copies_only_n_rows_then_the_rest(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 3_000)
    pipe.write({"orders": {}}, chunk_rows=400)
    limited = pipe.sync("--wait", "--limit", "1000")
    assert limited.code == 0, limited.stderr
    assert limited.report["table_metrics"][pipe.table("orders")]["rows_processed"] == 1000
    pg = pipe.pg()
    assert pg.execute(f'SELECT count(*) FROM "{pipe.db}".orders').fetchone()[0] == 1000
    rest = pipe.sync("--wait")
    assert rest.report["table_metrics"][pipe.table("orders")]["rows_processed"] == 2000
    assert pipe.assert_synced("orders") == 3_000


def test_unmappable_column_is_refused_before_anything_is_queued(pipe: Pipe, workers: list) -> None:
    pipe.execute("CREATE TABLE wide (id INT PRIMARY KEY, big DECIMAL(65,30), shape INET6)",
                 "INSERT INTO wide VALUES (1, 1.5, '::1')")
    pipe.write({"wide": {}})
    failed = pipe.sync("--wait")
    assert failed.code == 2 and "nothing was queued" in failed.stderr
    # Every column that cannot be copied is named, not only the first.
    assert "column big" in failed.stderr and "precision 65" in failed.stderr
    assert "column shape" in failed.stderr
    state = pipe.state("wide")
    assert state.lock_owner() is None and state.cursor() is None and state.runs() == []

    # Excluding the column lets the next run through: the failed run held nothing.
    pipe.write({"wide": {"exclude_columns": ["big", "shape"]}})
    ok = pipe.sync("--wait")
    assert ok.code == 0, ok.stderr
    assert pipe.assert_synced("wide") == 1


def test_a_table_locked_by_something_unknown_is_skipped_with_exit_4(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 10)
    pipe.write({"orders": {}})
    state = pipe.state("orders")
    state.acquire_lock("r-other-run", 60)
    refused = pipe.sync("--wait")  # no run of that name to attach to
    assert refused.code == 4
    assert "busy with active run r-other-run" in refused.stderr
    assert refused.report["busy_tables"] == [pipe.table("orders")] and refused.report["exit_code"] == 4
    assert state.run_meta("r-other-run") == {}
    runs = state.r.lrange(state.runs_key, 0, -1)
    assert runs == []


def test_text_longer_than_its_target_column_fails_naming_it(pipe: Pipe, workers: list) -> None:
    pipe.execute("CREATE TABLE notes (id INT PRIMARY KEY, body MEDIUMTEXT)",
                 "INSERT INTO notes VALUES (1, 'short'), (2, REPEAT('é', 40000))")
    pipe.write({"notes": {}})
    failed = pipe.sync("--wait")
    assert failed.code == 1
    assert ("column body, row (id=2): a value of 80000 bytes exceeds the target's VARCHAR(65535) "
            "(at most 65,535 bytes)") in failed.stderr
    assert "on_oversize: truncate" in failed.stderr


def test_json_documents_load_up_to_supers_size_and_a_larger_one_is_refused_naming_the_limit(
        pipe: Pipe, workers: list) -> None:
    """JSON is no longer held to a VARCHAR's 65,535 bytes on its way to SUPER (staged as VARBYTE
    on Redshift, JSON_PARSE'd; "An individual SUPER object can hold up to 16 MB of data",
    limitations-super.html): a 300 KB document syncs exactly; one over 16,000,000 bytes is
    refused naming the column, the row and the limit, and JSON is never cut."""
    pipe.execute("CREATE TABLE docs (id INT PRIMARY KEY, doc JSON)")
    big = '{"items": [' + ",".join(f'{{"n": {i}, "s": "{"x" * 20}"}}' for i in range(10_000)) + "]}"
    assert len(big) > 300_000
    cur = pipe.mysql().cursor()
    cur.execute("INSERT INTO docs VALUES (1, '{\"a\": 1}'), (2, %s)", (big,))
    pipe.write({"docs": {}})
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    assert pipe.assert_synced("docs") == 2
    huge = '{"s": [' + ",".join(['"' + "y" * 998 + '"'] * 16_001) + "]}"
    assert len(huge) > 16_000_000
    cur.execute("INSERT INTO docs VALUES (3, %s)", (huge,))
    pipe.write({"docs": {"on_oversize": "truncate"}})  # JSON is never cut: refused all the same
    failed = pipe.sync("--wait")
    assert failed.code == 1
    assert (f"column doc, row (id=3): a value of {len(huge)} bytes exceeds the target's SUPER "
            f"(at most 16,000,000 bytes)") in failed.stderr, failed.stderr


def test_on_oversize_truncate_cuts_at_a_character_boundary_and_counts(pipe: Pipe, workers: list) -> None:
    pipe.execute("CREATE TABLE notes (id INT PRIMARY KEY, body MEDIUMTEXT, tag VARCHAR(2), raw BLOB)",
                 "INSERT INTO notes VALUES (1, 'short', 'ok', x'00'),"
                 " (2, CONCAT('a', REPEAT('é', 40000)), 'ok', x'01'), (3, REPEAT('€', 30000), 'ok', NULL)")
    pipe.write({"notes": {"on_oversize": "truncate"}})
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    assert result.report["table_metrics"][pipe.table("notes")]["values_truncated"] == {"body": 2}
    bodies = dict(pipe.pg().execute(f'SELECT id, body FROM "{pipe.db}".notes'))
    assert bodies[1] == "short"
    # 65535 bytes: 'a' + 32767 'é' (2 bytes each); '€' is 3 bytes: 21845 of them.
    assert bodies[2] == "a" + "é" * 32767 and bodies[3] == "€" * 21845
    shown = pipe.ferry("watermark", "get", "-p", pipe.name, "-t", pipe.table("notes"), "--json")
    assert '"values_truncated": 2' in shown.stdout


def test_wide_rows_are_batched_and_parted_by_bytes(pipe: Pipe, workers: list) -> None:
    """200 rows of 1 MB with part_mb 8: batches and parts are cut by bytes (before: one
    200 MB part, every row in memory at once); the copy stays exact."""
    import os

    pipe.execute("CREATE TABLE blobs (id INT NOT NULL PRIMARY KEY, body LONGBLOB, note VARCHAR(10))")
    cur = pipe.mysql().cursor()
    for start in range(0, 200, 4):  # (a statement stays under max_allowed_packet)
        cur.executemany("INSERT INTO blobs VALUES (%s, %s, %s)",
                        [(i, os.urandom(1024 * 1024), f"n{i}") for i in range(start, start + 4)])
    pipe.write({"blobs": {}}, chunk_rows=1000, part_mb=8, batch_mb=4)
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    parts = [(k, s) for k, s in pipe.store.list(f"ferry/{pipe.name}/") if k.endswith(".parquet")]
    assert len(parts) >= 200 // 13, parts  # (each at most 8 MB and one batch more)
    assert max(s for _, s in parts) <= 8 * 1024 * 1024 + 5 * 1024 * 1024  # a part closes past 8 MB
    assert pipe.assert_synced("blobs") == 200


def test_a_primary_key_override_that_is_not_unique_fails_naming_a_duplicate(pipe: Pipe, workers: list) -> None:
    pipe.execute("CREATE TABLE visits (id INT NOT NULL PRIMARY KEY, shop INT NOT NULL, n INT)",
                 "INSERT INTO visits VALUES (1, 10, 1), (2, 20, 1), (3, 20, 2), (4, 30, 1)")
    pipe.write({"visits": {"primary_key": ["shop"], "cursor": "shop"}})
    result = pipe.sync("--wait")
    assert result.code == 1
    error = result.report["table_metrics"][pipe.table("visits")]["error"]
    assert "the key (shop) is not unique in the source: shop=20 appears 2 times" in error, error
    assert pipe.pg().execute("SELECT to_regclass(%s)", (f'"{pipe.db}".visits',)).fetchone()[0] is None or \
        pipe.pg().execute(f'SELECT COUNT(*) FROM "{pipe.db}".visits').fetchone()[0] == 0  # nothing merged


def test_nul_characters_in_text_are_removed_and_counted_not_blocking_the_table(pipe: Pipe, workers: list) -> None:
    """Neither Redshift nor PostgreSQL stores a NUL in a VARCHAR: the character is removed
    at extraction and counted, so the row loads and the table is never blocked by it."""
    pipe.execute("CREATE TABLE notes (id INT NOT NULL PRIMARY KEY, body TEXT, tag VARCHAR(8))")
    pipe.execute("INSERT INTO notes VALUES (1, 'ok', 'a'), (2, %s, %s), (3, NULL, 'c')",
                 params=("bad\x00value\x00", "t\x00g"))
    pipe.write({"notes": {}})
    first = pipe.sync("--wait")
    assert first.code == 0, first.stderr
    metrics = first.report["table_metrics"][pipe.table("notes")]
    assert metrics["nul_characters_removed"] == {"body": 1, "tag": 1}
    rows = pipe.pg().execute(f'SELECT id, body, tag FROM "{pipe.db}".notes ORDER BY id').fetchall()
    assert rows == [(1, "ok", "a"), (2, "badvalue", "tg"), (3, None, "c")]
    pipe.execute("INSERT INTO notes VALUES (4, 'later', 'd')")
    assert pipe.sync("--wait").code == 0
    assert pipe.pg().execute(f'SELECT body FROM "{pipe.db}".notes WHERE id = 4').fetchone()[0] == "later"
