"""Loading committed parts: the request for a table's target (the target adapted first), and
loads of whole chunks, in order, in transactions of at most load_max_mb, a refused range
found by halving and left waiting. Used by the run's load and by the early loads that
overlap extraction (tasks/load.py)."""
from __future__ import annotations

import itertools
import json
import logging
import secrets
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Sequence

from common.model import bounds, naming
from common.reconcile import deletes
from common.source import probes
from common.state import faults
from common.config.design import TableDesign
from common.errors import RefusedError, StateError
from common.state.refused import Refusal
from common.warehouse import LoadRequest
from common.model.records import PendingPart
from tasks.context import TableContext
from workers import resources

log = logging.getLogger(__name__)


def prepare(ctx: TableContext, run_id: str, parts: Sequence[PendingPart]) -> tuple[LoadRequest, Any]:
    """The load request for these parts and the warehouse, with the target brought up to the
    mapping (columns added or widened, a changed design applied) before any transaction."""
    table = ctx.table.key
    schema = ctx.state.schema()
    if schema is None:
        raise StateError(f"table {table}: parts await load but no schema is recorded")
    version = ctx.table.cursor if ctx.table.strategy == "timestamp" else None
    run_schemas = {r: s for r in {p.run_id for p in parts} if (s := ctx.state.run_schema(r))}
    request = LoadRequest(
        pipeline=ctx.cfg.name, table=table, target_table=ctx.table_target, schema=schema,
        # Unique per execution: a redelivered load in the same second must not reuse the ids.
        parts=tuple(parts), load_id=f"{run_id}-{int(time.time())}-{secrets.token_hex(3)}",
        table_prefix=ctx.table_prefix,
        version_column=schema.column(version).name if version else None,
        replace=ctx.table.strategy == "full", append=ctx.table.load == "append", design=ctx.table.design,
        full_reload=ctx.table.full_reload, run_schemas=run_schemas,
        soft_deletes=ctx.table.reconcile.deletes == "soft")
    warehouse = resources.warehouse(ctx.cfg)
    if not request.replace or request.full_reload == "delete_insert":  # the target stays
        for stmt in warehouse.evolve(ctx.table_target, schema):
            ctx.state.record_schema_event(run_id, f"target: {stmt}")
        _apply_design(ctx, warehouse, run_id, schema)
        if request.soft_deletes and any(naming.is_deletes_key(p.key) for p in parts):
            stmt = warehouse.add_soft_delete_column(ctx.table_target)
            if stmt:
                ctx.state.record_schema_event(run_id, f"target: {stmt}")
    return request, warehouse


def recheck_deletes(ctx: TableContext, parts: Sequence[PendingPart]) -> dict[str, tuple[tuple[Any, ...], ...]]:
    """For each deletes part among `parts`: the keys the source has again now (they are not
    deleted). Asked just before the load's transaction."""
    todo = [p for p in parts if naming.is_deletes_key(p.key)]
    if not todo:
        return {}
    schema = ctx.state.schema()
    assert schema is not None
    store = resources.store(ctx.cfg.s3)
    conn = resources.mysql(ctx.cfg.source)
    kept: dict[str, tuple[tuple[Any, ...], ...]] = {}
    for part in todo:
        keys = deletes.read(store, part.key)
        back = probes.existing_keys(conn, ctx.table.key, list(schema.key), keys, where=ctx.table.where)
        if back:
            kept[part.key] = tuple(keys[i] for i in sorted(back))
            log.info("table %s: %d of %d keys a reconcile found only in the target are in the source again; "
                     "they are kept", ctx.table.key, len(back), len(keys))
    return kept


def loaded(ctx: TableContext) -> None:
    """Tests end the process here: committed in the warehouse, not yet in Redis."""
    faults.maybe_fail(ctx.state, "load")


def refused_message(pipeline: str, table: str, refused: Sequence[Refusal]) -> str:
    """A run's error when ranges of it wait, refused by the warehouse."""
    first = refused[0]
    return (first.describe(table) + (f" (and {len(refused) - 1} more chunk(s))" if len(refused) > 1 else "")
            + f"; every other part is loaded. The range waits: each later load tries it again (fix the "
              f"cause, then sync), or give it up with `ferry watermark skip-range -p {pipeline} -t {table} "
              f"--run {first.run_id} --chunk {first.chunk} --yes`")


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


def load_by_chunks(ctx: TableContext, warehouse: Any, request: LoadRequest, run_id: str,
                   retry_waiting: bool = True) -> tuple[int, int, list[Refusal]]:
    """Load the parts in transactions of at most load_max_mb (whole chunks, in order), each
    counted as loaded when it commits; if the warehouse refuses a transaction's data, its
    chunks go again in halves, recursively, so every chunk it takes is loaded and each one it
    refuses waits, recorded with its range and the warehouse's message. Chunks refused by
    earlier loads are tried again, each on its own, after the rest (unless retry_waiting is
    False: an early load leaves them to the run's load). Returns (parts, rows) counted and
    the new refusals."""
    refusals = ctx.state.refusals()
    waiting = refusals.waiting()
    fresh = _by_chunk([p for p in request.parts if (p.run_id, p.chunk) not in waiting])
    again = _by_chunk([p for p in request.parts if (p.run_id, p.chunk) in waiting])
    files = rows = loads = 0
    refused: list[Refusal] = []

    def load(groups: list[list[PendingPart]]) -> None:
        nonlocal files, rows, loads
        parts = [p for g in groups for p in g]
        loads += 1
        result = warehouse.load(replace(
            request, parts=parts, load_id=f"{request.load_id}-{loads}", kept_keys=recheck_deletes(ctx, parts),
            deleted_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")))
        loaded(ctx)
        faults.maybe_fail(ctx.state, f"load#{loads}")
        f, r = ctx.state.commit_load(run_id, parts)
        for reconcile_run, n in result.deleted.items():
            ctx.state.count_deleted(reconcile_run, n)
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
    for group in again if retry_waiting else []:
        try:
            load([group])
            refusals.clear(group[0].run_id, group[0].chunk)
            log.warning("table %s: chunk %d of run %s, refused before, is loaded now", request.table,
                        group[0].chunk, group[0].run_id)
        except RefusedError as exc:
            still = refuse(group, exc)
            log.warning("%s (refused %d times; it waits)", still.describe(request.table), still.times)
    return files, rows, refused
