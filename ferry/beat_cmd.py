"""`ferry beat`: Celery beat with the `schedule:` of every table of the config directory's
pipelines; each tick enqueues a scheduled sync (ferry.scheduled_sync, tasks/sync.py), which starts or resumes
the table's run exactly as `ferry sync` does, or skips the tick while a run is active; and with the
`reconcile: {schedule: ...}` of every table, ticks of ferry.scheduled_reconcile (tasks/reconcile.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from common.config import schedule
from common.config.pipeline import reconcile_refusal
from common.config.settings import config_dir
from ferry.console import fail, pipeline_config


def beat_entries() -> dict[str, dict[str, Any]]:
    """Celery beat_schedule entries, one per scheduled table (exits 2 on a bad pipeline)."""
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted((config_dir() / "pipelines").glob("*.yml")):
        cfg = pipeline_config(path.stem)
        for key in sorted(cfg.pipeline.tables):
            _reconcile_entry(entries, cfg, key)
            spec = cfg.table(key).schedule
            if not spec:
                continue
            # A tick that waits longer than the interval (no worker on `plan`) is dropped,
            # not piled up: the next tick starts the run.
            expires = schedule.interval_s(spec) or 60.0
            entries[f"{cfg.name} {key}"] = {
                "task": "ferry.scheduled_sync", "schedule": schedule.to_celery(spec), "args": [cfg.name, key],
                "options": {"queue": "plan", "expires": max(expires, 1.0),
                            "argsrepr": f"(pipeline={cfg.name!r}, table={key!r})", "kwargsrepr": "{}"}}
    return entries


def _reconcile_entry(entries: dict[str, dict[str, Any]], cfg: Any, key: str) -> None:
    """The table's `reconcile: {schedule: ...}` as a beat entry (ferry.scheduled_reconcile)."""
    table = cfg.table(key)
    spec = table.reconcile.schedule
    if not spec or reconcile_refusal(table):
        return
    expires = schedule.interval_s(spec) or 60.0
    entries[f"{cfg.name} {key} reconcile"] = {
        "task": "ferry.scheduled_reconcile", "schedule": schedule.to_celery(spec), "args": [cfg.name, key],
        "options": {"queue": "plan", "expires": max(expires, 1.0),
                    "argsrepr": f"(pipeline={cfg.name!r}, table={key!r})", "kwargsrepr": "{}"}}


@click.command("beat")
@click.option("--schedule-file", type=click.Path(dir_okay=False, path_type=Path),
              default=Path(".ferry-beat-schedule"), show_default=True,
              help="Where beat keeps the last tick of each schedule (survives restarts).")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
def beat(schedule_file: Path, loglevel: str) -> None:
    """Run Celery beat with every table's `schedule:`; run exactly one beat per deployment."""
    entries = beat_entries()
    if not entries:
        fail(f"no table of the pipelines in {config_dir() / 'pipelines'} has a schedule: add "
             f"schedule: '*/5 * * * *' (or schedule: {{every: 5m}}) to a table or the defaults")
    from tasks import app

    app.conf.beat_schedule = entries
    for name, entry in entries.items():
        click.echo(f"ferry beat: {name}: {entry['schedule']}", err=True)
    app.start(["beat", "--loglevel", loglevel, "--schedule", str(schedule_file)])
