"""A table's runs and their sessions: start or resume (begin_session), the run to resume,
a run's fields, its end (finish_run.lua), abandon (abandon_run.lua) and cancel."""
from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis

from common.errors import StateError
from common.model.records import ENDED_WHOLE, NOT_RESUMED, RunStatus
from common.model.types import TableSchema
from common.state.base import text
from common.state.locks import Locks

log = logging.getLogger(__name__)

# What `ferry retry` resumes (a sync resumes failed runs by itself, never cancelled ones).
RETRYABLE = (RunStatus.FAILED, RunStatus.CANCELLED)


def state_lost_message(pipeline: str, table: str, run_id: str) -> str:
    return (f"state lost: run {run_id} of {table} is no longer in Redis (Redis lost its data or was "
            f"flushed); run `ferry watermark rebuild -p {pipeline} -t {table}`, then sync again")


class Runs(Locks):
    def session(self, run_id: str) -> int:
        """The run's current session (1 for a new run, +1 each time it is resumed)."""
        return int(self.r.hget(self.keys.meta(run_id), "session") or 1)

    def begin_session(self, run_id: str, **fields: Any) -> int:
        """Start a run, or resume it, in a new session; returns the session number.

        The session counter, the run's fields and the clearing of an earlier session's
        status and error are one MULTI (retried if another client changed the run meanwhile)."""
        meta = self.keys.meta(run_id)

        def begin(tx: redis.client.Pipeline) -> int:
            session = int(tx.hget(meta, "session") or 0) + 1
            tx.multi()
            tx.hset(meta, mapping={"session": str(session), "status": RunStatus.QUEUED.value, "error": "",
                                   **{k: str(v) for k, v in fields.items()}})
            # Errors belong to their session: the one that fails next reports its own cause.
            tx.hdel(meta, "finished_at", "last_chunk_error")
            # A chunk's attempt limit counts within one session: an outage that used up
            # one session's attempts must not doom every resume.
            tx.delete(self.keys.attempts(run_id))
            tx.hset(self.keys.session(run_id, session), mapping={"started_at": f"{time.time():.3f}"})
            return session

        return int(self.r.transaction(begin, meta, value_from_callable=True))

    def session_totals(self, run_id: str, session: int | None = None) -> dict[str, str]:
        n = self.session(run_id) if session is None else session
        return {text(k): text(v) for k, v in self.r.hgetall(self.keys.session(run_id, n)).items()}

    def runs(self) -> list[str]:
        return [text(r) for r in self.r.lrange(self.keys.runs, 0, -1)]

    def set_run_fields(self, run_id: str, pipe: Any = None, **fields: Any) -> None:
        self._w(pipe).hset(self.keys.meta(run_id), mapping={k: str(v) for k, v in fields.items()})

    def run_meta(self, run_id: str) -> dict[str, str]:
        return {text(k): text(v) for k, v in self.r.hgetall(self.keys.meta(run_id)).items()}

    def run_fields(self, run_id: str, *fields: str) -> dict[str, str | None]:
        """Some fields of a run (one HMGET: cheaper than the whole meta, which holds the schema)."""
        values = self.r.hmget(self.keys.meta(run_id), fields)
        return {f: None if v is None else text(v) for f, v in zip(fields, values)}

    def run_schema(self, run_id: str) -> TableSchema | None:
        """The mapping a run was planned (and its parts written) with."""
        raw = self.r.hget(self.keys.meta(run_id), "schema")
        return None if raw is None else TableSchema.from_json(json.loads(raw))

    def resumable_run(self, scan: int = 50, kind: str = "", **match: str) -> str | None:
        """The run the next sync resumes instead of planning a new one: the newest unfinished
        run (failed, or its owner died) with chunks still to extract. A run with every chunk
        extracted is not resumed: its parts await load, and the next run's load takes them
        along with the new rows (a load that failed never keeps new rows from being read).
        Older runs count too: a load that found parts missing from S3 reopens their chunks.
        Only runs of `kind` count ('' a sync, 'reconcile' a reconcile whose fields equal
        `match`, e.g. the same mode): a sync never resumes a reconcile, nor the reverse."""
        recent = list(reversed(self.runs()[-scan:]))
        # A few fields of each run in one round trip (every sync asks; a run's meta holds its schema).
        fields = ("chunks", "kind", "status", "replan", *match)
        with self.r.pipeline(transaction=False) as p:
            for run_id in recent:
                p.hmget(self.keys.meta(run_id), fields)
            metas = [{f: text(v) for f, v in zip(fields, values) if v is not None} for values in p.execute()]
        for i, (run_id, meta) in enumerate(zip(recent, metas)):
            if "chunks" not in meta or meta.get("kind", "") != kind:
                continue
            if any(meta.get(f, "") != v for f, v in match.items()):
                continue
            if meta.get("status") in NOT_RESUMED:
                continue  # (a cancelled run is resumed only by `ferry retry`)
            if i == 0 and meta.get("replan"):
                # The source schema changed under it: its committed parts stay (they will be
                # loaded with the columns they have), the rest is planned again.
                self.r.hset(self.keys.meta(run_id), "status", RunStatus.REPLANNED.value)
                continue
            if self._has_pending(run_id):
                return run_id
        return None

    def retryable_run(self) -> str | None:
        """The run `ferry retry` resumes: the table's latest run if it failed or was
        cancelled and has a plan of its own (not a --load-only run)."""
        known = self.runs()
        if not known:
            return None
        meta = self.run_fields(known[-1], "chunks", "kind", "status")
        if meta["chunks"] is not None and meta["kind"] != "load" and meta["status"] in RETRYABLE:
            return known[-1]
        return None

    def _has_pending(self, run_id: str) -> bool:
        return any(json.loads(v).get("state") == "pending" for v in self.r.hvals(self.keys.chunks(run_id)))

    def abandon_unfinished(self) -> list[str]:
        """Abandon unfinished runs (after watermark set): no sync resumes them, their
        stragglers cannot commit, and their committed parts are never loaded."""
        abandoned = []
        for run_id in self.runs():
            if self.run_fields(run_id, "status")["status"] not in ENDED_WHOLE:
                self.abandon_run(run_id)
                abandoned.append(run_id)
        return abandoned

    def abandon_run(self, run_id: str, pipe: Any = None) -> None:
        """abandon_run.lua: a final status, its parts out of "awaiting load", listed as orphans."""
        self._script("abandon_run", [self.keys.meta(run_id), self.keys.pending, self.keys.orphans],
                     [run_id, f"{time.time():.3f}"], pipe)

    def finish_run(self, run_id: str, status: str, error: str = "", session: int | None = None) -> bool:
        """Mark the run succeeded, extracted, failed or cancelled; release the table lock it holds.

        With a session, nothing changes unless it is the run's current one (a stale
        session's chord body or error callback); returns whether the lock was released."""
        code = int(self._script(
            "finish_run", [self.keys.lock, self.keys.state, self.keys.meta(run_id), self.keys.reconcile],
            [run_id, str(status), error[:2000], f"{time.time():.3f}", "" if session is None else session]))
        if code < 0:
            log.info("run %s of %s: session %s is stale; not marked %s", run_id, self.table, session, status)
        return code == 1

    def cancel_run(self, run_id: str) -> None:
        """Cancel a run: a final status (its messages and callbacks then change nothing), the
        table lock and its load lock released. Its committed parts keep awaiting load."""
        self.finish_run(run_id, RunStatus.CANCELLED, "cancelled by ferry cancel")
        token = self.load_lock_owner()
        if token is not None and token.startswith(f"{run_id}:"):
            self.release_load_lock(token)

    def missing_error(self, run_id: str, number: int) -> StateError:
        """The error for a chunk Redis does not have: its run's whole state gone (Redis lost
        its data, FLUSHALL) is said so, loudly, with the way back."""
        if not self.r.exists(self.keys.meta(run_id)) or not self.r.exists(self.keys.chunks(run_id)):
            log.warning("run %s of %s: state lost: chunk %d finds no trace of its run in Redis",
                        run_id, self.table, number)
            return StateError(state_lost_message(self.pipeline, self.table, run_id))
        return StateError(f"table {self.table}: run {run_id} has no chunk {number}")
