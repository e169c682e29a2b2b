"""`ferry watermark`: read, set, reset and rebuild a table's cursor and totals."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import click

from common.model import bounds, naming
from common.model.bounds import Key
from common.config.pipeline import PipelineConfig, TableSettings
from common.errors import FerryError, LockedError
from common.store.s3 import Store, make_client
from common.model.types import TableSchema
from common.state.table import TableState
from ferry.console import fail, pipeline_config, redis_client, table_settings


def _open(pipeline: str, table: str) -> tuple[PipelineConfig, TableSettings, TableState]:
    cfg = pipeline_config(pipeline)
    settings = table_settings(cfg, table)
    return cfg, settings, TableState(redis_client(), pipeline, table)


def _prefix(cfg: PipelineConfig, table: str, st: TableState) -> str:
    """Where the table writes (its recorded layout)."""
    return naming.table_prefix(cfg.s3.prefix, cfg.s3_prefix, table, legacy=st.s3_legacy())


def _prefixes(cfg: PipelineConfig, table: str) -> list[str]:
    """Everywhere the table's objects may be (the legacy, percent-encoded prefix too)."""
    return naming.table_prefixes(cfg.s3.prefix, cfg.s3_prefix, table)


@click.group()
def watermark() -> None:
    """Read, set, reset or rebuild a table's cursor and totals."""


@watermark.command("get")
@click.option("-p", "--pipeline", required=True)
@click.option("-t", "--table", required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--show-files", is_flag=True, help="List the parts awaiting load and those loaded.")
def get(pipeline: str, table: str, as_json: bool, show_files: bool) -> None:
    """Show the committed cursor, status, session and cumulative totals of a table."""
    cfg, _, st = _open(pipeline, table)
    raw = st.state()
    pending = st.pending_parts()
    cursor = st.cursor()
    doc: dict[str, Any] = {
        "pipeline": pipeline, "table": table,
        "cursor": None if cursor is None else bounds.show(cursor),
        "active_run": st.lock_owner(),
        "status_extract": raw.get("status_extract", "never run"),
        "status_load": raw.get("status_load", "never run"),
        "last_run": raw.get("last_run"), "last_status": raw.get("last_status"),
        "last_error": raw.get("last_error") or None,
        "rows_extracted": int(raw.get("rows_extracted", 0)),
        "files_extracted": int(raw.get("files_extracted", 0)),
        "rows_loaded": int(raw.get("rows_loaded", 0)),
        "files_loaded": int(raw.get("files_loaded", 0)),
        "values_truncated": int(raw.get("values_truncated", 0)),
        "parts_awaiting_load": len(pending),
        "rows_awaiting_load": sum(p.rows for p in pending),
    }
    refusals = st.refusals()
    doc["rows_skipped"] = int(raw.get("rows_skipped", 0))
    doc["refused_ranges"] = [r.describe(table) + f" (refused {r.times} time(s))" for r in refusals.waiting().values()]
    doc["skipped_ranges"] = [f"run {r.run_id} chunk {r.chunk} ({r.lo}, {r.hi}]: {r.rows:,} rows skipped"
                             + (f" ({r.reason})" if r.reason else "") for r in refusals.skipped()]
    runs = st.runs()
    if runs:
        last = runs[-1]
        meta = st.run_meta(last)
        session = st.session_totals(last)
        doc["session"] = {"run_id": last, "session": int(meta.get("session", 1)),
                          "status": meta.get("status"),
                          "rows_extracted": int(session.get("rows_extracted", 0)),
                          "files_extracted": int(session.get("files_extracted", 0)),
                          "rows_loaded": int(session.get("rows_loaded", 0)),
                          "files_loaded": int(session.get("files_loaded", 0))}
    from ferry.status_cmd import reconcile_doc
    rec = reconcile_doc(st)
    if rec:
        doc["reconcile"] = rec
    if show_files:
        from common.recovery import orphans

        doc["files_awaiting_load"] = [p.key for p in pending]
        doc["files_loaded_list"] = [key for run in runs for c in st.chunks(run)
                                    if c.state == "loaded" for key in c.parts]
        store = Store(make_client(cfg.s3), cfg.s3.bucket)
        found = {k: why for prefix in _prefixes(cfg, table) for k, why in orphans.find(st, store, prefix).items()}
        doc["files_orphaned"] = [f"{key} ({why})" for key, why in sorted(found.items())]
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    width = max(map(len, doc))
    for key, value in doc.items():
        if isinstance(value, list):
            click.echo(f"{key:<{width}}  {len(value)}")
            for item in value:
                click.echo(f"  {item}")
        elif isinstance(value, dict):
            click.echo(f"{key:<{width}}  " + ", ".join(f"{k}={v}" for k, v in value.items()))
        else:
            click.echo(f"{key:<{width}}  {'' if value is None else value}")


def _key_value(text: str, schema: TableSchema, column: str) -> Any:
    """A key value given on the command line, typed like the column it is for."""
    spec = schema.column(column)
    try:
        if spec.kind == "int":
            return int(text)
        if spec.kind == "decimal":
            value = Decimal(text)
            return int(value) if spec.scale == 0 and value == value.to_integral_value() else value
    except (ValueError, ArithmeticError):
        fail(f"--id {text!r}: column {column} is {spec.mysql_type}")
    return text


def _schema(cfg: PipelineConfig, settings: TableSettings, st: TableState) -> TableSchema:
    """The recorded mapping, else the source's (before the first sync nothing is recorded)."""
    schema = st.schema()
    if schema is not None:
        return schema
    from common.source import catalog, connection
    try:
        conn = connection.connect(cfg.source)
        try:
            return catalog.read_schema(conn, settings)
        finally:
            conn.close()
    except FerryError as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - the source is down or refuses us
        fail(f"cannot read the key columns of {settings.key} from the source: {exc}")


def _new_cursor(cfg: PipelineConfig, settings: TableSettings, st: TableState, id_text: str | None,
                ts_text: str | None) -> Key:
    current = st.cursor()
    schema = _schema(cfg, settings, st)
    pk = list(schema.key)
    if settings.strategy == "full":
        fail(f"table {settings.key} uses the full strategy: it has no cursor to set")
    if settings.strategy == "id":
        if ts_text is not None:
            fail(f"table {settings.key} uses the id strategy: give --id, not --timestamp")
        return (_key_value(id_text or "", schema, pk[0]),)
    try:
        ts = bounds.parse_timestamp(ts_text) if ts_text is not None else (current[0] if current else None)
    except ValueError as exc:
        fail(f"--timestamp: {exc}")
    if ts is None:
        fail(f"table {settings.key} has no cursor yet: give --timestamp")
    if id_text is None:
        return (ts, *(current[1:] if current else ()))
    if len(pk) != 1:
        fail(f"--id needs a one-column primary key; {settings.key} has {pk or 'none recorded'}")
    return (ts, _key_value(id_text, schema, pk[0]))


@watermark.command("set")
@click.option("-p", "--pipeline", required=True)
@click.option("-t", "--table", required=True)
@click.option("--id", "id_text", help="Key value: the id cursor, or the timestamp cursor's tie-breaker.")
@click.option("--timestamp", "ts_text", help="Timestamp cursor value (ISO 8601 or epoch seconds).")
def set_(pipeline: str, table: str, id_text: str | None, ts_text: str | None) -> None:
    """Move the cursor; the next run reads rows after it. Setting one part keeps the other."""
    if id_text is None and ts_text is None:
        fail("give --id, --timestamp or both")
    cfg, settings, st = _open(pipeline, table)
    owner = st.lock_owner()
    if owner:
        fail(f"table {table} has an active run {owner}; the cursor was not changed", 1)
    key = _new_cursor(cfg, settings, st, id_text, ts_text)
    try:
        st.set_cursor(key)
    except LockedError as exc:
        fail(f"{exc}; the cursor was not changed", 1)
    abandoned = st.abandon_unfinished()
    # Kept on S3 too, so `watermark rebuild` restores this cursor, not the last run's.
    Store(make_client(cfg.s3), cfg.s3.bucket).put(
        naming.cursor_override_key(_prefix(cfg, table, st)),
        json.dumps({"cursor": bounds.encode(key), "at": time.time(),
                    "abandoned": st.runs()}).encode(),
        metadata=naming.object_metadata(pipeline, table), content_type="application/json")
    click.echo(f"{table}: cursor set to {bounds.show(key)}"
               + (f"; unfinished run(s) {', '.join(abandoned)} will not be resumed" if abandoned else ""))


@watermark.command("reset")
@click.option("-p", "--pipeline", required=True)
@click.option("-t", "--table", required=True)
@click.option("--yes", is_flag=True, help="Confirm: forget the cursor, runs and totals.")
@click.option("--keep-files", is_flag=True, help="Keep the table's Parquet parts on S3.")
def reset(pipeline: str, table: str, yes: bool, keep_files: bool) -> None:
    """Forget everything about a table, so the next sync copies it from the start."""
    cfg, _, st = _open(pipeline, table)
    if not yes:
        fail(f"this forgets the cursor, runs and totals of {table}"
             + ("" if keep_files else " and deletes its files on S3") + "; add --yes to do it")
    owner = st.lock_owner()
    if owner:
        fail(f"table {table} has an active run {owner}; nothing was reset", 1)
    keys = st.delete_all()
    deleted = foreign = 0
    if not keep_files:
        store = Store(make_client(cfg.s3), cfg.s3.bucket)
        own, others = _own_objects(store, _prefixes(cfg, table), pipeline, table)
        deleted, foreign = store.delete(own), len(others)
        for key in others[:5]:
            click.echo(f"kept {store.url(key)}: its metadata does not name pipeline {pipeline}, table {table}")
    click.echo(f"{table}: reset ({keys} Redis keys removed, {deleted} files deleted"
               + (", files kept" if keep_files else "")
               + (f", {foreign} files of others kept" if foreign else "")
               + "); the target table was not touched")


def _own_objects(store: Store, prefixes: list[str], pipeline: str, table: str) -> tuple[list[str], list[str]]:
    """The objects under the prefixes whose metadata names this pipeline and table, and the
    others. (A HEAD per object, in parallel: S3 listings carry no user metadata.)"""
    keys = [k for prefix in prefixes for k, _ in store.list(prefix)]
    with ThreadPoolExecutor(16) as pool:
        owned = list(pool.map(lambda k: naming.is_own_object(store.metadata(k), pipeline, table), keys))
    return [k for k, ok in zip(keys, owned) if ok], [k for k, ok in zip(keys, owned) if not ok]


@watermark.command("rebuild")
@click.option("-p", "--pipeline", required=True)
@click.option("-t", "--table", required=True)
def rebuild_cmd(pipeline: str, table: str) -> None:
    """Restore cursor and totals after Redis lost them, from S3 and the warehouse ledger."""
    from common.recovery.rebuild import rebuild
    from workers import resources

    cfg, settings, st = _open(pipeline, table)
    try:
        ledger = resources.warehouse(cfg).ledger_parts(pipeline, table, naming.target_table_name(settings.target_name))
        summary = rebuild(st, Store(make_client(cfg.s3), cfg.s3.bucket), _prefixes(cfg, table), ledger)
    except LockedError as exc:
        fail(f"{exc}; nothing was rebuilt", 1)
    except FerryError as exc:
        fail(str(exc))
    click.echo(f"{table}: rebuilt {summary.runs} run(s), {summary.chunks_committed} committed chunk(s); "
               f"cursor {summary.cursor}; rows extracted {summary.rows_extracted}, loaded "
               f"{summary.rows_loaded}; {summary.parts_awaiting_load} part(s) await load")
    for note in summary.notes:
        click.echo(f"note: {note}")


@watermark.command("skip-range")
@click.option("-p", "--pipeline", required=True)
@click.option("-t", "--table", required=True)
@click.option("--run", "run_id", help="The run of the refused chunk (see `watermark get`, `runs show`).")
@click.option("--chunk", type=int, help="The refused chunk's number.")
@click.option("--reason", default="", help="Why it is given up (kept with the decision).")
@click.option("--yes", is_flag=True, help="Confirm: its rows never reach the target.")
def skip_range(pipeline: str, table: str, run_id: str | None, chunk: int | None, reason: str, yes: bool) -> None:
    """Give up on a key range the warehouse refused: its parts stop waiting for a load and its
    rows are counted skipped; the decision is kept in the table's state and on its run."""
    _, _, st = _open(pipeline, table)
    refusals = st.refusals()
    waiting = refusals.waiting()
    if not waiting:
        fail(f"table {table} has no range refused by the warehouse; nothing was skipped")
    listed = "; ".join(f"--run {r.run_id} --chunk {r.chunk}: ({r.lo}, {r.hi}], {r.rows:,} rows"
                       for r in waiting.values())
    if run_id is None or chunk is None:
        fail(f"name the range with --run and --chunk; waiting: {listed}")
    refusal = waiting.get((run_id, chunk))
    if refusal is None:
        fail(f"table {table}: run {run_id} chunk {chunk} is not a refused range; waiting: {listed}")
    if not yes:
        fail(f"this gives up {refusal.rows:,} rows of {table} (run {run_id} chunk {chunk}, key range "
             f"({refusal.lo}, {refusal.hi}]): they never reach the target; add --yes to do it")
    token = f"skip-range:{time.time():.6f}"
    if not st.acquire_load_lock(token, 120):
        fail(f"table {table}: a load is running; nothing was skipped (try again when it ends)", 1)
    try:
        refusals.skip(refusal, reason)
    finally:
        st.release_load_lock(token)
    click.echo(f"{table}: run {run_id} chunk {chunk} skipped: {refusal.rows:,} rows of key range "
               f"({refusal.lo}, {refusal.hi}] will not be loaded ({len(refusal.parts)} part(s) stay on S3 "
               f"until `ferry s3clean`)")
