"""`ferry runs show`: every chunk of a run, with its range, state, rows, bytes, worker,
attempts, seconds and the error of its last failed attempt."""
from __future__ import annotations

import json
from typing import Any

import click

from common.model import bounds
from common.model.records import Chunk
from common.state.table import TableState
from ferry.console import fail, pipeline_config, redis_client, table_settings


def _chunk_doc(c: Chunk) -> dict[str, Any]:
    seconds = round(c.committed_at - c.started_at, 3) if c.started_at and c.committed_at else None
    return {"chunk": c.number, "lo": bounds.show(c.lo), "hi": bounds.show(c.hi), "state": c.state,
            "rows": c.rows, "bytes": c.bytes, "parts": len(c.parts), "worker": c.worker or c.attempt_worker,
            "attempts": c.attempts, "seconds": seconds, "error": c.error or None,
            "error_session": c.error_session or None}


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
    if run_id not in known and run_id <= st.state().get("expired_before", ""):
        fail(f"run {run_id} of {table} finished more than FERRY_RUN_RETENTION_DAYS ago and its Redis state "
             f"expired (its plan stays on S3)")
    if run_id not in known:
        fail(f"table {table} has no run {run_id!r} (latest: {', '.join(known[-5:])})")
    meta = st.run_meta(run_id)
    chunks = [_chunk_doc(c) for c in st.chunks(run_id)]
    refusals = st.refusals()
    fates = {**{r.chunk: ("refused", r) for r in refusals.waiting().values() if r.run_id == run_id},
             **{r.chunk: ("skipped", r) for r in refusals.skipped() if r.run_id == run_id}}
    for c in chunks:
        if c["chunk"] in fates:
            fate, r = fates[c["chunk"]]
            c["state"] = fate
            c["refused"] = {"error": r.error, "column": r.column, "times": r.times, "skipped_at": r.skipped_at,
                            "reason": r.reason or None}
    doc = {"run_id": run_id, "table": table, "status": meta.get("status"), "session": int(meta.get("session", 1)),
           "error": meta.get("error") or None, "chunks": chunks,
           # A plan still being probed (or cut short: the resumed run finishes it) up to this key.
           "planned_up_to": meta.get("plan_from") if meta.get("planning") == "1" else None}
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    planned = (f" (planned up to {doc['planned_up_to']} of {meta.get('hi')}: more chunks follow)"
               if doc["planned_up_to"] else "")
    click.echo(f"run {run_id} of {table}: {doc['status']}, session {doc['session']}, {len(chunks)} chunk(s)"
               + planned + (f"; error: {doc['error']}" if doc["error"] else ""))
    click.echo(f"{'chunk':>5}  {'range':<30} {'state':<8} {'rows':>10} {'bytes':>12} {'att':>3} {'s':>7}  worker")
    for c in chunks:
        span = f"({c['lo']}, {c['hi']}]"
        seconds = "" if c["seconds"] is None else f"{c['seconds']:.1f}"
        click.echo(f"{c['chunk']:>5}  {span[:30]:<30} {c['state']:<8} {c['rows']:>10,} {c['bytes']:>12,} "
                   f"{c['attempts']:>3} {seconds:>7}  {c['worker']}")
        if c["error"]:
            when = f" (session {c['error_session']})" if c["error_session"] else ""
            click.echo(f"       error{when}: {c['error']}")
        if c.get("refused"):
            r = c["refused"]
            column = f" (column {r['column']})" if r["column"] else ""
            click.echo(f"       refused by the warehouse{column}, {r['times']} time(s): {r['error']}")
            if c["state"] == "skipped":
                click.echo("       skipped by the operator" + (f": {r['reason']}" if r["reason"] else ""))
            else:
                click.echo(f"       waits: each load tries it again; `ferry watermark skip-range -p {pipeline} "
                           f"-t {table} --run {run_id} --chunk {c['chunk']} --yes` gives it up")


@click.command()
@click.option("-p", "--pipeline", required=True)
@click.option("-t", "--table", required=True)
@click.option("--yes", is_flag=True, help="Confirm.")
def cancel(pipeline: str, table: str, yes: bool) -> None:
    """Cancel the table's active run: its queued and running chunk messages become no-ops,
    its locks are released; committed parts stay and the next sync loads them (`ferry
    retry` resumes the run instead)."""
    table_settings(pipeline_config(pipeline), table)
    st = TableState(redis_client(), pipeline, table)
    run_id = st.lock_owner()
    if run_id is None:
        fail(f"table {table} has no active run; nothing was cancelled")
    if not yes:
        fail(f"this cancels run {run_id} of {table}; add --yes to do it")
    st.cancel_run(run_id)
    click.echo(f"{table}: run {run_id} cancelled; its committed parts stay and load with the next sync "
               f"(`ferry retry -p {pipeline} -t {table}` resumes it instead)")


@click.command()
@click.option("-p", "--pipeline", required=True)
@click.option("-t", "--table", "tables", multiple=True, help="schema.table; repeat; default: all.")
def retry(pipeline: str, tables: tuple[str, ...]) -> None:
    """Resume the failed or cancelled runs of these tables: only their chunks that are not
    committed run again; no new range is planned. Exit 2 when there is nothing to retry."""
    cfg = pipeline_config(pipeline)
    names = list(tables) or sorted(cfg.pipeline.tables)
    client = redis_client()
    todo = []
    for name in names:
        table_settings(cfg, name)
        st = TableState(client, pipeline, name)
        if st.retryable_run() is None:
            continue
        owner = st.lock_owner()
        if owner:
            click.echo(f"{name}: busy with active run {owner}; not retried", err=True)
        else:
            todo.append(st)
    if not todo:
        fail(f"nothing to retry in pipeline {pipeline}" + (f" for {', '.join(tables)}" if tables else ""))
    from tasks.sync import launch  # the Celery app is only needed from here on

    for st in todo:
        got = launch(st, pipeline, None, retry=True)
        if got.busy_with:
            click.echo(f"{st.table}: busy with active run {got.busy_with}; not retried", err=True)
        elif got.run_id:
            click.echo(f"{st.table}: retrying run {got.run_id} (session {got.session}): "
                       f"{got.chunks_left} chunk(s) not committed")
