"""Start or resume one table's run: the one code path of `ferry sync` and of scheduled syncs
(`ferry beat`), so locks, resume and reports are the same whoever starts a run."""
from __future__ import annotations

import time
from dataclasses import dataclass

from common.state.table import TableState
from tasks.celery import app
from tasks.labels import shown


@dataclass(frozen=True)
class Launched:
    """What launch() did for a table: queued a run (new or resumed), or nothing (busy)."""

    table: str
    run_id: str | None = None
    session: int = 0
    resumed: bool = False
    chunks_left: int = 0
    busy_with: str | None = None


def launch(st: TableState, pipeline: str, new_run: str, limit: int | None = None,
           extract_only: bool = False, load_only: bool = False, **fields: str) -> Launched:
    """Queue the table's run: its unfinished run resumed in a new session, else `new_run`
    (a --load-only run loads what awaits load). Nothing is queued while a run holds the lock.
    Tasks are sent by name: the CLI does not import the stages (Arrow, S3, SQLAlchemy)."""

    owner = st.lock_owner()
    if owner:
        return Launched(st.table, busy_with=owner)
    resumed = None if load_only else st.resumable_run()
    run_id = resumed or new_run
    meta = dict(queued_at=f"{time.time():.3f}", pipeline=pipeline, table=st.table, **fields)
    if load_only:
        meta["kind"] = "load"
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
