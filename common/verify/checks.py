"""Checks a pipeline's tables before anything is queued: on the source (the table exists,
its key and cursor columns exist and suit the strategy, every column maps) and on the
target (reachable, with the privileges a load needs). `ferry check` runs both; `ferry
sync` runs the source part and refuses a table that fails it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.plan import strategies
from common.config import design
from common.model import naming, transforms
from common.source import catalog, probes
from common.config.pipeline import PipelineConfig, TableSettings
from common.errors import FerryError


@dataclass
class TableCheck:
    """What the checks found for one table: problems stop it, notes do not."""

    table: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_source_table(conn: Any, table: TableSettings, file: str = "") -> TableCheck:
    """The table's source checks; `file` (the pipeline file) is named in each problem."""
    result = TableCheck(table.key)
    try:
        schema = catalog.read_schema(conn, table)
        strategies.validate(table, schema)
        strategies.require_cursor_index(conn, table, schema)
        design.check_design(table.key, table.design, schema)
        if table.where:
            probes.check_filter(conn, table.key, table.where)
        transforms.salt(table, schema, " in this environment (ferry sync, the workers, verify and reconcile "
                                       "all need it)")
    except FerryError as exc:
        result.problems += [f"{file}: {line}" if file else line for line in str(exc).splitlines()]
        return result
    result.notes.append(f"{len(schema.columns)} columns, keyset ({', '.join(strategies.keyset(table, schema))})")
    if table.where:
        result.notes.append(f"rows where {table.where}")
    shaped = [f"{c.source} ({transforms.describe(c.transform)})" for c in schema.columns if c.transform]
    if shaped:
        result.notes.append(f"transformed: {', '.join(shaped)}")
    return result


def check_sources(cfg: PipelineConfig, tables: list[str], conn: Any) -> list[TableCheck]:
    return [check_source_table(conn, cfg.table(name), f"pipelines/{cfg.name}.yml") for name in tables]


def check_target(cfg: PipelineConfig, warehouse: Any, tables: list[str]) -> TableCheck:
    """The target answers, and the loading user may create or write what a load touches."""
    result = TableCheck(f"target {cfg.pipeline.target}")
    _check_region(cfg, warehouse.store, result)
    try:
        result.problems += warehouse.access_problems(
            [naming.target_table_name(cfg.table(t).target_name) for t in tables])
        result.problems += warehouse.swap_problems(
            [naming.target_table_name(cfg.table(t).target_name) for t in tables
             if cfg.table(t).strategy == "full" and cfg.table(t).full_reload == "swap"])
    except Exception as exc:  # noqa: BLE001 - unreachable, refused: say so, whatever the driver
        result.problems.append(f"target {cfg.pipeline.target}: cannot connect or query: "
                               f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return result


def _check_region(cfg: PipelineConfig, store: Any, result: TableCheck) -> None:
    """A Redshift COPY of Parquet takes no REGION: "The Amazon S3 bucket must be in the same
    AWS Region as the Amazon Redshift database" (COPY from columnar data formats,
    copy-usage_notes-copy-from-columnar.html). The bucket's region (GetBucketLocation)
    against the cluster's (the target's `region:`, or its host name)."""
    if cfg.target.type != "redshift":
        return
    cluster = cfg.target.cluster_region()
    try:
        bucket = store.region()
    except Exception as exc:  # noqa: BLE001 - denied, missing: the client's own words
        result.problems.append(f"s3 bucket {store.bucket}: cannot read its region (GetBucketLocation): "
                               f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return
    if cluster is None:
        result.notes.append(f"s3 bucket {store.bucket} is in {bucket}; the cluster's region is not in its host name "
                            f"({cfg.target.host}): set `region:` on target {cfg.pipeline.target} to have it compared")
    elif cluster != bucket:
        result.problems.append(f"s3 bucket {store.bucket} is in {bucket}, the Redshift cluster of target "
                               f"{cfg.pipeline.target} in {cluster}: a Parquet COPY takes no REGION, so the bucket "
                               f"must be in the cluster's region")
    else:
        result.notes.append(f"s3 bucket {store.bucket} and the cluster are both in {cluster}")
