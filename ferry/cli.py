"""The `ferry` command: sync tables, run workers, read watermarks."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
import redis

from common import bounds
from common.config import PipelineConfig, config_dir, load_pipeline, redis_url
from common.errors import FerryError
from common.naming import new_run_id
from common.watermark import TableState


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"ferry: {message}", err=True)
    sys.exit(code)


def _redis() -> redis.Redis:
    client = redis.Redis.from_url(redis_url(), socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        _fail(f"cannot reach Redis at {redis_url()} ($FERRY_REDIS_URL): {exc}")
    return client


def _pipeline(name: str) -> PipelineConfig:
    try:
        return load_pipeline(name)
    except FerryError as exc:
        _fail(str(exc))
        raise  # unreachable


@click.group()
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
@click.option("--json-output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a JSON report of the run here.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0),
              help="With --wait: give up waiting after this many seconds (exit 3).")
def sync(pipeline: str, tables: tuple[str, ...], wait: bool, limit: int | None,
         json_output: Path | None, timeout_s: float | None) -> None:
    """Plan and run one sync of the pipeline's tables."""
    cfg = _pipeline(pipeline)
    names = list(tables) or sorted(cfg.pipeline.tables)
    for name in names:
        try:
            cfg.table(name)
        except FerryError as exc:
            _fail(str(exc))
    client = _redis()
    states = [TableState(client, pipeline, name) for name in names]
    for st in states:
        owner = st.lock_owner()
        if owner:
            _fail(f"table {st.table} has an active run {owner}; nothing was started", 1)

    from tasks.plan import plan_table  # the Celery app is only needed from here on

    run_id = new_run_id()
    for st in states:
        st.set_run_fields(run_id, status="queued", queued_at=time.time(),
                          pipeline=pipeline, table=st.table)
        plan_table.apply_async(args=[pipeline, st.table, run_id, limit])
    click.echo(f"run {run_id}: {len(states)} table(s) of pipeline {pipeline} queued", err=True)

    from ferry.progress import Progress, report, wait as follow

    progress = follow(states, run_id, timeout_s) if wait else [Progress.read(s, run_id) for s in states]
    doc = report(pipeline, run_id, progress)
    if json_output:
        json_output.write_text(json.dumps(doc, indent=2) + "\n")
    if wait:
        for p in progress:
            if p.status == "failed":
                click.echo(f"ferry: {p.table} failed: {p.error}", err=True)
        if doc["status"] == "failed":
            sys.exit(1)
        if doc["status"] != "succeeded":
            _fail(f"run {run_id} still {doc['status']} after {timeout_s}s", 3)


@cli.command()
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=None,
              help="Pool processes (default: CPU count).")
@click.option("--queues", "-Q", default="plan,extract,load", show_default=True,
              help="Queues to consume, comma-separated.")
@click.option("--hostname", "-n", default=None, help="Worker name, e.g. extract1@%h.")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
def worker(concurrency: int | None, queues: str, hostname: str | None, loglevel: str) -> None:
    """Start a Celery worker (same as `celery -A tasks worker`)."""
    from tasks import app

    argv = ["worker", "--loglevel", loglevel, "--queues", queues]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    if hostname:
        argv += ["--hostname", hostname]
    app.worker_main(argv)


@cli.group()
def watermark() -> None:
    """Read a table's cursor, status and totals."""


@watermark.command("get")
@click.option("-p", "--pipeline", required=True)
@click.option("-t", "--table", required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def watermark_get(pipeline: str, table: str, as_json: bool) -> None:
    """Show the committed cursor, status and totals of a table."""
    cfg = _pipeline(pipeline)
    try:
        cfg.table(table)
    except FerryError as exc:
        _fail(str(exc))
    st = TableState(_redis(), pipeline, table)
    raw = st.state()
    pending = st.pending_parts()
    doc: dict[str, Any] = {
        "pipeline": pipeline, "table": table,
        "cursor": None if st.cursor() is None else bounds.show(st.cursor()),
        "active_run": st.lock_owner(),
        "status_extract": raw.get("status_extract", "never run"),
        "status_load": raw.get("status_load", "never run"),
        "last_run": raw.get("last_run"), "last_status": raw.get("last_status"),
        "last_error": raw.get("last_error") or None,
        "rows_extracted": int(raw.get("rows_extracted", 0)),
        "files_extracted": int(raw.get("files_extracted", 0)),
        "rows_loaded": int(raw.get("rows_loaded", 0)),
        "files_loaded": int(raw.get("files_loaded", 0)),
        "parts_awaiting_load": len(pending),
        "rows_awaiting_load": sum(p.rows for p in pending),
    }
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    width = max(map(len, doc))
    for key, value in doc.items():
        click.echo(f"{key:<{width}}  {'' if value is None else value}")


def main() -> None:
    cli(prog_name="ferry")
