"""Stage 2: extract one chunk. Take the chunk's fence, read its key range, write Parquet
parts to S3 under the attempt's own keys, then commit the chunk in Redis in one atomic
step that only the fencing attempt of the run's current session can make."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from celery.exceptions import Ignore

from common.config.settings import settings
from common.model import bounds, naming, schema_change, transforms
from common.plan import strategies
from common.state import faults, slots
from common.source import catalog, connection, duck, reads
from common.source.convert import BatchStats, gc_paused, rows_to_batch
from common.errors import SchemaError, StateError, TerminalError, TransientError, classify
from common.store.parquet import BackgroundWriter, PartWriter
from common.model.records import Part
from common.model.types import TableSchema
from common.state.chunks import Attempt, Commit
from common.model.records import Chunk
from tasks.celery import app
from tasks.base import FerryTask
from tasks.context import (RETRY, TableContext, describe, lock_ttl_s, table_context, translated,
                           transient_retries)
from tasks.load import maybe_load_early
from workers import resources

log = logging.getLogger(__name__)

# A chunk whose pool process keeps dying (out of memory, segfault) is requeued at once
# by reject_on_worker_lost, without counting as a retry: stop it after this many starts.
MAX_ATTEMPTS = settings().max_attempts
# How long a chunk waits for one of its source's read slots before it retries later.
SLOT_WAIT_S = settings().slot_wait_s

REFUSED = {Commit.ALREADY: "another attempt committed the chunk first",
            Commit.FENCED_OUT: "a newer attempt holds the chunk's fence",
            Commit.STALE_SESSION: "a newer session of the run took over",
            Commit.RUN_OVER: "the run ended meanwhile"}


def part_writer(ctx: TableContext, run_id: str, chunk: Chunk, attempt_id: str,
                arrow_schema: Any) -> BackgroundWriter:
    """The Parquet parts of one chunk attempt, written under its own keys (also a reconcile's repairs)."""
    return BackgroundWriter(PartWriter(
        resources.store(ctx.cfg.s3),
        lambda part: naming.part_key(ctx.table_prefix, run_id, chunk.number, attempt_id, part),
        arrow_schema, ctx.table.part_mb, ctx.table.part_rows,
        metadata={**naming.object_metadata(ctx.cfg.name, ctx.table.key, run_id),
                  "chunk": str(chunk.number), "attempt": attempt_id}))


def _write_parts(ctx: TableContext, run_id: str, chunk: Chunk, attempt_id: str,
                 stats: BatchStats) -> list[Part]:
    """Read the chunk's range and write it as Parquet parts; returns the parts uploaded."""
    schema = ctx.state.schema()
    if schema is None:
        if not ctx.state.run_meta(run_id):  # the whole state is gone, not just the schema
            raise ctx.state.missing_error(run_id, chunk.number)
        raise StateError(f"table {ctx.table.key}: no recorded schema; plan the run again")
    arrow_schema = schema.arrow_schema()
    salt = transforms.salt(ctx.table, schema, " in this worker's environment")
    read = transforms.read_schema(schema)  # the columns as read, before their transforms
    writer = part_writer(ctx, run_id, chunk, attempt_id, arrow_schema)
    conn = con = None
    try:
        with slots.read_slot(resources.redis_client(), ctx.cfg.pipeline.source, ctx.cfg.source.max_concurrent_chunks,
                             attempt_id, wait_s=SLOT_WAIT_S):
            conn = resources.mysql(ctx.cfg.source)
            batches: Iterator[Any]
            stats.reader = reader_of(ctx, read)
            if stats.reader == "duckdb":
                con = resources.duck(ctx.cfg.source)
                batches = duck.read_range(con, ctx.table.key, read, strategies.keyset(ctx.table, schema), chunk.lo,
                                          chunk.hi, ctx.table.batch_rows, ctx.table.batch_mb * 1024 * 1024, stats,
                                          connection.is_mariadb(conn),
                                          truncate=ctx.table.on_oversize == "truncate", where=ctx.table.where)
            else:
                batches = _connector_batches(ctx, conn, read, chunk, stats)
            # Millions of short-lived tuples: the cyclic GC would rescan them for nothing.
            with gc_paused():
                for i, batch in enumerate(batches):
                    writer.write(transforms.apply(batch, schema, salt))
                    if i == 0:  # tests hold a read open here (FERRY_FAULTS)
                        faults.maybe_fail(ctx.state, f"read:{chunk.number}")
            _check_schema_after_read(ctx, run_id, conn, schema)
    except BaseException:
        writer.abort()
        if conn is not None:  # the stream may be half read: this connection cannot be reused
            resources.drop_mysql(conn)
        if con is not None:
            resources.drop_duck(con)
        raise
    return writer.close()


def _connector_batches(ctx: TableContext, conn: Any, schema: TableSchema, chunk: Chunk,
                       stats: BatchStats) -> Iterator[Any]:
    """The chunk's rows through mysql-connector-python (raw text), converted in bulk (schema:
    the columns as read, before their transforms)."""
    arrow_schema = schema.arrow_schema()
    for rows in reads.read_range(
            conn, ctx.table.key, [c.source for c in schema.columns], strategies.keyset(ctx.table, schema),
            chunk.lo, chunk.hi, ctx.table.batch_rows,
            select=[reads.select_expression(c) for c in schema.columns],
            batch_bytes=ctx.table.batch_mb * 1024 * 1024, where=ctx.table.where):
        yield rows_to_batch(rows, schema, arrow_schema, stats, truncate=ctx.table.on_oversize == "truncate")


_READER_NOTED: set[tuple[str, str]] = set()


def reader_of(ctx: TableContext, schema: TableSchema) -> str:
    """The reader of the table's chunks: its own `reader`, else its source's; DuckDB's only
    where it reads every column exactly (duck.why_not; logged once per process and table)."""
    wanted = ctx.table.reader or ctx.cfg.source.reader
    if wanted != "duckdb":
        return "connector"
    why = duck.why_not(ctx.cfg.source, schema, ctx.table.batch_mb * 1024 * 1024)
    if why is None:
        return "duckdb"
    if (ctx.cfg.name, ctx.table.key) not in _READER_NOTED:
        _READER_NOTED.add((ctx.cfg.name, ctx.table.key))
        log.info("table %s (pipeline %s) is read by the connector, not DuckDB: %s", ctx.table.key, ctx.cfg.name, why)
    return "connector"


def _check_schema_after_read(ctx: TableContext, run_id: str, conn: Any, schema: TableSchema) -> None:
    """Fail the run if the source's columns changed under it. Checked after the read: a
    running SELECT holds a metadata lock that an ALTER waits for, so if the columns are
    still the planned ones now, every row just read was written under them (a column added
    later would otherwise be missing, with its values, from rows already inserted)."""
    live = schema_change.keep_recorded_json_text(schema, catalog.read_schema(conn, ctx.table))
    if live.shape() != schema.shape():
        ctx.state.set_run_fields(run_id, replan="1")
        raise SchemaError(f"table {ctx.table.key}: the source schema changed during run {run_id}; the run "
                          f"stops and the next sync plans again with the new columns")


def write_marker(ctx: TableContext, run_id: str, chunk: Chunk, attempt_id: str, parts: list[Part],
                  worker: str) -> str:
    """The marker says "every part of this attempt is on S3"; `watermark rebuild` trusts it."""
    key = naming.chunk_marker_key(ctx.table_prefix, run_id, chunk.number, attempt_id)
    resources.store(ctx.cfg.s3).put(key, json.dumps({
        "pipeline": ctx.cfg.name, "table": ctx.table.key,
        "run": run_id, "chunk": chunk.number, "attempt": attempt_id,
        "lo": bounds.encode(chunk.lo), "hi": bounds.encode(chunk.hi),
        "rows": sum(p.rows for p in parts), "bytes": sum(p.bytes for p in parts),
        "parts": [{"key": p.key, "rows": p.rows, "bytes": p.bytes} for p in parts],
        "worker": worker, "at": time.time()}).encode(),
        metadata=naming.object_metadata(ctx.cfg.name, ctx.table.key, run_id),
        content_type="application/json")
    return key


def already_committed(task: Any, chunk: Chunk | None, number: int) -> dict[str, Any]:
    """A redelivered message whose chunk is committed: count it in the chord once."""
    if task.AsyncResult(task.request.id).state == "SUCCESS":
        raise Ignore()  # an earlier delivery already reported it to the chord
    return {"chunk": number, "rows": chunk.rows if chunk else 0, "redelivered": True}


@dataclass(frozen=True)
class Committed:
    """A chunk attempt that committed: the chunk (as its attempt started), the attempt, its
    parts and what its work returned besides."""

    chunk: Chunk
    attempt_id: str
    attempts: int
    parts: list[Part]
    extra: Any


def attempt_chunk(task: Any, ctx: TableContext, run_id: str, number: int, session: int, what: str,
                  work: Callable[[Chunk, str], tuple[list[Part], Any, dict[str, Any] | None]],
                  ) -> Committed | dict[str, Any]:
    """One attempt of a chunk, the same for a sync's chunk and a reconcile's range: take its
    fence (a message whose chunk is committed is counted in the chord once; one of a stale
    session or an ended run is ignored), bound the redeliveries, run `work(chunk, attempt_id)`
    (-> parts uploaded, anything, the findings a reconcile commits with them), write the
    marker, and commit in Redis; an attempt refused at commit leaves orphans and is ignored.
    Returns the committed attempt, or the chord's result of an already committed chunk."""
    worker = task.request.hostname or ""
    table = ctx.table.key
    attempt_id = naming.new_attempt_id(session)
    outcome, attempts = ctx.state.begin_attempt(run_id, number, session, attempt_id, worker, lock_ttl_s())
    if outcome is Attempt.ALREADY:
        return already_committed(task, ctx.state.chunk(run_id, number), number)
    if outcome is not Attempt.FENCED:
        # Not counted in any chord: a stale session's chord never calls its load.
        log.info("run %s of %s: %s %d message of session %d skipped (%s)", run_id, table, what, number,
                 session, "stale session" if outcome is Attempt.STALE_SESSION else "run is over")
        raise Ignore()
    chunk = ctx.state.chunk(run_id, number)
    assert chunk is not None
    store = resources.store(ctx.cfg.s3)
    try:
        # Starts beyond its retries are redeliveries: a message whose process died with it
        # (a retry after a transient error is a new message with one more retry, and those
        # are bounded by the outage tolerance instead).
        redelivered = attempts - 1 - transient_retries(task)
        if redelivered >= MAX_ATTEMPTS:
            raise TerminalError(f"{what} {number} of {table} was started {redelivered} times without "
                                f"finishing (a worker process dying on it?)")
        faults.maybe_fail(ctx.state, number, session)
        parts, extra, findings = work(chunk, attempt_id)
        marker = write_marker(ctx, run_id, chunk, attempt_id, parts, worker) if parts or findings is None else None
    except Exception as exc:
        err = classify(exc)
        ctx.state.count_failed_attempt()
        if not isinstance(err, TransientError) or task.request.retries >= task.max_retries:
            # Recorded here, before Celery runs the chord's error callback, which reads it.
            ctx.state.record_chunk_error(run_id, number, session, describe(err))
        raise
    committed = ctx.state.commit_chunk(run_id, number, parts, worker, lock_ttl_s(), session, attempt_id,
                                       findings=findings)
    if committed is not Commit.COMMITTED:
        # This attempt lost: its objects are orphans, never read by a load. Its marker goes
        # first, so a rebuild never adopts an attempt that Redis refused.
        if marker:
            store.delete([marker])
        ctx.state.record_orphans([p.key for p in parts], run_id, number, attempt_id, REFUSED[committed])
        log.info("run %s of %s: %s %d attempt %s not committed: %s", run_id, table, what, number,
                 attempt_id, REFUSED[committed])
        raise Ignore()
    return Committed(chunk, attempt_id, attempts, parts, extra)


@app.task(name="ferry.extract_chunk", base=FerryTask, bind=True, **RETRY)
@translated
def extract_chunk(self: Any, pipeline: str, table: str, run_id: str, number: int,
                  session: int = 1) -> dict[str, Any]:
    ctx = table_context(pipeline, table)
    stats = BatchStats()
    got = attempt_chunk(self, ctx, run_id, number, session, "chunk",
                        lambda chunk, attempt_id: (_write_parts(ctx, run_id, chunk, attempt_id, stats), None, None))
    if isinstance(got, dict):
        return got
    chunk, attempt_id, attempts, parts = got.chunk, got.attempt_id, got.attempts, got.parts
    # (chunk was read after this attempt took the fence: started_at is this attempt's start)
    log.info("chunk committed: pipeline %s table %s run %s chunk %d range (%s, %s] rows %d bytes %d "
             "seconds %.1f attempt %d (%s) reader %s", pipeline, table, run_id, number, bounds.show(chunk.lo),
             bounds.show(chunk.hi), sum(p.rows for p in parts), sum(p.bytes for p in parts),
             time.time() - (chunk.started_at or time.time()), attempts, attempt_id, stats.reader)
    try:
        maybe_load_early(ctx, run_id, session)
    except Exception as exc:  # noqa: BLE001 - the chunk is committed; the run's load takes the parts anyway
        log.warning("run %s of %s: no early load started: %s", run_id, table, describe(exc))
    if stats.zero_dates:
        log.warning("table %s chunk %d: zero dates set to NULL: %s", table, number, stats.zero_dates)
    if stats.nul_removed:
        log.warning("table %s chunk %d: NUL characters removed from text values: %s", table, number,
                    stats.nul_removed)
    if stats.truncated:
        log.warning("table %s chunk %d: values truncated to their target column: %s", table, number,
                    stats.truncated)
        ctx.state.count(values_truncated=sum(stats.truncated.values()))
    return {"chunk": number, "rows": sum(p.rows for p in parts), "parts": len(parts), "reader": stats.reader,
            "zero_dates": stats.zero_dates, "truncated": stats.truncated, "nul_removed": stats.nul_removed}
