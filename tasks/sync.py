"""A sync: start or resume one table's run. `launch` is the one code path of `ferry sync`,
`ferry retry` and scheduled syncs (`ferry beat`, whose ticks are the `scheduled_sync` task),
so locks, the choice of the run to resume and reports are the same whoever starts a run.
Tasks are sent by name: the CLI does not import the stages (Arrow, S3, SQLAlchemy)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from common.model.naming import new_run_id
from common.state.table import TableState
from tasks.base import FerryTask
from tasks.celery import app
from tasks.labels import shown

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Launched:
    """What launch() did for a table: queued a run (new or resumed), or nothing (busy, or
    nothing to retry)."""

    table: str
    run_id: str | None = None
    session: int = 0
    resumed: bool = False
    chunks_left: int = 0
    busy_with: str | None = None


def launch(st: TableState, pipeline: str, new_run: str | None, limit: int | None = None,
           extract_only: bool = False, load_only: bool = False, retry: bool = False,
           kind: str = "", **fields: str) -> Launched:
    """Queue the table's run: its unfinished run resumed in a new session, else `new_run`
    (a --load-only run loads what awaits load). With `retry` (`ferry retry`), only the
    latest failed or cancelled run is resumed and nothing new is started. Nothing is queued
    while a run holds the lock. A reconcile (kind="reconcile", `ferry reconcile`) is a run
    of the table too: it resumes only an unfinished reconcile of the same kind (mode, dry
    run, whole pass or a scheduled one)."""
    owner = st.lock_owner()
    if owner:
        return Launched(st.table, busy_with=owner)
    if retry:
        resumed = st.retryable_run()
        if resumed is None:
            return Launched(st.table)
    elif kind == "reconcile":
        # (the same mode, dry or not, and whole pass or scheduled share: another is not resumed)
        resumed = st.resumable_run(kind=kind, rec_mode=fields["rec_mode"], rec_dry_run=fields["rec_dry_run"],
                                   rec_whole=fields["rec_whole"])
    else:
        resumed = None if load_only else st.resumable_run()
    run_id = resumed or new_run
    assert run_id is not None, "a new run's id is needed unless retrying"
    meta = dict(queued_at=f"{time.time():.3f}", pipeline=pipeline, table=st.table, **fields)
    if load_only:
        meta["kind"] = "load"
    elif kind:
        meta["kind"] = kind
    session = st.begin_session(run_id, **meta)
    if load_only:
        errback = app.signature("ferry.run_failed", args=(pipeline, st.table, run_id, session),
                                **shown(pipeline, st.table, run_id, session=session))
        app.send_task("ferry.load_run", args=([], pipeline, st.table, run_id),
                      kwargs={"take_lock": True, "session": session}, link_error=errback,
                      **shown(pipeline, st.table, run_id, session=session, load_only=True))
    else:
        app.send_task("ferry.plan_table", args=[pipeline, st.table, run_id, limit, extract_only],
                      kwargs={"session": session},
                      **shown(pipeline, st.table, run_id, session=session, limit=limit, extract_only=extract_only))
    left = sum(1 for c in st.chunks(run_id) if c.state == "pending") if resumed else 0
    return Launched(st.table, run_id, session, resumed=bool(resumed), chunks_left=left)


@app.task(name="ferry.scheduled_sync", base=FerryTask, ignore_result=True)
def scheduled_sync(pipeline: str, table: str) -> dict[str, Any]:
    """A beat tick: what `ferry sync -p PIPE -t TABLE` does; a busy table is skipped this tick."""
    from tasks.context import table_context

    return tick("sync", pipeline, launch(table_context(pipeline, table).state, pipeline, new_run_id(),
                                         scheduled="1"))


def tick(what: str, pipeline: str, got: Launched) -> dict[str, Any]:
    """A beat tick's log line and result (a scheduled sync's or reconcile's): queued, resumed,
    or skipped while the table is busy."""
    if got.busy_with:
        log.info("scheduled %s of %s (pipeline %s) skipped: busy with active run %s", what, got.table, pipeline,
                 got.busy_with)
        return {"table": got.table, "skipped": True, "busy_with": got.busy_with}
    log.info("scheduled %s of %s (pipeline %s): run %s %s (session %d)", what, got.table, pipeline, got.run_id,
             "resumed" if got.resumed else "queued", got.session)
    return {"table": got.table, "run_id": got.run_id, "session": got.session, "resumed": got.resumed}
