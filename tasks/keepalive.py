"""Keep a live run's table lock: a small task that renews it and schedules itself again
while the run's current session is not over, so a slow but healthy run (its chunks
queued behind other tables' work) is never taken over by the next sync."""
from __future__ import annotations

import logging
from typing import Any

from tasks.celery import app
from tasks.context import FerryTask, lock_ttl_s, table_context
from tasks.labels import shown

log = logging.getLogger(__name__)


def interval_s() -> int:
    """Seconds between renewals: well inside the lock's TTL, and below the visibility
    timeout, or the waiting message would be redelivered as a duplicate."""
    visibility = int(app.conf.broker_transport_options.get("visibility_timeout") or lock_ttl_s())
    return max(1, min(lock_ttl_s() // 4, visibility // 2))


def start(pipeline: str, table: str, run_id: str, session: int) -> None:
    keep_run_alive.apply_async(args=[pipeline, table, run_id, session], countdown=interval_s(),
                               **shown(pipeline, table, run_id, session=session))


@app.task(name="ferry.keep_run_alive", base=FerryTask, ignore_result=True)
def keep_run_alive(pipeline: str, table: str, run_id: str, session: int) -> dict[str, Any]:
    state = table_context(pipeline, table).state
    code = state.renew_lock(run_id, session, lock_ttl_s())
    if code == 1:
        start(pipeline, table, run_id, session)
    elif code == -2:
        log.warning("run %s of %s: session %d no longer holds the table lock; not renewed",
                    run_id, table, session)
    return {"run_id": run_id, "session": session, "renewed": code == 1}
