"""The Lua scripts against a real Redis: commit once, cursor over contiguous chunks, locks."""
from __future__ import annotations

import secrets
from typing import Iterator

import pytest
import redis

from common.model import naming
from common.errors import LockedError, StateError
from common.model.records import Part
from common.state.chunks import Attempt, Commit
from common.state.table import TableState
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


def _plan(state: TableState, run: str, n: int, **meta: str) -> None:
    assert state.begin_session(run) == 1
    state.acquire_lock(run, 60)
    ranges = [((i * 100,) if i else None, ((i + 1) * 100,)) for i in range(n)]
    assert state.store_plan(run, ranges, {"status": "extracting", **meta}) == n


def _begin(state: TableState, run: str, chunk: int, session: int = 1) -> str:
    attempt = naming.new_attempt_id(session)
    outcome, _ = state.begin_attempt(run, chunk, session, attempt, "w", 60)
    assert outcome is Attempt.FENCED
    return attempt


def _commit(state: TableState, run: str, chunk: int, rows: list[int], worker: str = "w",
            session: int = 1) -> Commit:
    """One attempt of a chunk, from its fence to its commit."""
    attempt = _begin(state, run, chunk, session)
    return state.commit_chunk(run, chunk, _parts(run, chunk, rows), worker, 60, session, attempt)


def test_commit_twice_counts_once(state: TableState) -> None:
    _plan(state, "r1", 3)
    attempt = _begin(state, "r1", 0)
    assert state.commit_chunk("r1", 0, _parts("r1", 0, [60, 40]), "w1", 60, 1, attempt) is Commit.COMMITTED
    assert state.commit_chunk("r1", 0, _parts("r1", 0, [60, 40]), "w2", 60, 1, attempt) is Commit.ALREADY
    meta, totals = state.run_meta("r1"), state.state()
    assert meta["rows_extracted"] == "100" and meta["files_extracted"] == "2"
    assert totals["rows_extracted"] == "100" and totals["bytes_extracted"] == "1000"
    assert len(state.pending_parts()) == 2
    assert state.chunk("r1", 0).worker == "w1"


def test_cursor_never_jumps_a_hole(state: TableState) -> None:
    _plan(state, "r1", 4)
    _commit(state, "r1", 2, [100])
    _commit(state, "r1", 1, [100])
    assert state.cursor() is None  # chunk 0 is still missing
    _commit(state, "r1", 0, [100])
    assert state.cursor() == (300,)  # 0, 1 and 2 are contiguous
    _commit(state, "r1", 3, [])
    assert state.cursor() == (400,)
    assert state.chunk("r1", 3).state == "loaded"  # nothing to load
    assert state.state()["rows_extracted"] == "300"


def test_unknown_chunk_is_an_error(state: TableState) -> None:
    _plan(state, "r1", 1)
    with pytest.raises(StateError, match="no chunk 5"):
        state.begin_attempt("r1", 5, 1, naming.new_attempt_id(1), "w", 60)
    with pytest.raises(StateError, match="no chunk 5"):
        state.commit_chunk("r1", 5, [], "w", 60, 1, naming.new_attempt_id(1))


def test_commit_load_counts_each_part_once(state: TableState) -> None:
    _plan(state, "r1", 2)
    _commit(state, "r1", 0, [70, 30])
    _commit(state, "r1", 1, [50])
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
    _commit(state, "r1", 0, [10])
    assert state.cursor() == (100,)
    state.r.delete(state.lock_key)  # the lock expired while the run still runs
    # A commit of the run without its lock is recorded, but does not move the cursor ...
    assert _commit(state, "r1", 1, [10]) is Commit.COMMITTED
    assert state.cursor() == (100,)
    # ... until the run holds the lock again (resumed) and commits.
    state.acquire_lock("r1", 60)
    _commit(state, "r1", 2, [10])
    assert state.cursor() == (300,)


def test_a_run_without_the_lock_leaves_the_table_status_alone(state: TableState) -> None:
    state.acquire_lock("r2", 60)
    state.set_status(active_run="r2", status_extract="running")
    assert state.finish_run("r1", "succeeded") is False  # e.g. a redelivered chord body
    assert state.state()["status_extract"] == "running" and state.lock_owner() == "r2"
    assert state.run_meta("r1")["status"] == "succeeded"


def test_attempts_count_per_session(state: TableState) -> None:
    _plan(state, "r1", 1)
    counts = [state.begin_attempt("r1", 0, 1, naming.new_attempt_id(1), "w", 60)[1] for _ in range(3)]
    assert counts == [1, 2, 3]
    session = state.begin_session("r1")
    assert session == 2
    assert state.begin_attempt("r1", 0, 2, naming.new_attempt_id(2), "w", 60) == (Attempt.FENCED, 1)


def test_only_the_fencing_attempt_commits(state: TableState) -> None:
    """Two attempts of one chunk (a redelivered message): the later one holds the fence; the
    earlier one's commit changes nothing, whatever the order in which they finish."""
    _plan(state, "r1", 1)
    first = _begin(state, "r1", 0)
    second = _begin(state, "r1", 0)
    assert state.chunk("r1", 0).fence == second
    assert state.commit_chunk("r1", 0, _parts("r1", 0, [5]), "w1", 60, 1, first) is Commit.FENCED_OUT
    assert state.chunk("r1", 0).state == "pending" and state.pending_parts() == []
    assert state.commit_chunk("r1", 0, _parts("r1", 0, [7]), "w2", 60, 1, second) is Commit.COMMITTED
    assert state.commit_chunk("r1", 0, _parts("r1", 0, [5]), "w1", 60, 1, first) is Commit.ALREADY
    assert state.chunk("r1", 0).attempt == second and state.state()["rows_extracted"] == "7"
    # A message arriving after the commit takes no fence.
    assert state.begin_attempt("r1", 0, 1, naming.new_attempt_id(1), "w", 60)[0] is Attempt.ALREADY


def test_a_stale_session_can_neither_start_nor_commit_nor_end_the_run(state: TableState) -> None:
    _plan(state, "r1", 2)
    old = _begin(state, "r1", 0, session=1)
    assert state.begin_session("r1") == 2  # the run is resumed while session 1's attempt runs
    assert state.begin_attempt("r1", 1, 1, naming.new_attempt_id(1), "w", 60)[0] is Attempt.STALE_SESSION
    assert state.commit_chunk("r1", 0, _parts("r1", 0, [5]), "w", 60, 1, old) is Commit.STALE_SESSION
    assert state.record_chunk_error("r1", 0, 1, "boom") is False
    assert state.finish_run("r1", "failed", "stale error callback", session=1) is False
    assert state.lock_owner() == "r1" and state.run_meta("r1")["status"] == "queued"
    assert "last_chunk_error" not in state.run_meta("r1")
    assert _commit(state, "r1", 0, [6], session=2) is Commit.COMMITTED
    assert state.record_chunk_error("r1", 1, 2, "real cause") is True
    assert state.chunk("r1", 1).error == "real cause"
    assert state.finish_run("r1", "succeeded", session=2) is True


def test_a_finished_run_takes_no_commit(state: TableState) -> None:
    _plan(state, "r1", 2)
    late = _begin(state, "r1", 1)
    state.finish_run("r1", "failed", "chunk 0 failed", session=1)
    assert state.commit_chunk("r1", 1, _parts("r1", 1, [5]), "w", 60, 1, late) is Commit.RUN_OVER
    assert state.begin_attempt("r1", 1, 1, naming.new_attempt_id(1), "w", 60)[0] is Attempt.RUN_OVER
    assert state.pending_parts() == [] and state.chunk("r1", 1).state == "pending"


def test_the_cursor_never_moves_back_over_the_lookback_chunks(state: TableState) -> None:
    """Chunks before advance_from re-read the window behind the committed cursor: committing
    them, even all of them, leaves the cursor where it was."""
    state.r.hset(state.state_key, "cursor", "[250]")
    _plan(state, "r1", 4, advance_from="2")  # chunks 0-1 end at or before the cursor
    _commit(state, "r1", 0, [10])
    _commit(state, "r1", 1, [10])
    assert state.cursor() == (250,)
    _commit(state, "r1", 2, [10])
    assert state.cursor() == (300,)


def test_the_lock_is_renewed_only_for_the_current_live_session(state: TableState) -> None:
    _plan(state, "r1", 1)
    state.r.pexpire(state.lock_key, 500)
    assert state.renew_lock("r1", 1, 60) == 1 and state.r.pttl(state.lock_key) > 50_000
    state.begin_session("r1")
    assert state.renew_lock("r1", 1, 60) == -1  # stale keep-alive: stops
    state.r.delete(state.lock_key)
    assert state.renew_lock("r1", 2, 60) == -2 and state.lock_owner() is None  # never re-created
    state.acquire_lock("r1", 60)
    state.finish_run("r1", "succeeded", session=2)
    state.acquire_lock("r2", 60)
    assert state.renew_lock("r1", 2, 60) == 0


def test_abandoning_a_run_keeps_its_parts_from_any_load(state: TableState) -> None:
    _plan(state, "r1", 2)
    _commit(state, "r1", 0, [10, 20])
    late = _begin(state, "r1", 1)
    state.finish_run("r1", "failed", "x", session=1)
    assert len(state.pending_parts()) == 2
    assert state.abandon_unfinished() == ["r1"]
    assert state.pending_parts() == [] and state.run_meta("r1")["status"] == "abandoned"
    assert {v["reason"] for v in state.orphans().values()} == {"abandoned run"}
    assert len(state.orphans()) == 2
    assert state.commit_chunk("r1", 1, _parts("r1", 1, [5]), "w", 60, 1, late) is Commit.RUN_OVER
    assert state.pending_parts() == []


def test_read_slots_are_leases_a_dead_holder_cannot_keep(state: TableState) -> None:
    from common.state import slots

    key = naming.source_slots_key(f"src-{secrets.token_hex(3)}")
    try:
        assert slots.take(state.r, key, "a", 2, lease_s=0.3) and slots.take(state.r, key, "b", 2, lease_s=0.3)
        assert not slots.take(state.r, key, "c", 2, lease_s=0.3)   # both held
        assert slots.take(state.r, key, "a", 2, lease_s=0.3)       # a holder renews its own
        import time
        time.sleep(0.35)                                            # "a" and "b" died: leases run out
        assert slots.take(state.r, key, "c", 2, lease_s=0.3)
        assert set(state.r.zrange(key, 0, -1)) == {b"c"}
    finally:
        state.r.delete(key)


def test_reopening_chunks_whose_parts_are_lost_moves_totals_and_cursor_back(state: TableState) -> None:
    """reopen_chunks.lua: chunk 1 of three committed ones lost a part: it is pending again
    without parts, its rows leave the totals, its other part is an orphan, the cursor goes
    back to its lower bound; committing it again moves the cursor to the end, counted once."""
    _plan(state, "r1", 3)
    for n in range(3):
        assert _commit(state, "r1", n, [60, 40]) is Commit.COMMITTED
    assert state.cursor() == (300,) and state.state()["rows_extracted"] == "300"
    lost = _parts("r1", 1, [60, 40])[0].key
    state.set_status(cursor_run="r1")
    assert state.reopen_chunks("r1", [1], [lost]) == 1
    chunk = state.chunk("r1", 1)
    assert chunk is not None and chunk.state == "pending" and chunk.parts == () and chunk.rows == 0
    assert state.state()["rows_extracted"] == "200" and state.run_meta("r1")["rows_extracted"] == "200"
    assert {p.chunk for p in state.pending_parts()} == {0, 2}
    assert list(state.orphans()) == [_parts("r1", 1, [60, 40])[1].key]  # the part still on S3
    assert state.cursor() == (100,), "the cursor never stands past a hole"
    assert state.reopen_chunks("r1", [1], [lost]) == 0  # twice: nothing more
    assert _commit(state, "r1", 1, [100]) is Commit.COMMITTED
    assert state.cursor() == (300,) and state.state()["rows_extracted"] == "300"
