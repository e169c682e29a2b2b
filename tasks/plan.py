"""Stage 1: plan a run. Lock the table, read the cursor, fix the upper bound, split the
range into chunks of about chunk_rows rows, store the plan, start the chords.

Planning never waits for the whole table: the run's upper key is fixed first, then chunk
bounds are probed for FERRY_PLAN_SEGMENT_S and those chunks are dispatched at once (a
segment: a chord of their extracts, then a load); the same task goes on probing the rest in
growing segments, each dispatched as soon as it is known. The plan stays exact: the chunks
tile (lo, hi] whatever rows change meanwhile. Only the load of the last segment to finish,
once the plan is complete, loads and ends the run (segment_done.lua).

A resumed run keeps its plan: its chunks that are not committed are dispatched, and a plan
left unfinished goes on from where it stopped.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from celery import chord

from common.model.records import RunStatus
from common.config.settings import settings
from common.model import bounds, naming, schema_change
from common.plan import planner, strategies
from common.config import design
from common.state import faults
from common.source import catalog, probes
from common.errors import LockedError, StateError, TerminalError
from common.model.types import TableSchema
from common.model.records import FINAL_STATUSES as FINAL
from common.warehouse.sql import DIALECTS
from tasks.celery import app
from tasks.base import FerryTask
from tasks.context import (RETRY, TableContext, describe, lock_ttl_s, run_retention_s, table_context, translated)
from tasks import keepalive
from tasks.labels import shown
from tasks.extract import extract_chunk
from tasks.reconcile import reconcile_range
from common.config.pipeline import reconcile_refusal
from common.reconcile import plan as passes
from tasks.failed import run_failed
from tasks.load import load_run
from workers import resources

log = logging.getLogger(__name__)

# Seconds of probing before the first chunks are dispatched; each later segment probes
# twice as long as the one before, up to PLAN_SEGMENT_MAX_S.
PLAN_SEGMENT_S = settings().plan_segment_s
PLAN_SEGMENT_MAX_S = 8.0


class PlanTask(FerryTask):
    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        pipeline, table, run_id = args[:3]
        ctx = table_context(pipeline, table)
        if isinstance(exc, LockedError):
            ctx.state.set_run_fields(run_id, status=RunStatus.FAILED, error=describe(exc),
                                     finished_at=f"{time.time():.3f}")
        else:
            ctx.state.finish_run(run_id, RunStatus.FAILED, describe(exc), kwargs.get("session", 1))


def _send(ctx: TableContext, run_id: str, session: int, segment: str, chunks: list[int],
          extract_only: bool, token: str, kind: str = "") -> None:
    """Start one segment's chord: extract its chunks (a reconcile: compare its ranges), then
    its load (which loads and ends the run only if it is the last); a failure ends in
    run_failed. Every message carries the session: a newer session of the run turns them into
    no-ops. Then mark the claim sent."""
    pipeline, table = ctx.cfg.name, ctx.table.key
    task = reconcile_range if kind == "reconcile" else extract_chunk
    errback = run_failed.s(pipeline, table, run_id, session, segment=segment).set(
        **shown(pipeline, table, run_id, session=session))
    kwargs = {"extract_only": extract_only, "session": session, "segment": segment}
    labels = shown(pipeline, table, run_id, session=session, chunks=len(chunks), extract_only=extract_only,
                   segment=segment)
    if not chunks:
        load_run.apply_async(args=([], pipeline, table, run_id), kwargs=kwargs, link_error=errback, **labels)
    else:
        chord([task.s(pipeline, table, run_id, i, session).set(
            **shown(pipeline, table, run_id, chunk=i, session=session)) for i in chunks])(
            load_run.s(pipeline, table, run_id, **kwargs).set(**labels).on_error(errback))
    ctx.state.segment_sent(run_id, session, segment, token)


def _plan(ctx: TableContext, run_id: str, limit: int | None, deadline: float) -> dict[str, Any]:
    """Read the schema, fix the run's range, probe chunk bounds until the deadline, store the
    plan (S3, then Redis); a plan not finished by then is marked `planning` (see _plan_rest).
    Returns the plan as written to S3."""
    conn = resources.mysql(ctx.cfg.source)
    schema = catalog.read_schema(conn, ctx.table)
    strategies.validate(ctx.table, schema)
    strategies.require_cursor_index(conn, ctx.table, schema)
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
    plan = planner.plan_run(conn, ctx.table, schema, ctx.state.cursor(), ctx.cfg.source.datetime_time_zone,
                           limit, deadline)
    ranges = plan.ranges
    null_rows = (probes.count_null(conn, ctx.table.key, ctx.table.cursor, ctx.table.where)
                 if ctx.table.strategy == "timestamp" and ctx.table.cursor else 0)
    meta = {"pipeline": ctx.cfg.name, "table": ctx.table.key, "status": RunStatus.EXTRACTING.value,
            "strategy": ctx.table.strategy, "lo": bounds.encode(plan.lo),
            "hi": bounds.encode(plan.hi if ranges else plan.lo),
            "ceiling": bounds.encode(plan.ceiling), "chunk_rows": str(ctx.table.chunk_rows),
            "advance_from": str(plan.advance_from), "schema": json.dumps(schema.to_json()),
            "limit": str(limit or ""), "null_cursor_rows": str(null_rows),
            "planned_at": f"{time.time():.3f}"}
    if plan.done:
        meta["planned_all_at"] = meta["planned_at"]
    else:
        meta.update(planning="1", plan_from=bounds.encode(ranges[-1][1]))
        if plan.rows_left is not None:
            meta["limit_left"] = str(plan.rows_left)
    # The plan goes to S3 before Redis: any run that can have committed chunks has its plan
    # there, so `watermark rebuild` sees it.
    store = resources.store(ctx.cfg.s3)
    plan_key = naming.plan_object_key(ctx.table_prefix, run_id)
    doc = {**meta, "run": run_id, "keyset": list(strategies.keyset(ctx.table, schema)), "schema": schema.to_json(),
           "chunks": [{"lo": bounds.encode(lo), "hi": bounds.encode(hi)} for lo, hi in ranges]}
    _put_plan(ctx, run_id, doc)
    faults.maybe_fail(ctx.state, "plan")
    try:
        n = ctx.state.store_plan(run_id, ranges, meta)
    except StateError:
        store.delete([plan_key])  # this run never owned the table: nothing to rebuild from it
        raise
    if null_rows:
        log.warning("table %s: %d rows have a NULL cursor (%s) and are not copied",
                    ctx.table.key, null_rows, ctx.table.cursor)
    log.info("run %s of %s: %d chunks in (%s, %s]%s, %d of them behind the cursor", run_id, ctx.table.key,
             n, bounds.show(plan.lo), bounds.show(ranges[-1][1]) if ranges else "-",
             "" if plan.done else f" so far (the rest, up to {bounds.show(plan.hi)}, is planned while they run)",
             plan.advance_from if ctx.table.strategy != "full" else 0)
    return doc


NEVER_ADVANCES = str(2 ** 53)
"""advance_from of a run whose chunks never move the cursor (a reconcile's)."""


def _plan_reconcile(ctx: TableContext, run_id: str, meta: dict[str, str]) -> dict[str, Any]:
    """A reconcile run's plan: the next ranges of the table's pass (its whole pass for
    `ferry reconcile`, at most ranges_per_run for a scheduled one), with the recorded mapping,
    which the source's columns must still have (else: sync first)."""
    why = reconcile_refusal(ctx.table)
    if why:
        raise TerminalError(f"table {ctx.table.key}: {why}")
    recorded = ctx.state.schema()
    if recorded is None:
        raise TerminalError(f"table {ctx.table.key} has never been synced: nothing to reconcile (sync it first)")
    conn = resources.mysql(ctx.cfg.source)
    live = schema_change.keep_recorded_json_text(recorded, catalog.read_schema(conn, ctx.table))
    if live.shape() != recorded.shape():
        raise TerminalError(f"table {ctx.table.key}: the source's columns changed since the last sync; sync the "
                            f"table first (its run adapts the target), then reconcile")
    # The target gets the recorded columns first, as a load would (a sync that found no new
    # rows recorded a new column without loading, so without adding it to the target).
    for stmt in resources.warehouse(ctx.cfg).evolve(ctx.table_target, recorded):
        ctx.state.record_schema_event(run_id, f"target: {stmt}")
    whole = meta.get("rec_whole") == "1"
    in_pass, after, started = (False, None, None) if whole else ctx.state.pass_from()
    plan = passes.plan_pass(conn, ctx.table, recorded, after, ctx.state.cursor(),
                            None if whole else ctx.table.reconcile.ranges_per_run)
    now = f"{time.time():.3f}"
    fields = {"pipeline": ctx.cfg.name, "table": ctx.table.key, "status": RunStatus.EXTRACTING.value,
              "strategy": ctx.table.strategy, "kind": "reconcile", "advance_from": NEVER_ADVANCES,
              "lo": bounds.encode(plan.ranges[0][0]), "hi": bounds.encode(plan.ranges[-1][1]),
              "schema": json.dumps(recorded.to_json()), "planned_at": now, "planned_all_at": now,
              "rec_split": "buckets" if plan.buckets else "keys", "rec_pass_to": bounds.encode(plan.last),
              "rec_pass_end": "1" if plan.ends_pass else "", "rec_pass_started_at": started or now,
              "rec_pass_from": bounds.encode(after)}
    doc = {**fields, "run": run_id, "keyset": list(recorded.key), "schema": recorded.to_json(),
           "chunks": [{"lo": bounds.encode(lo), "hi": bounds.encode(hi)} for lo, hi in plan.ranges]}
    _put_plan(ctx, run_id, doc)
    try:
        ctx.state.store_plan(run_id, plan.ranges, fields)  # type: ignore[arg-type]
    except StateError:
        resources.store(ctx.cfg.s3).delete([naming.plan_object_key(ctx.table_prefix, run_id)])
        raise
    log.info("reconcile %s of %s: %d range(s) %s, %s mode%s", run_id, ctx.table.key, len(plan.ranges),
             "of the whole table" if whole else f"of the pass{' from ' + bounds.show(after) if in_pass else ''}",
             meta.get("rec_mode"), " (dry run)" if meta.get("rec_dry_run") == "1" else "")
    return doc


def _put_plan(ctx: TableContext, run_id: str, doc: dict[str, Any]) -> None:
    resources.store(ctx.cfg.s3).put(
        naming.plan_object_key(ctx.table_prefix, run_id), json.dumps(doc).encode(),
        metadata=naming.object_metadata(ctx.cfg.name, ctx.table.key, run_id), content_type="application/json")


_PLAN_FIELDS = ("session", "status", "planning", "plan_from", "hi", "chunks", "limit_left")


def _plan_rest(ctx: TableContext, run_id: str, session: int, extract_only: bool, token: str,
               doc: dict[str, Any] | None) -> int:
    """Probe the rest of a plan left unfinished, in growing segments, each stored (S3, then
    Redis, with its dispatch claim) and dispatched as soon as it is known; stops when the plan
    is complete, or when the run ends or another session or task takes over. `doc` is the
    plan just written by _plan (None: read S3's copy). Returns the number of chunks added."""
    added = 0
    budget = PLAN_SEGMENT_S
    conn = schema = None
    while True:
        meta = ctx.state.run_fields(run_id, *_PLAN_FIELDS)
        if meta["planning"] != "1" or int(meta["session"] or 1) != session or meta["status"] in FINAL:
            return added
        faults.maybe_fail(ctx.state, "plan-more", session)
        if doc is None:  # the S3 copy, cut to the chunks Redis has (a plan task may have died between)
            doc = json.loads(resources.store(ctx.cfg.s3).get(naming.plan_object_key(ctx.table_prefix, run_id)))
            doc["chunks"] = doc["chunks"][:int(meta["chunks"] or 0)]
        if schema is None:
            conn, schema = resources.mysql(ctx.cfg.source), TableSchema.from_json(doc["schema"])
        assert meta["plan_from"] is not None and meta["hi"] is not None
        budget = min(budget * 2, PLAN_SEGMENT_MAX_S)
        rows_left = int(meta["limit_left"]) if meta["limit_left"] else None
        ranges, done = planner.next_ranges(conn, ctx.table, schema, bounds.decode(meta["plan_from"]),
                                          bounds.decode(meta["hi"]), time.monotonic() + budget, rows_left)
        if rows_left is not None and not done:
            rows_left -= ctx.table.chunk_rows * len(ranges)
        doc["chunks"] += [{"lo": bounds.encode(lo), "hi": bounds.encode(hi)} for lo, hi in ranges]
        for field in ("planning", "plan_from", "limit_left"):
            doc.pop(field, None)
        if done:
            doc["hi"] = bounds.encode(ranges[-1][1])
        else:
            doc.update(planning="1", plan_from=bounds.encode(ranges[-1][1]),
                       **({"limit_left": str(rows_left)} if rows_left is not None else {}))
        _put_plan(ctx, run_id, doc)
        first = ctx.state.append_plan(run_id, session, meta["plan_from"], ranges, done, token,
                                      None if done else rows_left)
        if first is None:
            return added
        added += len(ranges)
        numbers = list(range(first, first + len(ranges)))
        _send(ctx, run_id, session, str(first), numbers, extract_only, token)
        log.info("run %s of %s: %d more chunks planned and dispatched (%s, %s]%s", run_id, ctx.table.key,
                 len(ranges), bounds.show(ranges[0][0]), bounds.show(ranges[-1][1]),
                 "; the plan is complete" if done else "")


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
    deadline = time.monotonic() + PLAN_SEGMENT_S
    ctx = table_context(pipeline, table)
    meta = ctx.state.run_meta(run_id)
    if int(meta.get("session", 1)) != session or meta.get("status") in FINAL:
        # A newer session of this run superseded this one, or the run is over.
        return {"run_id": run_id, "session": session, "skipped": True}
    ctx.state.acquire_lock(run_id, lock_ttl_s())
    ctx.state.s3_legacy()  # the table's S3 layout, decided before its first run writes anything
    _expire_old_runs(ctx)
    doc = None
    kind = meta.get("kind", "")
    if "chunks" not in meta:
        ctx.state.set_run_fields(run_id, status=RunStatus.PLANNING, started_at=time.time())
        doc = _plan_reconcile(ctx, run_id, meta) if kind == "reconcile" else _plan(ctx, run_id, limit, deadline)
    elif not meta.get(f"dispatched:{session}"):
        ctx.state.set_run_fields(run_id, status=RunStatus.EXTRACTING)
        ctx.state.set_status(status_extract="running", active_run=run_id)
    ctx.state.set_run_fields(run_id, extract_only="1" if extract_only else "")  # (early loads skip such runs)
    # Each segment's dispatch is claimed before its chord starts, so a retried or redelivered
    # plan task never starts a second chord for the same chunks (two attempts of one chunk
    # at once); the task id survives redelivery, so a claim this task made and did not mark
    # sent (it died in between) is sent by its next delivery.
    token = self.request.id or f"{run_id}:{session}"
    todo = [c.number for c in ctx.state.chunks(run_id) if c.state == "pending"]
    sent = 0
    claimed = ctx.state.claim_segment(run_id, session, "s", todo, token)
    if claimed is not None:
        ctx.state.set_run_fields(run_id, **{f"dispatched:{session}": f"{time.time():.3f}"})
        _send(ctx, run_id, session, "s", claimed, extract_only, token, kind)
        keepalive.start(pipeline, table, run_id, session)
        sent += len(claimed)
    for segment, numbers in ctx.state.unsent_segments(run_id, session, token).items():
        _send(ctx, run_id, session, segment, numbers, extract_only, token, kind)
        sent += len(numbers)
    added = _plan_rest(ctx, run_id, session, extract_only, token, doc)
    return {"run_id": run_id, "session": session, "chunks": sent + added}
