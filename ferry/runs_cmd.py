"""`ferry runs show`: every chunk of a run, with its range, state, rows, bytes, worker,
attempts, seconds and the error of its last failed attempt."""
from __future__ import annotations

import json
from typing import Any

import click

from common import bounds
from common.watermark import Chunk, TableState
from ferry.console import fail, pipeline_config, redis_client, table_settings


def _chunk_doc(c: Chunk) -> dict[str, Any]:
    seconds = round(c.committed_at - c.started_at, 3) if c.started_at and c.committed_at else None
    return {"chunk": c.number, "lo": bounds.show(c.lo), "hi": bounds.show(c.hi), "state": c.state,
            "rows": c.rows, "bytes": c.bytes, "parts": len(c.parts), "worker": c.worker or c.attempt_worker,
            "attempts": c.attempts, "seconds": seconds, "error": c.error or None}


@click.group()
def runs() -> None:
    """Look at a table's runs."""


@runs.command("show")
@click.option("-p", "--pipeline", required=True)
@click.option("-t", "--table", required=True)
@click.argument("run_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(pipeline: str, table: str, run_id: str | None, as_json: bool) -> None:
    """Every chunk of RUN (default: the table's latest run)."""
    table_settings(pipeline_config(pipeline), table)
    st = TableState(redis_client(), pipeline, table)
    known = st.runs()
    if not known:
        fail(f"table {table} of pipeline {pipeline} has no run yet")
    run_id = run_id or known[-1]
    if run_id not in known:
        fail(f"table {table} has no run {run_id!r} (latest: {', '.join(known[-5:])})")
    meta = st.run_meta(run_id)
    chunks = [_chunk_doc(c) for c in st.chunks(run_id)]
    doc = {"run_id": run_id, "table": table, "status": meta.get("status"), "session": int(meta.get("session", 1)),
           "error": meta.get("error") or None, "chunks": chunks}
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"run {run_id} of {table}: {doc['status']}, session {doc['session']}, {len(chunks)} chunk(s)"
               + (f"; error: {doc['error']}" if doc["error"] else ""))
    click.echo(f"{'chunk':>5}  {'range':<30} {'state':<8} {'rows':>10} {'bytes':>12} {'att':>3} {'s':>7}  worker")
    for c in chunks:
        span = f"({c['lo']}, {c['hi']}]"
        seconds = "" if c["seconds"] is None else f"{c['seconds']:.1f}"
        click.echo(f"{c['chunk']:>5}  {span[:30]:<30} {c['state']:<8} {c['rows']:>10,} {c['bytes']:>12,} "
                   f"{c['attempts']:>3} {seconds:>7}  {c['worker']}")
        if c["error"]:
            click.echo(f"       error: {c['error']}")
