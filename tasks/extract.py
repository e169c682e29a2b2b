"""Stage 2: extract one chunk. Read its key range, write Parquet parts to S3 under
deterministic keys, then commit the chunk in Redis in one atomic step."""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from common import bounds, cursor, faults, naming, source
from common.convert import BatchStats, gc_paused, rows_to_batch
from common.errors import StateError, TerminalError, TransientError, classify
from common.parquet import BackgroundWriter, Part, PartWriter, remove_stale_parts
from common.watermark import Chunk
from tasks.celery import app
from tasks.context import RETRY, FerryTask, TableContext, describe, lock_ttl_s, table_context, translated
from workers import resources

log = logging.getLogger(__name__)

# A chunk whose pool process keeps dying (out of memory, segfault) is requeued at once
# by reject_on_worker_lost, without counting as a retry: stop it after this many starts.
MAX_ATTEMPTS = int(os.environ.get("FERRY_MAX_ATTEMPTS", "10"))


def _write_parts(ctx: TableContext, run_id: str, chunk: Chunk, stats: BatchStats) -> list[Part]:
    """Read the chunk's range and write it as Parquet parts; returns the parts uploaded."""
    schema = ctx.state.schema()
    if schema is None:
        raise StateError(f"table {ctx.table.key}: no recorded schema; plan the run again")
    arrow_schema = schema.arrow_schema()
    conn = resources.mysql(ctx.cfg.source)
    writer = BackgroundWriter(PartWriter(
        resources.store(ctx.cfg.s3),
        lambda part: naming.part_key(ctx.table_prefix, run_id, chunk.number, part), arrow_schema,
        ctx.table.part_mb, ctx.table.part_rows,
        metadata={"pipeline": ctx.cfg.name, "table": ctx.table.key, "run": run_id,
                  "chunk": str(chunk.number)}))
    try:
        # Millions of short-lived tuples: the cyclic GC would rescan them for nothing.
        with gc_paused():
            for rows in source.read_range(
                    conn, ctx.table.key, [c.source for c in schema.columns], cursor.keyset(ctx.table, schema),
                    chunk.lo, chunk.hi, ctx.table.batch_rows,
                    select=[source.select_expression(c.source, c.kind, c.arrow) for c in schema.columns]):
                writer.write(rows_to_batch(rows, schema, arrow_schema, stats))
    except BaseException:
        writer.abort()
        # The stream may be half read: this connection cannot be reused.
        resources.drop_mysql(conn)
        raise
    return writer.close()


@app.task(name="ferry.extract_chunk", base=FerryTask, bind=True, **RETRY)
@translated
def extract_chunk(self: Any, pipeline: str, table: str, run_id: str, number: int) -> dict[str, Any]:
    ctx = table_context(pipeline, table)
    chunk = ctx.state.chunk(run_id, number)
    if chunk is None:
        raise StateError(f"table {table}: run {run_id} has no chunk {number}")
    if chunk.state != "pending":
        # Redelivered after it was committed: the work is done.
        return {"chunk": number, "rows": chunk.rows, "parts": len(chunk.parts), "redelivered": True}
    try:
        attempt = ctx.state.note_attempt(run_id, number)
        if attempt > MAX_ATTEMPTS:
            raise TerminalError(f"chunk {number} of {table} was started {attempt - 1} times without "
                                f"finishing (a worker process dying on it?)")
        faults.maybe_fail(ctx.state.r, pipeline, table, number)
        stats = BatchStats()
        parts = _write_parts(ctx, run_id, chunk, stats)
    except Exception as exc:
        err = classify(exc)
        if not isinstance(err, TransientError) or self.request.retries >= self.max_retries:
            # Recorded here, before Celery runs the chord's error callback, which reads it.
            ctx.state.set_run_fields(run_id, last_chunk_error=f"chunk {number}: {describe(err)}")
        raise
    current = ctx.state.chunk(run_id, number)
    if current is None or current.state != "pending":
        # Another delivery committed it meanwhile: its parts are the committed ones.
        return {"chunk": number, "rows": current.rows if current else 0, "redelivered": True}
    store = resources.store(ctx.cfg.s3)
    remove_stale_parts(store, naming.chunk_prefix(ctx.table_prefix, run_id, number), parts)
    # The marker says "every part of this chunk is on S3"; `watermark rebuild` trusts it.
    store.put(naming.chunk_marker_key(ctx.table_prefix, run_id, number), json.dumps({
        "run": run_id, "chunk": number, "lo": bounds.encode(chunk.lo), "hi": bounds.encode(chunk.hi),
        "rows": sum(p.rows for p in parts), "bytes": sum(p.bytes for p in parts),
        "parts": [{"key": p.key, "rows": p.rows, "bytes": p.bytes} for p in parts],
        "worker": self.request.hostname or "", "at": time.time()}).encode(),
        content_type="application/json")
    ctx.state.commit_chunk(run_id, number, parts, worker=self.request.hostname or "",
                           lock_ttl_s=lock_ttl_s())
    if stats.zero_dates:
        log.warning("table %s chunk %d: zero dates set to NULL: %s", table, number, stats.zero_dates)
    return {"chunk": number, "rows": sum(p.rows for p in parts), "parts": len(parts),
            "zero_dates": stats.zero_dates}
