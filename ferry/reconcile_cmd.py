"""`ferry reconcile`: make the target converge to the source. A reconcile is a run of the
table (it takes the table's lock): its ranges are compared and repaired by the workers
(tasks/reconcile.py), never in this process. Exit codes as `ferry sync`: 0 converged (or
queued), 1 failed (and, with --dry-run, differences found), 2 bad input (nothing queued),
3 --timeout passed, 4 the table was busy with another run."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from common.config.pipeline import reconcile_refusal
from common.errors import TransientError
from common.model.naming import new_run_id
from common.model.records import RunStatus
from common.state.table import TableState
from ferry import console
from ferry.check_cmd import refuse_failed_tables
from ferry.sync_cmd import EXIT_BUSY, EXIT_FAILED, EXIT_TIMEOUT, Report

FIRST_DIFFERENCES = 20
"""The report names the keys of at most this many differences."""


def reconcile_report(st: TableState, run_id: str) -> dict[str, Any]:
    """What a reconcile run found and did, from its state (also `ferry runs show`)."""
    m = st.run_meta(run_id)
    n = lambda f: int(m.get(f) or 0)  # noqa: E731
    dry_run = m.get("rec_dry_run") == "1"
    ended = m.get("status") in (RunStatus.SUCCEEDED, RunStatus.EXTRACTED)
    first: list[dict[str, Any]] = []
    for chunk in st.chunks(run_id):
        found = chunk.reconcile or {}
        first += list(found.get("first") or [])  # (an empty list may come back from Lua as {})
    started = float(m.get("queued_at") or 0)
    finished = float(m["finished_at"]) if m.get("finished_at") else None
    return {"table": st.table, "run_id": run_id, "status": m.get("status", "lost"), "mode": m.get("rec_mode"),
            "dry_run": dry_run, "whole_pass": m.get("rec_whole") == "1",
            "ranges": n("chunks"), "ranges_checked": n("rec_ranges"), "ranges_differing": n("rec_leaves"),
            "ranges_read_without_checksum": n("rec_read_whole"),
            "rows_compared": n("rec_rows_compared"), "target_rows": n("rec_target_rows"),
            "rows_only_in_source": n("rec_only_source"), "rows_differing": n("rec_differs"),
            "rows_only_in_target": n("rec_only_target"),
            "rows_deleted": n("rows_deleted"), "rows_repaired": n("rows_extracted") if ended and not dry_run else 0,
            "pass_complete": ended and not dry_run and m.get("rec_pass_end") == "1",
            "throttle_pauses": n("rec_throttle_waits"), "throttle_seconds": n("rec_throttle_ms") / 1000,
            "seconds": round(((finished or 0) - started) if finished and started else 0.0, 3),
            "first_differences": first[:FIRST_DIFFERENCES],
            **({"error": m["error"]} if m.get("error") else {})}


def _print(doc: dict[str, Any], err: bool = False) -> None:
    """The report as text (on stderr when the JSON report goes to stdout)."""
    echo = lambda text: click.echo(text, err=err)  # noqa: E731
    verb = "would delete" if doc["dry_run"] else "deleted"
    echo(f"reconcile {doc['table']} ({doc['mode']} mode{', dry run' if doc['dry_run'] else ''}): run "
         f"{doc['run_id']} {doc['status']}; {doc['ranges_checked']} of {doc['ranges']} range(s) checked, "
         f"{doc['rows_compared']:,} source rows compared in {doc['seconds']:,.1f} s")
    echo(f"  {doc['rows_only_in_target']:,} only in the target ({verb} {doc['rows_deleted']:,}), "
         f"{doc['rows_only_in_source']:,} only in the source, {doc['rows_differing']:,} differing "
         f"({'would repair' if doc['dry_run'] else 'repaired'} {doc['rows_repaired']:,})")
    for d in doc["first_differences"]:
        echo(f"  key {d['key']}: {d['what']}")


@click.command("reconcile")
@click.option("-p", "--pipeline", required=True, help="Pipeline name (pipelines/<name>.yml).")
@click.option("-t", "--table", required=True, help="schema.table")
@click.option("--mode", type=click.Choice(["keys", "rows"]),
              help="keys: compare the key sets (deletes, missing rows; reads only the key index); rows: "
                   "full-row checksums too (default: the table's reconcile.mode, else rows).")
@click.option("--dry-run", is_flag=True, help="Find and report the differences; change nothing.")
@click.option("--wait", is_flag=True, help="Follow the reconcile (attaching to one already active) and "
                                           "exit non-zero if it fails.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0),
              help="With --wait: give up waiting after this many seconds (exit 3).")
@click.option("--json-output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Write the JSON report here (- for stdout), on every exit path.")
def reconcile(pipeline: str, table: str, mode: str | None, dry_run: bool, wait: bool,
              timeout_s: float | None, json_output: Path | None) -> None:
    """Compare the table on both sides by range checksums, over the whole key range; delete
    from the target the rows the source no longer has and copy again the rows it lacks or
    holds differently."""
    out = Report(json_output, pipeline)
    try:
        cfg = console.pipeline_config(pipeline)
        settings = console.table_settings(cfg, table)
        why = reconcile_refusal(settings)
        if why:
            out.refuse(f"table {table}: {why}; nothing was queued")
        st = TableState(console.redis_client(), pipeline, table)
        if st.schema() is None:
            out.refuse(f"table {table} of pipeline {pipeline} has never been synced: nothing to reconcile "
                       f"(run `ferry sync -p {pipeline} -t {table}` first); nothing was queued")
        refuse_failed_tables(cfg, [table])
    except SystemExit as exc:
        if exc.code and console.last_failure:
            out.write({"status": "refused", "pipeline": pipeline, "reason": console.last_failure,
                       "exit_code": exc.code})
        raise
    from tasks.context import TableContext
    from tasks.reconcile import fields
    from tasks.sync import launch

    ctx = TableContext(cfg=cfg, table=settings, state=st)
    wanted = fields(ctx, dry_run=dry_run, whole_pass=True, mode=mode)
    owner = st.lock_owner()
    run_id = None
    if owner and wait and st.run_fields(owner, "kind")["kind"] == "reconcile":
        click.echo(f"{table}: reconcile {owner} is already active; attaching to it", err=True)
        run_id = owner
    else:
        got = launch(st, pipeline, new_run_id(), **wanted)
        if got.busy_with:
            message = f"{table}: busy with active run {got.busy_with}; nothing was queued (try again when it ends)"
            out.write({"status": "busy", "pipeline": pipeline, "table": table, "busy_with": got.busy_with,
                       "exit_code": EXIT_BUSY})
            console.fail(message, EXIT_BUSY)
        run_id = got.run_id
        assert run_id is not None
        click.echo(f"{table}: reconcile {run_id} {'resumed' if got.resumed else 'queued'} "
                   f"({wanted['rec_mode']} mode{', dry run' if dry_run else ''})", err=True)
    if not wait:
        out.write({"status": "queued", "pipeline": pipeline, "table": table, "run_id": run_id, "exit_code": 0})
        sys.exit(0)

    from ferry.progress import wait as follow

    try:
        progress = follow([(st, run_id)], timeout_s)
    except TransientError as exc:
        out.write({"status": "failed", "pipeline": pipeline, "reason": str(exc), "run_id": run_id,
                   "exit_code": EXIT_FAILED})
        console.fail(str(exc), EXIT_FAILED)
    doc = reconcile_report(st, run_id)
    status = progress[0].status
    if status in (RunStatus.SUCCEEDED, RunStatus.EXTRACTED):
        found = doc["rows_only_in_source"] + doc["rows_differing"] + doc["rows_only_in_target"]
        code = EXIT_FAILED if doc["dry_run"] and found else 0
    elif status in (RunStatus.FAILED, RunStatus.ABANDONED, RunStatus.CANCELLED, "lost"):
        code = EXIT_FAILED
    else:
        code = EXIT_TIMEOUT
    doc.update(pipeline=pipeline, exit_code=code)
    out.write(doc)
    _print(doc, err=str(json_output) == "-")
    if code == EXIT_TIMEOUT:
        click.echo(f"ferry: reconcile still {status} after {timeout_s}s", err=True)
    elif status not in (RunStatus.SUCCEEDED, RunStatus.EXTRACTED):
        click.echo(f"ferry: reconcile of {table} {status}: {doc.get('error', '')}", err=True)
    sys.exit(code)
