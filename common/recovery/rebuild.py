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
from typing import Any, Sequence

from common.model import naming
from common.errors import LockedError
from common.store.s3 import Store
from common.model.records import RunStatus
from common.state.restore import RestoredRun, RestoredTable
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


def _read_objects(state: TableState, store: Store, prefixes: Sequence[str], ledger: dict[str, int],
                  s: "RebuildSummary") -> tuple[dict[str, Any], dict[str, dict[int, dict[str, Any]]],
                                                dict[str, Any] | None, set[str]]:
    plans: dict[str, dict[str, Any]] = {}
    attempts: dict[tuple[str, int], list[dict[str, Any]]] = {}
    override: dict[str, Any] | None = None
    foreign = 0
    holding: set[str] = set()
    for table_prefix, key in ((p, k) for p in prefixes for k, _ in store.list(p)):
        m_plan, m_marker = _PLAN.search(key), _MARKER.search(key)
        if key != naming.cursor_override_key(table_prefix) and not m_plan and not m_marker:
            continue
        holding.add(table_prefix)
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
        s.notes.append(f"{foreign} plan or marker object(s) under {', '.join(prefixes)} do not name pipeline "
                       f"{state.pipeline} and table {state.table} in their metadata: not adopted")
    markers: dict[str, dict[int, dict[str, Any]]] = {}
    for (run_id, n), found in attempts.items():
        chosen = _choose(found, ledger)
        markers.setdefault(run_id, {})[n] = chosen
        for other in found:
            if other is not chosen:
                state.record_orphans([p["key"] for p in other["parts"]], run_id, n, other["attempt"],
                                     "attempt not chosen by rebuild")
    return plans, markers, override, holding


def rebuild(state: TableState, store: Store, prefixes: Sequence[str], ledger: dict[str, int]) -> RebuildSummary:
    """Replace the table's Redis state with what S3 and the ledger say (one MULTI). The
    prefixes: the table's (naming.table_prefixes, the legacy one last); the table then keeps
    writing where its objects were found."""
    owner = state.lock_owner()
    if owner:
        raise LockedError(state.table, owner)
    s = RebuildSummary()
    plans, markers, override, holding = _read_objects(state, store, prefixes, ledger, s)
    s.runs = len(plans)
    # A full reload's newest loaded run was swapped in; older runs' parts are superseded.
    loaded_runs = [r for r in plans if any(p["key"] in ledger for m in markers.get(r, {}).values()
                                           for p in m["parts"])]
    full = bool(plans) and plans[max(plans)].get("strategy") == "full"
    full_run = max(loaded_runs) if full and loaded_runs else ""
    abandoned = set(override.get("abandoned", [])) if override else set()
    runs = [_restored_run(run_id, plans[run_id], markers.get(run_id, {}), ledger, abandoned, full_run, s)
            for run_id in sorted(plans)]
    totals = {k: sum(r.totals[k] for r in runs) for k in _TOTALS}
    schema = next((plans[r]["schema"] for r in sorted(plans, reverse=True) if plans[r].get("schema")), None)
    manual = None
    if override and float(override["at"]) > max((float(p.get("planned_at") or 0) for p in plans.values()),
                                                default=0.0):
        # The cursor was set by hand after the last plan: keep the hand-set one.
        manual = override["cursor"]
        s.notes.append("cursor restored from the last `watermark set`")
    state.restore(RestoredTable(runs=runs, totals=totals, schema=schema, manual_cursor=manual, full_run=full_run))
    s.parts_loaded = sum(1 for runs_ in markers.values() for m in runs_.values()
                         for p in m["parts"] if p["key"] in ledger)
    s.rows_extracted, s.rows_loaded = totals["rows_extracted"], totals["rows_loaded"]
    s.cursor = state.cursor() and str(state.cursor())
    state.set_s3_layout(legacy=len(prefixes) > 1 and prefixes[-1] in holding and prefixes[0] not in holding)
    orphans = [k for k in ledger if not any(k.startswith(naming.run_prefix(p, r)) for p in prefixes for r in plans)]
    if orphans:
        s.notes.append(f"{len(orphans)} loaded parts in the ledger have no plan on S3 (deleted files?)")
    return s


_TOTALS = ("rows_extracted", "files_extracted", "bytes_extracted", "rows_loaded", "files_loaded")


def _restored_run(run_id: str, plan: dict[str, Any], run_markers: dict[int, dict[str, Any]],
                  ledger: dict[str, int], abandoned: set[str], full_run: str, s: RebuildSummary) -> RestoredRun:
    """One run's meta, chunks, totals and parts awaiting load, from its plan and markers."""
    # `watermark set` abandoned the runs that were unfinished then (extracted ones are not).
    is_abandoned = run_id in abandoned and len(run_markers) < len(plan["chunks"])
    chunks, tot = [], {k: 0 for k in _TOTALS}
    pending: dict[str, dict[str, Any]] = {}
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
            tot["rows_extracted"] += marker["rows"]
            tot["files_extracted"] += len(keys)
            tot["bytes_extracted"] += marker["bytes"]
            for p in marker["parts"]:
                if p["key"] in ledger:
                    tot["rows_loaded"] += p["rows"]
                    tot["files_loaded"] += 1
                elif is_abandoned or run_id > full_run:  # (abandon_run.lua lists an abandoned run's as orphans)
                    pending[p["key"]] = {"run": run_id, "chunk": n, "rows": p["rows"], "bytes": p["bytes"]}
                    s.parts_awaiting_load += 0 if is_abandoned else 1
            s.chunks_committed += 1
        chunks.append(entry)
    states = {c["state"] for c in chunks}
    status = (RunStatus.SUCCEEDED if states <= {"loaded"} else
              RunStatus.EXTRACTED if "pending" not in states else RunStatus.FAILED)
    meta = {**{k: str(v) for k, v in plan.items() if k not in ("chunks", "schema", "keyset", "run")},
            # A full reload keeps no cursor: as append_plan.lua does for each segment, none of
            # its chunks may move one (plan.json keeps its first segment's advance_from).
            **({"advance_from": str(len(chunks))} if plan.get("strategy") == "full" else {}),
            "status": status.value, "chunks": str(len(chunks)),
            "chunks_done": str(sum(1 for c in chunks if c["state"] != "pending")),
            "session": "1", "rebuilt": "1",
            **({"schema": json.dumps(plan["schema"])} if plan.get("schema") else {}),
            **{k: str(v) for k, v in tot.items()}}
    return RestoredRun(run_id=run_id, meta=meta, totals=tot, chunks=chunks, pending=pending,
                       abandoned=is_abandoned)
