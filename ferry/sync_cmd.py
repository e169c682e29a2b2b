"""`ferry sync`: check, enqueue, optionally follow. Exit codes an orchestrator can act on:
0 every run succeeded (or was queued), 1 a run failed, 2 bad input (nothing enqueued),
3 --timeout passed, 4 a table was busy with another run and not attached (without --wait).
The JSON report is written on every path, naming the runs that really exist."""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn

import click

from common.errors import TransientError
from common.model.naming import new_run_id
from common.model.records import RunStatus
from common.state.table import TableState
from ferry import console
from ferry.check_cmd import refuse_failed_tables

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_TIMEOUT, EXIT_BUSY = 1, 2, 3, 4


class Report:
    """Where the JSON report goes: a file, stdout (`-`), or nowhere."""

    def __init__(self, target: Path | None, pipeline: str) -> None:
        self.target = target
        self.pipeline = pipeline

    def write(self, doc: dict[str, Any]) -> None:
        if self.target is None:
            return
        text = json.dumps(doc, indent=2) + "\n"
        if str(self.target) == "-":
            click.echo(text, nl=False)
        else:
            self.target.write_text(text)

    def refuse(self, message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
        self.write({"status": "refused", "pipeline": self.pipeline, "reason": message, "exit_code": code})
        console.fail(message, code)


def _attachable(state: TableState, owner: str) -> bool:
    """An active run ferry knows (not a lock left by something else)."""
    return bool(state.run_meta(owner).get("status"))


@click.command()
@click.option("-p", "--pipeline", required=True, help="Pipeline name (pipelines/<name>.yml).")
@click.option("-t", "--table", "tables", multiple=True, help="schema.table; repeat; default: all.")
@click.option("--wait", is_flag=True, help="Follow the runs (attaching to one already active) and exit "
                                           "non-zero if one fails.")
@click.option("--limit", type=click.IntRange(min=1), help="Copy at most N rows per table this run.")
@click.option("--extract-only", is_flag=True, help="Stop after extraction; parts await a load.")
@click.option("--load-only", is_flag=True,
              help="Only load committed parts not yet loaded (of any run, failed ones too).")
@click.option("--json-output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Write a JSON report of the runs here (- for stdout), on every exit path.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0),
              help="With --wait: give up waiting after this many seconds (exit 3).")
def sync(pipeline: str, tables: tuple[str, ...], wait: bool, limit: int | None, extract_only: bool,
         load_only: bool, json_output: Path | None, timeout_s: float | None) -> None:
    """Run one sync of the pipeline's tables; an unfinished run is resumed, not replanned."""
    out = Report(json_output, pipeline)
    if extract_only and load_only:
        out.refuse("--extract-only and --load-only exclude each other")
    try:
        cfg = console.pipeline_config(pipeline)
        names = list(tables) or sorted(cfg.pipeline.tables)
        for name in names:
            console.table_settings(cfg, name)  # an unknown table fails here, before anything is queued
        client = console.redis_client()
        if not load_only:
            # The source part of `ferry check`: a missing table or column fails here, not in a worker.
            refuse_failed_tables(cfg, names)
    except SystemExit as exc:
        out.write({"status": "refused", "pipeline": pipeline, "reason": console.last_failure,
                   "exit_code": exc.code})
        raise
    states = [TableState(client, pipeline, name) for name in names]
    runs, busy = _start(states, pipeline, wait, limit, extract_only, load_only)
    started = sorted({r for _, r in runs})
    click.echo(f"run {', '.join(started) or '-'}: {len(runs)} table(s) of pipeline {pipeline} "
               f"{'followed' if wait else 'queued'}" + (f", {len(busy)} busy" if busy else ""), err=True)

    from ferry.progress import Progress, report, wait as follow, warn_unconsumed

    if wait and runs:
        # Asking the workers takes seconds (a broadcast waits for replies): beside the wait,
        # never before it, so a sync with nothing new ends as soon as its run does.
        threading.Thread(target=warn_unconsumed, args=({"load"} if load_only else {"plan", "extract", "load"},),
                         name="ferry-queue-check", daemon=True).start()
    try:
        progress = follow(runs, timeout_s) if wait and runs else [Progress.read(s, r) for s, r in runs]
    except TransientError as exc:  # Redis gone for longer than the outage tolerance
        out.write({"status": "failed", "pipeline": pipeline, "reason": str(exc),
                   "runs": {s.table: r for s, r in runs}, "exit_code": EXIT_FAILED})
        console.fail(str(exc), EXIT_FAILED)
    doc = report(pipeline, started[0] if len(started) == 1 else None, progress)
    doc["runs"] = {p.table: p.run_id for p in progress}
    if busy:
        doc["busy_tables"] = busy
    code = _exit_code(doc, wait, busy)
    doc["exit_code"] = code
    out.write(doc)
    _say_why(progress, doc, code, wait, busy, timeout_s)
    sys.exit(code)


def _start(states: list[TableState], pipeline: str, wait: bool, limit: int | None, extract_only: bool,
           load_only: bool) -> tuple[list[tuple[TableState, str]], list[str]]:
    """Launch (or, with --wait, attach to) each table's run: the (state, run) pairs to follow,
    and the tables skipped as busy."""
    from tasks.sync import launch  # the Celery app is only needed from here on

    new_run = new_run_id()
    runs: list[tuple[TableState, str]] = []
    busy: list[str] = []
    for st in states:
        owner = st.lock_owner()
        if owner and wait and _attachable(st, owner):
            click.echo(f"{st.table}: run {owner} is already active; attaching to it", err=True)
            runs.append((st, owner))
            continue
        got = launch(st, pipeline, new_run, limit, extract_only, load_only)
        if got.busy_with:
            click.echo(f"{st.table}: skipped, busy with active run {got.busy_with}", err=True)
            busy.append(st.table)
            continue
        assert got.run_id is not None
        if got.resumed:
            click.echo(f"{st.table}: resuming run {got.run_id} (session {got.session}): {got.chunks_left} "
                       f"chunk(s) not committed" + ("; --limit does not apply to a resumed plan" if limit else ""),
                       err=True)
        runs.append((st, got.run_id))
    return runs, busy


def _say_why(progress: list[Any], doc: dict[str, Any], code: int, wait: bool, busy: list[str],
             timeout_s: float | None) -> None:
    """The lines a person reads after the report: NULL cursors, failures, a timeout, busy tables."""
    from ferry.progress import LOST

    if wait:
        for p in progress:
            if p.null_cursor_rows:
                click.echo(f"ferry: {p.table}: {p.null_cursor_rows} rows have a NULL cursor and "
                           f"were not copied", err=True)
            if p.status in (RunStatus.FAILED, LOST):
                click.echo(f"ferry: {p.table} failed: {p.error}", err=True)
        if code == EXIT_TIMEOUT:
            click.echo(f"ferry: still {doc['status']} after {timeout_s}s", err=True)
    if busy:
        click.echo(f"ferry: {len(busy)} table(s) busy and not attached: {', '.join(busy)}", err=True)


def _exit_code(doc: dict[str, Any], wait: bool, busy: list[str]) -> int:
    if wait and doc["status"] == "failed":
        return EXIT_FAILED
    if wait and doc["table_metrics"] and doc["status"] != "succeeded":
        return EXIT_TIMEOUT
    return EXIT_BUSY if busy else 0
