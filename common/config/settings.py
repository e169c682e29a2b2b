"""Every FERRY_* environment variable ferry reads, declared once: its type, default and
meaning (pydantic-settings). `settings()` reads them again whenever one has changed (the
CLI sets FERRY_CONFIG for the workers it starts); a value of the wrong type is a
ConfigError naming the variable."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.errors import ConfigError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class Settings(BaseSettings):
    """ferry's settings from the environment (an empty value counts as unset)."""

    model_config = SettingsConfigDict(env_prefix="FERRY_", env_ignore_empty=True, extra="ignore", frozen=True)

    config: Path | None = None
    """FERRY_CONFIG: the config directory (connections.yml, pipelines/); default the current one."""
    redis_url: str = DEFAULT_REDIS_URL
    """ferry's state (cursors, plans, locks, totals); Celery's broker and results by default."""
    task_time_limit_s: int = Field(3600, gt=0)
    """Hard time limit of a task; the soft limit is max(limit - 60, 0.9 x limit)."""
    load_time_limit_s: int | None = Field(None, gt=0)
    """Hard time limit of the load task (default: task_time_limit_s)."""
    visibility_timeout_s: int | None = Field(None, gt=0)
    """Broker visibility timeout (default: the longest time limit + 600); must exceed both limits."""
    lock_ttl_s: int = Field(7200, gt=0)
    """Table lock TTL, renewed by the keep-alive while the run lives; must exceed the visibility timeout."""
    outage_tolerance_s: float = Field(600, ge=0)
    """How long Redis, MySQL, S3 or the warehouse may be away before a run fails."""
    max_retries: int | None = Field(None, ge=0)
    """Retries of a task after a transient error (default: derived from outage_tolerance_s)."""
    max_attempts: int = Field(10, gt=0)
    """Starts of one chunk (a process dying on it included) before it fails the run."""
    slot_wait_s: float = Field(600, ge=0)
    """How long a chunk waits for one of its source's read slots before it retries later."""
    load_lock_wait_s: float = Field(3600, ge=0)
    """How long a load waits for another load of its table to end (a budget of its own)."""
    plan_segment_s: float = Field(0.5, ge=0)
    """Seconds a plan probes chunk bounds before its first chunks are dispatched."""
    run_retention_days: float = Field(30, ge=0)
    """A finished run's Redis state is forgotten this long after it ended (0 keeps every run)."""
    spool_dir: str | None = None
    """Where a worker spools the Parquet part it writes or loads (default: the temporary directory)."""
    log_format: Literal["text", "json"] = "text"
    """`json`: workers log one JSON object per line."""
    metrics_basic_auth: str | None = None
    """user:password[,user:password] for `ferry metrics` (never on the command line)."""
    faults: bool = False
    """Tests only: lets tests inject failures (common/state/faults.py)."""

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def load_limit_s(self) -> int:
        return self.load_time_limit_s or self.task_time_limit_s

    @property
    def visibility_s(self) -> int:
        return self.visibility_timeout_s or max(self.task_time_limit_s, self.load_limit_s) + 600

    @property
    def run_retention_s(self) -> float:
        return self.run_retention_days * 86400


_cache: dict[tuple[tuple[str, str], ...], Settings] = {}


def settings() -> Settings:
    """The settings of the environment as it is now (read again when a FERRY_* variable
    changed: the CLI sets FERRY_CONFIG, tests set others)."""
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith("FERRY_")))
    found = _cache.get(env)
    if found is not None:
        return found
    try:
        found = _cache[env] = Settings()
        return found
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err.get("loc") else "?"
        name = f"FERRY_{field.upper()}"
        raise ConfigError(f"environment variable {name}={os.environ.get(name, '')!r}: {err['msg']}") from None


def config_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--config DIR, else $FERRY_CONFIG, else the current directory."""
    return Path(explicit or settings().config or os.getcwd()).resolve()


def redis_url() -> str:
    """Redis for state (and, by default, Celery): $FERRY_REDIS_URL."""
    return settings().redis_url


def outage_tolerance_s() -> float:
    """How long a source, S3, the warehouse or Redis may be unreachable before a task's
    run fails, and how long `--wait` rides out Redis: FERRY_OUTAGE_TOLERANCE_S."""
    return settings().outage_tolerance_s


def env_name(field: str) -> str:
    """The environment variable of a settings field (for messages)."""
    assert field in Settings.model_fields, field
    return f"FERRY_{field.upper()}"
