"""Runs and their numbers: session and cumulative metrics, extract-only and load-only,
loads repeated, full reloads swapped in, locks that expire."""
from __future__ import annotations

import threading
import time

import psycopg

from common.state import faults
from common.model import naming
from tests.conftest import PG_DSN, Pipe
from tests.services import wait_for
from tests.test_sync import _seed


def test_metrics_stay_true_across_an_interrupted_and_resumed_run(pipe: Pipe, workers: list) -> None:
    """400 rows extracted before; a run of three 100-row chunks stops after two; resumed:
    cumulative 700, the first session 200, the resumed one 100."""
    _seed(pipe, "orders", 400)
    pipe.write({"orders": {}}, chunk_rows=100)
    assert pipe.sync("--wait").code == 0
    state = pipe.state("orders")
    assert state.state()["rows_extracted"] == "400"

    _seed(pipe, "orders", 300, append=True)
    faults.inject(state.r, pipe.name, pipe.table("orders"), 2, 1, "terminal")
    first = pipe.sync("--wait")
    assert first.code == 1
    m1 = first.report["table_metrics"][pipe.table("orders")]
    assert (m1["session"], m1["rows_processed"], m1["status"]) == (1, 200, "failed")
    assert state.state()["rows_extracted"] == "600"

    second = pipe.sync("--wait")
    assert second.code == 0, second.stderr
    m2 = second.report["table_metrics"][pipe.table("orders")]
    assert (m2["run_id"], m2["session"], m2["rows_processed"]) == (m1["run_id"], 2, 100)
    assert m2["rows_loaded"] == 300  # the resumed session loads the whole run
    totals = state.state()
    assert totals["rows_extracted"] == totals["rows_loaded"] == "700"
    assert state.session_totals(m1["run_id"], 1)["rows_extracted"] == "200"
    assert state.session_totals(m1["run_id"], 2)["rows_extracted"] == "100"
    wm = pipe.ferry("watermark", "get", "-p", pipe.name, "-t", pipe.table("orders"), "--json")
    assert '"rows_extracted": 700' in wm.stdout and '"rows_extracted": 100' in wm.stdout
    assert pipe.assert_synced("orders") == 700


def test_extract_only_then_load_only_twice(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 2_500)
    pipe.write({"orders": {}}, chunk_rows=1000)
    extracted = pipe.sync("--wait", "--extract-only")
    assert extracted.code == 0, extracted.stderr
    assert extracted.report["table_metrics"][pipe.table("orders")]["status"] == "extracted"
    state = pipe.state("orders")
    assert len(state.pending_parts()) == 3 and "rows_loaded" not in state.state()
    assert pipe.pg().execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (pipe.db,)).fetchone()[0] == 0

    shown = pipe.ferry("watermark", "get", "-p", pipe.name, "-t", pipe.table("orders"), "--show-files")
    assert shown.stdout.count(".parquet") == 3 and "files_awaiting_load" in shown.stdout

    loaded = pipe.sync("--wait", "--load-only")
    assert loaded.code == 0, loaded.stderr
    assert loaded.report["table_metrics"][pipe.table("orders")]["rows_loaded"] == 2_500
    assert pipe.assert_synced("orders") == 2_500
    again = pipe.sync("--wait", "--load-only")  # nothing awaits: a no-op
    assert again.code == 0 and again.report["table_metrics"][pipe.table("orders")]["rows_loaded"] == 0
    totals = state.state()
    assert totals["rows_loaded"] == totals["rows_extracted"] == "2500"
    assert pipe.assert_synced("orders") == 2_500
    assert pipe.ferry("sync", "-p", pipe.name, "--extract-only", "--load-only").returncode == 2


def test_full_reload_is_swapped_in_atomically(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 6_000)
    pipe.write({"orders": {"strategy": "full"}}, chunk_rows=1000)
    assert pipe.sync("--wait").code == 0
    assert pipe.assert_synced("orders") == 6_000

    # Deletes and updates: a full reload reflects them (an incremental cursor could not).
    pipe.execute("DELETE FROM orders WHERE id % 3 = 0", "UPDATE orders SET note = 'changed' WHERE id % 5 = 0")
    remaining = pipe.mysql().cursor()
    remaining.execute("SELECT COUNT(*) FROM orders")
    expected = remaining.fetchone()[0]
    seen: set[int] = set()
    stop = threading.Event()

    def reader() -> None:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            while not stop.is_set():
                seen.add(conn.execute(f'SELECT count(*) FROM "{pipe.db}".orders').fetchone()[0])
                time.sleep(0.005)

    t = threading.Thread(target=reader)
    t.start()
    try:
        result = pipe.sync("--wait")
    finally:
        stop.set()
        t.join()
    assert result.code == 0, result.stderr
    assert seen <= {6_000, expected}, seen  # never empty, never half full
    assert pipe.assert_synced("orders") == expected
    assert result.report["table_metrics"][pipe.table("orders")]["rows_processed"] == expected


def test_a_dead_runs_lock_expires_and_the_next_sync_takes_over(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 500)
    pipe.write({"orders": {}})
    state = pipe.state("orders")
    state.r.set(state.lock_key, "r-dead-run", px=4000)  # (a margin for the CLI's start on a busy machine)
    refused = pipe.sync("--wait")
    assert refused.code == 4 and "active run r-dead-run" in refused.stderr
    wait_for(lambda: state.lock_owner() is None, 10, "the dead run's lock to expire")
    taken = pipe.sync("--wait")
    assert taken.code == 0, taken.stderr
    assert pipe.assert_synced("orders") == 500


def test_a_full_reload_never_swaps_in_an_older_snapshot(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 300)
    pipe.write({"orders": {"strategy": "full"}})
    assert pipe.sync("--wait", "--extract-only").code == 0  # R1: 300 rows, never loaded
    _seed(pipe, "orders", 100, append=True)
    assert pipe.sync("--wait").code == 0                    # R2: 400 rows swapped in
    assert pipe.assert_synced("orders") == 400
    state = pipe.state("orders")
    for key in state.r.scan_iter(naming.pipeline_pattern(pipe.name)):
        state.r.delete(key)
    assert pipe.ferry("watermark", "rebuild", "-p", pipe.name, "-t", pipe.table("orders")).returncode == 0
    assert state.pending_parts() == []  # R1's parts are superseded, not awaiting load
    assert pipe.sync("--wait", "--load-only").code == 0
    assert pipe.assert_synced("orders") == 400
