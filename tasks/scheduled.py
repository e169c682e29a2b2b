"""A scheduled sync (`ferry beat`): what `ferry sync -p PIPE -t TABLE` does, started by Celery
beat instead of a person; a table whose run is still active is skipped for that tick."""
from __future__ import annotations

import logging
from typing import Any

from common.model.naming import new_run_id
from tasks.celery import app
from tasks.context import FerryTask, table_context
from tasks.launch import launch

log = logging.getLogger(__name__)


@app.task(name="ferry.scheduled_sync", base=FerryTask, ignore_result=True)
def scheduled_sync(pipeline: str, table: str) -> dict[str, Any]:
    state = table_context(pipeline, table).state
    got = launch(state, pipeline, new_run_id(), scheduled="1")
    if got.busy_with:
        log.info("scheduled sync of %s (pipeline %s) skipped: busy with active run %s", table, pipeline,
                 got.busy_with)
        return {"table": table, "skipped": True, "busy_with": got.busy_with}
    log.info("scheduled sync of %s (pipeline %s): run %s %s (session %d)", table, pipeline, got.run_id,
             "resumed" if got.resumed else "queued", got.session)
    return {"table": table, "run_id": got.run_id, "session": got.session, "resumed": got.resumed}
