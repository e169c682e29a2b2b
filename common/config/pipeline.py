"""Typed configuration: connections.yml and pipelines/<name>.yml, validated on load.

Every error names the file and the key at fault. `${VAR}` (or `${VAR:-default}`)
in any string value is taken from the environment, else from DIR/.env.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator
from pydantic.fields import FieldInfo

from common.config import schedule
from common.config.design import RedshiftKeys, TableDesign, read_keys_file
from common.config.settings import config_dir
from common.errors import ConfigError
from common.model.naming import split_table_key

_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
"""${VAR} or ${VAR:-default} in a YAML value; $${ is a literal ${ (the escape)."""
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SshTunnelConfig(_Model):
    """An SSH bastion through which the source is reached (key authentication only)."""

    host: str
    """The bastion's host name or address."""
    port: int = 22
    user: str
    private_key: Path
    """Path of the private key file (OpenSSH or PEM format)."""
    private_key_passphrase: str | None = None
    """Passphrase of the key, if it has one; write `${VAR}` to keep it out of the file."""
    known_hosts: Path = Path("~/.ssh/known_hosts")
    """OpenSSH known_hosts file that must hold the bastion's host key."""
    strict_host_key_checking: bool = True
    """false: accept any host key (logged once as a warning). Only for throwaway setups."""


class SourceConfig(_Model):
    """A MySQL/MariaDB server that ferry reads from."""

    host: str
    """Host name or address of the server (as seen from the bastion, with ssh_tunnel)."""
    port: int = 3306
    """TCP port."""
    database: str | None = None
    """Default database; tables are always named `schema.table` anyway."""
    user: str
    """User with SELECT on the tables and on information_schema."""
    password: str = ""
    """Password; write `${VAR}` to keep it out of the file."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments for mysql.connector.connect (ssl_ca, connect_timeout, ...)."""
    datetime_time_zone: str | None = None
    """Zone that DATETIME cursor values are written in ('+00:00', 'Europe/Paris'); default:
    the server's time zone. Timestamp cursors' lag is measured on this clock."""
    ssh_tunnel: SshTunnelConfig | None = None
    """Reach the server through this SSH bastion."""
    max_concurrent_chunks: int | None = Field(None, gt=0)
    """At most this many chunk reads from this server at once, across all workers and hosts."""
    read_timeout_s: int | None = Field(None, gt=0)
    """A chunk read that receives nothing from the server for this long fails (and is retried)."""
    max_execution_time_ms: int | None = Field(None, gt=0)
    """Server-side limit on one chunk's SELECT (MySQL max_execution_time, MariaDB
    max_statement_time)."""


class PostgresTarget(_Model):
    """PostgreSQL: the local stand-in for Redshift; reads the same Parquet parts."""

    type: Literal["postgres"]
    host: str = "127.0.0.1"
    port: int = 5432
    database: str
    user: str
    password: str = ""
    schema_: str = Field("public", alias="schema")
    """Schema that holds target tables and the load ledger."""


class RedshiftTarget(_Model):
    """Amazon Redshift, loaded with COPY ... FORMAT AS PARQUET from a manifest."""

    type: Literal["redshift"]
    host: str
    port: int = 5439
    database: str
    user: str
    password: str = ""
    schema_: str = Field("public", alias="schema")
    """Schema that holds target tables and the load ledger."""
    iam_role: str | None = None
    """Role ARN for COPY; without it COPY uses the s3 section's keys."""


TargetConfig = Annotated[Union[PostgresTarget, RedshiftTarget], Field(discriminator="type")]


class S3Config(_Model):
    """Where Parquet parts, manifests and reports are written."""

    bucket: str
    prefix: str = "ferry"
    """Key prefix under which every pipeline writes."""
    region: str = "us-east-1"
    endpoint_url: str | None = None
    """Only for S3-compatible servers (moto, MinIO); leave unset for AWS."""
    access_key_id: str | None = None
    secret_access_key: str | None = None

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", v):
            raise ValueError(f"{v!r} is not a valid S3 bucket name (3-63 of a-z 0-9 . -)")
        return v


class Connections(_Model):
    """connections.yml."""

    sources: dict[str, SourceConfig]
    targets: dict[str, TargetConfig]
    s3: S3Config


class Tuning(_Model):
    """How a table is read, written and loaded: each field declared here once, with its
    default; a pipeline's `defaults` set them for every table, a table's entry overrides
    them (TableConfig, where each is optional), and TableSettings holds the result."""

    chunk_rows: int = Field(100_000, gt=0)
    """Rows per chunk: the unit of parallel extraction and of resume."""
    part_mb: int = Field(64, gt=0)
    """A Parquet part is closed once its encoded size reaches this many MB."""
    part_rows: int | None = Field(None, gt=0)
    """Optional cap on rows per Parquet part."""
    batch_rows: int = Field(10_000, gt=0)
    """Rows fetched and converted to Arrow at a time (row groups gather several batches).
    Small batches stay in the CPU's caches while they are converted: 10,000 rows read
    bench.orders 15% faster than 50,000 (`make bench`)."""
    batch_mb: int = Field(16, gt=0)
    """...and at most about this many MB of raw values per batch: wide rows make smaller
    batches, so memory is bounded in bytes, not rows."""
    load_max_mb: float = Field(4096, gt=0)
    """A load transaction takes at most about this many MB of parts (whole chunks; a chunk
    larger than this goes alone): a big run is loaded in several transactions."""
    load_every_mb: float | None = Field(None, gt=0)
    """Start an early load, while extraction goes on, once this many MB of committed parts
    await load (default: load_max_mb)."""
    tinyint1_as_bool: bool = True
    """Map TINYINT(1) to BOOLEAN (else SMALLINT)."""
    lag_s: int = Field(5, ge=0)
    """Timestamp cursors: a run reads rows up to the source's clock minus this many seconds."""
    lookback_s: int = Field(300, ge=0)
    """Timestamp cursors: each run re-reads this many seconds behind the cursor, for rows
    committed late (keep it above your longest write transaction); the merge makes it harmless."""


class TableDefaults(Tuning):
    """Settings every table of a pipeline inherits unless it sets its own."""

    schedule: Any = None
    """When `ferry beat` syncs the table: cron text ('*/5 * * * *') or {every: 5m}; unset or
    `off`: only when asked (ferry sync, cron, Airflow)."""

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: Any) -> str | None:
        return schedule.normalise(v)


def _optional(model: type[_Model]) -> dict[str, Any]:
    """Each of model's fields, optional (None: not set here), with its constraints and doc."""
    return {name: (f.annotation | None, FieldInfo.merge_field_infos(f, default=None))  # type: ignore[operator]
            for name, f in model.model_fields.items()}


# A table's entry may override every tuning field; unset ones come from the defaults.
TuningOverrides = create_model("TuningOverrides", __base__=_Model, **_optional(Tuning))


class TableConfig(TuningOverrides):  # type: ignore[misc, valid-type]
    """One `schema.table` entry of a pipeline (and any tuning field, overriding the defaults)."""

    primary_key: list[str] | None = None
    """Key columns; default: the source table's primary key."""
    cursor: str | None = None
    """Cursor column: for `timestamp` the last-modified column; for `id` the first key column."""
    cursor_increasing: bool = False
    """id strategy: the cursor column alone only ever grows across the whole table (an
    AUTO_INCREMENT id inside a composite key, a text key that is issued in order). Without
    it, the id strategy refuses composite and text keys, which would lose rows silently."""
    json_as: Literal["super", "varchar"] = "super"
    """JSON columns: SUPER on Redshift (JSONB on the PostgreSQL stand-in), parsed with
    JSON_PARSE in the merge; or VARCHAR(65535) text."""
    on_oversize: Literal["fail", "truncate"] = "fail"
    """A text or binary value longer than its target column: fail (naming table, column, key
    and length) or truncate (cut at a character boundary, counted in the report)."""
    full_reload: Literal["swap", "delete_insert"] = "swap"
    """full strategy: swap = build a new table and rename it over the target (grants, owner,
    comments carried over); delete_insert = DELETE + INSERT into the target itself."""
    load: Literal["merge", "append"] = "merge"
    """merge: replace target rows by key. append: insert every extracted row (tables without
    a key; at-least-once: a re-read range, e.g. the lookback, repeats rows)."""
    strategy: Literal["id", "timestamp", "full"] = "id"
    """How runs find new rows: id = append-only increasing key; timestamp = last-modified
    column with the key as tie-breaker; full = the whole table, swapped in atomically."""
    target_name: str | None = None
    """Target table name; default: the source table name."""
    exclude_columns: list[str] = Field(default_factory=list)
    """Source columns not copied."""
    schedule: Any = None
    """Overrides the defaults' schedule; `off` takes the table out of it."""

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: Any) -> str | None:
        if isinstance(v, str) and v.strip().lower() == "off":
            return "off"
        return schedule.normalise(v)

    @model_validator(mode="after")
    def _cursor_for_timestamp(self) -> "TableConfig":
        if self.strategy == "timestamp" and not self.cursor:
            raise ValueError("the timestamp strategy needs a cursor column (cursor: updated_at)")
        return self


class Pipeline(_Model):
    """pipelines/<name>.yml."""

    source: str
    """Name of a source in connections.yml."""
    target: str
    """Name of a target in connections.yml."""
    s3_prefix: str | None = None
    """Prefix under the s3 section's prefix; default: the pipeline name."""
    target_schema: str | None = None
    """Warehouse schema for this pipeline's tables and ledger; default: the target's schema."""
    defaults: TableDefaults = Field(default_factory=TableDefaults)
    tables: dict[str, TableConfig]
    redshift_keys: dict[str, RedshiftKeys] = Field(default_factory=dict)
    """Table design on Redshift, keyed by schema.table (also read from a redshift_keys.json
    file beside the pipeline files)."""

    @model_validator(mode="after")
    def _keys_name_tables(self) -> "Pipeline":
        unknown = sorted(set(self.redshift_keys) - set(self.tables))
        if unknown:
            raise ValueError(f"redshift_keys names {unknown[0]!r}, which is not in tables")
        return self

    @field_validator("s3_prefix", "target_schema")
    @classmethod
    def _no_escape(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.strip() or v.startswith("/") or ".." in v.split("/") or "\\" in v or any(ord(ch) < 32 for ch in v):
            raise ValueError(f"{v!r}: a relative name without '..', a leading '/', backslashes or control "
                             f"characters")
        return v

    @field_validator("tables")
    @classmethod
    def _table_keys(cls, v: dict[str, TableConfig]) -> dict[str, TableConfig]:
        for key in v:
            split_table_key(key)  # ValueError says what is wrong
        if not v:
            raise ValueError("a pipeline needs at least one table")
        return v


class TableSettings(Tuning):
    """A table's configuration with the pipeline defaults filled in (what tasks read)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    key: str
    schema_: str = Field(alias="schema")
    name: str
    primary_key: tuple[str, ...] | None
    cursor: str | None
    strategy: str
    target_name: str
    exclude_columns: tuple[str, ...]
    cursor_increasing: bool = False
    load: str = "merge"
    design: TableDesign = TableDesign()
    full_reload: str = "swap"
    on_oversize: str = "fail"
    json_as: str = "super"
    schedule: str | None = None
    """Normalised (common/config/schedule.py): 'cron:…', 'every:<seconds>', or None."""

    @property
    def schema(self) -> str:  # type: ignore[override]
        return self.schema_


@dataclass(frozen=True)
class PipelineConfig:
    """Everything a task needs for one pipeline: its file, its source, target and S3."""

    name: str
    directory: Path
    pipeline: Pipeline
    source: SourceConfig
    target: PostgresTarget | RedshiftTarget
    s3: S3Config
    extra_keys: dict[str, RedshiftKeys] = field(default_factory=dict)
    """redshift_keys.json entries for this pipeline's tables (the YAML section wins)."""

    @property
    def s3_prefix(self) -> str:
        return self.pipeline.s3_prefix or self.name

    @property
    def target_schema(self) -> str:
        """The warehouse schema, as Redshift folds it (lowercase)."""
        from common.model.naming import warehouse_schema_name
        return warehouse_schema_name(self.pipeline.target_schema or self.target.schema_)

    def table(self, key: str) -> TableSettings:
        """Settings of `schema.table`; ConfigError if the pipeline has no such table."""
        cfg = self.pipeline.tables.get(key)
        if cfg is None:
            known = ", ".join(sorted(self.pipeline.tables))
            raise ConfigError(f"pipelines/{self.name}.yml: tables: no table {key!r} (known: {known})")
        d = self.pipeline.defaults
        schema, name = split_table_key(key)
        tuning = {f: d_value if (value := getattr(cfg, f)) is None else value
                  for f, d_value in ((f, getattr(d, f)) for f in Tuning.model_fields)}
        return TableSettings(
            key=key, schema=schema, name=name,
            primary_key=tuple(cfg.primary_key) if cfg.primary_key else None,
            cursor=cfg.cursor, strategy=cfg.strategy,
            target_name=cfg.target_name or name,
            exclude_columns=tuple(cfg.exclude_columns),
            cursor_increasing=cfg.cursor_increasing,
            load=cfg.load, full_reload=cfg.full_reload, on_oversize=cfg.on_oversize, json_as=cfg.json_as,
            design=TableDesign.from_keys(self.pipeline.redshift_keys.get(key) or self.extra_keys.get(key)),
            schedule=(d.schedule if cfg.schedule is None else None if cfg.schedule == "off" else cfg.schedule),
            **tuning,
        )


def _substitute(node: Any, env: dict[str, str], file: str, path: str) -> Any:
    if isinstance(node, dict):
        return {k: _substitute(v, env, file, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, env, file, f"{path}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        var, default = m.group(1), m.group(2)
        if var in env:
            return env[var]
        if default is not None:
            return default
        raise ConfigError(f"{file}: {path}: environment variable {var} is not set (nor in .env)")

    return _VAR.sub(repl, node)


def _read_yaml(path: Path, env: dict[str, str]) -> Any:
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return _substitute(data, env, str(path), "")


def _validate(model: type[_Model], data: Any, path: Path) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"{path}: {key}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None


def _environment(directory: Path) -> dict[str, str]:
    # Values are taken literally: a password such as Zq${xyz}9#k must reach the server as written.
    env = {k: v for k, v in dotenv_values(directory / ".env", interpolate=False).items() if v is not None}
    env.update(os.environ)
    return env


_cache: dict[tuple[Any, ...], PipelineConfig] = {}


def _full_prefix(s3: S3Config, pipeline_prefix: str) -> str:
    return "/".join(p.strip("/") for p in (s3.prefix, pipeline_prefix) if p and p.strip("/"))


def _overlaps(a: str, b: str) -> bool:
    """Equal, or one a folder of the other (path components, so a/b and a/bc do not)."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/") or not a or not b


def _check_prefixes(directory: Path, name: str, pipe_path: Path, s3: S3Config, pipeline_prefix: str,
                    env: dict[str, str]) -> None:
    """Two pipelines of one config directory must not share S3 objects: their prefixes may
    be neither equal nor nested, or one's reset or rebuild would touch the other's runs."""
    own = _full_prefix(s3, pipeline_prefix)
    for other_path in sorted((directory / "pipelines").glob("*.yml")):
        other = other_path.stem
        if other == name:
            continue
        try:  # another pipeline's own errors are reported when that pipeline is used
            doc = _read_yaml(other_path, env)
            prefix = doc.get("s3_prefix") or other
        except ConfigError:
            continue
        if isinstance(prefix, str) and _overlaps(own, _full_prefix(s3, prefix)):
            raise ConfigError(
                f"{pipe_path}: s3_prefix: pipelines {name!r} and {other!r} ({other_path}) write under "
                f"overlapping S3 prefixes ({own!r} and {_full_prefix(s3, prefix)!r}); give each "
                f"pipeline its own s3_prefix")


def load_connections(directory: Path) -> Connections:
    """connections.yml alone, validated (`ferry connections test`)."""
    path = directory / "connections.yml"
    return _validate(Connections, _read_yaml(path, _environment(directory)), path)


def load_pipeline(name: str, directory: Path | None = None) -> PipelineConfig:
    """Load and validate connections.yml and pipelines/<name>.yml (cached by mtime)."""
    directory = directory or config_dir()
    if not _NAME.match(name):
        raise ConfigError(f"pipeline name {name!r}: use lowercase letters, digits, - and _")
    conn_path = directory / "connections.yml"
    pipe_path = directory / "pipelines" / f"{name}.yml"
    others = sorted((directory / "pipelines").glob("*.yml"))
    stamp = tuple(p.stat().st_mtime_ns if p.exists() else 0
                  for p in (conn_path, pipe_path, directory / ".env", directory / "pipelines" / "redshift_keys.json",
                            *others)) + (len(others),)
    cache_key = (str(directory), name, stamp)
    if cache_key in _cache:
        return _cache[cache_key]
    if not pipe_path.is_file():
        raise ConfigError(f"{pipe_path}: no pipeline named {name!r} in {directory / 'pipelines'}")
    env = _environment(directory)
    conns: Connections = _validate(Connections, _read_yaml(conn_path, env), conn_path)
    pipe: Pipeline = _validate(Pipeline, _read_yaml(pipe_path, env), pipe_path)
    if pipe.source not in conns.sources:
        raise ConfigError(f"{pipe_path}: source: {pipe.source!r} is not a source in {conn_path}"
                          f" (known: {', '.join(sorted(conns.sources)) or 'none'})")
    if pipe.target not in conns.targets:
        raise ConfigError(f"{pipe_path}: target: {pipe.target!r} is not a target in {conn_path}"
                          f" (known: {', '.join(sorted(conns.targets)) or 'none'})")
    _check_prefixes(directory, name, pipe_path, conns.s3, pipe.s3_prefix or name, env)
    loaded = PipelineConfig(name=name, directory=directory, pipeline=pipe,
                            source=conns.sources[pipe.source], target=conns.targets[pipe.target],
                            s3=conns.s3, extra_keys=read_keys_file(
                                directory / "pipelines", set(pipe.tables) - set(pipe.redshift_keys)))
    _cache[cache_key] = loaded
    return loaded
