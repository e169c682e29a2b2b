"""Stage 3: load. Merge every committed part that no load contains yet into the target in
one warehouse transaction (with its ledger rows), then count the parts as loaded.

A full-strategy table is instead rebuilt from its latest complete run and swapped in.
"""
from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import asdict, replace
from typing import Any

from common import bounds, faults, lost_parts
from common.design import TableDesign
from common.errors import RefusedError, StateError, TransientError
from common.refused import Refusal, Refusals
from common.warehouse import LoadRequest
from common.watermark import PendingPart
from tasks.celery import app
from tasks.context import (RETRY, FerryTask, TableContext, load_lock_wait_s, lock_ttl_s, table_context,
                           translated)
from workers import resources

log = logging.getLogger(__name__)


def _counted(results: list[Any], what: str) -> dict[str, int]:
    """Per-column counts the chunks reported (zero dates, truncated values), added up."""
    total: dict[str, int] = {}
    for r in results or []:
        for col, n in ((r or {}).get(what) or {}).items():
            total[col] = total.get(col, 0) + n
    return total


def _full_run(ctx: TableContext, run_id: str, pending: list[PendingPart],
              swapped: str) -> tuple[str | None, list[PendingPart]]:
    """For a full reload: the newest completely extracted run still to load, and its parts.
    A run not newer than `swapped` (the one already swapped in) is never loaded."""
    for candidate in sorted({p.run_id for p in pending} | {run_id}, reverse=True):
        if candidate <= swapped:
            return None, []
        meta = ctx.state.run_meta(candidate)
        if "chunks" not in meta:
            continue  # a --load-only run has no plan of its own
        chunks = ctx.state.chunks(candidate)
        if any(c.state == "pending" for c in chunks):
            continue
        if (chunks and all(c.state == "loaded" for c in chunks)) or (not chunks and meta.get("status") == "succeeded"):
            return None, []  # already swapped in (a redelivered load)
        return candidate, [p for p in pending if p.run_id == candidate]
    return None, []


def _apply_design(ctx: TableContext, warehouse: Any, run_id: str, schema: Any) -> None:
    """A redshift_keys setting changed since the target was created: ALTER it where Redshift
    can, report where it cannot (both logged in the table's schema_log)."""
    applied = ctx.state.state().get("table_design")
    if not applied:
        return
    old = TableDesign(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(applied).items()})
    if old == ctx.table.design:
        return
    stmts, refused = warehouse.redesign(ctx.table_target, old, ctx.table.design, schema)
    for stmt in stmts:
        ctx.state.record_schema_event(run_id, f"target: {stmt}")
    for change in refused:
        ctx.state.record_schema_event(run_id, f"target: not applied: {change}")


def _loaded(ctx: TableContext, pipeline: str, table: str) -> None:
    # Tests end the process here: committed in the warehouse, not yet in Redis.
    faults.maybe_fail(ctx.state.r, pipeline, table, "load")


def _by_chunk(parts: list[PendingPart]) -> list[list[PendingPart]]:
    return [list(g) for _, g in itertools.groupby(parts, key=lambda p: (p.run_id, p.chunk))]


def _bounded(groups: list[list[PendingPart]], limit_bytes: int) -> list[list[list[PendingPart]]]:
    """Chunks (kept whole, in order) gathered into loads of at most limit_bytes of parts each;
    a chunk larger than the limit is a load of its own."""
    batches: list[list[list[PendingPart]]] = []
    size = 0
    for group in groups:
        nbytes = sum(p.bytes for p in group)
        if not batches or size + nbytes > limit_bytes:
            batches.append([])
            size = 0
        batches[-1].append(group)
        size += nbytes
    return batches


def _load_by_chunks(ctx: TableContext, warehouse: Any, request: LoadRequest,
                    run_id: str) -> tuple[int, int, list[Refusal]]:
    """Load the parts in one transaction; if the warehouse refuses their data, in halves,
    recursively (chunks stay whole and in order), so every chunk it takes is loaded in a few
    transactions and each one it refuses waits, recorded with its range and the warehouse's
    message. Chunks refused by earlier loads are tried again, each on its own, after the
    rest. Returns (parts, rows) counted and the new refusals."""
    refusals = Refusals(ctx.state.r, ctx.cfg.name, ctx.table.key)
    waiting = refusals.waiting()
    fresh = _by_chunk([p for p in request.parts if (p.run_id, p.chunk) not in waiting])
    again = _by_chunk([p for p in request.parts if (p.run_id, p.chunk) in waiting])
    files = rows = loads = 0
    refused: list[Refusal] = []

    def load(groups: list[list[PendingPart]]) -> None:
        nonlocal files, rows, loads
        parts = [p for g in groups for p in g]
        loads += 1
        warehouse.load(replace(request, parts=parts, load_id=f"{request.load_id}-{loads}"))
        _loaded(ctx, request.pipeline, request.table)
        faults.maybe_fail(ctx.state.r, request.pipeline, request.table, f"load#{loads}")
        f, r = ctx.state.commit_load(run_id, parts)
        files, rows = files + f, rows + r

    def refuse(group: list[PendingPart], exc: RefusedError) -> Refusal:
        chunk = ctx.state.chunk(group[0].run_id, group[0].chunk)
        lo, hi = (bounds.show(chunk.lo), bounds.show(chunk.hi)) if chunk else ("?", "?")
        return refusals.record(group[0].run_id, group[0].chunk, lo, hi, group, exc)

    def settle(groups: list[list[PendingPart]], top: bool = False) -> None:
        try:
            load(groups)
        except RefusedError as exc:
            if len(groups) == 1:
                refused.append(refuse(groups[0], exc))
                log.error("%s", refused[-1].describe(request.table))
                return
            if top:
                log.warning("table %s: the warehouse refused a load of %d chunks (%s); loading them in halves "
                            "to find the range", request.table, len(groups), exc)
            half = len(groups) // 2
            settle(groups[:half])
            settle(groups[half:])

    for batch in _bounded(fresh, ctx.table.load_max_mb * 1024 * 1024):
        settle(batch, top=True)
    for group in again:
        try:
            load([group])
            refusals.clear(group[0].run_id, group[0].chunk)
            log.warning("table %s: chunk %d of run %s, refused before, is loaded now", request.table,
                        group[0].chunk, group[0].run_id)
        except RefusedError as exc:
            still = refuse(group, exc)
            log.warning("%s (refused %d times; it waits)", still.describe(request.table), still.times)
    return files, rows, refused


@app.task(name="ferry.load_run", base=FerryTask, bind=True, **RETRY)
@translated
def load_run(self: Any, results: list[Any], pipeline: str, table: str, run_id: str,
             extract_only: bool = False, take_lock: bool = False,
             session: int | None = None, lock_waits: int = 0, lock_wait_since: float = 0.0) -> dict[str, Any]:
    """Chord body of a run, or (take_lock, from `ferry sync --load-only`) a load of its own.
    (lock_waits, lock_wait_since: how long this load has waited for the table's load lock.)"""
    ctx = table_context(pipeline, table)
    if session is not None and ctx.state.session(run_id) != session:
        log.info("run %s of %s: load of stale session %d skipped", run_id, table, session)
        return {"run_id": run_id, "session": session, "stale": True}
    missing = [c.number for c in ctx.state.chunks(run_id) if c.state == "pending"]
    if missing:
        # Only a miscounted chord gets here; the next sync resumes the missing chunks.
        ctx.state.finish_run(run_id, "failed", f"the load started with chunk(s) {missing[:10]} "
                             f"not committed; sync again to resume them", session)
        return {"run_id": run_id, "missing_chunks": len(missing)}
    if extract_only:
        ctx.state.finish_run(run_id, "extracted", session=session)
        return {"run_id": run_id, "extract_only": True}
    if take_lock:
        ctx.state.acquire_lock(run_id, lock_ttl_s())
    # The task id survives redelivery, so a load that died can take its own lock again.
    token = f"{run_id}:{self.request.id}"
    if not ctx.state.acquire_load_lock(token, lock_ttl_s()):
        # One load per table: wait for the other one, on a budget of its own (the retries of
        # transient errors are not spent on it).
        since = lock_wait_since or time.time()
        if time.time() - since > load_lock_wait_s():
            raise TransientError(f"table {table}: another load held the table's load lock for more than "
                                 f"{load_lock_wait_s():.0f} s (FERRY_LOAD_LOCK_WAIT_S)")
        raise self.retry(exc=TransientError(f"table {table}: another load is running"), countdown=10,
                         kwargs={**self.request.kwargs, "lock_waits": lock_waits + 1, "lock_wait_since": since},
                         max_retries=self.request.retries + 1)
    try:
        ctx.state.set_run_fields(run_id, status="loading", load_started_at=f"{time.time():.3f}",
                                 zero_dates=json.dumps(_counted(results, "zero_dates")),
                                 truncated=json.dumps(_counted(results, "truncated")),
                                 nul_removed=json.dumps(_counted(results, "nul_removed")))
        ctx.state.set_status(status_load="running")
        parts = ctx.state.pending_parts()
        files = rows = 0
        refused: list[Refusal] = []
        load = bool(parts)
        source_run: str | None = None
        if ctx.table.strategy == "full":
            swapped = ctx.state.state().get("full_run", "")
            source_run, mine = _full_run(ctx, run_id, parts, swapped)
            load = source_run is not None
            # Parts of older full runs are superseded: never loaded.
            newest = source_run or swapped
            ctx.state.discard_parts([p.key for p in parts if p.run_id < newest])
            parts = mine
        if load:
            schema = ctx.state.schema()
            if schema is None:
                raise StateError(f"table {table}: parts await load but no schema is recorded")
            gone = lost_parts.missing(resources.store(ctx.cfg.s3), ctx.table_prefix, parts)
            if gone:
                reopened = lost_parts.reopen(ctx.state, gone)
                cause = lost_parts.message(table, gone, reopened)
                log.error("run %s: %s", run_id, cause)
                ctx.state.finish_run(run_id, "failed", cause, session)
                return {"run_id": run_id, "missing_parts": len(gone)}
            version = ctx.table.cursor if ctx.table.strategy == "timestamp" else None
            run_schemas = {r: s for r in {p.run_id for p in parts} if (s := ctx.state.run_schema(r))}
            request = LoadRequest(
                pipeline=pipeline, table=table, target_table=ctx.table_target, schema=schema,
                parts=parts, load_id=f"{run_id}-{int(time.time())}", table_prefix=ctx.table_prefix,
                version_column=schema.column(version).name if version else None,
                replace=ctx.table.strategy == "full", append=ctx.table.load == "append", design=ctx.table.design,
                full_reload=ctx.table.full_reload,
                run_schemas=run_schemas)
            warehouse = resources.warehouse(ctx.cfg)
            if not request.replace or request.full_reload == "delete_insert":  # the target stays
                for stmt in warehouse.evolve(ctx.table_target, schema):
                    ctx.state.record_schema_event(run_id, f"target: {stmt}")
                _apply_design(ctx, warehouse, run_id, schema)
            if request.replace:
                warehouse.load(request)
                _loaded(ctx, pipeline, table)
                files, rows = ctx.state.commit_load(run_id, parts)
                ctx.state.set_status(full_run=source_run or run_id)
            else:
                files, rows, refused = _load_by_chunks(ctx, warehouse, request, run_id)
            ctx.state.set_status(table_design=json.dumps(asdict(ctx.table.design)))
            if refused:
                cause = (refused[0].describe(table) + (f" (and {len(refused) - 1} more chunk(s))" if len(refused) > 1
                                                       else "")
                         + f"; every other part is loaded. The range waits: each later load tries it again "
                           f"(fix the cause, then sync), or give it up with `ferry watermark skip-range -p "
                           f"{pipeline} -t {table} --run {refused[0].run_id} --chunk {refused[0].chunk} --yes`")
                log.error("run %s: %s", run_id, cause)
                ctx.state.finish_run(run_id, "failed", cause, session)
                return {"run_id": run_id, "files_loaded": files, "rows_loaded": rows, "refused": len(refused)}
        ctx.state.finish_run(run_id, "succeeded", session=session)
    finally:
        ctx.state.release_load_lock(token)
    return {"run_id": run_id, "files_loaded": files, "rows_loaded": rows}
