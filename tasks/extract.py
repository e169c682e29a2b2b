"""Stage 2: extract one chunk. Read its key range, write Parquet parts to S3 under
deterministic keys, then commit the chunk in Redis in one atomic step."""
from __future__ import annotations

import logging
from typing import Any

from common import faults, naming, source
from common.convert import BatchStats, gc_paused, rows_to_batch
from common.errors import StateError
from common.parquet import BackgroundWriter, PartWriter, remove_stale_parts
from tasks.celery import app
from tasks.context import RETRY, FerryTask, describe, lock_ttl_s, table_context, translated
from workers import resources

log = logging.getLogger(__name__)


class ExtractTask(FerryTask):
    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        pipeline, table, run_id, number = args[:4]
        table_context(pipeline, table).state.set_run_fields(
            run_id, last_chunk_error=f"chunk {number}: {describe(exc)}")


@app.task(name="ferry.extract_chunk", base=ExtractTask, bind=True, **RETRY)
@translated
def extract_chunk(self: Any, pipeline: str, table: str, run_id: str, number: int) -> dict[str, Any]:
    ctx = table_context(pipeline, table)
    chunk = ctx.state.chunk(run_id, number)
    if chunk is None:
        raise StateError(f"table {table}: run {run_id} has no chunk {number}")
    if chunk.state != "pending":
        # Redelivered after it was committed: the work is done.
        return {"chunk": number, "rows": chunk.rows, "parts": len(chunk.parts), "redelivered": True}
    ctx.state.note_attempt(run_id, number)
    faults.maybe_fail(ctx.state.r, pipeline, table, number)
    schema = ctx.state.schema()
    if schema is None:
        raise StateError(f"table {table}: no recorded schema; plan the run again")
    store = resources.store(ctx.cfg.s3)
    prefix = naming.chunk_prefix(ctx.table_prefix, run_id, number)
    arrow_schema = schema.arrow_schema()
    writer = BackgroundWriter(PartWriter(
        store, lambda part: naming.part_key(ctx.table_prefix, run_id, number, part), arrow_schema,
        ctx.table.part_mb, ctx.table.part_rows,
        metadata={"pipeline": pipeline, "table": table, "run": run_id, "chunk": str(number)}))
    stats = BatchStats()
    conn = resources.mysql(ctx.cfg.source)
    try:
        # Millions of short-lived tuples: the cyclic GC would rescan them for nothing.
        with gc_paused():
            for rows in source.read_range(conn, table, [c.source for c in schema.columns], schema.key,
                                          chunk.lo, chunk.hi, ctx.table.batch_rows):
                writer.write(rows_to_batch(rows, schema, arrow_schema, stats))
    except BaseException:
        writer.abort()
        # The stream may be half read: this connection cannot be reused.
        resources.drop_mysql(conn)
        raise
    parts = writer.close()
    remove_stale_parts(store, prefix, parts)
    ctx.state.commit_chunk(run_id, number, parts, worker=self.request.hostname or "",
                           lock_ttl_s=lock_ttl_s())
    rows_total = sum(p.rows for p in parts)
    if stats.zero_dates:
        log.warning("table %s chunk %d: zero dates set to NULL: %s", table, number, stats.zero_dates)
    return {"chunk": number, "rows": rows_total, "parts": len(parts), "zero_dates": stats.zero_dates}
