"""A run's chunks: the plan stored (store_plan.lua), an attempt's fence taken
(begin_attempt.lua), its commit (commit_chunk.lua: totals, parts awaiting load and the
cursor over the contiguous committed chunks) and its error (chunk_error.lua)."""
from __future__ import annotations

import enum
import json
import time
from typing import Any, Sequence

from common.errors import StateError
from common.model import bounds
from common.model.bounds import Key
from common.model.records import FINAL_STATUSES, Chunk, Part
from common.state.runs import Runs

_FINALS_JSON = json.dumps(FINAL_STATUSES)


class Commit(enum.IntEnum):
    """What became of a chunk commit (commit_chunk.lua's return codes)."""

    COMMITTED = 1
    ALREADY = 0
    STALE_SESSION = -2
    RUN_OVER = -3
    FENCED_OUT = -4


class Attempt(enum.IntEnum):
    """What became of an attempt's start (begin_attempt.lua's return codes)."""

    FENCED = 1
    ALREADY = 0
    STALE_SESSION = -2
    RUN_OVER = -3


class Chunks(Runs):
    def store_plan(self, run_id: str, ranges: Sequence[tuple[Key | None, Key]],
                   meta: dict[str, str]) -> int:
        """Record the run's chunks; StateError if the run no longer owns the lock."""
        chunks = [{"lo": bounds.encode(lo), "hi": bounds.encode(hi), "state": "pending"}
                  for lo, hi in ranges]
        n = self._script("store_plan", [self.keys.lock, self.keys.state, self.keys.meta(run_id),
                                        self.keys.chunks(run_id), self.keys.runs],
                         [run_id, json.dumps(meta), json.dumps(chunks)])
        if n < 0:
            raise StateError(f"table {self.table}: run {run_id} no longer owns the table lock "
                             f"(held by {self.lock_owner()})")
        return int(n)

    def chunk(self, run_id: str, number: int) -> Chunk | None:
        raw = self.r.hget(self.keys.chunks(run_id), str(number))
        return None if raw is None else Chunk.from_json(number, raw)

    def chunks(self, run_id: str) -> list[Chunk]:
        raw = self.r.hgetall(self.keys.chunks(run_id))
        return sorted((Chunk.from_json(int(k), v) for k, v in raw.items()), key=lambda c: c.number)

    def begin_attempt(self, run_id: str, number: int, session: int, attempt_id: str, worker: str,
                      lock_ttl_s: int) -> tuple[Attempt, int]:
        """Take the chunk's fence for attempt_id; returns the outcome and, when fenced, how
        many attempts of the chunk this session has started."""
        code, attempts = self._script(
            "begin_attempt",
            [self.keys.meta(run_id), self.keys.chunks(run_id), self.keys.attempts(run_id), self.keys.lock,
             self.keys.state],
            [number, session, attempt_id, worker, f"{time.time():.3f}", run_id, lock_ttl_s * 1000, _FINALS_JSON])
        if code == -1:
            raise self.missing_error(run_id, number)
        return Attempt(code), int(attempts)

    def commit_chunk(self, run_id: str, number: int, parts: Sequence[Part], worker: str,
                     lock_ttl_s: int, session: int, attempt_id: str,
                     findings: dict[str, Any] | None = None) -> Commit:
        """Commit a chunk atomically, if attempt_id still holds its fence in the run's
        current session; any other outcome changes nothing. A reconcile range's `findings`
        ({counts: {field: n}, ...}) are kept on the chunk and its counts added to the run's."""
        rows = sum(p.rows for p in parts)
        nbytes = sum(p.bytes for p in parts)
        payload = json.dumps([{"key": p.key, "rows": p.rows, "bytes": p.bytes} for p in parts])
        code = self._script(
            "commit_chunk",
            [self.keys.meta(run_id), self.keys.chunks(run_id), self.keys.state, self.keys.pending,
             self.keys.lock, self.keys.session(run_id, session)],
            [number, rows, nbytes, payload, worker, f"{time.time():.3f}", run_id, lock_ttl_s * 1000, session,
             attempt_id, _FINALS_JSON, json.dumps(findings) if findings else ""])
        if code == -1:
            raise self.missing_error(run_id, number)
        return Commit(code)

    def record_chunk_error(self, run_id: str, number: int, session: int, error: str) -> bool:
        """Store a failed attempt's error on its chunk and the run; False for a stale session."""
        return bool(self._script("chunk_error", [self.keys.meta(run_id), self.keys.chunks(run_id)],
                                 [number, session, error[:2000], f"{time.time():.3f}"]))
