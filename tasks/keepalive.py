"""Keep a live run's table lock: a small task that renews it and schedules itself again
while the run's current session is not over, so a slow but healthy run (its chunks
queued behind other tables' work) is never taken over by the next sync.

It sends again the message of a pending chunk that is nowhere in the broker (a worker
killed as it took it off the queue, before kombu recorded it as unacknowledged).

It also ends a run whose every chunk is committed but whose segments' loads never all ran
(a load message lost: a purged load queue, or a worker killed between storing a chunk's
result and sending its segment's load): once the last commit is a renewal interval old, it
records those segments as finished and sends one load, which loads and ends the run."""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from common.model.records import RunStatus
from tasks.celery import app
from tasks.base import FerryTask
from tasks.context import lock_ttl_s, table_context
from tasks.labels import shown
from workers import broker

log = logging.getLogger(__name__)


def interval_s() -> int:
    """Seconds between renewals: well inside the lock's TTL, and below the visibility
    timeout, or the waiting message would be redelivered as a duplicate."""
    visibility = int(app.conf.broker_transport_options.get("visibility_timeout") or lock_ttl_s())
    return max(1, min(lock_ttl_s() // 4, visibility // 2))


def start(pipeline: str, table: str, run_id: str, session: int) -> None:
    keep_run_alive.apply_async(args=[pipeline, table, run_id, session], countdown=interval_s(),
                               **shown(pipeline, table, run_id, session=session))


def _stalled_segments(state: Any, run_id: str, session: int, grace_s: float) -> list[str]:
    """The session's segments whose load never ran although every chunk of the run is
    committed, its plan complete, and its last commit older than grace_s; [] otherwise."""
    meta = state.run_fields(run_id, "status", "planning", f"finalizer:{session}")
    if meta["status"] != RunStatus.EXTRACTING or meta["planning"] == "1" or meta[f"finalizer:{session}"]:
        return []
    waiting = sorted(seg for seg, entry in state.segments(run_id, session).items() if "counts" not in entry)
    chunks = state.chunks(run_id)
    if not waiting or not chunks or any(c.state == "pending" for c in chunks):
        return []
    if time.time() - max(c.committed_at or 0 for c in chunks) < grace_s:
        return []
    return waiting


def _rescue(state: Any, pipeline: str, table: str, run_id: str, session: int) -> None:
    waiting = _stalled_segments(state, run_id, session, interval_s())
    if not waiting:
        return
    meta = state.run_fields(run_id, f"rescued:{session}", "extract_only")
    sent = meta[f"rescued:{session}"]
    if sent is not None and time.time() - float(sent) < 4 * interval_s():
        return  # the load sent last time may still wait in a busy load queue
    state.set_run_fields(run_id, **{f"rescued:{session}": f"{time.time():.3f}"})
    # All but one are recorded finished here; the load sent for the last one finds itself
    # the run's last segment and ends the run (a late load of any of them changes nothing).
    for segment in waiting[:-1]:
        state.end_segment(run_id, session, segment, {}, "keepalive")
    extract_only = meta["extract_only"] == "1"
    log.warning("run %s of %s: every chunk is committed but the load of segment(s) %s never ran (a lost "
                "message); sending it again", run_id, table, ", ".join(waiting))
    app.send_task("ferry.load_run", args=([], pipeline, table, run_id),
                  kwargs={"extract_only": extract_only, "session": session, "segment": waiting[-1]},
                  link_error=app.signature("ferry.run_failed", args=(pipeline, table, run_id, session),
                                           kwargs={"segment": waiting[-1]}),
                  **shown(pipeline, table, run_id, session=session, segment=waiting[-1], rescue=True))


def _resend_lost_chunks(state: Any, pipeline: str, table: str, run_id: str, session: int) -> None:
    """A pending chunk whose message is nowhere in the broker (neither queued nor held by a
    worker: taken by a worker killed as it took it, workers/broker.py) at two renewals in a
    row is sent again, outside its chord; once every chunk is committed, _rescue sends the
    load that ends the run. A late original or a duplicate is harmless: the chunk's fence lets
    one attempt commit, and a committed chunk's message is counted once."""
    meta = state.run_fields(run_id, "status", "planning", "kind", f"finalizer:{session}", f"unseen:{session}")
    if meta["status"] != RunStatus.EXTRACTING or meta["planning"] == "1" or meta[f"finalizer:{session}"]:
        return
    pending = {c.number for c in state.chunks(run_id) if c.state == "pending"}
    unseen = sorted(pending - broker.chunk_messages(app, "extract", run_id)) if pending else []
    before = set(json.loads(meta[f"unseen:{session}"] or "[]"))
    state.set_run_fields(run_id, **{f"unseen:{session}": json.dumps(unseen)})
    task = "ferry.reconcile_range" if meta["kind"] == "reconcile" else "ferry.extract_chunk"
    for number in (n for n in unseen if n in before):
        log.warning("run %s of %s: chunk %d has no message in the broker (lost by a worker killed as it took "
                    "it); sending it again", run_id, table, number)
        app.send_task(task, args=[pipeline, table, run_id, number, session],
                      link_error=app.signature("ferry.run_failed", args=(pipeline, table, run_id, session)),
                      **shown(pipeline, table, run_id, chunk=number, session=session, resent=True))


@app.task(name="ferry.keep_run_alive", base=FerryTask, ignore_result=True)
def keep_run_alive(pipeline: str, table: str, run_id: str, session: int) -> dict[str, Any]:
    state = table_context(pipeline, table).state
    code = state.renew_lock(run_id, session, lock_ttl_s())
    if code == 1:
        start(pipeline, table, run_id, session)
        try:
            _resend_lost_chunks(state, pipeline, table, run_id, session)
            _rescue(state, pipeline, table, run_id, session)
        except Exception as exc:  # noqa: BLE001 - the lock is renewed; the next renewal looks again
            log.warning("run %s of %s: could not check for lost messages: %s", run_id, table, exc)
    elif code == -2:
        log.warning("run %s of %s: session %d no longer holds the table lock; not renewed",
                    run_id, table, session)
    return {"run_id": run_id, "session": session, "renewed": code == 1}
