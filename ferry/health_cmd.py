"""`ferry health`: run the worker health task (tasks/health.py) on one named worker through
its own direct queue, so the answer is about that worker (a container's HEALTHCHECK)."""
from __future__ import annotations

import json
import socket
import sys

import click

from ferry.console import fail


@click.command("health")
@click.option("--hostname", "-n", default=None, help="Worker name (default: worker@<this host>).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True)
def health(hostname: str | None, timeout: float) -> None:
    """Exit 0 if the worker runs the health task within --timeout with MySQL's C extension
    loaded, 1 otherwise."""
    from celery.utils import worker_direct

    from tasks.health import health as health_task

    name = hostname or f"worker@{socket.gethostname()}"
    result = health_task.apply_async(queue=worker_direct(name), expires=timeout)
    try:
        doc = result.get(timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - a timeout or a broker error: unhealthy either way
        fail(f"worker {name} did not run the health task within {timeout:g}s ({type(exc).__name__})", 1)
    finally:
        result.forget()
    click.echo(json.dumps(doc))
    if not doc.get("mysql_cext"):
        click.echo(f"ferry: worker {name} reads MySQL without the C extension (slow)", err=True)
        sys.exit(1)
