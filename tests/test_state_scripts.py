"""The state package's own rules against a real Redis: scripts registered once per process,
run statuses in the Lua scripts are RunStatus's, the lock is taken in one step, the
early-load marker is released only by its owner, a session begins in one MULTI, and
rebuild's cursor follows the commit's rule."""
from __future__ import annotations

import json
import re

import pytest
import redis

from common.model import naming
from common.model.records import FINAL_STATUSES, Part, RunStatus
from common.state import scripts
from common.state.restore import RestoredRun, RestoredTable
from common.state.table import TableState
from tests.conftest import REDIS_URL
from tests.test_watermark import state  # noqa: F401  (the fixture: a TableState of a pipeline of its own)

TABLE = "shop.orders"


def test_every_status_a_script_writes_or_compares_is_a_run_status() -> None:
    statuses = {s.value for s in RunStatus}
    # The run's status field: what a script compares it with or sets it to.
    pattern = re.compile(r"'status',\s*'(\w+)'|status\s*[~=]=\s*'(\w+)'")
    seen = {name: {a or b for a, b in pattern.findall(text)} for name, text in scripts.TEXTS.items()}
    found = set().union(*seen.values())
    assert found, "the pattern finds the statuses of finish_run.lua and reopen_chunks.lua"
    assert {"succeeded", "extracted", "abandoned", "failed"} <= found
    assert found <= statuses, {n: s - statuses for n, s in seen.items() if s - statuses}
    # The final set is passed in (finals_json), never written in a script.
    for name, text in scripts.TEXTS.items():
        if "finals_json" in text:
            assert "cjson.decode(finals_json)" in text, name
    assert set(FINAL_STATUSES) == {"succeeded", "extracted", "failed", "abandoned", "cancelled", "replanned"}


def test_scripts_are_registered_once_per_process(state: TableState) -> None:
    state.acquire_lock("r1", 60)
    state.renew_lock("r1", 1, 60)
    before = dict(scripts._registered)
    assert {"take_lock", "renew_lock"} <= before.keys()
    other = TableState(redis.Redis.from_url(REDIS_URL), state.pipeline, "shop.other")
    other.acquire_lock("r2", 60)
    other.renew_lock("r2", 1, 60)
    # Another table, another client: the same Script objects, nothing registered again.
    assert all(scripts._registered[k] is v for k, v in before.items()) and len(scripts._registered) == len(before)
    assert "#include" not in scripts.TEXTS["commit_chunk"].split("\n", 30)[-1]
    assert "local function advance_cursor" in scripts.TEXTS["commit_chunk"]
    assert "local function advance_cursor" in scripts.TEXTS["rebuild_cursor"]
    other.delete_all()


def test_the_lock_is_taken_in_one_step_and_reentrant_for_its_owner(state: TableState) -> None:
    state.acquire_lock("r1", 60)
    state.r.pexpire(state.lock_key, 1000)
    state.acquire_lock("r1", 60)  # its owner again (a redelivered plan task): renewed
    assert state.r.pttl(state.lock_key) > 50_000
    with pytest.raises(Exception, match="r1"):
        state.acquire_lock("r2", 60)
    assert state.lock_owner() == "r1"
    assert state.acquire_load_lock("a", 60) and state.acquire_load_lock("a", 60)
    assert not state.acquire_load_lock("b", 60)
    assert not state.release_load_lock("b") and state.load_lock_owner() == "a"
    assert state.release_load_lock("a") and state.load_lock_owner() is None


def test_the_early_load_marker_is_released_only_by_its_owner(state: TableState) -> None:
    assert state.take_early_load("task-1", 60)
    assert not state.take_early_load("task-2", 60)  # one early load at a time
    assert not state.release_early_load("task-2")  # a load it was not taken for
    assert state.r.get(naming.early_load_key(state.pipeline, TABLE)) == b"task-1"
    assert state.release_early_load("task-1")
    assert state.take_early_load("task-2", 60)


def test_a_session_begins_in_one_step(state: TableState) -> None:
    assert state.begin_session("r1", queued_at="1") == 1
    state.set_run_fields("r1", status=RunStatus.FAILED, error="boom", finished_at="2", last_chunk_error="x")
    state.r.hset(naming.run_attempts_key(state.pipeline, TABLE, "r1"), "0", 3)
    assert state.begin_session("r1", queued_at="3") == 2
    meta = state.run_meta("r1")
    assert meta["session"] == "2" and meta["status"] == "queued" and meta["error"] == ""
    assert "finished_at" not in meta and "last_chunk_error" not in meta and meta["queued_at"] == "3"
    assert not state.r.exists(naming.run_attempts_key(state.pipeline, TABLE, "r1"))
    assert state.session_totals("r1", 2).keys() == {"started_at"}


def _committed(state: TableState, run: str, n: int, done: set[int], advance_from: int = 0) -> None:
    state.begin_session(run)
    state.acquire_lock(run, 60)
    ranges = [((i * 100,) if i else None, ((i + 1) * 100,)) for i in range(n)]
    state.store_plan(run, ranges, {"status": "extracting", "advance_from": str(advance_from)})
    for i in sorted(done):
        attempt = naming.new_attempt_id(1)
        state.begin_attempt(run, i, 1, attempt, "w", 60)
        state.commit_chunk(run, i, [Part(key=f"k/{run}/{i}", rows=1, bytes=1)], "w", 60, 1, attempt)
    state.finish_run(run, RunStatus.FAILED)


@pytest.mark.parametrize("n, done, advance_from", [
    (4, {0, 1, 3}, 0),  # a hole: the cursor stops before it
    (3, {0, 1, 2}, 0),
    (3, {1, 2}, 0),  # chunk 0 missing: no cursor
    (3, {0, 1}, 2),  # the lookback window behind the cursor never writes it
    (5, {0, 1, 2, 3}, 2),
])
def test_rebuild_restores_the_cursor_a_commit_gives(state: TableState, n: int, done: set[int],
                                                    advance_from: int) -> None:
    _committed(state, "r1", n, done, advance_from)
    committed = state.state_fields("cursor", "cursor_run", "cursor_chunk")
    chunks = [json.loads(v) for _, v in sorted((int(k), v) for k, v in
                                                state.r.hgetall(state.keys.chunks("r1")).items())]
    for c in chunks:
        c.pop("fence", None)
    meta = {"advance_from": str(advance_from), "status": "failed", "chunks": str(n), "session": "1"}
    state.restore(RestoredTable(runs=[RestoredRun("r1", meta, {"rows_extracted": len(done)}, chunks)],
                                totals={"rows_extracted": len(done)}))
    assert state.state_fields("cursor", "cursor_run", "cursor_chunk") == committed
    assert state.run_fields("r1", "contiguous")["contiguous"] == (
        None if 0 not in done else str(min(set(range(n + 1)) - done)))


@pytest.mark.parametrize("strategy, cursor", [("full", None), ("id", "[400]")])
def test_rebuild_of_a_plan_in_segments_moves_no_cursor_for_a_full_reload(state: TableState, strategy: str,
                                                                         cursor: str | None) -> None:
    """plan.json keeps the advance_from of its first segment (append_plan.lua raises it to the
    chunk count for `full` in Redis only): a rebuilt full reload still keeps no cursor."""
    from common.recovery.rebuild import RebuildSummary, _restored_run

    plan = {"strategy": strategy, "advance_from": "1", "planned_at": "1",
            "chunks": [{"lo": json.dumps([i * 100]) if i else None, "hi": json.dumps([(i + 1) * 100])}
                       for i in range(4)]}
    markers = {n: {"rows": 1, "bytes": 1, "attempt": "s1-00000000", "at": 1.0,
                   "parts": [{"key": f"k/{n}", "rows": 1, "bytes": 1}]} for n in range(4)}
    run = _restored_run("r1", plan, markers, {}, set(), "", RebuildSummary())
    state.restore(RestoredTable(runs=[run], totals=run.totals))
    assert state.state_fields("cursor")["cursor"] == cursor
    assert state.run_fields("r1", "contiguous")["contiguous"] == "4"
