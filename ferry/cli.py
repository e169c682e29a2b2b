"""The `ferry` command: sync tables, run workers, read watermarks."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from common.config import config_dir
from common.naming import new_run_id
from common.watermark import TableState
from ferry.console import fail as _fail, pipeline_config as _pipeline, redis_client as _redis, table_settings
from ferry.check_cmd import check, connections, refuse_failed_tables
from ferry.pipelines_cmd import pipelines
from ferry.runs_cmd import runs
from ferry.watermark_cmd import watermark


@click.group()
@click.version_option(package_name="ferry", prog_name="ferry")
@click.option("--config", "config", type=click.Path(file_okay=False, path_type=Path),
              help="Config directory (default: $FERRY_CONFIG, else the current directory).")
def cli(config: Path | None) -> None:
    """ferry copies MySQL tables into Redshift through Parquet on S3, on Celery workers."""
    # Set in the environment so workers started from here read the same directory.
    os.environ["FERRY_CONFIG"] = str(config_dir(config))


@cli.command()
@click.option("-p", "--pipeline", required=True, help="Pipeline name (pipelines/<name>.yml).")
@click.option("-t", "--table", "tables", multiple=True, help="schema.table; repeat; default: all.")
@click.option("--wait", is_flag=True, help="Follow the run and exit non-zero if it fails.")
@click.option("--limit", type=click.IntRange(min=1), help="Copy at most N rows per table this run.")
@click.option("--extract-only", is_flag=True, help="Stop after extraction; parts await a load.")
@click.option("--load-only", is_flag=True,
              help="Only load committed parts not yet loaded (of any run, failed ones too).")
@click.option("--json-output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a JSON report of the run here.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0),
              help="With --wait: give up waiting after this many seconds (exit 3).")
def sync(pipeline: str, tables: tuple[str, ...], wait: bool, limit: int | None, extract_only: bool,
         load_only: bool, json_output: Path | None, timeout_s: float | None) -> None:
    """Run one sync of the pipeline's tables; an unfinished run is resumed, not replanned."""
    if extract_only and load_only:
        _fail("--extract-only and --load-only exclude each other")
    cfg = _pipeline(pipeline)
    names = list(tables) or sorted(cfg.pipeline.tables)
    for name in names:
        table_settings(cfg, name)  # an unknown table fails here, before anything is queued
    client = _redis()
    if not load_only:
        # The source part of `ferry check`: a missing table or column fails here, not in a worker.
        refuse_failed_tables(cfg, names)
    states = [TableState(client, pipeline, name) for name in names]
    for st in states:
        owner = st.lock_owner()
        if owner:
            _fail(f"table {st.table} has an active run {owner}; nothing was started", 1)

    from tasks.failed import run_failed  # the Celery app is only needed from here on
    from tasks.load import load_run
    from tasks.plan import plan_table

    new_run = new_run_id()
    runs: list[tuple[TableState, str]] = []
    for st in states:
        resumed = None if load_only else st.resumable_run()
        run_id = resumed or new_run
        fields = dict(queued_at=f"{time.time():.3f}", pipeline=pipeline, table=st.table)
        if load_only:
            fields["kind"] = "load"
        session = st.begin_session(run_id, **fields)
        if load_only:
            load_run.apply_async(args=([], pipeline, st.table, run_id),
                                 kwargs={"take_lock": True, "session": session},
                                 link_error=run_failed.s(pipeline, st.table, run_id, session))
        else:
            plan_table.apply_async(args=[pipeline, st.table, run_id, limit, extract_only],
                                   kwargs={"session": session})
        if resumed:
            left = sum(1 for c in st.chunks(run_id) if c.state == "pending")
            click.echo(f"{st.table}: resuming run {run_id} (session {session}): {left} chunk(s) "
                       f"not committed" + ("; --limit does not apply to a resumed plan" if limit else ""),
                       err=True)
        runs.append((st, run_id))
    click.echo(f"run {new_run}: {len(states)} table(s) of pipeline {pipeline} queued", err=True)

    from ferry.progress import Progress, report, wait as follow

    progress = follow(runs, timeout_s) if wait else [Progress.read(s, r) for s, r in runs]
    doc = report(pipeline, new_run, progress)
    if json_output:
        json_output.write_text(json.dumps(doc, indent=2) + "\n")
    if wait:
        for p in progress:
            if p.null_cursor_rows:
                click.echo(f"ferry: {p.table}: {p.null_cursor_rows} rows have a NULL cursor and "
                           f"were not copied", err=True)
            if p.status == "failed":
                click.echo(f"ferry: {p.table} failed: {p.error}", err=True)
        if doc["status"] == "failed":
            sys.exit(1)
        if doc["status"] != "succeeded":
            _fail(f"run {new_run} still {doc['status']} after {timeout_s}s", 3)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=None,
              help="Pool processes (default: CPU count).")
@click.option("--queues", "-Q", default="plan,extract,load", show_default=True,
              help="Queues to consume, comma-separated.")
@click.option("--hostname", "-n", default=None, help="Worker name, e.g. extract1@%h.")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.argument("celery_options", nargs=-1, type=click.UNPROCESSED)
def worker(concurrency: int | None, queues: str, hostname: str | None, loglevel: str,
           celery_options: tuple[str, ...]) -> None:
    """Start a Celery worker (same as `celery -A tasks worker`, which also consumes plan,
    extract and load by default). Celery worker options not listed here pass through:
    --autoscale, --pool, --max-tasks-per-child, ..."""
    from tasks import app

    argv = ["worker", "--loglevel", loglevel, "--queues", queues, *celery_options]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    if hostname:
        argv += ["--hostname", hostname]
    app.worker_main(argv)


cli.add_command(watermark)
cli.add_command(check)
cli.add_command(connections)
cli.add_command(runs)
cli.add_command(pipelines)


def main() -> None:
    cli(prog_name="ferry")
