"""What the CLI's commands share: failing with a clear message, Redis, the pipeline config."""
from __future__ import annotations

import re
import sys
from typing import NoReturn

import click

from common.state import client
from common.config.pipeline import PipelineConfig, TableSettings
from common.config.files import load_pipeline
from common.config.settings import redis_url
from common.errors import FerryError, redact


last_failure = ""
"""The message of the last fail() (written into `ferry sync`'s JSON report)."""


def fail(message: str, code: int = 2) -> NoReturn:
    global last_failure
    message = redact(message)
    last_failure = message
    click.echo(f"ferry: {message}", err=True)
    sys.exit(code)


def redis_client() -> client.Redis:
    conn = client.connect(redis_url(), socket_connect_timeout=5)
    try:
        conn.ping()
    except client.RedisError as exc:
        fail(redact(f"cannot reach Redis at {redis_url()} ($FERRY_REDIS_URL): {exc}"))
    return conn


def pipeline_config(name: str) -> PipelineConfig:
    try:
        return load_pipeline(name)
    except FerryError as exc:
        fail(str(exc))


def table_settings(cfg: PipelineConfig, table: str) -> TableSettings:
    try:
        return cfg.table(table)
    except FerryError as exc:
        fail(str(exc))


_CREDENTIALS = re.compile(r"[^:,\s]+:[^,\s]+(,[^:,\s]+:[^,\s]+)*")


def basic_auth(variable: str, value: str | None, no_auth: bool) -> list[str]:
    """The user:password pairs of an environment variable, `value` (never a command-line
    option: `ps` shows those to every user of the host); exits 2 if it is unset without
    --no-auth, or malformed."""
    value = value or ""
    if no_auth:
        return []
    if not value:
        fail(f"set {variable}=user:password in the environment (never on the command line), "
             f"or pass --no-auth to run without authentication")
    if not _CREDENTIALS.fullmatch(value):
        fail(f"{variable} must be user:password (several: user1:pw1,user2:pw2)")
    return value.split(",")
