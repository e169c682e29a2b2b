"""The chord's error callback: a chunk out of retries (or a failed load) fails the run, once
every segment of the run has finished (the other chunks commit first)."""
from __future__ import annotations

import logging
import time
from typing import Any

from common.model.records import RunStatus
from tasks.celery import app
from tasks.base import FerryTask
from tasks.context import describe, table_context
log = logging.getLogger(__name__)


@app.task(name="ferry.run_failed", base=FerryTask)
def run_failed(request: Any, exc: BaseException, traceback: Any, pipeline: str, table: str,
               run_id: str, session: int | None = None, segment: str | None = None) -> None:
    """Called with the failed task's request and exception (Celery's errback signature).
    A stale session's callback changes nothing (finish_run checks the session).

    For a segment whose chunk failed, the failure is recorded with the segment; the run
    fails only when it is the last segment to finish (or, if another is, that one fails it).
    A segment's load that failed (it had already recorded its segment) fails the run."""
    # Celery runs this inline and only logs what it raises: try a few times, since a run
    # left "extracting" would keep its table locked until the lock's TTL.
    for attempt in range(5):
        try:
            ctx = table_context(pipeline, table)
            if session is not None and ctx.state.session(run_id) != session:
                log.info("run %s of %s: error callback of stale session %d ignored", run_id, table, session)
                return
            cause = ctx.state.run_meta(run_id).get("last_chunk_error") or describe(exc)
            if (segment is not None and session is not None
                    and "counts" not in ctx.state.segments(run_id, session).get(segment, {})):
                # A chunk of this segment failed (a segment whose load failed had recorded itself).
                end = ctx.state.end_segment(run_id, session, segment, {}, getattr(request, "id", None) or "",
                                            failed=cause)
                if not end.last:
                    log.info("run %s of %s: segment %s failed (%s); the run fails when its last "
                             "segment finishes", run_id, table, segment, cause)
                    return
                cause = end.failed
            ctx.state.finish_run(run_id, RunStatus.FAILED, cause, session)  # re-checks the session atomically
            log.error("run %s of %s failed: %s", run_id, table, cause)
            return
        except Exception:  # noqa: BLE001 - Redis may be briefly away
            log.exception("could not mark run %s of %s failed (attempt %d)", run_id, table, attempt + 1)
            time.sleep(2 ** attempt)
