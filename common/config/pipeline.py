"""pipelines/<name>.yml: a pipeline's tables and their tuning (each field declared once, in
Tuning), and the resolved settings a task reads (TableSettings, PipelineConfig)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, create_model, field_validator, model_validator
from pydantic.fields import FieldInfo

from common.config import schedule
from common.config.design import RedshiftKeys, TableDesign
from common.errors import ConfigError
from common.model.naming import split_table_key
from common.model.row_filter import check_expression
from common.config.base import Model as _Model
from common.config.connections import PostgresTarget, RedshiftTarget, S3Config, SourceConfig


Transform = Literal["hash", "mask", "null"] | dict[Literal["hash_skip_first", "truncate", "mask"], Any]
"""A column's `transform:` as written (checked against the column by common/model/transforms.py)."""
TypeOverride = str | dict[Literal["type", "lossy"], Any]
"""A column's `types:` entry as written (checked against the column by common/model/overrides.py)."""


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
    reader: Literal["duckdb", "connector"] | None = None
    """How the table's chunks are read (default: its source's `reader`)."""
    lag_s: int = Field(5, ge=0)
    """Timestamp cursors: a run reads rows up to the source's clock minus this many seconds."""
    lookback_s: int = Field(300, ge=0)
    """Timestamp cursors: each run re-reads this many seconds behind the cursor, for rows
    committed late (keep it above your longest write transaction); the merge makes it harmless."""
    salt_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The environment variable holding the salt of `transform: hash` (the salt itself is never
    written in a file); needed by `ferry sync`, the workers, `ferry verify` and `ferry reconcile`."""


class Reconcile(_Model):
    """`reconcile:` of a table (or of the defaults): how `ferry reconcile` and its schedule
    find and repair drift (common/reconcile)."""

    mode: Literal["keys", "rows"] = "rows"
    """keys: compare the key sets only (deletes, rows missing); rows: full-row checksums too
    (rows whose content differs)."""
    schedule: Any = None
    """When `ferry beat` reconciles the table: cron text or {every: 1h}; unset: only when asked."""
    ranges_per_run: int | None = Field(None, gt=0)
    """A scheduled reconcile checks at most this many ranges a tick and the next tick goes
    on where it stopped (unset: a whole pass a tick). `ferry reconcile` checks every range."""
    deletes: Literal["delete", "soft"] = "delete"
    """Rows only in the target: deleted, or kept with `_ferry_deleted_at` set (soft)."""
    range_rows: int = Field(100_000, gt=0)
    """Source rows per range: the unit of one task, of resume and of the pass's progress."""
    max_threads_running: int = Field(25, gt=0)
    """Throttle: before each query, wait while the source's Threads_running is above this
    (as pt-table-checksum's --max-load Threads_running=25)."""
    max_rows_per_s: int | None = Field(None, gt=0)
    """Throttle: each range task reads at most this many source rows a second (unset: no cap)."""

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: Any) -> str | None:
        return schedule.normalise(v)


class TableDefaults(Tuning):
    """Settings every table of a pipeline inherits unless it sets its own."""

    schedule: Any = None
    """When `ferry beat` syncs the table: cron text ('*/5 * * * *') or {every: 5m}; unset or
    `off`: only when asked (ferry sync, cron, Airflow)."""

    reconcile: Reconcile | None = None
    """Every table's `reconcile:` unless it sets its own."""

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
    include_columns: list[str] | None = None
    """Only these source columns are copied (the key's among them); not with exclude_columns."""
    where: str | None = None
    """A MySQL boolean expression every read of the table adds (chunks, probes, counts, verify,
    reconcile): only the rows it selects are copied; a row that leaves it counts as deleted."""
    transform: dict[str, Transform] = Field(default_factory=dict)
    """Per source column: hash, {hash_skip_first: N}, mask, {mask: value}, null, {truncate: N};
    applied in the worker before anything reaches S3 (common/model/transforms.py)."""
    types: dict[str, TypeOverride] = Field(default_factory=dict)
    """Per source column, the target type instead of the type map's: VARCHAR(n), SUPER, BOOLEAN,
    BIGINT, DECIMAL(p,s), DOUBLE PRECISION, ... (common/model/overrides.py says which are exact);
    or {type: T, lossy: true} for the lossy ones."""
    schedule: Any = None
    """Overrides the defaults' schedule; `off` takes the table out of it."""
    reconcile: Reconcile | None = None
    """Overrides the defaults' `reconcile:` (as a whole)."""

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: Any) -> str | None:
        if isinstance(v, str) and v.strip().lower() == "off":
            return "off"
        return schedule.normalise(v)

    @field_validator("where")
    @classmethod
    def _where(cls, v: str | None) -> str | None:
        return None if v is None else check_expression(v)  # ValueError says what is wrong

    @model_validator(mode="after")
    def _cursor_for_timestamp(self) -> "TableConfig":
        if self.include_columns is not None and self.exclude_columns:
            raise ValueError("include_columns and exclude_columns cannot both be set: list the columns to copy "
                             "in one of them")
        if self.include_columns is not None and not self.include_columns:
            raise ValueError("include_columns is empty: list at least the key's columns")
        if self.strategy == "timestamp" and not self.cursor:
            raise ValueError("the timestamp strategy needs a cursor column (cursor: updated_at)")
        if self.reconcile is not None and self.reconcile.schedule and (self.load == "append"
                                                                        or self.strategy == "full"):
            raise ValueError(_NO_RECONCILE["append" if self.load == "append" else "full"])
        return self


_NO_RECONCILE = {
    "append": "reconcile compares rows by key, and a table with `load: append` has none",
    "full": "a table with `strategy: full` needs no reconcile: every run replaces the whole target",
}


def reconcile_refusal(table: "TableSettings") -> str | None:
    """Why the table cannot be reconciled (None: it can)."""
    if table.load == "append":
        return _NO_RECONCILE["append"]
    if table.strategy == "full":
        return _NO_RECONCILE["full"]
    return None


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
    include_columns: tuple[str, ...] | None = None
    where: str | None = None
    transform: dict[str, Any] = Field(default_factory=dict)
    types: dict[str, Any] = Field(default_factory=dict)
    cursor_increasing: bool = False
    load: str = "merge"
    design: TableDesign = TableDesign()
    full_reload: str = "swap"
    on_oversize: str = "fail"
    json_as: str = "super"
    schedule: str | None = None
    """Normalised (common/config/schedule.py): 'cron:…', 'every:<seconds>', or None."""
    reconcile: Reconcile = Reconcile()

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
        # (Values validated already, by TableConfig and TableDefaults: kept as they were given.)
        return TableSettings.model_construct(
            key=key, schema=schema, name=name,
            primary_key=tuple(cfg.primary_key) if cfg.primary_key else None,
            cursor=cfg.cursor, strategy=cfg.strategy,
            target_name=cfg.target_name or name,
            exclude_columns=tuple(cfg.exclude_columns),
            include_columns=tuple(cfg.include_columns) if cfg.include_columns is not None else None,
            where=cfg.where, transform=dict(cfg.transform), types=dict(cfg.types),
            cursor_increasing=cfg.cursor_increasing,
            load=cfg.load, full_reload=cfg.full_reload, on_oversize=cfg.on_oversize, json_as=cfg.json_as,
            design=TableDesign.from_keys(self.pipeline.redshift_keys.get(key) or self.extra_keys.get(key)),
            schedule=(d.schedule if cfg.schedule is None else None if cfg.schedule == "off" else cfg.schedule),
            reconcile=cfg.reconcile or d.reconcile or Reconcile(),
            **tuning,
        )
