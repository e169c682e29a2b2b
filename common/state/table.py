"""The Redis state of a table and its runs: locks, plans, chunk commits, cursor and totals.

Every multi-key change goes through one of the Lua scripts in common/lua/, called
through one typed method here that turns its return codes into exceptions.
"""
from __future__ import annotations

import enum
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import redis

from common.model import bounds, naming
from common.model.bounds import Key
from common.errors import LockedError, StateError
from common.model.types import TableSchema

if TYPE_CHECKING:
    from common.store.parquet import Part

log = logging.getLogger(__name__)
_LUA = Path(__file__).with_name("lua")

# A run in one of these is over: no attempt starts, no chunk commits, no lock is renewed.
FINAL_STATUSES = ("succeeded", "extracted", "failed", "abandoned", "cancelled", "replanned")
_FINALS_JSON = json.dumps(FINAL_STATUSES)


def _script(name: str) -> str:
    return (_LUA / f"{name}.lua").read_text()


_SCRIPTS = {name: _script(name) for name in
            ("store_plan", "begin_attempt", "commit_chunk", "chunk_error", "commit_load",
             "finish_run", "release_lock", "renew_lock", "abandon_run", "reopen_chunks", "append_plan",
             "segment_done", "segment_sent")}


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


@dataclass(frozen=True)
class Chunk:
    """A planned chunk and what its extraction committed."""

    number: int
    lo: Key | None
    hi: Key
    state: str
    rows: int
    bytes: int
    parts: tuple[str, ...]
    worker: str
    committed_at: float | None
    fence: str = ""
    """The attempt allowed to commit (set when an attempt starts)."""
    attempt: str = ""
    """The attempt whose parts were committed."""
    attempts: int = 0
    error: str = ""
    started_at: float | None = None
    """When the latest attempt took the fence."""
    attempt_worker: str = ""
    error_session: int = 0
    """The session whose attempt failed with `error`."""

    @classmethod
    def from_json(cls, number: int, raw: str | bytes) -> "Chunk":
        d = json.loads(raw)
        return cls(number=number, lo=bounds.decode(d["lo"]), hi=bounds.decode(d["hi"]),  # type: ignore[arg-type]
                   state=d["state"], rows=int(d.get("rows") or 0), bytes=int(d.get("bytes") or 0),
                   parts=tuple(d.get("parts") or ()), worker=d.get("worker") or "",
                   committed_at=float(d["committed_at"]) if d.get("committed_at") else None,
                   fence=d.get("fence") or "", attempt=d.get("attempt") or "",
                   attempts=int(d.get("attempts") or 0), error=d.get("error") or "",
                   started_at=float(d["attempt_started_at"]) if d.get("attempt_started_at") else None,
                   attempt_worker=d.get("attempt_worker") or "",
                   error_session=int(d.get("error_session") or 0))


@dataclass(frozen=True)
class PendingPart:
    """A committed part that no committed load contains yet."""

    key: str
    run_id: str
    chunk: int
    rows: int
    bytes: int


def state_lost_message(pipeline: str, table: str, run_id: str) -> str:
    return (f"state lost: run {run_id} of {table} is no longer in Redis (Redis lost its data or was "
            f"flushed); run `ferry watermark rebuild -p {pipeline} -t {table}`, then sync again")


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class TableState:
    """All of one pipeline table's state in Redis."""

    def __init__(self, client: redis.Redis, pipeline: str, table: str) -> None:
        self.r = client
        self.pipeline = pipeline
        self.table = table
        self.state_key = naming.table_state_key(pipeline, table)
        self.lock_key = naming.table_lock_key(pipeline, table)
        self.load_lock_key = naming.load_lock_key(pipeline, table)
        self.pending_key = naming.pending_parts_key(pipeline, table)
        self.runs_key = naming.runs_key(pipeline, table)
        self.schema_key = naming.table_schema_key(pipeline, table)
        self.orphans_key = naming.orphans_key(pipeline, table)
        self.schema_log_key = naming.schema_log_key(pipeline, table)
        self._scripts = {name: client.register_script(text) for name, text in _SCRIPTS.items()}

    def _meta_key(self, run_id: str) -> str:
        return naming.run_meta_key(self.pipeline, self.table, run_id)

    def _chunks_key(self, run_id: str) -> str:
        return naming.run_chunks_key(self.pipeline, self.table, run_id)

    def _session_key(self, run_id: str, session: int | None = None) -> str:
        if session is None:
            session = self.session(run_id)
        return naming.run_session_key(self.pipeline, self.table, run_id, session)

    # ---- runs and sessions -------------------------------------------------

    def session(self, run_id: str) -> int:
        """The run's current session (1 for a new run, +1 each time it is resumed)."""
        return int(self.r.hget(self._meta_key(run_id), "session") or 1)

    def begin_session(self, run_id: str, **fields: Any) -> int:
        """Start a run, or resume it, in a new session; returns the session number.

        The run's status and error of an earlier session are cleared in the same MULTI."""
        meta = self._meta_key(run_id)
        session = int(self.r.hincrby(meta, "session", 1))
        with self.r.pipeline(transaction=True) as tx:
            tx.hset(meta, mapping={"status": "queued", "error": "",
                                   **{k: str(v) for k, v in fields.items()}})
            # Errors belong to their session: the one that fails next reports its own cause.
            tx.hdel(meta, "finished_at", "last_chunk_error")
            # A chunk's attempt limit counts within one session: an outage that used up
            # one session's attempts must not doom every resume.
            tx.delete(naming.run_attempts_key(self.pipeline, self.table, run_id))
            tx.hset(self._session_key(run_id, session), mapping={"started_at": f"{time.time():.3f}"})
            tx.execute()
        return session

    def _segments_key(self, run_id: str, session: int) -> str:
        return naming.run_segments_key(self.pipeline, self.table, run_id, session)

    def claim_segment(self, run_id: str, session: int, segment: str, chunks: Sequence[int],
                      token: str) -> list[int] | None:
        """Claim the dispatch of chunks as a segment of the session (once per segment id):
        the chunks to send, or None if the segment was sent already or another task claimed
        it. The claiming task (token: its id survives redelivery) sends a claim it made but
        did not mark sent (segment_sent) once more: it may have died in between."""
        key = self._segments_key(run_id, session)
        self.r.hsetnx(key, segment, json.dumps({"token": token, "chunks": list(chunks), "sent": False}))
        entry = json.loads(self.r.hget(key, segment) or "{}")
        if entry.get("token") != token or entry.get("sent"):
            return None
        return [int(n) for n in entry.get("chunks") or []]

    def unsent_segments(self, run_id: str, session: int, token: str) -> dict[str, list[int]]:
        """Segments this token claimed but did not mark sent (a plan task that died between)."""
        raw = self.r.hgetall(self._segments_key(run_id, session))
        found = {}
        for seg, value in raw.items():
            entry = json.loads(value)
            if entry.get("token") == token and not entry.get("sent"):
                found[_s(seg)] = [int(n) for n in entry.get("chunks") or []]
        return found

    def segment_sent(self, run_id: str, session: int, segment: str, token: str) -> None:
        self._scripts["segment_sent"](keys=[self._segments_key(run_id, session)], args=[segment, token])

    def append_plan(self, run_id: str, session: int, expected_from: str,
                    ranges: Sequence[tuple[Key | None, Key]], done: bool, token: str,
                    rows_left: int | None = None) -> int | None:
        """Append a run's next planned chunks and claim their dispatch as one segment
        (append_plan.lua); the segment's id (its first chunk number), or None when the
        session no longer owns the run or planning moved on without this caller."""
        chunks = [{"lo": bounds.encode(lo), "hi": bounds.encode(hi), "state": "pending"} for lo, hi in ranges]
        code = int(self._scripts["append_plan"](
            keys=[self.lock_key, self._meta_key(run_id), self._chunks_key(run_id),
                  self._segments_key(run_id, session)],
            args=[run_id, session, expected_from, json.dumps(chunks), "1" if done else "",
                  bounds.encode(ranges[-1][1]), token, _FINALS_JSON, f"{time.time():.3f}",
                  "" if rows_left is None else rows_left]))
        return code if code >= 0 else None

    def segment_done(self, run_id: str, session: int, segment: str, counts: dict[str, Any],
                     task_id: str, failed: str = "") -> int:
        """Record a segment's finished chord (what it counted, or its failure); 1 when this
        task is the run's last and ends it, 0 when not, -1 for an unknown segment, -2 for a
        stale session (segment_done.lua)."""
        return int(self._scripts["segment_done"](
            keys=[self._meta_key(run_id), self._segments_key(run_id, session)],
            args=[segment, json.dumps(counts), session, task_id, failed]))

    def segments(self, run_id: str, session: int) -> dict[str, dict[str, Any]]:
        """The session's segments: id -> {token, chunks, sent, counts (once finished), failed}."""
        raw = self.r.hgetall(self._segments_key(run_id, session))
        return {_s(k): json.loads(v) for k, v in raw.items()}

    def session_totals(self, run_id: str, session: int | None = None) -> dict[str, str]:
        return {_s(k): _s(v) for k, v in self.r.hgetall(self._session_key(run_id, session)).items()}

    def runs(self) -> list[str]:
        return [_s(r) for r in self.r.lrange(self.runs_key, 0, -1)]

    def resumable_run(self, scan: int = 50) -> str | None:
        """The run the next sync resumes instead of planning a new one: the newest unfinished
        run (failed, or its owner died) with chunks still to extract. A run with every chunk
        extracted is not resumed: its parts await load, and the next run's load takes them
        along with the new rows (a load that failed never keeps new rows from being read).
        Older runs count too: a load that found parts missing from S3 reopens their chunks."""
        recent = list(reversed(self.runs()[-scan:]))
        # Four fields of each run in one round trip (every sync asks; a run's meta holds its schema).
        fields = ("chunks", "kind", "status", "replan")
        with self.r.pipeline(transaction=False) as p:
            for run_id in recent:
                p.hmget(self._meta_key(run_id), fields)
            metas = [{f: _s(v) for f, v in zip(fields, values) if v is not None} for values in p.execute()]
        for i, (run_id, meta) in enumerate(zip(recent, metas)):
            if "chunks" not in meta or meta.get("kind") == "load":
                continue
            if meta.get("status") in ("succeeded", "extracted", "abandoned", "replanned", "cancelled"):
                continue  # (a cancelled run is resumed only by `ferry retry`)
            if i == 0 and meta.get("replan"):
                # The source schema changed under it: its committed parts stay (they will be
                # loaded with the columns they have), the rest is planned again.
                self.r.hset(self._meta_key(run_id), "status", "replanned")
                continue
            if any(c.state == "pending" for c in self.chunks(run_id)):
                return run_id
        return None

    def abandon_unfinished(self) -> list[str]:
        """Abandon unfinished runs (after watermark set): no sync resumes them, their
        stragglers cannot commit, and their committed parts are never loaded."""
        abandoned = []
        for run_id in self.runs():
            status = self.run_meta(run_id).get("status")
            if status not in ("succeeded", "extracted", "abandoned"):
                self._scripts["abandon_run"](
                    keys=[self._meta_key(run_id), self.pending_key, self.orphans_key],
                    args=[run_id, f"{time.time():.3f}"])
                abandoned.append(run_id)
        return abandoned

    # ---- locks -------------------------------------------------------------

    def _take(self, key: str, token: str, ttl_s: int) -> str | None:
        """Take a lock, re-entrant for its owner (a redelivered task, a resumed run); returns
        None when taken, else the other owner's token."""
        for _ in range(3):
            if self.r.set(key, token, nx=True, px=ttl_s * 1000):
                return None
            owner = self.r.get(key)
            if owner is not None:  # else it expired between the two calls: try again
                if _s(owner) == token:
                    self.r.pexpire(key, ttl_s * 1000)
                    return None
                return _s(owner)
        raise StateError(f"table {self.table}: could not take the lock {key}")

    def acquire_lock(self, run_id: str, ttl_s: int) -> None:
        """Take the table lock for run_id; LockedError names the run that holds it."""
        owner = self._take(self.lock_key, run_id, ttl_s)
        if owner is not None:
            raise LockedError(self.table, owner)

    def lock_owner(self) -> str | None:
        owner = self.r.get(self.lock_key)
        return None if owner is None else _s(owner)

    def acquire_load_lock(self, token: str, ttl_s: int) -> bool:
        """Take the load lock; re-entrant for the same token (a redelivered load task)."""
        return self._take(self.load_lock_key, token, ttl_s) is None

    def cancel_run(self, run_id: str) -> None:
        """Cancel a run: a final status (its messages and callbacks then change nothing), the
        table lock and its load lock released. Its committed parts keep awaiting load."""
        self.finish_run(run_id, "cancelled", "cancelled by ferry cancel")
        token = self.r.get(self.load_lock_key)
        if token is not None and _s(token).startswith(f"{run_id}:"):
            self.release_load_lock(_s(token))

    def release_load_lock(self, token: str) -> bool:
        return bool(self._scripts["release_lock"](keys=[self.load_lock_key], args=[token]))

    # ---- plan --------------------------------------------------------------

    def store_plan(self, run_id: str, ranges: Sequence[tuple[Key | None, Key]],
                   meta: dict[str, str]) -> int:
        """Record the run's chunks; StateError if the run no longer owns the lock."""
        chunks = [{"lo": bounds.encode(lo), "hi": bounds.encode(hi), "state": "pending"}
                  for lo, hi in ranges]
        n = self._scripts["store_plan"](
            keys=[self.lock_key, self.state_key, self._meta_key(run_id), self._chunks_key(run_id),
                  self.runs_key],
            args=[run_id, json.dumps(meta), json.dumps(chunks)])
        if n < 0:
            raise StateError(f"table {self.table}: run {run_id} no longer owns the table lock "
                             f"(held by {self.lock_owner()})")
        return int(n)

    def set_run_fields(self, run_id: str, **fields: Any) -> None:
        self.r.hset(self._meta_key(run_id), mapping={k: str(v) for k, v in fields.items()})

    def run_meta(self, run_id: str) -> dict[str, str]:
        return {_s(k): _s(v) for k, v in self.r.hgetall(self._meta_key(run_id)).items()}

    def chunk(self, run_id: str, number: int) -> Chunk | None:
        raw = self.r.hget(self._chunks_key(run_id), str(number))
        return None if raw is None else Chunk.from_json(number, raw)

    def chunks(self, run_id: str) -> list[Chunk]:
        raw = self.r.hgetall(self._chunks_key(run_id))
        return sorted((Chunk.from_json(int(k), v) for k, v in raw.items()), key=lambda c: c.number)

    # ---- chunk attempts and commits ----------------------------------------

    def begin_attempt(self, run_id: str, number: int, session: int, attempt_id: str, worker: str,
                      lock_ttl_s: int) -> tuple[Attempt, int]:
        """Take the chunk's fence for attempt_id; returns the outcome and, when fenced, how
        many attempts of the chunk this session has started."""
        code, attempts = self._scripts["begin_attempt"](
            keys=[self._meta_key(run_id), self._chunks_key(run_id),
                  naming.run_attempts_key(self.pipeline, self.table, run_id), self.lock_key, self.state_key],
            args=[number, session, attempt_id, worker, f"{time.time():.3f}", run_id,
                  lock_ttl_s * 1000, _FINALS_JSON])
        if code == -1:
            raise self.missing_error(run_id, number)
        return Attempt(code), int(attempts)

    def commit_chunk(self, run_id: str, number: int, parts: Sequence[Part], worker: str,
                     lock_ttl_s: int, session: int, attempt_id: str) -> Commit:
        """Commit a chunk atomically, if attempt_id still holds its fence in the run's
        current session; any other outcome changes nothing."""
        rows = sum(p.rows for p in parts)
        nbytes = sum(p.bytes for p in parts)
        payload = json.dumps([{"key": p.key, "rows": p.rows, "bytes": p.bytes} for p in parts])
        code = self._scripts["commit_chunk"](
            keys=[self._meta_key(run_id), self._chunks_key(run_id), self.state_key,
                  self.pending_key, self.lock_key, self._session_key(run_id, session)],
            args=[number, rows, nbytes, payload, worker, f"{time.time():.3f}", run_id,
                  lock_ttl_s * 1000, session, attempt_id, _FINALS_JSON])
        if code == -1:
            raise self.missing_error(run_id, number)
        return Commit(code)

    def missing_error(self, run_id: str, number: int) -> StateError:
        """The error for a chunk Redis does not have: its run's whole state gone (Redis lost
        its data, FLUSHALL) is said so, loudly, with the way back."""
        if not self.r.exists(self._meta_key(run_id)) or not self.r.exists(self._chunks_key(run_id)):
            log.warning("run %s of %s: state lost: chunk %d finds no trace of its run in Redis",
                        run_id, self.table, number)
            return StateError(state_lost_message(self.pipeline, self.table, run_id))
        return StateError(f"table {self.table}: run {run_id} has no chunk {number}")

    def record_chunk_error(self, run_id: str, number: int, session: int, error: str) -> bool:
        """Store a failed attempt's error on its chunk and the run; False for a stale session."""
        return bool(self._scripts["chunk_error"](
            keys=[self._meta_key(run_id), self._chunks_key(run_id)],
            args=[number, session, error[:2000], f"{time.time():.3f}"]))

    def count_failed_attempt(self) -> None:
        """One more chunk attempt failed, retried or not (the chunk_failures counter)."""
        self.r.hincrby(self.state_key, "chunk_failures", 1)

    def record_orphans(self, keys: Sequence[str], run_id: str, number: int, attempt_id: str,
                       reason: str) -> None:
        """Note objects that no load will ever read (what `s3clean` deletes)."""
        if keys:
            info = json.dumps({"run": run_id, "chunk": number, "attempt": attempt_id,
                               "reason": reason, "at": round(time.time(), 3)})
            self.r.hset(self.orphans_key, mapping={k: info for k in keys})

    def orphans(self) -> dict[str, dict[str, Any]]:
        """S3 key -> {run, chunk, attempt, reason, at} of every object noted as orphaned."""
        return {_s(k): json.loads(v) for k, v in self.r.hgetall(self.orphans_key).items()}

    def renew_lock(self, run_id: str, session: int, ttl_s: int) -> int:
        """Renew a live run's lock (see renew_lock.lua for the codes)."""
        return int(self._scripts["renew_lock"](keys=[self.lock_key, self._meta_key(run_id)],
                                               args=[run_id, session, ttl_s * 1000, _FINALS_JSON]))

    def pending_parts(self) -> list[PendingPart]:
        """Committed parts not yet loaded, oldest run and chunk first."""
        parts = []
        for key, raw in self.r.hgetall(self.pending_key).items():
            d = json.loads(raw)
            parts.append(PendingPart(key=_s(key), run_id=d["run"], chunk=int(d["chunk"]),
                                     rows=int(d["rows"]), bytes=int(d["bytes"])))
        return sorted(parts, key=lambda p: (p.run_id, p.chunk, p.key))

    def commit_load(self, run_id: str, parts: Sequence[PendingPart]) -> tuple[int, int]:
        """Count a committed warehouse load once; returns (parts, rows) newly counted."""
        runs = sorted({p.run_id for p in parts})
        keys = [self.state_key, self.pending_key, self._meta_key(run_id), self._session_key(run_id)]
        keys += [self._chunks_key(r) for r in runs]
        index = {r: i + len(keys) - len(runs) + 1 for i, r in enumerate(runs)}  # Lua's KEYS are 1-based
        payload = json.dumps([{"key": p.key, "k": index[p.run_id], "chunk": p.chunk} for p in parts])
        files, rows = self._scripts["commit_load"](keys=keys, args=[payload, int(time.time())])
        return int(files), int(rows)

    def reopen_chunks(self, run_id: str, numbers: Sequence[int], missing: Sequence[str]) -> int:
        """Put committed chunks whose parts are gone from S3 back to pending (reopen_chunks.lua);
        returns how many were reopened."""
        return int(self._scripts["reopen_chunks"](
            keys=[self._meta_key(run_id), self._chunks_key(run_id), self.state_key, self.pending_key,
                  self.orphans_key],
            args=[json.dumps(sorted(numbers)), json.dumps(list(missing)), run_id, f"{time.time():.3f}"]))

    def discard_parts(self, keys: Sequence[str]) -> int:
        """Drop parts from "awaiting load" without counting them loaded (a full reload
        superseded them)."""
        return int(self.r.hdel(self.pending_key, *keys)) if keys else 0

    def finish_run(self, run_id: str, status: str, error: str = "", session: int | None = None) -> bool:
        """Mark the run succeeded, extracted or failed; release the table lock it holds.

        With a session, nothing changes unless it is the run's current one (a stale
        session's chord body or error callback); returns whether the lock was released."""
        code = int(self._scripts["finish_run"](
            keys=[self.lock_key, self.state_key, self._meta_key(run_id)],
            args=[run_id, status, error[:2000], f"{time.time():.3f}", "" if session is None else session]))
        if code < 0:
            log.info("run %s of %s: session %s is stale; not marked %s", run_id, self.table, session, status)
        return code == 1

    def expire_runs(self, retention_s: float, keep_last: int = 3, scan: int = 200,
                    now: float | None = None) -> list[str]:
        """Forget finished runs that ended more than retention_s ago (their meta, chunks,
        sessions, attempts and noted orphans), oldest first, at most `scan` looked at.

        Kept whatever their age: the last `keep_last` runs (resume looks at the latest), the
        runs status, the active run and a full reload name, the lock owner's, and any run
        with parts awaiting load (a load needs its chunks). `expired_before` records the newest run id expired, so `s3clean` knows the
        objects of a run Redis no longer has were loaded (or orphaned) by a run that
        finished, not lost with Redis."""
        now = time.time() if now is None else now
        runs = self.runs()
        state = self.state()
        keep = set(runs[-keep_last:]) if keep_last > 0 else set()
        keep |= {state.get(k, "") for k in ("last_run", "full_run", "active_run")}
        keep |= {p.run_id for p in self.pending_parts()}
        keep.add(self.lock_owner() or "")
        noted = self.orphans()
        expired: list[str] = []
        for run_id in runs[:scan]:
            if run_id in keep:
                continue
            meta = self.run_meta(run_id)
            ended = meta.get("finished_at") or meta.get("planned_at") or meta.get("queued_at")
            if meta and (meta.get("status") not in FINAL_STATUSES or not ended):
                continue
            if ended and now - float(ended) < retention_s:
                break  # runs are listed oldest first: the rest are younger
            session = int(meta.get("session") or 1)
            keys = [self._meta_key(run_id), self._chunks_key(run_id),
                    naming.run_attempts_key(self.pipeline, self.table, run_id),
                    *(self._session_key(run_id, n) for n in range(1, session + 1)),
                    *(self._segments_key(run_id, n) for n in range(1, session + 1))]
            orphans = [k for k, info in noted.items() if info.get("run") == run_id]
            with self.r.pipeline(transaction=True) as tx:
                tx.lrem(self.runs_key, 1, run_id)
                tx.delete(*keys)
                if orphans:
                    tx.hdel(self.orphans_key, *orphans)
                tx.execute()
            expired.append(run_id)
        if expired:
            newest = max([*expired, state.get("expired_before", "")])
            self.r.hset(self.state_key, "expired_before", newest)
            log.info("table %s: %d finished run(s) older than %.0f days forgotten (the oldest %s)",
                     self.table, len(expired), retention_s / 86400, expired[0])
        return expired

    # ---- reading -----------------------------------------------------------

    def state(self) -> dict[str, str]:
        return {_s(k): _s(v) for k, v in self.r.hgetall(self.state_key).items()}

    def cursor(self) -> Key | None:
        raw = self.r.hget(self.state_key, "cursor")
        return None if raw is None else bounds.decode(raw)

    def set_status(self, **fields: str) -> None:
        self.r.hset(self.state_key, mapping=fields)

    def set_cursor(self, key: Key | None) -> None:
        """Move the cursor by hand (watermark set); refused while a run holds the lock."""
        owner = self.lock_owner()
        if owner:
            raise LockedError(self.table, owner)
        if key is None:
            self.r.hdel(self.state_key, "cursor")
        else:
            self.r.hset(self.state_key, mapping={"cursor": bounds.encode(key), "cursor_run": "manual",
                                                 "cursor_at": f"{time.time():.3f}"})

    def delete_all(self) -> int:
        """Forget everything about the table (watermark reset)."""
        keys = list(self.r.scan_iter(naming.table_pattern(self.pipeline, self.table), count=1000))
        return int(self.r.delete(*keys)) if keys else 0

    def record_schema_event(self, run_id: str, change: str) -> None:
        """Log a schema change or an ALTER in the table's state (kept: the last 1,000)."""
        with self.r.pipeline(transaction=True) as tx:
            tx.rpush(self.schema_log_key, json.dumps({"at": round(time.time(), 3), "run": run_id,
                                                      "change": change}))
            tx.ltrim(self.schema_log_key, -1000, -1)
            tx.execute()

    def schema_events(self) -> list[dict[str, Any]]:
        return [json.loads(v) for v in self.r.lrange(self.schema_log_key, 0, -1)]

    def run_schema(self, run_id: str) -> TableSchema | None:
        """The mapping a run was planned (and its parts written) with."""
        raw = self.r.hget(self._meta_key(run_id), "schema")
        return None if raw is None else TableSchema.from_json(json.loads(raw))

    def schema(self) -> TableSchema | None:
        raw = self.r.get(self.schema_key)
        return None if raw is None else TableSchema.from_json(json.loads(raw))

    def save_schema(self, schema: TableSchema) -> None:
        self.r.set(self.schema_key, json.dumps(schema.to_json()))
