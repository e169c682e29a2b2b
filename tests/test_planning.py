"""Planning never waits for the whole table: the first chunks are read while the rest of
the plan is probed, in segments, and the plan stays exact (every key in exactly one chunk)."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from common.model import bounds
from common.state import faults
from tests.conftest import Pipe
from tests.services import Worker, wait_for
from tests.test_sync import _seed


def _plan_doc(pipe: Pipe, table: str, run_id: str) -> dict:
    return json.loads(pipe.store.get(f"ferry/{pipe.name}/{pipe.table(table)}/run={run_id}/plan.json"))


def _assert_tiles(plan: dict, chunks: list, meta: dict) -> None:
    """The chunks tile (lo, hi] of the run, in S3's copy as in Redis."""
    spans = [(c["lo"], c["hi"]) for c in plan["chunks"]]
    assert spans == [(bounds.encode(c.lo), bounds.encode(c.hi)) for c in chunks]
    assert spans[0][0] == meta["lo"] and spans[-1][1] == meta["hi"]
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert "planning" not in plan and "planning" not in meta


def test_chunks_are_read_while_the_rest_of_the_table_is_planned(isolated: Pipe, log_dir: Path) -> None:
    pipe = isolated
    _seed(pipe, "orders", 6_000)
    pipe.write({"orders": {}}, chunk_rows=500)
    state = pipe.state("orders")
    table = pipe.table("orders")
    # Each later segment of the plan takes 0.6 s: planning lasts over six seconds.
    faults.inject(state.r, pipe.name, table, "plan-more", 20, "sleep", 0.6)
    env = dict(pipe.env, FERRY_PLAN_SEGMENT_S="0")  # the first segment holds one chunk
    worker = Worker("segments", env, log_dir, concurrency=2)
    try:
        result: list = []
        runner = threading.Thread(target=lambda: result.append(pipe.sync("--wait", timeout_s=120)))
        runner.start()
        read_while_planning: list[tuple[int, int]] = []
        deadline = time.time() + 90
        while runner.is_alive() and time.time() < deadline:
            runs = state.runs()
            meta = state.run_meta(runs[-1]) if runs else {}
            if meta.get("planning") == "1" and int(meta.get("chunks_done") or 0) > 0:
                read_while_planning.append((int(meta["chunks_done"]), int(meta["chunks"])))
                if len(read_while_planning) == 1:
                    # Rows written after the run fixed its upper key belong to the next run.
                    _seed(pipe, "orders", 500, append=True)
            time.sleep(0.1)
        runner.join(120)
    finally:
        worker.stop()
    assert result and result[0].code == 0, result[0].stderr if result else "no result"
    # Chunks were committed while later chunks were still unknown.
    assert read_while_planning, "no chunk was read before the plan was complete"
    assert min(total for _, total in read_while_planning) < 12
    assert "+ (still planning)" in result[0].stderr  # what --wait showed meanwhile
    run_id = result[0].report["run_id"]
    chunks = state.chunks(run_id)
    assert len(chunks) == 12 and [c.rows for c in chunks] == [500] * 12
    _assert_tiles(_plan_doc(pipe, "orders", run_id), chunks, state.run_meta(run_id))
    assert result[0].report["table_metrics"][table]["rows_processed"] == 6_000
    totals = state.state()
    assert totals["rows_extracted"] == totals["rows_loaded"] == "6000"
    # The rows added while it planned come with the next sync, once.
    worker = Worker("segments2", env, log_dir, concurrency=2)
    try:
        second = pipe.sync("--wait", timeout_s=120)
    finally:
        worker.stop()
    assert second.code == 0, second.stderr
    assert second.report["table_metrics"][table]["rows_processed"] == 500
    assert pipe.assert_synced("orders") == 6_500


def test_a_plan_cut_short_is_finished_by_the_resumed_run(isolated: Pipe, log_dir: Path) -> None:
    pipe = isolated
    _seed(pipe, "orders", 3_000)
    pipe.write({"orders": {}}, chunk_rows=500)
    state = pipe.state("orders")
    table = pipe.table("orders")
    # Session 1: the first chunk is planned and dispatched, then planning fails for good
    # while that chunk is still being read (so it cannot commit: its run is over).
    faults.inject(state.r, pipe.name, table, "plan-more@1", 1, "terminal")
    faults.inject(state.r, pipe.name, table, "0@1", 1, "sleep", 2)
    env = dict(pipe.env, FERRY_PLAN_SEGMENT_S="0")
    worker = Worker("cutplan", env, log_dir, concurrency=2)
    try:
        first = pipe.sync("--wait", timeout_s=120)
        assert first.code != 0 and "plan-more" in first.stderr, first.stderr
        run_id = first.report["run_id"]
        meta = state.run_meta(run_id)
        assert meta["status"] == "failed" and meta["planning"] == "1" and meta["chunks"] == "1"
        plan = _plan_doc(pipe, "orders", run_id)
        assert len(plan["chunks"]) == 1 and plan["planning"] == "1"
        shown = pipe.ferry("runs", "show", "-p", pipe.name, "-t", table)
        assert shown.returncode == 0 and "more chunks follow" in shown.stdout, shown.stdout
        wait_for(lambda: state.run_meta(run_id).get("chunks_done") == "0"
                 and state.chunk(run_id, 0).state == "pending", 10, "chunk 0 left pending")
        # Session 2 resumes the same run: its pending chunk, then the rest of the plan.
        second = pipe.sync("--wait", timeout_s=120)
    finally:
        worker.stop()
    assert second.code == 0, second.stderr
    assert second.report["run_id"] == run_id
    meta = state.run_meta(run_id)
    assert meta["session"] == "2" and meta["status"] == "succeeded"
    chunks = state.chunks(run_id)
    assert len(chunks) == 6 and all(c.state == "loaded" for c in chunks)
    _assert_tiles(_plan_doc(pipe, "orders", run_id), chunks, meta)
    totals = state.state()
    assert totals["rows_extracted"] == totals["rows_loaded"] == "3000"
    assert pipe.assert_synced("orders") == 3_000


def test_a_limited_run_planned_in_segments_stops_at_its_limit(isolated: Pipe, log_dir: Path) -> None:
    """--limit is counted as the plan goes on, segment after segment (its upper key is not
    probed before the first chunk): the run reads exactly its first 1,700 rows, the next
    one the rest."""
    pipe = isolated
    _seed(pipe, "orders", 3_000)
    pipe.write({"orders": {}}, chunk_rows=500)
    state = pipe.state("orders")
    table = pipe.table("orders")
    worker = Worker("limited", dict(pipe.env, FERRY_PLAN_SEGMENT_S="0"), log_dir, concurrency=2)
    try:
        limited = pipe.sync("--wait", "--limit", "1700", timeout_s=120)
        assert limited.code == 0, limited.stderr
        run_id = limited.report["run_id"]
        chunks = state.chunks(run_id)
        assert [c.rows for c in chunks] == [500, 500, 500, 200]
        assert len(state.segments(run_id, 1)) == 4  # one chunk per segment: planned in four steps
        meta = state.run_meta(run_id)
        _assert_tiles(_plan_doc(pipe, "orders", run_id), chunks, meta)
        cur = pipe.mysql().cursor()
        cur.execute(f"SELECT id FROM {table} ORDER BY id LIMIT 1700")
        first_keys = [r[0] for r in cur.fetchall()]
        assert state.cursor() == (first_keys[-1],) and bounds.decode(meta["hi"]) == (first_keys[-1],)
        with pipe.pg() as pg:
            loaded = [r[0] for r in pg.execute(f'SELECT id FROM "{pipe.db}".orders ORDER BY id').fetchall()]
        assert loaded == first_keys
        rest = pipe.sync("--wait", timeout_s=120)
    finally:
        worker.stop()
    assert rest.code == 0 and rest.report["table_metrics"][table]["rows_processed"] == 1_300
    assert pipe.assert_synced("orders") == 3_000
