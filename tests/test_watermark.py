"""The Lua scripts against a real Redis: commit once, cursor over contiguous chunks, locks."""
from __future__ import annotations

import secrets
from typing import Iterator

import pytest
import redis

from common import naming
from common.errors import LockedError, StateError
from common.parquet import Part
from common.watermark import TableState
from tests.conftest import REDIS_URL

TABLE = "shop.orders"


@pytest.fixture
def state(ferry_env: dict[str, str]) -> Iterator[TableState]:
    client = redis.Redis.from_url(REDIS_URL)
    pipeline = f"lua-{secrets.token_hex(3)}"
    yield TableState(client, pipeline, TABLE)
    for key in client.scan_iter(naming.pipeline_pattern(pipeline)):
        client.delete(key)


def _parts(run: str, chunk: int, rows: list[int]) -> list[Part]:
    return [Part(key=f"x/{run}/{chunk}/{i}", rows=r, bytes=10 * r) for i, r in enumerate(rows)]


def _plan(state: TableState, run: str, n: int) -> None:
    state.acquire_lock(run, 60)
    ranges = [((i * 100,) if i else None, ((i + 1) * 100,)) for i in range(n)]
    assert state.store_plan(run, ranges, {"status": "extracting"}) == n


def test_commit_twice_counts_once(state: TableState) -> None:
    _plan(state, "r1", 3)
    assert state.commit_chunk("r1", 0, _parts("r1", 0, [60, 40]), "w1", 60) is True
    assert state.commit_chunk("r1", 0, _parts("r1", 0, [60, 40]), "w2", 60) is False
    meta, totals = state.run_meta("r1"), state.state()
    assert meta["rows_extracted"] == "100" and meta["files_extracted"] == "2"
    assert totals["rows_extracted"] == "100" and totals["bytes_extracted"] == "1000"
    assert len(state.pending_parts()) == 2
    assert state.chunk("r1", 0).worker == "w1"


def test_cursor_never_jumps_a_hole(state: TableState) -> None:
    _plan(state, "r1", 4)
    state.commit_chunk("r1", 2, _parts("r1", 2, [100]), "w", 60)
    state.commit_chunk("r1", 1, _parts("r1", 1, [100]), "w", 60)
    assert state.cursor() is None  # chunk 0 is still missing
    state.commit_chunk("r1", 0, _parts("r1", 0, [100]), "w", 60)
    assert state.cursor() == (300,)  # 0, 1 and 2 are contiguous
    state.commit_chunk("r1", 3, _parts("r1", 3, []), "w", 60)
    assert state.cursor() == (400,)
    assert state.chunk("r1", 3).state == "loaded"  # nothing to load
    assert state.state()["rows_extracted"] == "300"


def test_unknown_chunk_is_an_error(state: TableState) -> None:
    _plan(state, "r1", 1)
    with pytest.raises(StateError, match="no chunk 5"):
        state.commit_chunk("r1", 5, [], "w", 60)


def test_commit_load_counts_each_part_once(state: TableState) -> None:
    _plan(state, "r1", 2)
    state.commit_chunk("r1", 0, _parts("r1", 0, [70, 30]), "w", 60)
    state.commit_chunk("r1", 1, _parts("r1", 1, [50]), "w", 60)
    pending = state.pending_parts()
    assert state.commit_load("r1", pending[:2]) == (2, 100)
    assert state.chunk("r1", 0).state == "loaded" and state.chunk("r1", 1).state == "done"
    assert state.commit_load("r1", pending) == (1, 50)  # the first two are not counted again
    assert state.commit_load("r1", pending) == (0, 0)
    assert state.state()["rows_loaded"] == "150" and state.state()["files_loaded"] == "3"
    assert state.pending_parts() == []


def test_lock_has_one_owner(state: TableState) -> None:
    state.acquire_lock("r1", 60)
    with pytest.raises(LockedError, match="active run r1"):
        state.acquire_lock("r2", 60)
    with pytest.raises(StateError, match="no longer owns"):
        state.store_plan("r2", [(None, (1,))], {})
    assert state.finish_run("r2", "failed", "x") is False
    assert state.lock_owner() == "r1"
    assert state.finish_run("r1", "succeeded") is True
    assert state.lock_owner() is None
    state.acquire_lock("r2", 60)
    assert state.lock_owner() == "r2"


def test_lock_expires_by_its_ttl(state: TableState) -> None:
    state.r.set(state.lock_key, "dead-run", px=50)
    import time
    time.sleep(0.1)
    state.acquire_lock("r2", 60)
    assert state.lock_owner() == "r2"


def test_load_lock_is_reentrant_for_its_owner(state: TableState) -> None:
    assert state.acquire_load_lock("r1:task-a", 60)
    assert state.acquire_load_lock("r1:task-a", 60)  # the same task, redelivered
    assert not state.acquire_load_lock("r2:task-b", 60)
    assert state.release_load_lock("r1:task-a")
    assert state.acquire_load_lock("r2:task-b", 60)


def test_only_the_lock_owner_moves_the_cursor(state: TableState) -> None:
    _plan(state, "r1", 3)
    state.commit_chunk("r1", 0, _parts("r1", 0, [10]), "w", 60)
    assert state.cursor() == (100,)
    state.finish_run("r1", "failed", "chunk 1 failed")  # the lock is gone
    # A late commit of the failed run is recorded, but does not move the cursor ...
    assert state.commit_chunk("r1", 1, _parts("r1", 1, [10]), "w", 60) is True
    assert state.cursor() == (100,)
    # ... until the run holds the lock again (resumed) and commits.
    state.acquire_lock("r1", 60)
    state.commit_chunk("r1", 2, _parts("r1", 2, [10]), "w", 60)
    assert state.cursor() == (300,)


def test_a_run_without_the_lock_leaves_the_table_status_alone(state: TableState) -> None:
    state.acquire_lock("r2", 60)
    state.set_status(active_run="r2", status_extract="running")
    assert state.finish_run("r1", "succeeded") is False  # e.g. a redelivered chord body
    assert state.state()["status_extract"] == "running" and state.lock_owner() == "r2"
    assert state.run_meta("r1")["status"] == "succeeded"


def test_attempts_count_per_session(state: TableState) -> None:
    _plan(state, "r1", 1)
    assert [state.note_attempt("r1", 0) for _ in range(3)] == [1, 2, 3]
    state.begin_session("r1")
    assert state.note_attempt("r1", 0) == 1
