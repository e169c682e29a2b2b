"""`ferry flower`: Flower for ferry's Celery app, on loopback by default, with basic
authentication on every page and API path (`/metrics` and `/healthcheck` included, which
Flower itself leaves open). Credentials come from FLOWER_BASIC_AUTH in the environment,
never from the command line (which `ps` shows to every user of the host)."""
from __future__ import annotations

import os
from typing import Any

import click

from ferry.console import basic_auth


def require_auth_everywhere() -> None:
    """Make every Flower handler check the credentials before it runs (Flower checks them
    only in the handlers it decorates)."""
    from flower.views import BaseHandler

    if getattr(BaseHandler, "_ferry_guarded", False):
        return
    original = BaseHandler.prepare

    def prepare(self: Any) -> Any:
        if self.application.options.basic_auth:
            self.get_current_user()  # HTTPError(401) without the right Authorization header
        return original(self)

    BaseHandler.prepare = prepare
    BaseHandler._ferry_guarded = True


@click.command("flower")
@click.option("--port", type=click.IntRange(1, 65535), default=5555, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Interface to listen on (0.0.0.0 for every interface: put TLS in front).")
@click.option("--no-auth", is_flag=True, help="Run without authentication, on purpose.")
def flower(port: int, address: str, no_auth: bool) -> None:
    """Start Flower for ferry's app; basic auth from FLOWER_BASIC_AUTH=user:password."""
    # (Flower reads it from the environment itself.)
    basic_auth("FLOWER_BASIC_AUTH", os.environ.get("FLOWER_BASIC_AUTH"), no_auth)
    if no_auth:
        os.environ.pop("FLOWER_BASIC_AUTH", None)
    require_auth_everywhere()
    from tasks import app

    app.start(["flower", f"--address={address}", f"--port={port}"])
