"""A reconcile range (one chunk of a reconcile run): take the chunk's fence, compare the
range on both sides and narrow it down to keys (common/reconcile/diff.py), read the rows
the target lacks or holds differently again from the source, by key, into Parquet parts,
write the keys only in the target as a deletes object, and commit them all as the chunk's
parts with its findings. The run's load then merges the repairs and applies the deletes
exactly as a sync's load merges (tasks/load.py). A dry run commits the findings only.

Also the beat tick of a table's `reconcile: {schedule: ...}` (scheduled_reconcile)."""
from __future__ import annotations

import json
import logging
from typing import Any

from common.config.pipeline import reconcile_refusal
from common.errors import TerminalError
from common.model import bounds, naming, transforms
from common.model.bounds import Key
from common.model.records import Chunk, Part
from common.model.types import TableSchema
from common.reconcile import deletes, plan as passes
from common.reconcile import diff
from common.reconcile.diff import Found, range_diff
from common.source import reads
from common.source.convert import BatchStats, gc_paused, rows_to_batch
from common.source.throttle import Throttle
from common.state import faults, slots
from common.verify.compare import SOFT_DELETED, MySQLSide, Part as KeyPart, WarehouseSide
from common.warehouse import sql
from tasks.base import FerryTask
from tasks.celery import app
from tasks.context import RETRY, TableContext, table_context, translated
from tasks.extract import SLOT_WAIT_S, attempt_chunk, part_writer
from workers import resources

log = logging.getLogger(__name__)

REPAIR_BATCH_KEYS = 1000
"""Rows read again from the source per query, by key."""


def _target_columns(ctx: TableContext, wh: Any) -> set[str]:
    query, params = sql.target_column_types(ctx.cfg.target_schema, ctx.table_target)
    return {r[0] for r in wh.exec_driver_sql(query, tuple(params))}


def _compare(ctx: TableContext, run_id: str, conn: Any, chunk: Chunk, schema: TableSchema, mode: str,
             buckets: bool, throttle: Throttle) -> tuple[Found, bool]:
    key = [schema.column(k) for k in schema.key]
    columns = list(schema.columns) if mode == "rows" else key
    cols, bound = passes.cursor_filter(ctx.table, schema, ctx.state.cursor())
    warehouse = resources.warehouse(ctx.cfg)
    with warehouse.engine.connect() as wh:
        present = _target_columns(ctx, wh)
        if not present:
            raise TerminalError(f"table {ctx.table.key}: the target {ctx.cfg.target_schema}.{ctx.table_target} "
                                f"does not exist; sync the table before reconciling it")
        missing = [c.name for c in columns if c.name not in present]
        if missing:
            raise TerminalError(f"table {ctx.table.key}: the target lacks column(s) {', '.join(missing)} of the "
                                f"recorded mapping (dropped there since the plan?); sync the table, then reconcile")
        src = MySQLSide(conn, ctx.table.key, columns, key, cols, bound, ctx.table.where,
                        transforms.salt(ctx.table, schema, " in this worker's environment") if mode == "rows" else None)
        dst = WarehouseSide(wh, warehouse.dialect, ctx.cfg.target_schema, ctx.table_target, columns, key,
                            [schema.column(c).name for c in cols], bound, live_only=SOFT_DELETED in present)
        part = KeyPart(bucket=str(chunk.hi[0])) if buckets else KeyPart(chunk.lo, chunk.hi)
        done = ctx.state.run_fields(run_id, "rec_ranges", "rec_leaves")
        whole = diff.dense(int(done["rec_ranges"] or 0), int(done["rec_leaves"] or 0))
        found = range_diff(src, dst, throttle).compare(part, whole=whole)
        wh.rollback()
    return found, whole


def _repair_parts(ctx: TableContext, conn: Any, run_id: str, chunk: Chunk, attempt_id: str,
                  schema: TableSchema, keys: list[Key], throttle: Throttle) -> list[Part]:
    """The source's rows with these keys, read now, as the chunk's Parquet parts (a key
    deleted meanwhile is simply not read: the next reconcile finds it)."""
    if not keys:
        return []
    arrow_schema = schema.arrow_schema()
    stats = BatchStats()
    salt = transforms.salt(ctx.table, schema, " in this worker's environment")
    read = transforms.read_schema(schema)  # the columns as read, before their transforms
    writer = part_writer(ctx, run_id, chunk, attempt_id, arrow_schema)
    try:
        with gc_paused():
            for rows in reads.read_keys(conn, ctx.table.key,
                                        [reads.select_expression(c) for c in read.columns],
                                        list(schema.key), keys, REPAIR_BATCH_KEYS, where=ctx.table.where):
                batch = rows_to_batch(rows, read, read.arrow_schema(), stats,
                                      truncate=ctx.table.on_oversize == "truncate")
                writer.write(transforms.apply(batch, schema, salt))
                throttle(len(rows))
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def _reconcile(ctx: TableContext, run_id: str, chunk: Chunk, attempt_id: str,
               meta: dict[str, str | None]) -> tuple[list[Part], dict[str, Any]]:
    """Compare the chunk's range and, unless a dry run, write its repairs and deletes."""
    schema = TableSchema.from_json(json.loads(meta["schema"] or "{}"))
    mode, dry_run, buckets = meta["rec_mode"] or "rows", meta["rec_dry_run"] == "1", meta["rec_split"] == "buckets"
    settings = ctx.table.reconcile
    conn = None
    parts: list[Part] = []
    with slots.read_slot(resources.redis_client(), ctx.cfg.pipeline.source, ctx.cfg.source.max_concurrent_chunks,
                         attempt_id, wait_s=SLOT_WAIT_S):
        try:
            conn = resources.mysql(ctx.cfg.source)
            throttle = Throttle(conn, settings.max_threads_running, settings.max_rows_per_s,
                                what=f"reconcile of {ctx.table.key} range {chunk.number}")
            found, whole = _compare(ctx, run_id, conn, chunk, schema, mode, buckets, throttle)
            faults.maybe_fail(ctx.state, f"reconcile:{chunk.number}")
            if not dry_run:
                parts = _repair_parts(ctx, conn, run_id, chunk, attempt_id, schema,
                                      found.only_source + found.differs, throttle)
                if found.only_target:
                    parts.append(deletes.write(
                        resources.store(ctx.cfg.s3),
                        naming.deletes_key(ctx.table_prefix, run_id, chunk.number, attempt_id), schema,
                        found.only_target, naming.object_metadata(ctx.cfg.name, ctx.table.key, run_id)))
        except BaseException:
            if conn is not None:  # a read may be half done: this connection cannot be reused
                resources.drop_mysql(conn)
            raise
    findings = found.findings(dry_run)
    findings["counts"].update(rec_read_whole=int(whole), rec_throttle_waits=throttle.pauses,
                              rec_throttle_ms=int(throttle.waited_s * 1000))
    return parts, findings


@app.task(name="ferry.reconcile_range", base=FerryTask, bind=True, **RETRY)
@translated
def reconcile_range(self: Any, pipeline: str, table: str, run_id: str, number: int,
                    session: int = 1) -> dict[str, Any]:
    ctx = table_context(pipeline, table)
    meta = ctx.state.run_fields(run_id, "schema", "rec_mode", "rec_dry_run", "rec_split")

    def work(chunk: Chunk, attempt_id: str) -> tuple[list[Part], Any, dict[str, Any]]:
        parts, findings = _reconcile(ctx, run_id, chunk, attempt_id, meta)
        return parts, findings, findings

    got = attempt_chunk(self, ctx, run_id, number, session, "range", work)
    if isinstance(got, dict):
        return got
    chunk, parts, findings = got.chunk, got.parts, got.extra
    c = findings["counts"]
    log.info("reconcile range committed: pipeline %s table %s run %s range %d (%s, %s] source rows %d "
             "target rows %d: %d only in source, %d differ, %d only in target%s", pipeline, table, run_id,
             number, bounds.show(chunk.lo), bounds.show(chunk.hi), c["rec_rows_compared"], c["rec_target_rows"],
             c["rec_only_source"], c["rec_differs"], c["rec_only_target"],
             " (dry run)" if findings["dry_run"] else "")
    return {"chunk": number, "rows": sum(p.rows for p in parts), "parts": len(parts), **c}


@app.task(name="ferry.scheduled_reconcile", base=FerryTask, ignore_result=True)
def scheduled_reconcile(pipeline: str, table: str) -> dict[str, Any]:
    """A beat tick of the table's `reconcile: {schedule: ...}`: the next ranges_per_run ranges
    of the pass in progress; skipped while the table is busy."""
    from tasks.sync import launch, tick

    ctx = table_context(pipeline, table)
    why = reconcile_refusal(ctx.table)
    if why:
        log.warning("scheduled reconcile of %s (pipeline %s) skipped: %s", table, pipeline, why)
        return {"table": table, "skipped": True, "reason": why}
    return tick("reconcile", pipeline, launch(ctx.state, pipeline, naming.new_run_id(),
                                              **fields(ctx, dry_run=False, whole_pass=False, scheduled=True)))


def fields(ctx: TableContext, dry_run: bool, whole_pass: bool, scheduled: bool = False,
           mode: str | None = None) -> dict[str, Any]:
    """launch()'s arguments for a reconcile of the table."""
    return {"kind": "reconcile", "extract_only": dry_run,
            "rec_mode": mode or ctx.table.reconcile.mode, "rec_dry_run": "1" if dry_run else "",
            "rec_whole": "1" if whole_pass else "", **({"scheduled": "1"} if scheduled else {})}
