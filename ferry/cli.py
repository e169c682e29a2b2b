"""The `ferry` command: the group, `ferry worker`, and the commands of the other ferry/ modules."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import click

from common.config.settings import config_dir, settings
from common.errors import ConfigError

# Each command's module is imported only when that command runs (or help lists them all):
# `ferry sync` does not pay for Flower, Prometheus or the verify queries.
COMMANDS = {
    "sync": "ferry.sync_cmd:sync", "watermark": "ferry.watermark_cmd:watermark",
    "check": "ferry.check_cmd:check", "connections": "ferry.check_cmd:connections",
    "runs": "ferry.runs_cmd:runs", "cancel": "ferry.runs_cmd:cancel", "retry": "ferry.runs_cmd:retry",
    "s3clean": "ferry.s3clean_cmd:s3clean", "status": "ferry.status_cmd:status",
    "pipelines": "ferry.pipelines_cmd:pipelines", "verify": "ferry.verify_cmd:verify_table",
    "flower": "ferry.flower_cmd:flower", "metrics": "ferry.metrics_cmd:metrics", "beat": "ferry.beat_cmd:beat",
    "health": "ferry.health_cmd:health", "reconcile": "ferry.reconcile_cmd:reconcile",
    "discover": "ferry.discover_cmd:discover",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS and name not in self.commands:
            module, attr = COMMANDS[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup)
@click.version_option(package_name="ferry", prog_name="ferry")
@click.option("--config", "config", type=click.Path(file_okay=False, path_type=Path),
              help="Config directory (default: $FERRY_CONFIG, else the current directory).")
def cli(config: Path | None) -> None:
    """ferry copies MySQL tables into Redshift through Parquet on S3, on Celery workers."""
    try:
        settings()  # a FERRY_* variable of the wrong type: exit 2 naming it, before anything is done
    except ConfigError as exc:
        from ferry.console import fail  # (only now: the console opens Redis and reads config files)
        fail(str(exc))
    # Set in the environment so workers started from here read the same directory.
    os.environ["FERRY_CONFIG"] = str(config_dir(config))


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


def main() -> None:
    cli(prog_name="ferry")
