"""The chord's error callback: a chunk out of retries (or a failed load) fails the run."""
from __future__ import annotations

import logging
from typing import Any

from tasks.celery import app
from tasks.context import FerryTask, describe, table_context

log = logging.getLogger(__name__)


@app.task(name="ferry.run_failed", base=FerryTask)
def run_failed(request: Any, exc: BaseException, traceback: Any, pipeline: str, table: str,
               run_id: str) -> None:
    """Called with the failed task's request and exception (Celery's errback signature)."""
    ctx = table_context(pipeline, table)
    meta = ctx.state.run_meta(run_id)
    cause = meta.get("last_chunk_error") or describe(exc)
    ctx.state.finish_run(run_id, "failed", cause)
    log.error("run %s of %s failed: %s", run_id, table, cause)
