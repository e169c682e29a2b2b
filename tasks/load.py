"""Stage 3: load. The run's load (the chord's body) merges every committed part that no
load contains yet into the target, in transactions of at most load_max_mb (each with its
ledger rows, each counted as loaded when it commits), and ends the run. Early loads do the
same with the chunks committed so far while the run still extracts (load_every_mb).

A full-strategy table is instead rebuilt from its latest complete run and swapped in.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from typing import Any, NoReturn

from celery.utils import uuid

from common.errors import TerminalError, TransientError
from common.recovery import lost_parts
from common.model.records import FINAL_STATUSES, PendingPart, RunStatus
from tasks.celery import app
from tasks import load_parts
from tasks.labels import shown
from tasks.base import FerryTask
from tasks.context import RETRY, TableContext, load_lock_wait_s, lock_ttl_s, table_context, translated
from workers import resources

log = logging.getLogger(__name__)


_COUNTS = ("zero_dates", "truncated", "nul_removed")


def _counted(results: list[Any], what: str) -> dict[str, int]:
    """Per-column counts the chunks (or segments) reported (zero dates, truncated values), added up."""
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
        if (chunks and all(c.state == "loaded" for c in chunks)) or (not chunks and meta.get("status") == RunStatus.SUCCEEDED):
            return None, []  # already swapped in (a redelivered load)
        return candidate, [p for p in pending if p.run_id == candidate]
    return None, []


def maybe_load_early(ctx: TableContext, run_id: str, session: int) -> bool:
    """After a chunk commits: start an early load (while extraction goes on) once at least
    load_every_mb of committed parts await load, unless one is queued or running already.
    Not for full reloads (swapped in whole) nor --extract-only runs."""
    # (one field, not the run's whole meta: this runs after every chunk commit)
    if ctx.table.strategy == "full" or ctx.state.run_fields(run_id, "extract_only")["extract_only"] == "1":
        return False
    waiting = ctx.state.refusals().waiting()
    ready = sum(p.bytes for p in ctx.state.pending_parts() if (p.run_id, p.chunk) not in waiting)
    if ready < (ctx.table.load_every_mb or ctx.table.load_max_mb) * 1024 * 1024:
        return False
    # The marker names its owner (the early load's task id): only that load releases it.
    task_id = uuid()
    if not ctx.state.take_early_load(task_id, lock_ttl_s()):
        return False
    load_early.apply_async(args=[ctx.cfg.name, ctx.table.key, run_id, session], task_id=task_id,
                           **shown(ctx.cfg.name, ctx.table.key, run_id, session=session, early=True))
    return True


@app.task(name="ferry.load_early", base=FerryTask, bind=True, **RETRY)
@translated
def load_early(self: Any, pipeline: str, table: str, run_id: str, session: int) -> dict[str, Any]:
    """Load the committed chunks while the run still extracts: whole chunks, in bounded
    transactions, merged as the run's own load would merge them, counted as the run's rows
    loaded; the run goes on and its load (the chord's body) takes what is left and ends it."""
    ctx = table_context(pipeline, table)
    try:
        meta = ctx.state.run_meta(run_id)
        if int(meta.get("session") or 1) != session or meta.get("status") in FINAL_STATUSES:
            return {"run_id": run_id, "skipped": True}
        token = f"{run_id}:early:{self.request.id}"
        if not ctx.state.acquire_load_lock(token, lock_ttl_s()):
            return {"run_id": run_id, "busy": True}  # another load runs: it takes these parts
        try:
            parts = ctx.state.pending_parts()
            if not parts or lost_parts.missing(resources.store(ctx.cfg.s3), ctx.table_prefix, parts):
                return {"run_id": run_id, "files_loaded": 0}  # (missing parts: the run's load says so)
            request, warehouse = load_parts.prepare(ctx, run_id, parts)
            files, rows, _ = load_parts.load_by_chunks(ctx, warehouse, request, run_id, retry_waiting=False)
        finally:
            ctx.state.release_load_lock(token)
    finally:
        ctx.state.release_early_load(self.request.id or "")
    log.info("run %s of %s: early load of %d parts (%d rows) while extraction goes on", run_id, table,
             files, rows)
    return {"run_id": run_id, "files_loaded": files, "rows_loaded": rows}


def _end_segment(ctx: TableContext, run_id: str, session: int, segment: str, counted: dict[str, Any],
                 task_id: str) -> list[dict[str, Any]] | dict[str, Any]:
    """Record the segment finished: what every segment counted when this load is the run's
    last, else the task's result (another segment's load ends the run, or the run failed)."""
    end = ctx.state.end_segment(run_id, session, segment, counted, task_id)
    table = ctx.table.key
    if not end.last:
        log.info("run %s of %s: segment %s extracted; %s", run_id, table, segment,
                 "the run's last segment ends it" if end.code == 0 else "its session is over")
        return {"run_id": run_id, "session": session, "segment": segment, "last": False}
    if end.failed:  # a chunk of another segment failed for good: the run fails once all finished
        ctx.state.finish_run(run_id, RunStatus.FAILED, end.failed, session)
        log.error("run %s of %s failed: %s", run_id, table, end.failed)
        return {"run_id": run_id, "session": session, "failed": end.failed}
    return list(end.counts)


def _wait_for_the_load_lock(task: Any, table: str, lock_waits: int, lock_wait_since: float) -> NoReturn:
    """One load per table: wait for the other one, on a budget of its own (the retries of
    transient errors are not spent on it)."""
    since = lock_wait_since or time.time()
    if time.time() - since > load_lock_wait_s():
        raise TerminalError(f"table {table}: another load held the table's load lock for more than "
                            f"{load_lock_wait_s():.0f} s (FERRY_LOAD_LOCK_WAIT_S)")
    raise task.retry(exc=TransientError(f"table {table}: another load is running"), countdown=2,
                     kwargs={**task.request.kwargs, "lock_waits": lock_waits + 1, "lock_wait_since": since},
                     max_retries=task.request.retries + 1)


def _load(ctx: TableContext, run_id: str, session: int | None, counted: list[dict[str, Any]]) -> dict[str, Any]:
    """Under the load lock: load every part awaiting load (or swap in the newest full run),
    then end the run: succeeded, or failed if parts were lost or ranges refused."""
    table = ctx.table.key
    ctx.state.set_run_fields(run_id, status=RunStatus.LOADING, load_started_at=f"{time.time():.3f}",
                             **{what: json.dumps(_counted(counted, what)) for what in _COUNTS})
    ctx.state.set_status(status_load="running")
    parts = ctx.state.pending_parts()
    files = rows = 0
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
        gone = lost_parts.missing(resources.store(ctx.cfg.s3), ctx.table_prefix, parts)
        if gone:
            reopened = lost_parts.reopen(ctx.state, gone)
            cause = lost_parts.message(table, gone, reopened)
            log.error("run %s: %s", run_id, cause)
            ctx.state.finish_run(run_id, RunStatus.FAILED, cause, session)
            return {"run_id": run_id, "missing_parts": len(gone)}
        request, warehouse = load_parts.prepare(ctx, run_id, parts)
        if request.replace:
            warehouse.load(request)
            load_parts.loaded(ctx)
            files, rows = ctx.state.commit_load(run_id, parts)
            ctx.state.set_status(full_run=source_run or run_id)
        else:
            files, rows, _ = load_parts.load_by_chunks(ctx, warehouse, request, run_id)
        ctx.state.set_status(table_design=json.dumps(asdict(ctx.table.design)))
    # Ranges of this run the warehouse refused (in this load or an early one) wait: the run failed.
    mine = [r for r in ctx.state.refusals().waiting().values() if r.run_id == run_id]
    if mine:
        cause = load_parts.refused_message(ctx.cfg.name, table, mine)
        log.error("run %s: %s", run_id, cause)
        ctx.state.finish_run(run_id, RunStatus.FAILED, cause, session)
        return {"run_id": run_id, "files_loaded": files, "rows_loaded": rows, "refused": len(mine)}
    ctx.state.finish_run(run_id, RunStatus.SUCCEEDED, session=session)
    return {"run_id": run_id, "files_loaded": files, "rows_loaded": rows}


@app.task(name="ferry.load_run", base=FerryTask, bind=True, **RETRY)
@translated
def load_run(self: Any, results: list[Any], pipeline: str, table: str, run_id: str,
             extract_only: bool = False, take_lock: bool = False,
             session: int | None = None, lock_waits: int = 0, lock_wait_since: float = 0.0,
             segment: str | None = None) -> dict[str, Any]:
    """Chord body of a run's segment, or (take_lock, from `ferry sync --load-only`) a load of
    its own. Only the last segment's body to finish, once the plan is complete, loads and ends
    the run; the others record what their chunks counted and return.
    (lock_waits, lock_wait_since: how long this load has waited for the table's load lock.)"""
    ctx = table_context(pipeline, table)
    if session is not None and ctx.state.session(run_id) != session:
        log.info("run %s of %s: load of stale session %d skipped", run_id, table, session)
        return {"run_id": run_id, "session": session, "stale": True}
    counted = [{what: _counted(results, what) for what in _COUNTS}]
    if segment is not None and session is not None:
        ended = _end_segment(ctx, run_id, session, segment, counted[0], self.request.id or "")
        if isinstance(ended, dict):
            return ended
        counted = ended
    missing = [c.number for c in ctx.state.chunks(run_id) if c.state == "pending"]
    if missing:
        # Only a miscounted chord gets here; the next sync resumes the missing chunks.
        ctx.state.finish_run(run_id, RunStatus.FAILED, f"the load started with chunk(s) {missing[:10]} "
                             f"not committed; sync again to resume them", session)
        return {"run_id": run_id, "missing_chunks": len(missing)}
    if extract_only:
        ctx.state.finish_run(run_id, RunStatus.EXTRACTED, session=session)
        return {"run_id": run_id, "extract_only": True}
    if take_lock:
        ctx.state.acquire_lock(run_id, lock_ttl_s())
    # The task id survives redelivery, so a load that died can take its own lock again.
    token = f"{run_id}:{self.request.id}"
    if not ctx.state.acquire_load_lock(token, lock_ttl_s()):
        _wait_for_the_load_lock(self, table, lock_waits, lock_wait_since)
    try:
        return _load(ctx, run_id, session, counted)
    finally:
        ctx.state.release_load_lock(token)
