"""Stage 1: plan a run. Lock the table, read the cursor, fix the upper bound, split the
range into chunks of about chunk_rows rows, store the plan, start the chord."""
from __future__ import annotations

import logging
import time
from typing import Any

from celery import chord

from common import bounds, source
from common.errors import LockedError, SchemaError
from common.types import TableSchema
from tasks.celery import app
from tasks.context import RETRY, FerryTask, describe, lock_ttl_s, table_context, translated
from tasks.extract import extract_chunk
from tasks.failed import run_failed
from tasks.load import load_run
from workers import resources

log = logging.getLogger(__name__)


def _schema_change(old: TableSchema, new: TableSchema) -> str:
    before = {c.name: c.target for c in old.columns}
    after = {c.name: c.target for c in new.columns}
    changes = [f"{n} removed" for n in before if n not in after]
    changes += [f"{n} added" for n in after if n not in before]
    changes += [f"{n} {before[n]} -> {after[n]}" for n in after if n in before and before[n] != after[n]]
    if not changes and [c.name for c in old.columns] != [c.name for c in new.columns]:
        changes.append("columns reordered")
    if old.key != new.key:
        changes.append(f"key {list(old.key)} -> {list(new.key)}")
    return ", ".join(changes)


class PlanTask(FerryTask):
    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        pipeline, table, run_id = args[:3]
        ctx = table_context(pipeline, table)
        if isinstance(exc, LockedError):
            ctx.state.set_run_fields(run_id, status="failed", error=describe(exc))
        else:
            ctx.state.finish_run(run_id, "failed", describe(exc))


def dispatch(pipeline: str, table: str, run_id: str, chunks: int) -> None:
    """Start the run's chord: extract every chunk, then load; a failure ends in run_failed."""
    errback = run_failed.s(pipeline, table, run_id)
    body = load_run.s(pipeline, table, run_id).on_error(errback)
    if chunks == 0:
        load_run.apply_async(args=([], pipeline, table, run_id), link_error=errback)
        return
    chord([extract_chunk.s(pipeline, table, run_id, i) for i in range(chunks)])(body)


@app.task(name="ferry.plan_table", base=PlanTask, bind=True, **RETRY)
@translated
def plan_table(self: Any, pipeline: str, table: str, run_id: str, limit: int | None = None) -> dict[str, Any]:
    ctx = table_context(pipeline, table)
    meta = ctx.state.run_meta(run_id)
    if meta.get("dispatched") == "1":
        return {"run_id": run_id, "chunks": int(meta.get("chunks", 0)), "redelivered": True}
    ctx.state.acquire_lock(run_id, lock_ttl_s())
    if "chunks" not in meta:
        ctx.state.set_run_fields(run_id, status="planning", started_at=time.time())
        conn = resources.mysql(ctx.cfg.source)
        schema = source.read_schema(conn, ctx.table)
        recorded = ctx.state.schema()
        if recorded is not None and recorded.shape() != schema.shape():
            raise SchemaError(f"table {table}: the source schema changed since the mapping was "
                              f"recorded ({_schema_change(recorded, schema)})")
        ctx.state.save_schema(schema)
        lo = ctx.state.cursor()
        ranges = source.plan_bounds(conn, table, schema.key, lo, ctx.table.chunk_rows, limit)
        ctx.state.store_plan(run_id, ranges, {
            "pipeline": pipeline, "table": table, "status": "extracting",
            "lo": bounds.encode(lo), "hi": bounds.encode(ranges[-1][1] if ranges else lo),
            "chunk_rows": str(ctx.table.chunk_rows), "limit": str(limit or ""),
            "planned_at": str(time.time())})
        meta = ctx.state.run_meta(run_id)
        log.info("run %s of %s: %d chunks after %s", run_id, table, len(ranges), bounds.show(lo))
    chunks = int(meta["chunks"])
    dispatch(pipeline, table, run_id, chunks)
    ctx.state.set_run_fields(run_id, dispatched=1)
    return {"run_id": run_id, "chunks": chunks}
