"""`ferry status`: is everything up (Redis, the S3 bucket, each warehouse, a worker on every
queue), and where each table stands (cursor, active run and its progress, last run,
parts awaiting load, last error). Exit 0 when everything it checks is up, 1 otherwise."""
from __future__ import annotations

import json
import time
from typing import Any

import click

from common.model import bounds
from common.config.files import load_pipeline
from common.config.settings import config_dir
from common.errors import FerryError
from common.store.s3 import Store, make_client
from common.state.table import TableState
from ferry.console import fail, redis_client

QUEUES = ("plan", "extract", "load")
STALE_S = 600


def _workers() -> dict[str, list[str]]:
    """Worker name -> queues it consumes (asks the workers over the broker, 2 s)."""
    from tasks import app
    replies = app.control.inspect(timeout=2.0).active_queues() or {}
    # (Each worker's own direct queue, for `ferry health`, is left out.)
    return {name: sorted(q["name"] for q in queues if not q["name"].endswith(".dq2"))
            for name, queues in replies.items()}


def _run_doc(st: TableState, run_id: str) -> dict[str, Any]:
    meta = st.run_meta(run_id)
    chunks = st.chunks(run_id)
    done = sum(1 for c in chunks if c.state != "pending")
    session = int(meta.get("session") or 1)
    # A chunk failed in this session; an error of an earlier session is history (runs show).
    failed = sum(1 for c in chunks if c.state == "pending" and c.error and c.error_session in (0, session))
    rows = int(meta.get("rows_extracted") or 0)
    started = float(meta.get("queued_at") or meta.get("planned_at") or time.time())
    finished = float(meta["finished_at"]) if meta.get("finished_at") else None
    last = max([c.committed_at or 0 for c in chunks] + [c.started_at or 0 for c in chunks] + [started])
    seconds = (finished or time.time()) - started
    return {"run_id": run_id, "status": meta.get("status"), "chunks": len(chunks), "chunks_done": done,
            "chunks_failed": failed, "chunks_pending": len(chunks) - done, "rows": rows,
            "rows_loaded": int(meta.get("rows_loaded") or 0),
            "rows_per_s": round(rows / seconds) if seconds > 0 else 0, "seconds": round(seconds, 1),
            "last_progress_s_ago": round(time.time() - last, 1),
            "finished_at": finished, "error": meta.get("error") or None}


def _table_doc(st: TableState, strategy: str) -> dict[str, Any]:
    state = st.state()
    cursor = st.cursor()
    owner = st.lock_owner()
    doc: dict[str, Any] = {"strategy": strategy, "cursor": None if cursor is None else bounds.show(cursor),
                           "status_extract": state.get("status_extract", "never run"),
                           "status_load": state.get("status_load", "never run"),
                           "parts_awaiting_load": len(st.pending_parts()),
                           "last_error": state.get("last_error") or None}
    if owner:
        active = _run_doc(st, owner) if st.run_meta(owner) else {"run_id": owner, "status": "unknown"}
        active["stale"] = active.get("last_progress_s_ago", 0) > STALE_S
        doc["active_run"] = active
    last = state.get("last_run")
    if last and last != owner:
        doc["last_run"] = _run_doc(st, last)
    rec = reconcile_doc(st)
    if rec:
        doc["reconcile"] = rec
    return doc


def reconcile_doc(st: TableState) -> dict[str, Any] | None:
    """The table's last reconcile and last complete pass (`ferry status`, `watermark get`)."""
    r = st.reconcile_state()
    if not r:
        return None
    at = lambda f: float(r[f]) if r.get(f) else None  # noqa: E731
    return {"last_at": at("last_at"), "last_run": r.get("last_run"), "last_mode": r.get("last_mode"),
            "last_status": r.get("last_status"), "last_dry_run": r.get("last_dry_run") == "1",
            "last_rows_deleted": int(r.get("last_rows_deleted") or 0),
            "last_rows_repaired": int(r.get("last_rows_repaired") or 0),
            "rows_deleted_total": int(r.get("rows_deleted_total") or 0),
            "rows_repaired_total": int(r.get("rows_repaired_total") or 0),
            "last_complete_pass_at": at("last_complete_at"), "last_complete_pass_mode": r.get("last_complete_mode"),
            "pass_in_progress": "pass_from" in r,
            "pass_from": bounds.show(bounds.decode(r["pass_from"])) if r.get("pass_from") else None}


def reconcile_line(rec: dict[str, Any]) -> str:
    when = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "never"  # noqa: E731
    return (f"    reconcile: last {when(rec['last_at'])} ({rec['last_mode']} mode{', dry run' if rec['last_dry_run'] else ''}"
            f", {rec['last_status']}): {rec['last_rows_deleted']:,} deleted, {rec['last_rows_repaired']:,} repaired; "
            f"last complete pass {when(rec['last_complete_pass_at'])}"
            + (f"; pass in progress after {rec['pass_from']}" if rec["pass_in_progress"] else ""))


@click.command()
@click.option("-p", "--pipeline", "pipelines", multiple=True, help="Pipeline; repeat; default: all.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(pipelines: tuple[str, ...], as_json: bool) -> None:
    """Services, workers and queues, and every table of the pipelines."""
    names = list(pipelines) or sorted(p.stem for p in (config_dir() / "pipelines").glob("*.yml"))
    if not names:
        fail(f"no pipelines in {config_dir() / 'pipelines'}")
    client = redis_client()  # exits 2 naming Redis if it is down
    problems: list[str] = []
    doc: dict[str, Any] = {"redis": "up", "pipelines": {}}
    workers = _workers()
    doc["workers"] = workers
    for queue in QUEUES:
        if not any(queue in qs for qs in workers.values()):
            problems.append(f"no worker consumes the {queue!r} queue")
    from workers import resources
    checked: set[Any] = set()
    for name in names:
        try:
            cfg = load_pipeline(name)
        except FerryError as exc:
            problems.append(str(exc).splitlines()[0])
            continue
        for what, probe in ((f"S3 bucket {cfg.s3.bucket}", lambda: Store(make_client(cfg.s3), cfg.s3.bucket)
                             .client.head_bucket(Bucket=cfg.s3.bucket)),
                            (f"warehouse {cfg.pipeline.target}", lambda: _ping_warehouse(resources, cfg))):
            if what in checked:
                continue
            checked.add(what)
            try:
                probe()
            except Exception as exc:  # noqa: BLE001 - down or refused: say which
                problems.append(f"{what} unreachable: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
        tables = {}
        for key in sorted(cfg.pipeline.tables):
            tables[key] = _table_doc(TableState(client, name, key), cfg.table(key).strategy)
            if tables[key].get("active_run", {}).get("stale"):
                problems.append(f"{name} {key}: active run {tables[key]['active_run']['run_id']} has not "
                                f"progressed for over {STALE_S // 60} min (ferry cancel?)")
        doc["pipelines"][name] = tables
    doc["problems"] = problems
    resources.close_all()
    if as_json:
        click.echo(json.dumps(doc, indent=2, default=str))
    else:
        _print(doc)
    raise SystemExit(1 if problems else 0)


def _ping_warehouse(resources: Any, cfg: Any) -> None:
    with resources.warehouse(cfg).engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


def _print(doc: dict[str, Any]) -> None:
    click.echo("workers: " + ("; ".join(f"{w} ({', '.join(q)})" for w, q in doc["workers"].items()) or "none"))
    for name, tables in doc["pipelines"].items():
        click.echo(f"pipeline {name}")
        for key, t in tables.items():
            line = (f"  {key}: {t['strategy']}, cursor {t['cursor'] or '-'}, extract {t['status_extract']}, "
                    f"load {t['status_load']}, {t['parts_awaiting_load']} part(s) awaiting load")
            click.echo(line)
            if "active_run" in t:
                a = t["active_run"]
                click.echo(f"    active {a['run_id']}: {a.get('status')}, chunks {a.get('chunks_done', '?')}/"
                           f"{a.get('chunks', '?')} ({a.get('chunks_failed', 0)} failed), rows {a.get('rows', 0):,} "
                           f"({a.get('rows_per_s', 0):,}/s, {a.get('rows_loaded', 0):,} loaded), last progress {a.get('last_progress_s_ago', '?')} s ago"
                           + (" STALE" if a.get("stale") else ""))
            if "last_run" in t:
                r = t["last_run"]
                click.echo(f"    last {r['run_id']}: {r['status']}, rows {r['rows']:,} in {r['seconds']} s "
                           f"({r['rows_per_s']:,}/s)")
            if "reconcile" in t:
                click.echo(reconcile_line(t["reconcile"]))
            if t["last_error"]:
                click.echo(f"    last error: {t['last_error']}")
    for problem in doc["problems"]:
        click.echo(f"WARNING: {problem}")
