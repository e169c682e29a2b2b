"""The `ferry` command: the group, `ferry worker`, and the commands of the other ferry/ modules."""
from __future__ import annotations

import os
from pathlib import Path

import click

from common.config import config_dir
from ferry.beat_cmd import beat
from ferry.check_cmd import check, connections
from ferry.flower_cmd import flower
from ferry.health_cmd import health
from ferry.metrics_cmd import metrics
from ferry.pipelines_cmd import pipelines
from ferry.runs_cmd import cancel, retry, runs
from ferry.s3clean_cmd import s3clean
from ferry.status_cmd import status
from ferry.sync_cmd import sync
from ferry.verify_cmd import verify_table
from ferry.watermark_cmd import watermark


@click.group()
@click.version_option(package_name="ferry", prog_name="ferry")
@click.option("--config", "config", type=click.Path(file_okay=False, path_type=Path),
              help="Config directory (default: $FERRY_CONFIG, else the current directory).")
def cli(config: Path | None) -> None:
    """ferry copies MySQL tables into Redshift through Parquet on S3, on Celery workers."""
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


cli.add_command(sync)
cli.add_command(watermark)
cli.add_command(check)
cli.add_command(connections)
cli.add_command(runs)
cli.add_command(cancel)
cli.add_command(retry)
cli.add_command(s3clean)
cli.add_command(status)
cli.add_command(pipelines)
cli.add_command(verify_table)
cli.add_command(flower)
cli.add_command(metrics)
cli.add_command(beat)
cli.add_command(health)


def main() -> None:
    cli(prog_name="ferry")
