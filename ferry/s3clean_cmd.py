"""`ferry s3clean list|clean`: a table's objects on S3 by state, and a cleanup that deletes
loaded parts and orphans past an age, never a part awaiting load."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import click

from common.model import naming
from common.recovery import orphans
from common.store.s3 import Store, make_client
from common.state.table import TableState
from ferry.console import fail, pipeline_config, redis_client, table_settings

_AGE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _age(text: str) -> timedelta:
    m = _AGE.match(text)
    if not m:
        fail(f"--older-than {text!r}: write a number and s, m, h or d (7d, 12h)")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def classify(st: TableState, store: Store, prefixes: list[str]) -> dict[str, list[tuple[str, int, datetime]]]:
    """Every object under the table's prefixes (exactly: each ends with '/'; the legacy,
    percent-encoded one too, naming.table_prefixes), by state."""
    awaiting = {p.key for p in st.pending_parts()}
    known = set(st.runs())
    loaded = {key for run in known for c in st.chunks(run) if c.state == "loaded" for key in c.parts}
    # Runs whose Redis state expired (FERRY_RUN_RETENTION_DAYS) had finished with nothing
    # awaiting load: their parts are loaded or orphans. (A run Redis lost is not among them.)
    expired_before = st.state().get("expired_before", "")
    orphaned = {k: why for prefix in prefixes for k, why in orphans.find(st, store, prefix).items()}
    groups: dict[str, list[tuple[str, int, datetime]]] = {
        "awaiting load": [], "loaded": [], "orphaned": [], "run metadata": [], "other": []}
    for key, size, modified in (o for prefix in prefixes for o in store.list_detailed(prefix)):
        if key in awaiting:
            group = "awaiting load"
        elif key in orphaned:
            group = "orphaned"
        elif key in loaded:
            group = "loaded"
        elif key.endswith((naming.PLAN_NAME, naming.MARKER_NAME, ".json")):
            group = "run metadata"
        elif _expired_run_part(key, known, expired_before):
            group = "loaded"
        else:
            group = "other"
        groups[group].append((key, size, modified))
    return groups


def _expired_run_part(key: str, known: set[str], expired_before: str) -> bool:
    m = orphans.ATTEMPT_OBJECT.search(key)
    return bool(m and expired_before and m.group(1) not in known and m.group(1) <= expired_before)


@click.group()
def s3clean() -> None:
    """List or clean a table's objects on S3."""


def _open(pipeline: str, table: str) -> tuple[TableState, Store, list[str]]:
    cfg = pipeline_config(pipeline)
    table_settings(cfg, table)
    prefixes = naming.table_prefixes(cfg.s3.prefix, cfg.s3_prefix, table)
    return TableState(redis_client(), pipeline, table), Store(make_client(cfg.s3), cfg.s3.bucket), prefixes


@s3clean.command("list")
@click.option("-p", "--pipeline", required=True)
@click.option("-t", "--table", required=True)
def list_(pipeline: str, table: str) -> None:
    """Count and size the table's objects by state."""
    st, store, prefixes = _open(pipeline, table)
    for group, objects in classify(st, store, prefixes).items():
        click.echo(f"{group:<14} {len(objects):>8} objects {sum(o[1] for o in objects):>16,} bytes")


@s3clean.command("clean")
@click.option("-p", "--pipeline", required=True)
@click.option("-t", "--table", required=True)
@click.option("--older-than", "older_than", default="7d", show_default=True, help="Age: 30m, 12h, 7d.")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@click.option("--yes", is_flag=True, help="Confirm the deletion.")
def clean(pipeline: str, table: str, older_than: str, dry_run: bool, yes: bool) -> None:
    """Delete loaded parts and orphans older than --older-than; never a part awaiting load,
    never run metadata (plans and markers rebuild Redis)."""
    cutoff = datetime.now(timezone.utc) - _age(older_than)
    if not (yes or dry_run):
        fail("add --yes to delete, or --dry-run to see what would go")
    st, store, prefixes = _open(pipeline, table)
    groups = classify(st, store, prefixes)
    doomed = [(k, s) for g in ("loaded", "orphaned") for k, s, modified in groups[g] if modified < cutoff]
    size = sum(s for _, s in doomed)
    if dry_run:
        click.echo(f"{table}: would delete {len(doomed)} objects ({size:,} bytes) older than {older_than}")
        return
    deleted = store.delete(k for k, _ in doomed)
    click.echo(f"{table}: deleted {deleted} objects ({size:,} bytes) older than {older_than}; "
               f"{len(groups['awaiting load'])} awaiting load kept")
