"""Failures inside a run: retried when transient, the run failed (with its cause) when not."""
from __future__ import annotations

import json

import pytest

from common.state import faults
from common.model import naming
from tests.conftest import Pipe
from tests.test_readers import readers_of
from tests.test_sync import _seed


def test_transient_failures_are_retried(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 3_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    state = pipe.state("orders")
    faults.inject(state.r, pipe.name, pipe.table("orders"), 1, 2, "transient")
    result = pipe.sync("--wait")
    assert result.code == 0, result.stderr
    attempts = state.r.hgetall(naming.run_attempts_key(pipe.name, pipe.table("orders"), result.report["run_id"]))
    assert {int(k): int(v) for k, v in attempts.items()} == {0: 1, 1: 3, 2: 1}
    assert result.report["table_metrics"][pipe.table("orders")]["rows_processed"] == 3_000
    assert state.state()["rows_extracted"] == "3000"
    assert pipe.assert_synced("orders") == 3_000


def test_terminal_chunk_failure_fails_the_run_and_keeps_committed_chunks(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 4_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    state = pipe.state("orders")
    faults.inject(state.r, pipe.name, pipe.table("orders"), 2, 1, "terminal")
    failed = pipe.sync("--wait")
    assert failed.code == 1
    assert failed.report["status"] == "failed"
    assert "chunk 2" in failed.stderr and "injected terminal failure" in failed.stderr
    run = failed.report["run_id"]
    chunks = state.chunks(run)
    assert [c.state for c in chunks] == ["done", "done", "pending", "done"]
    # The cursor stops before the hole; the lock is free; nothing was loaded.
    assert state.cursor() == (chunks[1].hi[0],)
    assert state.lock_owner() is None
    assert state.state()["rows_extracted"] == "3000" and "rows_loaded" not in state.state()
    assert len(state.pending_parts()) == 3

    # The next sync resumes the same plan: only chunk 2 runs, then every part is loaded.
    again = pipe.sync("--wait")
    assert again.code == 0, again.stderr
    metrics = again.report["table_metrics"][pipe.table("orders")]
    assert (metrics["run_id"], metrics["session"], metrics["rows_processed"]) == (run, 2, 1_000)
    assert f"resuming run {run} (session 2): 1 chunk(s) not committed" in again.stderr
    assert pipe.assert_synced("orders") == 4_000
    totals = state.state()
    assert totals["rows_extracted"] == totals["rows_loaded"] == "4000"


@pytest.mark.parametrize("kill", ["KILL QUERY", "KILL CONNECTION"])
def test_a_killed_query_is_retried_and_the_run_stays_exact(pipe: Pipe, workers: list, kill: str) -> None:
    """KILL QUERY (error 1317, what a DBA's query killer sends) or KILL CONNECTION on the
    chunks' reads (DuckDB's, the default reader): transient, retried on a new connection."""
    import threading
    import time

    _seed(pipe, "orders", 3_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    state = pipe.state("orders")
    faults.inject(state.r, pipe.name, pipe.table("orders"), 0, 1, "sleep", 4)  # planned, then reads wait
    admin = pipe.mysql()
    result: list = []
    runner = threading.Thread(target=lambda: result.append(pipe.sync("--wait")))
    runner.start()
    try:
        time.sleep(2)  # the plan is done; chunk 0 sleeps, chunks 1 and 2 are read or waiting
        cur = admin.cursor()
        cur.execute("LOCK TABLES orders WRITE")
        killed = 0
        deadline = time.time() + 30
        probe = pipe.mysql().cursor()
        while time.time() < deadline and killed < 1:
            probe.execute("SELECT id FROM information_schema.processlist WHERE info LIKE %s"
                          " AND info NOT LIKE '%%processlist%%'", (f"%SELECT %FROM `{pipe.db}`.`orders`%",))
            for (thread_id,) in probe.fetchall():
                probe.execute(f"{kill} {int(thread_id)}")
                killed += 1
            time.sleep(0.2)
        cur.execute("UNLOCK TABLES")
    finally:
        runner.join(180)
    assert killed >= 1
    assert result[0].code == 0, result[0].stderr
    attempts = state.r.hgetall(naming.run_attempts_key(pipe.name, pipe.table("orders"), result[0].report["run_id"]))
    assert sum(int(v) for v in attempts.values()) >= 3 + 1  # at least one chunk ran again
    assert pipe.assert_synced("orders") == 3_000
    assert readers_of(workers, pipe.table("orders")) == {"duckdb"}


def test_a_wrong_password_is_terminal_and_names_the_source(pipe: Pipe) -> None:
    pipe.use_source(password="not-the-password")
    pipe.write({"orders": {}})
    result = pipe.sync()
    lines = [line for line in result.stderr.splitlines() if "Access denied" in line]
    assert result.code == 2 and len(lines) == 1, result.stderr
    assert "source root@127.0.0.1:3306" in lines[0] and "retrying cannot help" in lines[0]
    assert "not-the-password" not in result.stderr


def test_a_resumed_run_reports_its_own_sessions_error(pipe: Pipe, workers: list) -> None:
    """Session 1 fails on chunk 2; session 2 gets chunk 2 through but its load fails: the report,
    the table state and runs show name the load's error, not session 1's."""
    _seed(pipe, "orders", 3_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    state = pipe.state("orders")
    table = pipe.table("orders")
    faults.inject(state.r, pipe.name, table, "2@1", 1, "terminal")
    first = pipe.sync("--wait")
    assert first.code == 1 and "failure at 2@1" in first.report["table_metrics"][table]["error"]
    faults.inject(state.r, pipe.name, table, "load", 1, "terminal")
    second = pipe.sync("--wait")
    error = second.report["table_metrics"][table]["error"]
    assert second.code == 1 and "failure at load" in error and "2@1" not in error, error
    got = pipe.ferry("watermark", "get", "-p", pipe.name, "-t", table, "--json")
    assert "failure at load" in json.loads(got.stdout)["last_error"]
    shown = pipe.ferry("runs", "show", "-p", pipe.name, "-t", table, "--json")
    chunk2 = json.loads(shown.stdout)["chunks"][2]
    assert chunk2["state"] != "pending" and chunk2["error_session"] == 1  # history, labelled
    assert pipe.sync("--wait").code == 0
    assert pipe.assert_synced("orders") == 3_000


def test_state_lost_mid_run_is_said_and_rebuild_recovers_exactly(isolated: Pipe, log_dir) -> None:
    """Redis loses its data mid-run (FLUSHDB of ferry's database): --wait stops with "state
    lost" instead of polling forever, the chunk in flight says so in its log, and `watermark
    rebuild` then a sync copy every row exactly once."""
    import threading
    import time

    from tests.services import Worker, wait_for

    pipe = isolated
    _seed(pipe, "orders", 3_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    state = pipe.state("orders")
    table = pipe.table("orders")
    faults.inject(state.r, pipe.name, table, 2, 1, "sleep", 4)
    worker = Worker("lostwork", pipe.env, log_dir, concurrency=2)
    result: list = []
    try:
        runner = threading.Thread(target=lambda: result.append(pipe.sync("--wait", timeout_s=120)))
        runner.start()
        # Chunks 0 and 1 committed, chunk 2 in flight (sleeping in its attempt): then Redis
        # loses everything, its queues included.
        wait_for(lambda: bool(state.runs()) and sum(c.state != "pending" for c in state.chunks(state.runs()[-1])) >= 2
                 and state.chunks(state.runs()[-1])[2].attempts >= 1, 60, "two chunks committed, one in flight")
        run_id = state.runs()[-1]
        state.r.flushdb()
        runner.join(120)
        assert result and result[0].code == 1
        assert "state lost" in result[0].stderr and f"watermark rebuild -p {pipe.name} -t {table}" in result[0].stderr
        wait_for(lambda: b"state lost" in worker.log_path.read_bytes(), 30, "the chunk's warning")
        time.sleep(1)
        rebuilt = pipe.ferry("watermark", "rebuild", "-p", pipe.name, "-t", table)
        assert rebuilt.returncode == 0, rebuilt.stderr
        again = pipe.sync("--wait", timeout_s=120)
        assert again.code == 0, again.stderr
    finally:
        worker.stop()
    assert pipe.assert_synced("orders") == 3_000
    totals = state.state()
    assert int(totals["rows_loaded"]) == 3_000, totals
    assert run_id in state.runs()


def test_a_load_cut_by_its_soft_time_limit_retries_on_a_fresh_connection(isolated: Pipe, log_dir) -> None:
    """The load blocks on a lock a DBA holds on the target until its soft time limit (9 s)
    interrupts it inside the driver's wait; the lock goes; the retry loads on a fresh
    connection (before: the pooled connection answered every retry with "another command is
    already in progress", until the run failed)."""
    import threading

    import psycopg

    from tests.conftest import PG_DSN
    from tests.services import Worker, wait_for

    pipe = isolated
    _seed(pipe, "orders", 2_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    worker = Worker("softlimit", dict(pipe.env, FERRY_TASK_TIME_LIMIT_S="10"), log_dir, concurrency=1)
    result: list = []
    try:
        assert pipe.sync("--wait").code == 0  # the target exists; the process's pool holds a connection
        _seed(pipe, "orders", 500, append=True)
        with psycopg.connect(PG_DSN) as dba:
            dba.execute(f'LOCK TABLE "{pipe.db}".orders IN ACCESS EXCLUSIVE MODE')
            runner = threading.Thread(target=lambda: result.append(pipe.sync("--wait", timeout_s=180)))
            runner.start()
            wait_for(lambda: b"interrupted by its time limit" in worker.log_path.read_bytes(), 60,
                     "the load cut by its soft time limit")
            dba.rollback()
        runner.join(180)
    finally:
        worker.stop()
    assert result and result[0].code == 0, result[0].stderr if result else "no result"
    assert "another command is already in progress" not in worker.log_path.read_text()
    assert pipe.assert_synced("orders") == 2_500


def test_waiting_for_the_load_lock_does_not_spend_the_transient_retries(isolated: Pipe, log_dir) -> None:
    """Another load holds the table's load lock for a while (a wait of 10 s at least); then
    the load meets a transient error. With one transient retry allowed, it still retries and
    the run succeeds: the lock waits have a budget of their own (FERRY_LOAD_LOCK_WAIT_S); before,
    the wait had used up the retry."""
    import threading
    import time

    from tests.services import Worker, wait_for

    pipe = isolated
    _seed(pipe, "orders", 1_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    state = pipe.state("orders")
    faults.inject(state.r, pipe.name, pipe.table("orders"), "load", 1, "transient")
    worker = Worker("lockwait", dict(pipe.env, FERRY_MAX_RETRIES="1"), log_dir, concurrency=1)
    state.r.set(state.load_lock_key, "another-load", ex=8)
    result: list = []
    try:
        runner = threading.Thread(target=lambda: result.append(pipe.sync("--wait", timeout_s=120)))
        runner.start()
        wait_for(lambda: "another load is running" in worker.log_path.read_text(), 60, "a lock wait")
        runner.join(120)
    finally:
        worker.stop()
    assert result and result[0].code == 0, result[0].stderr if result else "no result"
    log = worker.log_path.read_text()
    assert "injected transient failure at load" in log
    assert pipe.assert_synced("orders") == 1_000
