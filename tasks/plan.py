"""Stage 1: plan a run. Lock the table, read the cursor, fix the upper bound, split the
range into chunks of about chunk_rows rows, store the plan, start the chord.

A resumed run keeps its plan: only its chunks that are not committed are dispatched.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from celery import chord

from common import bounds, cursor, design, faults, naming, schema_change, source
from common.errors import LockedError, StateError
from common.warehouse.sql import DIALECTS
from tasks.celery import app
from tasks.context import (RETRY, FerryTask, TableContext, describe, lock_ttl_s, run_retention_s,
                           table_context, translated)
from tasks import keepalive
from tasks.labels import shown
from tasks.extract import extract_chunk
from tasks.failed import run_failed
from tasks.load import load_run
from workers import resources

log = logging.getLogger(__name__)


class PlanTask(FerryTask):
    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        pipeline, table, run_id = args[:3]
        ctx = table_context(pipeline, table)
        if isinstance(exc, LockedError):
            ctx.state.set_run_fields(run_id, status="failed", error=describe(exc),
                                     finished_at=f"{time.time():.3f}")
        else:
            ctx.state.finish_run(run_id, "failed", describe(exc), kwargs.get("session", 1))


def dispatch(pipeline: str, table: str, run_id: str, session: int, chunks: list[int],
             extract_only: bool) -> None:
    """Start the chord: extract the chunks, then load; a failure ends in run_failed. Every
    message carries the session: a newer session of the run turns them into no-ops."""
    errback = run_failed.s(pipeline, table, run_id, session).set(**shown(pipeline, table, run_id, session=session))
    body = load_run.s(pipeline, table, run_id, extract_only=extract_only, session=session).set(
        **shown(pipeline, table, run_id, session=session, chunks=len(chunks), extract_only=extract_only)
    ).on_error(errback)
    if not chunks:
        load_run.apply_async(args=([], pipeline, table, run_id),
                             kwargs={"extract_only": extract_only, "session": session}, link_error=errback,
                             **shown(pipeline, table, run_id, session=session, chunks=0, extract_only=extract_only))
    else:
        chord([extract_chunk.s(pipeline, table, run_id, i, session).set(
            **shown(pipeline, table, run_id, chunk=i, session=session)) for i in chunks])(body)
    keepalive.start(pipeline, table, run_id, session)


def _plan(ctx: TableContext, run_id: str, limit: int | None) -> int:
    """Read the schema, fix the run's range, probe chunk bounds, store the plan (S3, then Redis)."""
    conn = resources.mysql(ctx.cfg.source)
    schema = source.read_schema(conn, ctx.table)
    cursor.validate(ctx.table, schema)
    cursor.require_cursor_index(conn, ctx.table, schema)
    design.check_design(ctx.table.key, ctx.table.design, schema)
    recorded = ctx.state.schema()
    if recorded is not None:
        schema = schema_change.keep_recorded_json_text(recorded, schema)
    # A full reload rebuilds its target every run, so it follows any schema change.
    if recorded is not None and recorded.shape() != schema.shape() and ctx.table.strategy != "full":
        dialect = DIALECTS[ctx.cfg.target.type]
        for change in schema_change.diff(recorded, schema, dialect.caps).describe():
            log.warning("table %s: source schema changed: %s", ctx.table.key, change)
            ctx.state.record_schema_event(run_id, f"source: {change}")
    ctx.state.save_schema(schema)
    plan = cursor.plan_run(conn, ctx.table, schema, ctx.state.cursor(), ctx.cfg.source.datetime_time_zone,
                           limit)
    ranges = plan.ranges
    null_rows = (source.count_null(conn, ctx.table.key, ctx.table.cursor)
                 if ctx.table.strategy == "timestamp" and ctx.table.cursor else 0)
    meta = {"pipeline": ctx.cfg.name, "table": ctx.table.key, "status": "extracting",
            "strategy": ctx.table.strategy, "lo": bounds.encode(plan.lo),
            "hi": bounds.encode(ranges[-1][1] if ranges else plan.lo),
            "ceiling": bounds.encode(plan.ceiling), "chunk_rows": str(ctx.table.chunk_rows),
            "advance_from": str(plan.advance_from), "schema": json.dumps(schema.to_json()),
            "limit": str(limit or ""), "null_cursor_rows": str(null_rows),
            "planned_at": f"{time.time():.3f}"}
    # The plan goes to S3 before Redis: any run that can have committed chunks has its plan
    # there, so `watermark rebuild` sees it.
    store = resources.store(ctx.cfg.s3)
    plan_key = naming.plan_object_key(ctx.table_prefix, run_id)
    store.put(plan_key, json.dumps({
        **meta, "run": run_id, "keyset": list(cursor.keyset(ctx.table, schema)), "schema": schema.to_json(),
        "chunks": [{"lo": bounds.encode(lo), "hi": bounds.encode(hi)} for lo, hi in ranges]}).encode(),
        metadata=naming.object_metadata(ctx.cfg.name, ctx.table.key, run_id), content_type="application/json")
    faults.maybe_fail(ctx.state.r, ctx.cfg.name, ctx.table.key, "plan")
    try:
        n = ctx.state.store_plan(run_id, ranges, meta)
    except StateError:
        store.delete([plan_key])  # this run never owned the table: nothing to rebuild from it
        raise
    if null_rows:
        log.warning("table %s: %d rows have a NULL cursor (%s) and are not copied",
                    ctx.table.key, null_rows, ctx.table.cursor)
    log.info("run %s of %s: %d chunks in (%s, %s], %d of them behind the cursor", run_id, ctx.table.key,
             n, bounds.show(plan.lo), bounds.show(ranges[-1][1]) if ranges else "-", plan.advance_from
             if ctx.table.strategy != "full" else 0)
    return n


def _expire_old_runs(ctx: TableContext) -> None:
    """Forget finished runs past FERRY_RUN_RETENTION_DAYS; a failure here never stops a run."""
    retention = run_retention_s()
    if retention <= 0:
        return
    try:
        ctx.state.expire_runs(retention)
    except Exception as exc:  # noqa: BLE001
        log.warning("table %s: old runs not expired this time: %s", ctx.table.key, describe(exc))


@app.task(name="ferry.plan_table", base=PlanTask, bind=True, **RETRY)
@translated
def plan_table(self: Any, pipeline: str, table: str, run_id: str, limit: int | None = None,
               extract_only: bool = False, session: int = 1) -> dict[str, Any]:
    ctx = table_context(pipeline, table)
    meta = ctx.state.run_meta(run_id)
    current = int(meta.get("session", 1))
    if current != session or f"dispatched:{session}" in meta:
        # A newer session of this run superseded this one, or this one already started.
        return {"run_id": run_id, "session": session, "skipped": True}
    ctx.state.acquire_lock(run_id, lock_ttl_s())
    _expire_old_runs(ctx)
    if "chunks" not in meta:
        ctx.state.set_run_fields(run_id, status="planning", started_at=time.time())
        _plan(ctx, run_id, limit)
    else:
        ctx.state.set_run_fields(run_id, status="extracting")
        ctx.state.set_status(status_extract="running", active_run=run_id)
    todo = [c.number for c in ctx.state.chunks(run_id) if c.state == "pending"]
    # Claimed before the chord starts, so a retried or redelivered plan task can never
    # start a second chord (two attempts of one chunk at once). If this process dies
    # right here the run waits for its lock's TTL, then the next sync resumes it.
    if not ctx.state.claim_dispatch(run_id, session):
        return {"run_id": run_id, "session": session, "skipped": True}
    ctx.state.set_run_fields(run_id, extract_only="1" if extract_only else "")  # (early loads skip such runs)
    dispatch(pipeline, table, run_id, session, todo, extract_only)
    return {"run_id": run_id, "session": session, "chunks": len(todo)}
