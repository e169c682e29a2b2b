"""Stage 3: load. Merge every committed part that no load contains yet into the target in
one warehouse transaction (with its ledger rows), then count the parts as loaded."""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from common.errors import StateError, TransientError
from common.warehouse import LoadRequest
from tasks.celery import app
from tasks.context import RETRY, FerryTask, lock_ttl_s, table_context, translated
from workers import resources

log = logging.getLogger(__name__)


def _zero_dates(results: list[Any]) -> dict[str, int]:
    total: dict[str, int] = {}
    for r in results or []:
        for col, n in (r or {}).get("zero_dates", {}).items():
            total[col] = total.get(col, 0) + n
    return total


@app.task(name="ferry.load_run", base=FerryTask, bind=True, **RETRY)
@translated
def load_run(self: Any, results: list[Any], pipeline: str, table: str, run_id: str) -> dict[str, Any]:
    ctx = table_context(pipeline, table)
    # The task id survives redelivery, so a load that died can take its own lock again.
    token = f"{run_id}:{self.request.id}"
    if not ctx.state.acquire_load_lock(token, lock_ttl_s()):
        # One load per table: wait for the other one (up to an hour), not 5 quick retries.
        raise self.retry(exc=TransientError(f"table {table}: another load is running"),
                         countdown=10, max_retries=360)
    try:
        ctx.state.set_run_fields(run_id, status="loading", load_started_at=time.time(),
                                 zero_dates=json.dumps(_zero_dates(results)))
        ctx.state.set_status(status_load="running")
        parts = ctx.state.pending_parts()
        files = rows = 0
        if parts:
            schema = ctx.state.schema()
            if schema is None:
                raise StateError(f"table {table}: parts await load but no schema is recorded")
            request = LoadRequest(pipeline=pipeline, table=table,
                                  target_table=ctx.table_target, schema=schema, parts=parts,
                                  load_id=f"{run_id}-{int(time.time())}", table_prefix=ctx.table_prefix)
            resources.warehouse(ctx.cfg).load(request)
            files, rows = ctx.state.commit_load(run_id, parts)
        ctx.state.finish_run(run_id, "succeeded")
    finally:
        ctx.state.release_load_lock(token)
    return {"run_id": run_id, "files_loaded": files, "rows_loaded": rows}
