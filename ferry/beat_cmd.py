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
            table = cfg.table(key)
            if table.schedule:
                entries[f"{cfg.name} {key}"] = _entry("ferry.scheduled_sync", cfg.name, key, table.schedule)
            # (a table's `reconcile: {schedule: ...}`: ferry.scheduled_reconcile)
            if table.reconcile.schedule and not reconcile_refusal(table):
                entries[f"{cfg.name} {key} reconcile"] = _entry("ferry.scheduled_reconcile", cfg.name, key,
                                                                 table.reconcile.schedule)
    return entries


def _entry(task: str, pipeline: str, key: str, spec: str) -> dict[str, Any]:
    # A tick that waits longer than the interval (no worker on `plan`) is dropped, not piled
    # up: the next tick starts the run.
    expires = schedule.interval_s(spec) or 60.0
    return {"task": task, "schedule": schedule.to_celery(spec), "args": [pipeline, key],
            "options": {"queue": "plan", "expires": max(expires, 1.0),
                        "argsrepr": f"(pipeline={pipeline!r}, table={key!r})", "kwargsrepr": "{}"}}


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
