"""State that cannot be borrowed: an abandoned run's parts and stragglers never reach the
target, and reset and rebuild act only on objects that name their own pipeline and table."""
from __future__ import annotations

import json

from common.state import faults
from common.model import naming
from tests.conftest import Pipe
from tests.services import wait_for
from tests.test_sync import _seed


def test_watermark_set_keeps_an_abandoned_runs_parts_and_stragglers_out(pipe: Pipe, workers: list) -> None:
    """A run's lock expires with chunks 0 and 1 committed (awaiting load) while chunk 2 is
    still being read; `watermark set` skips past all three chunks. Nothing the abandoned
    run extracted, before or after the set, may be loaded."""
    _seed(pipe, "orders", 3_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    state = pipe.state("orders")
    table = pipe.table("orders")
    faults.inject(state.r, pipe.name, table, 2, 1, "sleep", 8)
    assert pipe.ferry("sync", "-p", pipe.name).returncode == 0
    wait_for(lambda: bool(state.runs()), 30, "the plan")
    run_id = state.runs()[-1]
    wait_for(lambda: [c.state for c in state.chunks(run_id)][:2] == ["done", "done"], 30, "chunks 0 and 1")
    straggler = state.chunk(run_id, 2)
    assert straggler.state == "pending" and straggler.fence  # still being read
    assert len(state.pending_parts()) == 2
    state.r.delete(state.lock_key)  # the lock expired: `watermark set` is allowed
    skip_to = straggler.hi[0]
    assert pipe.ferry("watermark", "set", "-p", pipe.name, "-t", table, "--id", str(skip_to)).returncode == 0
    assert state.pending_parts() == [] and state.run_meta(run_id)["status"] == "abandoned"
    wait_for(lambda: any(v["reason"] == "the run ended meanwhile" for v in state.orphans().values()), 30,
             "the straggler to finish and be refused")
    assert state.pending_parts() == [] and state.chunk(run_id, 2).state == "pending"

    _seed(pipe, "orders", 200, append=True)
    after = pipe.sync("--wait")
    assert after.code == 0, after.stderr
    assert after.report["table_metrics"][table]["rows_loaded"] == 200
    ids = [r[0] for r in pipe.pg().execute(f'SELECT id FROM "{pipe.db}".orders')]
    assert len(ids) == 200 and min(ids) > skip_to
    runs = {r[0] for r in pipe.pg().execute(f'SELECT DISTINCT run_id FROM "{pipe.db}".orders__ferry_ledger')}
    assert run_id not in runs
    reasons = {v["reason"] for v in state.orphans().values()}
    assert reasons == {"abandoned run", "the run ended meanwhile"}


def _plant_foreign_run(pipe: Pipe, table: str, prefix: str) -> list[str]:
    """Copy of a run as another pipeline would have written it under this table's prefix:
    same layout, metadata naming the other pipeline."""
    foreign = "r20200101T000000-aaaaaa"
    meta = naming.object_metadata("someone-else", table, foreign)
    attempt = naming.new_attempt_id(1)
    part = naming.part_key(prefix, foreign, 0, attempt, 0)
    keys = [naming.plan_object_key(prefix, foreign), naming.chunk_marker_key(prefix, foreign, 0, attempt), part]
    pipe.store.put(keys[0], json.dumps({"run": foreign, "strategy": "id", "chunks": [{"lo": "null", "hi": "[1]"}],
                                        "planned_at": "1"}).encode(), metadata=meta)
    pipe.store.put(keys[1], json.dumps({"run": foreign, "chunk": 0, "attempt": attempt, "rows": 1, "bytes": 4,
                                        "parts": [{"key": part, "rows": 1, "bytes": 4}]}).encode(), metadata=meta)
    pipe.store.put(part, b"PAR1", metadata=meta)
    return keys


def test_rebuild_and_reset_leave_other_pipelines_objects_alone(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 500)
    pipe.write({"orders": {}}, chunk_rows=250)
    assert pipe.sync("--wait").code == 0
    table = pipe.table("orders")
    prefix = naming.table_prefix("ferry", pipe.name, table)
    planted = _plant_foreign_run(pipe, table, prefix)
    state = pipe.state("orders")
    for key in state.r.scan_iter(naming.pipeline_pattern(pipe.name)):
        state.r.delete(key)

    rebuilt = pipe.ferry("watermark", "rebuild", "-p", pipe.name, "-t", table)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt 1 run(s)" in rebuilt.stdout and "not adopted" in rebuilt.stdout
    assert "r20200101T000000-aaaaaa" not in state.runs() and state.pending_parts() == []
    assert state.state()["rows_extracted"] == "500"
    assert pipe.sync("--wait", "--load-only").code == 0
    assert pipe.assert_synced("orders") == 500

    reset = pipe.ferry("watermark", "reset", "-p", pipe.name, "-t", table, "--yes")
    assert reset.returncode == 0, reset.stderr
    assert "3 files of others kept" in reset.stdout
    assert sorted(k for k, _ in pipe.store.list(prefix)) == sorted(planted)


def test_objects_of_attempts_that_never_committed_are_listed_as_orphans(pipe: Pipe) -> None:
    """What a killed or superseded attempt left on S3 (it could note nothing in Redis) is
    found by listing: never-committed attempts of committed and of pending chunks."""
    from common.recovery import orphans
    from common.model.records import Part

    state = pipe.state("orders")
    state.begin_session("r1")
    state.acquire_lock("r1", 60)
    state.store_plan("r1", [(None, (10,)), ((10,), (20,))], {"status": "extracting"})
    prefix = naming.table_prefix("ferry", pipe.name, pipe.table("orders"))
    attempts = [naming.new_attempt_id(1) for _ in range(4)]
    for number, attempt in ((0, attempts[0]), (0, attempts[1]), (1, attempts[2]), (1, attempts[3])):
        state.begin_attempt("r1", number, 1, attempt, "w", 60)
        pipe.store.put(naming.part_key(prefix, "r1", number, attempt, 0), b"x")
    winner = naming.part_key(prefix, "r1", 0, attempts[1], 0)
    state.commit_chunk("r1", 0, [Part(winner, 1, 1)], "w", 60, 1, attempts[1])
    found = orphans.find(state, pipe.store, prefix)
    assert found == {naming.part_key(prefix, "r1", 0, attempts[0], 0): "attempt that did not commit",
                     naming.part_key(prefix, "r1", 1, attempts[2], 0): "attempt superseded before committing"}
