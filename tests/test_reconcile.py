"""`ferry reconcile`: drift the cursor cannot see (deletes, updates that leave the cursor
alone, rows inserted behind it) found by range checksums and repaired by the workers, on
the real MySQL source, PostgreSQL target, S3 server and Celery workers; the target is then
compared with the source value by value."""
from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from typing import Any

from tests.conftest import Pipe
from tests.services import REPO, wait_for


def reconcile(pipe: Pipe, table: str, *args: str, timeout_s: float = 240) -> tuple[int, dict[str, Any], str]:
    out = pipe.config_dir / f"{pipe.name}-reconcile.json"
    out.unlink(missing_ok=True)
    proc = pipe.ferry("reconcile", "-p", pipe.name, "-t", pipe.table(table), "--json-output", str(out), *args,
                      timeout_s=timeout_s)
    return proc.returncode, json.loads(out.read_text()) if out.exists() else {}, proc.stdout + proc.stderr


def start_reconcile(pipe: Pipe, table: str) -> subprocess.Popen:
    """`ferry reconcile --wait` in the background."""
    return subprocess.Popen([sys.executable, "-m", "ferry", "reconcile", "-p", pipe.name, "-t", pipe.table(table),
                             "--wait"], env=pipe.env, cwd=REPO, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def seed_orders(pipe: Pipe, n: int, step: int = 2, extra: str = "") -> None:
    """orders with ids 2, 4, ... (gaps to insert into behind the cursor)."""
    pipe.execute("CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, customer VARCHAR(40) NOT NULL,"
                 " amount DECIMAL(12,2), placed DATETIME(6), note TEXT" + extra + ")")
    pipe.mysql().cursor().executemany(
        "INSERT INTO orders (id, customer, amount, placed, note) VALUES (%s, %s, %s, %s, %s)",
        [(i * step, f"cust{i % 97}", f"{i * 1.25:.2f}", f"2024-01-01 00:00:{i % 60:02d}.{i:06d}",
          None if i % 5 else f"note {i} é") for i in range(1, n + 1)])


def target_count(pipe: Pipe, table: str, where: str = "") -> int:
    return pipe.pg().execute(f'SELECT COUNT(*) FROM "{pipe.db}".{table}{where}').fetchone()[0]


def drift(pipe: Pipe, rng: random.Random, n: int) -> dict[str, set[int]]:
    """Delete 1,000 random rows and a block of 2,000, update 500 without touching the cursor,
    insert 100 behind the cursor; returns the keys of each."""
    ids = [i * 2 for i in range(1, n + 1)]
    block = set(ids[5000:7000])
    rest = [i for i in ids if i not in block]
    deleted = set(rng.sample(rest, 1000)) | block
    updated = set(rng.sample([i for i in rest if i not in deleted], 500))
    inserted = set(rng.sample([i * 2 + 1 for i in range(1, n - 1)], 100))
    conn = pipe.mysql()
    cur = conn.cursor()
    cur.executemany("DELETE FROM orders WHERE id = %s", [(i,) for i in sorted(deleted)])
    cur.executemany("UPDATE orders SET amount = amount + 1, note = 'changed' WHERE id = %s",
                    [(i,) for i in sorted(updated)])
    cur.executemany("INSERT INTO orders VALUES (%s, 'new', 1.00, '2024-02-02 00:00:00', NULL)",
                    [(i,) for i in sorted(inserted)])
    return {"deleted": deleted, "updated": updated, "inserted": inserted}


def test_rows_mode_repairs_deletes_updates_and_rows_behind_the_cursor(pipe: Pipe, workers: list) -> None:
    n = 20_000
    seed_orders(pipe, n)
    pipe.write({"orders": {"reconcile": {"range_rows": 3000}}}, chunk_rows=5000)
    assert pipe.sync("--wait").code == 0
    changed = drift(pipe, random.Random(19), n)
    # A sync sees none of it (the id cursor only looks above itself).
    assert pipe.sync("--wait").code == 0
    assert target_count(pipe, "orders") == n

    code, doc, text = reconcile(pipe, "orders", "--wait")
    assert code == 0, text
    assert doc["status"] == "succeeded" and doc["mode"] == "rows" and not doc["dry_run"]
    assert doc["rows_only_in_target"] == doc["rows_deleted"] == len(changed["deleted"]) == 3000, doc
    assert doc["rows_differing"] == len(changed["updated"]) == 500, doc
    assert doc["rows_only_in_source"] == len(changed["inserted"]) == 100, doc
    assert doc["rows_repaired"] == 600
    assert doc["rows_compared"] == n - 3000 + 100
    assert doc["ranges_checked"] == doc["ranges"] == doc["ranges_differing"] >= 6 and doc["pass_complete"]
    # Once most ranges checked differ, the next ones skip their checksums (read at once).
    assert 1 <= doc["ranges_read_without_checksum"] <= doc["ranges"] - 2
    assert doc["first_differences"] and doc["seconds"] > 0
    pipe.assert_synced("orders")
    # The cursor did not move, and a second pass finds nothing.
    code, doc, text = reconcile(pipe, "orders", "--wait")
    assert code == 0 and doc["rows_deleted"] == doc["rows_repaired"] == 0, doc
    assert doc["rows_only_in_target"] == doc["rows_only_in_source"] == doc["rows_differing"] == 0
    assert doc["ranges_differing"] == doc["ranges_read_without_checksum"] == 0
    status = pipe.state("orders").reconcile_state()
    assert status["rows_deleted_total"] == "3000" and status["rows_repaired_total"] == "600"
    assert status["last_complete_at"] and status["last_complete_mode"] == "rows"


def test_keys_mode_finds_deletes_and_missing_rows_not_updates(pipe: Pipe, workers: list) -> None:
    n = 20_000
    seed_orders(pipe, n)
    pipe.write({"orders": {"reconcile": {"range_rows": 4000}}}, chunk_rows=5000)
    assert pipe.sync("--wait").code == 0
    changed = drift(pipe, random.Random(7), n)
    code, doc, text = reconcile(pipe, "orders", "--wait", "--mode", "keys")
    assert code == 0, text
    assert doc["mode"] == "keys"
    assert doc["rows_only_in_target"] == doc["rows_deleted"] == 3000, doc
    assert doc["rows_only_in_source"] == doc["rows_repaired"] == 100 and doc["rows_differing"] == 0, doc
    keys = {r[0] for r in pipe.pg().execute(f'SELECT id FROM "{pipe.db}".orders')}
    cur = pipe.mysql().cursor()
    cur.execute("SELECT id FROM orders")
    source = {r[0] for r in cur.fetchall()}
    assert keys == source and not (keys & changed["deleted"]) and changed["inserted"] <= keys
    # The 500 updates are for rows mode.
    code, doc, text = reconcile(pipe, "orders", "--wait")
    assert code == 0 and doc["rows_differing"] == doc["rows_repaired"] == 500 and doc["rows_deleted"] == 0, doc
    pipe.assert_synced("orders")


def test_timestamp_strategy_table(pipe: Pipe, workers: list) -> None:
    pipe.execute("CREATE TABLE events (id INT NOT NULL PRIMARY KEY, val INT, updated_at DATETIME(6) NOT NULL,"
                 " KEY (updated_at))")
    pipe.mysql().cursor().executemany("INSERT INTO events VALUES (%s, %s, %s)",
                                      [(i, i, f"2024-01-01 00:{i // 600 % 60:02d}:{i % 60:02d}") for i in range(1, 8001)])
    pipe.write({"events": {"strategy": "timestamp", "cursor": "updated_at",
                           "reconcile": {"range_rows": 1500}}}, chunk_rows=2000)
    assert pipe.sync("--wait").code == 0
    # A DBA's fix that leaves updated_at alone (outside the lookback a sync re-reads), deletes,
    # and a row written with an old time.
    pipe.execute("UPDATE events SET val = -val WHERE id IN (10, 2000, 4000)",
                 "DELETE FROM events WHERE id BETWEEN 100 AND 199 OR id = 8000",
                 "INSERT INTO events VALUES (9000, 9, '2023-06-01 00:00:00')")
    assert pipe.sync("--wait").code == 0
    code, doc, text = reconcile(pipe, "events", "--wait")
    assert code == 0, text
    assert (doc["rows_deleted"], doc["rows_differing"], doc["rows_only_in_source"]) == (101, 3, 1), doc
    pipe.assert_synced("events")


def test_composite_and_text_keys(pipe: Pipe, workers: list) -> None:
    pipe.execute("CREATE TABLE order_lines (order_id INT NOT NULL, line SMALLINT NOT NULL, sku VARCHAR(20),"
                 " PRIMARY KEY (order_id, line))",
                 "CREATE TABLE skus (code VARCHAR(24) NOT NULL PRIMARY KEY, name TEXT,"
                 " updated_at DATETIME(6) NOT NULL, KEY (updated_at))")
    pipe.mysql().cursor().executemany("INSERT INTO order_lines VALUES (%s, %s, %s)",
                                      [(o, ln, f"sku{o * ln}") for o in range(1, 1501) for ln in range(1, 5)])
    pipe.mysql().cursor().executemany("INSERT INTO skus VALUES (%s, %s, '2024-01-01 00:00:00')",
                                      [(f"SKU-{i:05d}-ä", f"name {i}") for i in range(1, 5001)])
    pipe.write({"order_lines": {"cursor": "order_id", "cursor_increasing": True, "reconcile": {"range_rows": 1000}},
                "skus": {"strategy": "timestamp", "cursor": "updated_at", "reconcile": {"range_rows": 1000}}},
               chunk_rows=2000)
    assert pipe.sync("--wait").code == 0
    pipe.execute("DELETE FROM order_lines WHERE order_id BETWEEN 200 AND 260 AND line > 2",
                 "UPDATE order_lines SET sku = 'x' WHERE order_id = 1000",
                 "INSERT INTO order_lines VALUES (700, 9, 'late')",
                 "DELETE FROM skus WHERE code LIKE 'SKU-01%'",
                 "UPDATE skus SET name = 'renamed' WHERE code = 'SKU-04000-ä'")
    code, doc, text = reconcile(pipe, "order_lines", "--wait")
    assert code == 0, text
    assert (doc["rows_deleted"], doc["rows_differing"], doc["rows_only_in_source"]) == (122, 4, 1), doc
    pipe.assert_synced("order_lines")
    code, doc, text = reconcile(pipe, "skus", "--wait")
    assert code == 0, text
    assert (doc["rows_deleted"], doc["rows_differing"], doc["rows_only_in_source"]) == (1000, 1, 0), doc
    assert doc["ranges"] == 16  # 5,000 rows in ranges of 1,000: one hex digit of the key's MD5
    pipe.assert_synced("skus")


def test_dry_run_reports_and_changes_nothing(pipe: Pipe, workers: list) -> None:
    n = 6000
    seed_orders(pipe, n)
    pipe.write({"orders": {"reconcile": {"range_rows": 1000}}}, chunk_rows=2000)
    assert pipe.sync("--wait").code == 0
    pipe.execute("DELETE FROM orders WHERE id <= 40", "UPDATE orders SET note = 'x' WHERE id = 5000",
                 "INSERT INTO orders VALUES (101, 'new', 1.00, NULL, NULL)")
    before = pipe.pg().execute(f'SELECT * FROM "{pipe.db}".orders ORDER BY id').fetchall()
    objects = {k for k, _ in pipe.store.list(f"ferry/{pipe.name}/")}
    code, doc, text = reconcile(pipe, "orders", "--wait", "--dry-run")
    assert code == 1, text  # differences found
    assert doc["dry_run"] and doc["status"] == "extracted"
    assert (doc["rows_only_in_target"], doc["rows_differing"], doc["rows_only_in_source"]) == (20, 1, 1), doc
    assert doc["rows_deleted"] == doc["rows_repaired"] == 0 and not doc["pass_complete"]
    assert "would delete" in text
    assert pipe.pg().execute(f'SELECT * FROM "{pipe.db}".orders ORDER BY id').fetchall() == before
    # Only the run's plan was written: no part, no deletes object.
    new = {k for k, _ in pipe.store.list(f"ferry/{pipe.name}/")} - objects
    assert all(k.endswith("plan.json") for k in new), new
    assert pipe.state("orders").reconcile_state().get("rows_deleted_total") is None
    code, doc, _ = reconcile(pipe, "orders", "--wait")
    assert code == 0 and doc["rows_deleted"] == 20
    pipe.assert_synced("orders")


def test_soft_deletes_keep_the_row_and_a_key_that_comes_back_is_cleared(pipe: Pipe, workers: list) -> None:
    seed_orders(pipe, 3000)
    pipe.write({"orders": {"reconcile": {"deletes": "soft", "range_rows": 1000}}}, chunk_rows=1000)
    assert pipe.sync("--wait").code == 0
    pipe.execute("DELETE FROM orders WHERE id IN (2, 1000, 4000)")
    code, doc, text = reconcile(pipe, "orders", "--wait")
    assert code == 0 and doc["rows_deleted"] == 3, text
    pg = pipe.pg()
    marked = pg.execute(f'SELECT id FROM "{pipe.db}".orders WHERE _ferry_deleted_at IS NOT NULL ORDER BY id')
    assert [r[0] for r in marked] == [2, 1000, 4000]
    assert target_count(pipe, "orders") == 3000
    # verify and a second reconcile leave the soft-deleted rows out of the comparison.
    out = pipe.ferry("verify", "-p", pipe.name, "-t", pipe.table("orders"), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    code, doc, _ = reconcile(pipe, "orders", "--wait")
    assert code == 0 and doc["rows_deleted"] == 0 and doc["rows_only_in_target"] == 0, doc
    # The key comes back in the source: the row is copied again, live.
    pipe.execute("INSERT INTO orders VALUES (1000, 'back', 2.00, NULL, 'again')")
    code, doc, _ = reconcile(pipe, "orders", "--wait")
    assert code == 0 and doc["rows_only_in_source"] == doc["rows_repaired"] == 1, doc
    row = pg.execute(f'SELECT customer, _ferry_deleted_at FROM "{pipe.db}".orders WHERE id = 1000').fetchone()
    assert row == ("back", None)
    assert target_count(pipe, "orders", " WHERE _ferry_deleted_at IS NULL") == 2998


def test_a_key_written_again_before_the_load_is_not_deleted(pipe: Pipe, workers: list) -> None:
    """The load asks the source again just before it deletes: a key inserted in between stays."""
    from common.state import faults

    seed_orders(pipe, 2000)
    pipe.write({"orders": {"reconcile": {"range_rows": 5000}}}, chunk_rows=1000)
    assert pipe.sync("--wait").code == 0
    pipe.execute("DELETE FROM orders WHERE id IN (10, 20, 30)")
    st = pipe.state("orders")
    # The range's task sleeps after comparing, before its deletes object is written and the load runs.
    faults.inject(st.r, pipe.name, pipe.table("orders"), "reconcile:0", 1, "sleep", 4)
    proc = start_reconcile(pipe, "orders")
    wait_for(lambda: any(st.run_fields(r, "kind")["kind"] == "reconcile" for r in st.runs()), 30, "the reconcile")
    time.sleep(1.5)
    pipe.execute("INSERT INTO orders VALUES (20, 'back', 3.00, NULL, NULL)")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    run = [r for r in st.runs() if st.run_fields(r, "kind")["kind"] == "reconcile"][-1]
    assert st.run_fields(run, "rec_only_target", "rows_deleted") == {"rec_only_target": "3", "rows_deleted": "2"}
    ids = {r[0] for r in pipe.pg().execute(f'SELECT id FROM "{pipe.db}".orders')}
    assert 20 in ids and 10 not in ids and 30 not in ids


def _reconciles(st: Any) -> list[str]:
    return [r for r in st.runs() if st.run_fields(r, "kind")["kind"] == "reconcile"]


def test_bad_input_exits_2_and_queues_nothing(pipe: Pipe, workers: list) -> None:
    seed_orders(pipe, 100)
    pipe.execute("CREATE TABLE logs (ts INT, msg TEXT)", "INSERT INTO logs VALUES (1, 'a')",
                 "CREATE TABLE small (id INT PRIMARY KEY)")
    pipe.write({"orders": {}, "logs": {"load": "append", "cursor": "ts"}, "small": {"strategy": "full"}})
    cases = {"orders": "has never been synced", "logs": "`load: append` has none",
             "small": "needs no reconcile: every run replaces the whole target", "nosuch": "no table"}
    for table, says in cases.items():
        code, doc, text = reconcile(pipe, table, "--wait")
        assert code == 2 and says in text and doc["status"] == "refused", (table, text)
        assert pipe.state(table).runs() == []
    # A reconcile schedule on an append table is a config error naming the file and table.
    pipe.write({"logs": {"load": "append", "cursor": "ts", "reconcile": {"schedule": "0 * * * *"}}})
    code, doc, text = reconcile(pipe, "logs")
    assert code == 2 and f"pipelines/{pipe.name}.yml" in text and "load: append" in text, text
    pipe.write({"orders": {"reconcile": {"mode": "everything"}}})
    code, _, text = reconcile(pipe, "orders")
    assert code == 2 and "reconcile" in text and "mode" in text, text


def test_a_reconcile_and_a_sync_of_the_same_table_exclude_each_other(pipe: Pipe, workers: list) -> None:
    from common.state import faults

    seed_orders(pipe, 3000)
    pipe.write({"orders": {"reconcile": {"range_rows": 1000}}}, chunk_rows=1000)
    assert pipe.sync("--wait").code == 0
    pipe.execute("DELETE FROM orders WHERE id = 4")
    st = pipe.state("orders")
    faults.inject(st.r, pipe.name, pipe.table("orders"), 0, 1, "sleep", 15)  # range 0 holds the run
    proc = start_reconcile(pipe, "orders")
    wait_for(lambda: bool(_reconciles(st)) and st.lock_owner() == _reconciles(st)[0], 30, "the reconcile")
    runs_before = st.runs()
    synced = pipe.sync()  # no --wait: skipped, busy
    assert synced.code == 4 and synced.report["busy_tables"] == [pipe.table("orders")], synced.stderr
    code, doc, text = reconcile(pipe, "orders")  # a second reconcile without --wait: busy too
    assert code == 4 and doc["busy_with"] == _reconciles(st)[0], text
    attached = pipe.sync("--wait")  # a sync with --wait attaches to the active run
    assert attached.code == 0 and attached.report["runs"][pipe.table("orders")] == _reconciles(st)[0]
    assert st.runs() == runs_before  # nothing was queued by any of them
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert "1 only in the target (deleted 1)" in out
    pipe.assert_synced("orders")


def test_the_throttle_pauses_while_the_source_is_busy(pipe: Pipe, workers: list) -> None:
    import threading

    seed_orders(pipe, 2000)
    pipe.write({"orders": {"reconcile": {"range_rows": 1000, "max_threads_running": 2,
                                         "max_rows_per_s": 5000}}}, chunk_rows=1000)
    assert pipe.sync("--wait").code == 0
    pipe.execute("DELETE FROM orders WHERE id IN (6, 3000)")
    def sleep() -> None:
        cur = pipe.mysql().cursor()
        cur.execute("SELECT SLEEP(4)")
        cur.fetchall()

    busy = [threading.Thread(target=sleep) for _ in range(4)]
    for t in busy:
        t.start()
    time.sleep(0.5)
    code, doc, text = reconcile(pipe, "orders", "--wait")
    for t in busy:
        t.join()
    assert code == 0, text
    assert doc["throttle_pauses"] >= 1 and doc["throttle_seconds"] >= 1.0, doc
    assert doc["rows_deleted"] == 2
    pipe.assert_synced("orders")


def test_status_watermark_and_metrics_show_the_last_reconcile(pipe: Pipe, workers: list) -> None:
    seed_orders(pipe, 2000)
    pipe.write({"orders": {"reconcile": {"range_rows": 1000}}}, chunk_rows=1000)
    assert pipe.sync("--wait").code == 0
    pipe.execute("DELETE FROM orders WHERE id <= 20", "UPDATE orders SET note = 'y' WHERE id = 100")
    assert reconcile(pipe, "orders", "--wait")[0] == 0
    out = pipe.ferry("status", "-p", pipe.name, "--json")
    rec = json.loads(out.stdout)["pipelines"][pipe.name][pipe.table("orders")]["reconcile"]
    assert rec["last_mode"] == "rows" and rec["last_status"] == "succeeded"
    assert (rec["last_rows_deleted"], rec["last_rows_repaired"]) == (10, 1)
    assert rec["last_complete_pass_at"] and not rec["pass_in_progress"]
    text = pipe.ferry("status", "-p", pipe.name).stdout
    assert "reconcile: last" in text and "10 deleted, 1 repaired; last complete pass 20" in text, text
    got = json.loads(pipe.ferry("watermark", "get", "-p", pipe.name, "-t", pipe.table("orders"), "--json").stdout)
    assert got["reconcile"]["rows_deleted_total"] == 10 and got["reconcile"]["rows_repaired_total"] == 1
    assert got["cursor"] == "4000"  # a reconcile never moves the cursor
    from tests.test_refused import _gauge
    table = pipe.table("orders")
    assert _gauge(pipe, "ferry_reconcile_rows_deleted", table) == 10
    assert _gauge(pipe, "ferry_reconcile_rows_repaired", table) == 1
    # (deploy/alerts.yml: FerryReconcilePassOverdue)
    assert 0 <= _gauge(pipe, "ferry_reconcile_seconds_since_complete_pass", table) < 120


def test_a_worker_killed_mid_reconcile_then_reconcile_again_is_exact(isolated: Pipe, log_dir: Any) -> None:
    from common.state import faults
    from tests.services import Worker

    pipe = isolated
    n = 12_000
    seed_orders(pipe, n)
    pipe.write({"orders": {"reconcile": {"range_rows": 1000}}}, chunk_rows=3000)
    first = Worker("rec-doomed", pipe.env, log_dir, concurrency=2)
    try:
        assert pipe.sync("--wait").code == 0
        changed = drift(pipe, random.Random(3), n)
        st = pipe.state("orders")
        for i in range(12):
            faults.inject(st.r, pipe.name, pipe.table("orders"), i, 1, "sleep", 1.5)
        code, doc, text = reconcile(pipe, "orders")  # queued
        assert code == 0 and doc["status"] == "queued", text
        run_id = doc["run_id"]
        wait_for(lambda: sum(1 for c in st.chunks(run_id) if c.state != "pending") >= 2, 60, "two ranges checked")
    finally:
        first.kill()
    done_before = {c.number: c.attempt for c in st.chunks(run_id) if c.state != "pending"}
    assert 2 <= len(done_before) < 12
    fresh = Worker("rec-fresh", pipe.env, log_dir, concurrency=2)
    try:
        code, doc, text = reconcile(pipe, "orders", "--wait", timeout_s=200)
    finally:
        fresh.stop()
    assert code == 0, text
    assert doc["run_id"] == run_id  # the same reconcile, gone on from the ranges not yet checked
    chunks = {c.number: c for c in st.chunks(run_id)}
    assert all(chunks[i].attempt == a for i, a in done_before.items())  # checked once, not again
    assert doc["rows_deleted"] == len(changed["deleted"]) and doc["rows_repaired"] == 600, doc
    pipe.assert_synced("orders")


def test_a_writer_during_a_reconcile_then_a_sync(pipe: Pipe, workers: list) -> None:
    """Rows written while a reconcile runs are repaired with their newest version or left for
    the next sync (timestamp strategy), never replaced by an older one; a delete in a range
    already checked is the next reconcile's."""
    import threading

    pipe.execute("CREATE TABLE live (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, val INT NOT NULL,"
                 " updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),"
                 " KEY (updated_at))")
    pipe.mysql().cursor().executemany("INSERT INTO live (val) VALUES (%s)", [(i,) for i in range(20_000)])
    pipe.write({"live": {"strategy": "timestamp", "cursor": "updated_at", "lag_s": 0,
                         "reconcile": {"range_rows": 1500}}}, chunk_rows=5000)
    assert pipe.sync("--wait").code == 0
    pipe.execute("DELETE FROM live WHERE id % 50 = 0")  # drift from before the reconcile
    stop = threading.Event()
    deleted: set[int] = set()

    def write() -> None:
        rng = random.Random(5)
        cur = pipe.mysql().cursor()
        while not stop.is_set():
            cur.execute("INSERT INTO live (val) VALUES (%s)", (rng.randint(0, 10 ** 6),))
            cur.execute("UPDATE live SET val = val + 1 WHERE id = %s", (rng.randint(1, 20_000),))
            victim = rng.randint(1, 20_000)
            cur.execute("DELETE FROM live WHERE id = %s", (victim,))
            if cur.rowcount:
                deleted.add(victim)
            time.sleep(0.002)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        code, doc, text = reconcile(pipe, "live", "--wait")
    finally:
        stop.set()
        writer.join()
    assert code == 0, text
    assert doc["rows_deleted"] >= 400
    assert pipe.sync("--wait").code == 0
    # Every source row is in the target as the source has it now; extra target rows are only
    # rows the writer deleted after their range was checked.
    cur = pipe.mysql().cursor()
    cur.execute("SELECT id, val FROM live")
    source = dict(cur.fetchall())
    target = dict(pipe.pg().execute(f'SELECT id, val FROM "{pipe.db}".live').fetchall())
    assert {k: target.get(k) for k in source} == source
    assert set(target) - set(source) <= deleted
    code, doc, text = reconcile(pipe, "live", "--wait")
    assert code == 0 and doc["rows_deleted"] == len(set(target) - set(source)), doc
    pipe.assert_synced("live")


def test_a_scheduled_reconcile_covers_the_table_over_several_ticks(isolated: Pipe, log_dir: Any) -> None:
    from tests.services import Worker

    pipe = isolated
    seed_orders(pipe, 8000)
    pipe.write({"orders": {"reconcile": {"range_rows": 1000, "ranges_per_run": 3, "schedule": {"every": "1s"}}}},
               chunk_rows=4000)
    worker = Worker("rec-beat", pipe.env, log_dir, concurrency=2)
    beat = None
    try:
        assert pipe.sync("--wait").code == 0
        pipe.execute("DELETE FROM orders WHERE id IN (2, 5000, 9000, 15998)",
                     "UPDATE orders SET note = 'z' WHERE id = 12000")
        st = pipe.state("orders")
        beat = subprocess.Popen([sys.executable, "-m", "ferry", "beat", "--schedule-file",
                                 str(log_dir / f"beat-{pipe.name}")], env=pipe.env, cwd=REPO,
                                stdout=open(log_dir / "beat-reconcile.log", "wb"), stderr=subprocess.STDOUT)
        wait_for(lambda: bool(st.reconcile_state().get("last_complete_at")), 120, "a complete pass")
    finally:
        if beat is not None:
            beat.terminate()
            beat.wait(10)
        worker.stop()
    runs = [r for r in _reconciles(st) if st.run_meta(r).get("status") == "succeeded"]
    metas = [st.run_meta(r) for r in runs]
    ends = [i for i, m in enumerate(metas) if m.get("rec_pass_end") == "1"]
    assert ends, metas
    one_pass = metas[:ends[0] + 1]
    assert len(one_pass) == 3  # 8 ranges, 3 a tick
    assert all(int(m["chunks"]) <= 3 for m in one_pass)
    assert one_pass[0]["rec_pass_from"] == "null"
    for before, after in zip(one_pass, one_pass[1:]):  # each tick goes on where the last one stopped
        assert after["rec_pass_from"] == before["rec_pass_to"]
    assert sum(int(m.get("rows_deleted") or 0) for m in one_pass) == 4
    assert sum(int(m.get("rows_extracted") or 0) for m in one_pass) == 1
    pipe.assert_synced("orders")


def test_a_source_whose_columns_changed_is_reconciled_only_after_a_sync(pipe: Pipe, workers: list) -> None:
    seed_orders(pipe, 500)
    pipe.write({"orders": {}})
    assert pipe.sync("--wait").code == 0
    pipe.execute("ALTER TABLE orders ADD COLUMN extra INT DEFAULT 7", "DELETE FROM orders WHERE id = 2")
    code, doc, text = reconcile(pipe, "orders", "--wait")
    assert code == 1 and "columns changed since the last sync" in doc["error"], text
    assert pipe.state("orders").reconcile_state()["last_status"] == "failed"
    # The sync finds no new row (so loads nothing) but records the column; the reconcile adds it
    # to the target (old rows get the source's default, as MySQL gave them) and compares it.
    assert pipe.sync("--wait").code == 0
    code, doc, text = reconcile(pipe, "orders", "--wait")
    assert code == 0 and doc["rows_deleted"] == 1 and doc["rows_differing"] == 0, text
    pipe.assert_synced("orders")
