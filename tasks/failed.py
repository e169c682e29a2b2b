"""The chord's error callback: a chunk out of retries (or a failed load) fails the run."""
from __future__ import annotations

import logging
import time
from typing import Any

from tasks.celery import app
from tasks.context import FerryTask, describe, table_context

log = logging.getLogger(__name__)


@app.task(name="ferry.run_failed", base=FerryTask)
def run_failed(request: Any, exc: BaseException, traceback: Any, pipeline: str, table: str,
               run_id: str, session: int | None = None) -> None:
    """Called with the failed task's request and exception (Celery's errback signature).
    A stale session's callback changes nothing (finish_run checks the session)."""
    # Celery runs this inline and only logs what it raises: try a few times, since a run
    # left "extracting" would keep its table locked until the lock's TTL.
    for attempt in range(5):
        try:
            ctx = table_context(pipeline, table)
            if session is not None and ctx.state.session(run_id) != session:
                log.info("run %s of %s: error callback of stale session %d ignored", run_id, table, session)
                return
            cause = ctx.state.run_meta(run_id).get("last_chunk_error") or describe(exc)
            ctx.state.finish_run(run_id, "failed", cause, session)  # re-checks the session atomically
            log.error("run %s of %s failed: %s", run_id, table, cause)
            return
        except Exception:  # noqa: BLE001 - Redis may be briefly away
            log.exception("could not mark run %s of %s failed (attempt %d)", run_id, table, attempt + 1)
            time.sleep(2 ** attempt)
