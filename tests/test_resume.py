"""Workers killed with SIGKILL in the middle of a run: the run still ends exactly once.

These tests run on their own Redis database with their own workers, and a 25 s
visibility timeout, so a dead worker's messages come back quickly.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from common.state import faults
from common.model import naming
from tests.conftest import Pipe, SyncResult
from tests.services import Worker, wait_for
from tests.test_sync import _seed


def _slow_chunks(pipe: Pipe, table: str, chunks: int, seconds: float) -> None:
    state = pipe.state(table)
    for n in range(chunks):
        faults.inject(state.r, pipe.name, pipe.table(table), n, 1, "sleep", seconds)


def _committed(pipe: Pipe, table: str, run_id: str) -> int:
    return sum(1 for c in pipe.state(table).chunks(run_id) if c.state != "pending")


def _start_sync(pipe: Pipe):
    import subprocess
    import sys

    from tests.services import REPO
    out = pipe.config_dir / f"{pipe.name}-bg.json"
    proc = subprocess.Popen([sys.executable, "-m", "ferry", "sync", "-p", pipe.name, "--wait",
                             "--json-output", str(out)], env=pipe.env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, out


def _run_id(pipe: Pipe, table: str) -> str:
    wait_for(lambda: bool(pipe.state(table).runs()), 30, "the run's plan")
    return pipe.state(table).runs()[-1]


def test_pool_process_killed_mid_chunk(isolated: Pipe, log_dir: Path) -> None:
    pipe = isolated
    _seed(pipe, "orders", 6_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    _slow_chunks(pipe, "orders", 6, 2.0)
    worker = Worker("killpool", pipe.env, log_dir, concurrency=2)
    try:
        proc, out = _start_sync(pipe)
        run_id = _run_id(pipe, "orders")
        time.sleep(1.0)  # both pool processes are inside a slow chunk now
        victim = worker.pool_pids()[0]
        os.kill(victim, signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    finally:
        worker.stop()
    chunks = pipe.state("orders").chunks(run_id)
    assert all(c.state == "loaded" for c in chunks) and sum(c.rows for c in chunks) == 6_000
    attempts = pipe.state("orders").r.hgetall(
        naming.run_attempts_key(pipe.name, pipe.table("orders"), run_id))
    assert max(int(v) for v in attempts.values()) == 2  # the killed chunk ran again, once
    totals = pipe.state("orders").state()
    assert totals["rows_extracted"] == totals["rows_loaded"] == "6000"
    assert pipe.assert_synced("orders") == 6_000


def test_whole_worker_killed_then_a_fresh_one(isolated: Pipe, log_dir: Path) -> None:
    pipe = isolated
    _seed(pipe, "orders", 5_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    _slow_chunks(pipe, "orders", 5, 1.5)
    first = Worker("doomed", pipe.env, log_dir, concurrency=2)
    proc, out = _start_sync(pipe)
    run_id = _run_id(pipe, "orders")
    wait_for(lambda: _committed(pipe, "orders", run_id) >= 1, 60, "a first committed chunk")
    first.kill()  # main process and pool, at once: its unacknowledged messages are held
    done_before = _committed(pipe, "orders", run_id)
    assert done_before < 5
    fresh = Worker("fresh", pipe.env, log_dir, concurrency=2)
    try:
        _, err = proc.communicate(timeout=150)
        assert proc.returncode == 0, err
    finally:
        fresh.stop()
    chunks = pipe.state("orders").chunks(run_id)
    assert all(c.state == "loaded" for c in chunks)
    assert {c.worker.split("@")[0] for c in chunks} == {"doomed", "fresh"}
    totals = pipe.state("orders").state()
    assert totals["rows_extracted"] == totals["rows_loaded"] == "5000"
    assert pipe.assert_synced("orders") == 5_000


def test_load_killed_after_the_warehouse_commit_runs_again_harmlessly(isolated: Pipe, log_dir: Path) -> None:
    """The load's transaction committed, then its process died before Redis heard of it:
    the redelivered load finds its parts in the ledger and only counts them, once."""
    pipe = isolated
    _seed(pipe, "orders", 3_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    state = pipe.state("orders")
    faults.inject(state.r, pipe.name, pipe.table("orders"), "load", 1, "exit")
    worker = Worker("loadkill", pipe.env, log_dir, concurrency=2)
    try:
        result = pipe.sync("--wait", timeout_s=120)
    finally:
        worker.stop()
    assert result.code == 0, result.stderr
    assert "loaded 3 parts" in Path(worker.log_path).read_text()          # first delivery
    assert "0 already loaded" in Path(worker.log_path).read_text()
    assert "3 already loaded" in Path(worker.log_path).read_text()        # the redelivery
    totals = state.state()
    assert totals["rows_loaded"] == totals["rows_extracted"] == "3000"
    assert pipe.assert_synced("orders") == 3_000


def _syncs_with_chunk_1_failing(pipe: Pipe, log_dir: Path, worker_name: str, times: int, kind: str,
                                syncs: int = 1) -> list[SyncResult]:
    """2,000 rows in two chunks; chunk 1 fails `times` times as `kind`; `syncs` syncs --wait
    on a worker of its own with FERRY_MAX_ATTEMPTS=2."""
    _seed(pipe, "orders", 2_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    faults.inject(pipe.state("orders").r, pipe.name, pipe.table("orders"), 1, times, kind)
    worker = Worker(worker_name, dict(pipe.env, FERRY_MAX_ATTEMPTS="2"), log_dir, concurrency=2)
    try:
        return [pipe.sync("--wait") for _ in range(syncs)]
    finally:
        worker.stop()


def test_attempts_are_counted_per_session(isolated: Pipe, log_dir: Path) -> None:
    """A chunk that failed in two sessions still gets its full attempts in the third."""
    pipe = isolated
    first, second, third = _syncs_with_chunk_1_failing(pipe, log_dir, "attempts", 2, "terminal", syncs=3)
    assert first.code == 1
    assert second.code == 1
    assert third.code == 0, third.stderr
    assert third.report["table_metrics"][pipe.table("orders")]["session"] == 3
    assert pipe.assert_synced("orders") == 2_000


def test_transient_retries_do_not_use_up_a_chunks_attempts(isolated: Pipe, log_dir: Path) -> None:
    """FERRY_MAX_ATTEMPTS bounds the starts of a chunk whose process dies on it, not the retries
    of transient errors (those are bounded by the outage tolerance): with FERRY_MAX_ATTEMPTS=2,
    a chunk failing three times transiently is retried and the run ends exactly."""
    pipe = isolated
    result, = _syncs_with_chunk_1_failing(pipe, log_dir, "retries", 3, "transient")
    state = pipe.state("orders")
    assert result.code == 0, result.stderr
    assert state.chunks(result.report["run_id"])[1].attempts == 4  # three retries, then the one that committed
    assert pipe.assert_synced("orders") == 2_000


def test_a_chunk_whose_process_dies_at_every_start_fails_the_run_after_its_attempts(
        isolated: Pipe, log_dir: Path) -> None:
    """A chunk that kills its process each time (redelivered, not retried) stops after
    FERRY_MAX_ATTEMPTS starts and fails the run, naming it; the other chunk commits."""
    pipe = isolated
    result, = _syncs_with_chunk_1_failing(pipe, log_dir, "poison", 5, "exit")
    state = pipe.state("orders")
    assert result.code == 1, result.stderr
    assert f"chunk 1 of {pipe.table('orders')} was started 2 times without finishing" in result.stderr
    chunks = state.chunks(result.report["run_id"])
    assert [c.state for c in chunks] == ["done", "pending"] and chunks[1].attempts == 3

def test_a_run_loads_in_bounded_transactions_and_a_kill_between_two_loses_nothing(
        isolated: Pipe, log_dir: Path) -> None:
    """load_max_mb of about two chunks' parts: five chunks load in three transactions, each with
    its ledger rows; the load process dies right after the second commits in the warehouse
    (before Redis hears of it); the redelivered load counts the first two once, loads the
    third, and the target is exact."""
    import psycopg

    from tests.conftest import PG_DSN

    pipe = isolated
    _seed(pipe, "orders", 5_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    state = pipe.state("orders")
    worker = Worker("bounded", pipe.env, log_dir, concurrency=2)
    try:
        extracted = pipe.sync("--wait", "--extract-only")
        assert extracted.code == 0, extracted.stderr
        sizes = [c.bytes for c in state.chunks(extracted.report["run_id"])]
        assert len(sizes) == 5
        pipe.write({"orders": {}}, chunk_rows=1000, load_max_mb=(max(sizes) * 2.5) / 2**20)
        faults.inject(state.r, pipe.name, pipe.table("orders"), "load#2", 1, "exit")
        loaded = pipe.sync("--wait", timeout_s=150)
    finally:
        worker.stop()
    assert loaded.code == 0, loaded.stderr
    log = Path(worker.log_path).read_text()
    assert log.count("loaded 2 parts") >= 2 and "loaded 1 parts" in log, log[-3000:]
    with psycopg.connect(PG_DSN) as pg:
        loads = pg.execute(f'SELECT load_id, COUNT(*), SUM(part_rows) FROM "{pipe.db}".orders__ferry_ledger '
                           f'GROUP BY load_id ORDER BY load_id').fetchall()
    assert sorted(n for _, n, _ in loads) == [1, 2, 2] and sum(r for _, _, r in loads) == 5_000, loads
    totals = state.state()
    assert totals["rows_loaded"] == totals["rows_extracted"] == "5000"
    assert pipe.assert_synced("orders") == 5_000
