"""Restore a table's Redis state after Redis lost it, from what S3 and the warehouse keep:
the plan of every run (run=…/plan.json), a marker per durable chunk attempt
(…/chunk=N/attempt=A/_committed.json) and the warehouse ledger of loaded parts. The next
sync then neither repeats nor skips rows. Only objects whose S3 metadata names this
pipeline and table are read: another pipeline's runs are never adopted.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from common.model import naming
from common.errors import LockedError
from common.store.s3 import Store
from common.state.table import TableState

_PLAN = re.compile(r"run=([^/]+)/plan\.json$")
_MARKER = re.compile(r"run=([^/]+)/chunk=(\d+)/attempt=([^/]+)/_committed\.json$")


@dataclass
class RebuildSummary:
    runs: int = 0
    chunks_committed: int = 0
    parts_loaded: int = 0
    parts_awaiting_load: int = 0
    rows_extracted: int = 0
    rows_loaded: int = 0
    cursor: str | None = None
    notes: list[str] = field(default_factory=list)


def _read_own(store: Store, key: str, state: TableState) -> dict[str, Any] | None:
    """The object's JSON if its metadata names this pipeline and table, else None."""
    body, metadata = store.get_with_metadata(key)
    if not naming.is_own_object(metadata, state.pipeline, state.table):
        return None
    return json.loads(body)


def _choose(attempts: list[dict[str, Any]], ledger: dict[str, int]) -> dict[str, Any]:
    """Of several attempts' markers for one chunk (one lost after writing its marker), the
    one the warehouse loaded, else the newest: each is a whole read of the chunk's range."""
    loaded = [m for m in attempts if any(p["key"] in ledger for p in m["parts"])]
    return max(loaded or attempts, key=lambda m: float(m.get("at") or 0))


def _read_objects(state: TableState, store: Store, table_prefix: str, ledger: dict[str, int],
                  s: "RebuildSummary") -> tuple[dict[str, Any], dict[str, dict[int, dict[str, Any]]],
                                                dict[str, Any] | None]:
    plans: dict[str, dict[str, Any]] = {}
    attempts: dict[tuple[str, int], list[dict[str, Any]]] = {}
    override: dict[str, Any] | None = None
    foreign = 0
    for key, _ in store.list(table_prefix):
        m_plan, m_marker = _PLAN.search(key), _MARKER.search(key)
        if key != naming.cursor_override_key(table_prefix) and not m_plan and not m_marker:
            continue
        doc = _read_own(store, key, state)
        if doc is None:
            foreign += 1
        elif m_plan:
            plans[m_plan.group(1)] = doc
        elif m_marker:
            attempts.setdefault((m_marker.group(1), int(m_marker.group(2))), []).append(doc)
        else:
            override = doc
    if foreign:
        s.notes.append(f"{foreign} plan or marker object(s) under {table_prefix} do not name pipeline "
                       f"{state.pipeline} and table {state.table} in their metadata: not adopted")
    markers: dict[str, dict[int, dict[str, Any]]] = {}
    for (run_id, n), found in attempts.items():
        chosen = _choose(found, ledger)
        markers.setdefault(run_id, {})[n] = chosen
        for other in found:
            if other is not chosen:
                state.record_orphans([p["key"] for p in other["parts"]], run_id, n, other["attempt"],
                                     "attempt not chosen by rebuild")
    return plans, markers, override


def rebuild(state: TableState, store: Store, table_prefix: str, ledger: dict[str, int]) -> RebuildSummary:
    """Replace the table's Redis state with what S3 and the ledger say (one MULTI)."""
    owner = state.lock_owner()
    if owner:
        raise LockedError(state.table, owner)
    s = RebuildSummary()
    plans, markers, override = _read_objects(state, store, table_prefix, ledger, s)
    s.runs = len(plans)
    totals = {"rows_extracted": 0, "files_extracted": 0, "bytes_extracted": 0,
              "rows_loaded": 0, "files_loaded": 0}
    cursor: dict[str, str] = {}
    tx = state.r.pipeline(transaction=True)
    for key in state.r.scan_iter(naming.table_pattern(state.pipeline, state.table), count=1000):
        if key.decode() != state.orphans_key:  # what rebuild just noted, and what was noted before
            tx.delete(key)
    schema = None
    # A full reload's newest loaded run was swapped in; older runs' parts are superseded.
    loaded_runs = [r for r in plans if any(p["key"] in ledger for m in markers.get(r, {}).values()
                                           for p in m["parts"])]
    full = bool(plans) and plans[max(plans)].get("strategy") == "full"
    full_run = max(loaded_runs) if full and loaded_runs else ""
    abandoned = set(override.get("abandoned", [])) if override else set()
    for run_id in sorted(plans):
        plan = plans[run_id]
        schema = plan.get("schema") or schema
        run_markers = markers.get(run_id, {})
        # `watermark set` abandoned the runs that were unfinished then (extracted ones are not).
        is_abandoned = run_id in abandoned and len(run_markers) < len(plan["chunks"])
        chunks, run_tot = [], {k: 0 for k in totals}
        for n, bounds in enumerate(plan["chunks"]):
            marker = run_markers.get(n)
            entry: dict[str, Any] = {"lo": bounds["lo"], "hi": bounds["hi"], "state": "pending"}
            if marker:
                keys = [p["key"] for p in marker["parts"]]
                loaded = [k for k in keys if k in ledger]
                entry.update(state="loaded" if len(loaded) == len(keys) else "done", rows=marker["rows"],
                             bytes=marker["bytes"], parts=keys, loaded_parts=len(loaded),
                             worker=marker.get("worker", ""), committed_at=marker.get("at"),
                             attempt=marker.get("attempt", ""), fence=marker.get("attempt", ""))
                run_tot["rows_extracted"] += marker["rows"]
                run_tot["files_extracted"] += len(keys)
                run_tot["bytes_extracted"] += marker["bytes"]
                for p in marker["parts"]:
                    if p["key"] in ledger:
                        run_tot["rows_loaded"] += p["rows"]
                        run_tot["files_loaded"] += 1
                    elif is_abandoned:  # as abandon_run.lua: never loaded
                        state.record_orphans([p["key"]], run_id, n, marker.get("attempt", ""), "abandoned run")
                    elif run_id > full_run:
                        tx.hset(state.pending_key, p["key"], json.dumps(
                            {"run": run_id, "chunk": n, "rows": p["rows"], "bytes": p["bytes"]}))
                        s.parts_awaiting_load += 1
                s.chunks_committed += 1
            chunks.append(entry)
        contiguous = 0
        while contiguous < len(chunks) and chunks[contiguous]["state"] != "pending":
            contiguous += 1
        # As commit_chunk.lua: chunks before advance_from never move the cursor.
        if contiguous > int(plan.get("advance_from") or 0) and plan.get("strategy") != "full":
            cursor = {"cursor": chunks[contiguous - 1]["hi"], "cursor_run": run_id,
                      "cursor_chunk": str(contiguous - 1)}
        states = {c["state"] for c in chunks}
        status = ("succeeded" if states <= {"loaded"} else
                  "extracted" if "pending" not in states else
                  "abandoned" if is_abandoned else "failed")
        meta_key = naming.run_meta_key(state.pipeline, state.table, run_id)
        tx.hset(meta_key, mapping={**{k: str(v) for k, v in plan.items()
                                      if k not in ("chunks", "schema", "keyset", "run")},
                                   "status": status, "chunks": len(chunks), "contiguous": contiguous,
                                   "chunks_done": sum(1 for c in chunks if c["state"] != "pending"),
                                   "session": 1, "dispatched_session": 1, "rebuilt": 1,
                                   **({"schema": json.dumps(plan["schema"])} if plan.get("schema") else {}),
                                   **{k: v for k, v in run_tot.items()}})
        tx.hset(naming.run_session_key(state.pipeline, state.table, run_id, 1),
                mapping={k: v for k, v in run_tot.items()})
        chunks_key = naming.run_chunks_key(state.pipeline, state.table, run_id)
        for n, entry in enumerate(chunks):
            tx.hset(chunks_key, str(n), json.dumps(entry))
        tx.rpush(state.runs_key, run_id)
        for k in totals:
            totals[k] += run_tot[k]
    if override and float(override["at"]) > max((float(p.get("planned_at") or 0) for p in plans.values()),
                                                default=0.0):
        # The cursor was set by hand after the last plan: keep the hand-set one.
        cursor = {"cursor": override["cursor"], "cursor_run": "manual"}
        s.notes.append("cursor restored from the last `watermark set`")
    if full_run:
        cursor["full_run"] = full_run
    if schema is not None:
        tx.set(state.schema_key, json.dumps(schema))
    tx.hset(state.state_key, mapping={**{k: str(v) for k, v in totals.items()}, **cursor,
                                      "status_extract": "idle", "status_load": "idle"})
    tx.execute()
    s.parts_loaded = sum(1 for runs in markers.values() for m in runs.values()
                         for p in m["parts"] if p["key"] in ledger)
    s.rows_extracted, s.rows_loaded = totals["rows_extracted"], totals["rows_loaded"]
    s.cursor = state.cursor() and str(state.cursor())
    orphans = [k for k in ledger if not any(k.startswith(naming.run_prefix(table_prefix, r)) for r in plans)]
    if orphans:
        s.notes.append(f"{len(orphans)} loaded parts in the ledger have no plan on S3 (deleted files?)")
    return s
