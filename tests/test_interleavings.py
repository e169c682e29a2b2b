"""Two attempts of one chunk, two sessions of one run, a lock that must stay alive: the
interleavings that kill and retry tests do not reach, each made deterministic with
injected sleeps (FERRY_FAULTS), on the real services with workers of their own."""
from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from common.state import faults
from common.warehouse.redshift import manifest
from common.model.records import PendingPart
from tests.conftest import Pipe
from tests.services import Worker, wait_for
from tests.test_sync import _seed


def _run_id(pipe: Pipe, table: str) -> str:
    wait_for(lambda: bool(pipe.state(table).runs()), 30, "the run's plan")
    return pipe.state(table).runs()[-1]


def _ledger(pipe: Pipe, table: str) -> dict[str, tuple[int, int]]:
    """part key -> (rows, bytes) of every part the target's ledger holds."""
    rows = pipe.pg().execute(f'SELECT part_key, part_rows, part_bytes FROM "{pipe.db}"."{table}__ferry_ledger"')
    return {r[0]: (r[1], r[2]) for r in rows}


def _etags(pipe: Pipe, keys: list[str]) -> dict[str, str]:
    return {k: pipe.store.client.head_object(Bucket=pipe.store.bucket, Key=k)["ETag"] for k in keys}


def _log_has(worker: Worker, text: str) -> bool:
    return text in Path(worker.log_path).read_text(errors="replace")


def _resume_while_session_1_stalls(pipe: Pipe, state: Any) -> tuple[str, str]:
    """Start a run; once session 1's attempt of chunk 0 holds the fence, let the lock
    expire and resume the run in session 2. Returns (run id, session 1's fence)."""
    assert pipe.ferry("sync", "-p", pipe.name).returncode == 0
    run_id = _run_id(pipe, "orders")
    wait_for(lambda: state.chunk(run_id, 0) is not None and state.chunk(run_id, 0).fence != "", 30,
             "session 1's attempt of chunk 0 to take the fence")
    fence = state.chunk(run_id, 0).fence
    state.r.delete(state.lock_key)  # the lock expires while that attempt stalls
    resumed = pipe.ferry("sync", "-p", pipe.name)
    assert resumed.returncode == 0 and f"resuming run {run_id} (session 2)" in resumed.stderr
    return run_id, fence


def test_two_sessions_of_one_run_commit_each_chunk_once(isolated: Pipe, log_dir: Path) -> None:
    """Session 1's attempt of chunk 0 starts, then stalls; the lock expires; `ferry sync`
    resumes the run in session 2, which extracts, commits and loads chunk 0; the source
    changes; session 1's attempt wakes, reads the changed row and uploads. Its objects
    must not replace the committed ones, its commit must be refused, and the target,
    the ledger, the manifest lengths and the counts in Redis must all be exact."""
    pipe = isolated
    _seed(pipe, "orders", 3_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    table = pipe.table("orders")
    state = pipe.state("orders")
    faults.inject(state.r, pipe.name, table, "0@1", 1, "sleep", 8)
    worker = Worker("race", pipe.env, log_dir, concurrency=2)
    try:
        run_id, first_fence = _resume_while_session_1_stalls(pipe, state)
        wait_for(lambda: state.chunk(run_id, 0).state != "pending", 60, "session 2 to commit chunk 0")
        committed = state.chunk(run_id, 0)
        assert committed.attempt.startswith("s2-") and committed.attempt != first_fence
        parts = [key for c in state.chunks(run_id) for key in c.parts]
        before = _etags(pipe, parts)
        changed_id = state.chunk(run_id, 0).hi[0]  # a row inside chunk 0's range
        cur = pipe.mysql().cursor()
        cur.execute(f"SELECT note FROM orders WHERE id = {changed_id}")
        note = cur.fetchone()[0]
        # (updated_at = updated_at: keep the ON UPDATE timestamp, so the row can be restored)
        pipe.execute(f"UPDATE orders SET note = 'read by the stale attempt', updated_at = updated_at "
                     f"WHERE id = {changed_id}")
        wait_for(lambda: any(v["attempt"] == first_fence for v in state.orphans().values()), 60,
                 "session 1's attempt to finish and be refused")
        wait_for(lambda: state.run_meta(run_id).get("status") == "succeeded", 60, "the run to succeed")
        assert _log_has(worker, "not committed: a newer session of the run took over")
    finally:
        worker.stop()
    pipe.execute(f"UPDATE orders SET note = %s, updated_at = updated_at WHERE id = {changed_id}", params=(note,))

    # Nothing committed was overwritten; the losing attempt wrote under its own prefix.
    assert _etags(pipe, parts) == before
    stale = sorted(k for k, v in state.orphans().items() if v["attempt"] == first_fence)
    assert stale and not set(stale) & set(parts)
    stale_rows = pq.read_table(io.BytesIO(pipe.store.get(stale[0]))).to_pylist()
    assert any(r["note"] == "read by the stale attempt" for r in stale_rows)
    # The ledger holds exactly the committed parts; each manifest entry's length is the object's.
    ledger = _ledger(pipe, "orders")
    assert set(ledger) == set(parts) and sum(r for r, _ in ledger.values()) == 3_000
    sizes = {k: s for k, s in pipe.store.list(f"ferry/{pipe.name}/")}
    entries = manifest(pipe.store, [PendingPart(k, run_id, 0, r, b) for k, (r, b) in ledger.items()])["entries"]
    for entry in entries:
        key = entry["url"].split(f"s3://{pipe.store.bucket}/", 1)[1]
        assert entry["meta"]["content_length"] == sizes[key]
        table_rows = pq.read_metadata(io.BytesIO(pipe.store.get(key))).num_rows
        assert table_rows == ledger[key][0]
    totals = state.state()
    assert totals["rows_extracted"] == totals["rows_loaded"] == "3000"
    assert sum(c.rows for c in state.chunks(run_id)) == 3_000
    assert state.lock_owner() is None and state.run_meta(run_id)["session"] == "2"
    shown = pipe.ferry("watermark", "get", "-p", pipe.name, "-t", table, "--show-files")
    assert all(key in shown.stdout for key in stale) and "files_orphaned" in shown.stdout
    assert pipe.assert_synced("orders") == 3_000


def test_a_stale_sessions_failure_leaves_the_new_session_alone(isolated: Pipe, log_dir: Path) -> None:
    """Session 1's attempt fails after session 2 took over: its error callback must neither
    fail the run nor release the lock, nor be reported as the run's error."""
    pipe = isolated
    _seed(pipe, "orders", 2_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    table = pipe.table("orders")
    state = pipe.state("orders")
    faults.inject(state.r, pipe.name, table, "0@1", 1, "sleepfail", 6)
    faults.inject(state.r, pipe.name, table, "0@2", 1, "sleep", 10)
    worker = Worker("stale-errback", pipe.env, log_dir, concurrency=2)
    try:
        run_id, _ = _resume_while_session_1_stalls(pipe, state)
        wait_for(lambda: _log_has(worker, "error callback of stale session 1 ignored"), 60,
                 "session 1's failure to reach its error callback")
        # Session 2's attempt of chunk 0 still runs: the run is alive and locked.
        assert state.chunk(run_id, 0).state == "pending"
        assert state.lock_owner() == run_id
        assert state.run_meta(run_id)["status"] not in ("failed", "succeeded")
        assert "last_chunk_error" not in state.run_meta(run_id)
        wait_for(lambda: state.run_meta(run_id).get("status") == "succeeded", 60, "session 2 to finish")
    finally:
        worker.stop()
    assert state.state().get("last_error", "") == ""
    assert pipe.assert_synced("orders") == 2_000


def test_a_slow_runs_lock_is_kept_alive_while_its_chunks_wait(isolated: Pipe, log_dir: Path) -> None:
    """Nobody consumes `extract` for three lock TTLs: the keep-alive renews the lock, a
    second sync is refused instead of taking over, and the run ends in its first session."""
    pipe = isolated
    env = dict(pipe.env, FERRY_TASK_TIME_LIMIT_S="6", FERRY_VISIBILITY_TIMEOUT_S="8", FERRY_LOCK_TTL_S="10")
    pipe.env = env
    _seed(pipe, "orders", 2_000)
    pipe.write({"orders": {}}, chunk_rows=500)
    state = pipe.state("orders")
    planner = Worker("planner", env, log_dir, concurrency=1, queues="plan,load")
    extractor = None
    try:
        assert pipe.ferry("sync", "-p", pipe.name).returncode == 0
        run_id = _run_id(pipe, "orders")
        wait_for(lambda: state.run_meta(run_id).get("status") == "extracting", 30, "the plan")
        time.sleep(30)  # three TTLs; every chunk message still waits in the queue
        assert state.lock_owner() == run_id and state.r.pttl(state.lock_key) > 0
        refused = pipe.ferry("sync", "-p", pipe.name)
        assert refused.returncode == 4 and f"active run {run_id}" in refused.stderr
        extractor = Worker("extractor", env, log_dir, concurrency=2, queues="extract")
        wait_for(lambda: state.run_meta(run_id).get("status") == "succeeded", 60, "the run")
    finally:
        planner.stop()
        if extractor:
            extractor.stop()
    assert state.run_meta(run_id)["session"] == "1"
    assert state.lock_owner() is None
    assert pipe.assert_synced("orders") == 2_000


def test_the_plan_is_on_s3_before_it_is_in_redis(isolated: Pipe, log_dir: Path) -> None:
    pipe = isolated
    _seed(pipe, "orders", 1_000)
    pipe.write({"orders": {}}, chunk_rows=500)
    state = pipe.state("orders")
    faults.inject(state.r, pipe.name, pipe.table("orders"), "plan", 1, "sleep", 4)
    worker = Worker("planorder", pipe.env, log_dir, concurrency=1)
    try:
        queued = pipe.ferry("sync", "-p", pipe.name)
        assert queued.returncode == 0
        run_id = queued.stderr.split("run ", 1)[1].split(":", 1)[0]  # "run <id>: 1 table(s) ... queued"
        plan_key = f"ferry/{pipe.name}/{pipe.table('orders')}/run={run_id}/plan.json"
        wait_for(lambda: any(k == plan_key for k, _ in pipe.store.list(plan_key)), 30, "plan.json on S3")
        assert state.chunks(run_id) == []  # on S3, not yet in Redis
        wait_for(lambda: state.run_meta(run_id).get("status") == "succeeded", 60, "the run")
    finally:
        worker.stop()
    plan = json.loads(pipe.store.get(plan_key))
    assert len(plan["chunks"]) == 2 and plan["pipeline"] == pipe.name
    assert pipe.assert_synced("orders") == 1_000
