"""`ferry verify`: does the target hold exactly the source's rows up to what has been loaded?
Exit 0 when every range agrees, 1 when some differ (each printed with its bounds, counts and
the keys that differ), 2 on bad input."""
from __future__ import annotations

import json

import click

from common.model import naming, transforms
from common.source import catalog
from common.verify import compare as verify
from common.errors import FerryError
from common.warehouse import sql
from common.state.table import TableState
from ferry.console import fail, pipeline_config, redis_client, table_settings


def _print(report: verify.Report) -> None:
    click.echo(f"verify {report.table}: rows up to {report.bound}; {report.mode}")
    click.echo(f"  {report.ranges} range(s): source {report.source_rows:,} rows, target {report.target_rows:,} rows")
    for note in report.notes:
        click.echo(f"  {note}")
    for d in report.differences:
        click.echo(f"DIFFERS {d.part.show()}: source {d.source_rows:,} rows, target {d.target_rows:,} rows")
        for key, what in d.rows:
            click.echo(f"  key {key}: {what}")
        if d.more:
            click.echo("  (more rows differ than were read: verify again after fixing these)")
    if report.agree:
        click.echo("source and target agree")
    else:
        n = sum(len(d.rows) for d in report.differences)
        click.echo(f"{len(report.differences)} range(s) differ, {n} row(s) named")


@click.command("verify")
@click.option("-p", "--pipeline", required=True)
@click.option("-t", "--table", required=True)
@click.option("--ranges", type=click.IntRange(min=1, max=10_000), default=16, show_default=True,
              help="Key ranges compared first (a differing one is split again); a text key is "
                   "split into 16 buckets of its MD5 instead.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def verify_table(pipeline: str, table: str, ranges: int, as_json: bool) -> None:
    """Compare source and target row counts and checksums over every column, per key range,
    up to the loaded cursor; name the ranges and keys that differ."""
    cfg = pipeline_config(pipeline)
    settings = table_settings(cfg, table)
    st = TableState(redis_client(), pipeline, table)
    schema = st.schema()
    if schema is None:
        fail(f"table {table} of pipeline {pipeline} has never been synced: nothing to verify")
    if not schema.key:
        fail(f"table {table}: verify compares rows by key, and the table has none (load: append)")
    bound, bound_text, loaded = verify.loaded_bound(st, settings)
    if not loaded:
        fail(f"table {table}: {bound_text}; nothing to verify")
    if st.lock_owner():
        click.echo(f"ferry: warning: run {st.lock_owner()} of {table} is active: rows it loads while "
                   f"verify reads may show as differences", err=True)
    from workers import resources
    target_table = naming.target_table_name(settings.target_name)
    try:
        conn = resources.mysql(cfg.source)
        current = {c.source for c in catalog.read_schema(conn, settings).columns}
        warehouse = resources.warehouse(cfg)
        with warehouse.engine.connect() as wh:
            query, params = sql.target_column_types(cfg.target_schema, target_table)
            in_target = {r[0] for r in wh.exec_driver_sql(query, tuple(params))}
            if not in_target:
                fail(f"target {cfg.target_schema}.{target_table} does not exist")
            columns = [c for c in schema.columns if c.source in current and c.name in in_target]
            missing = [c for c in schema.key if schema.column(c).name not in in_target or c not in current]
            if missing:
                fail(f"table {table}: key column(s) {', '.join(missing)} missing from the source or the target")
            report = verify.verify(conn, wh, warehouse.dialect, settings, schema, columns,
                                   cfg.target_schema, target_table, bound, bound_text, ranges,
                                   live_only=verify.SOFT_DELETED in in_target,
                                   salt=transforms.salt(settings, schema, " in this environment"))
            wh.rollback()
        for c in schema.columns:
            if c not in columns:
                where = "source" if c.source not in current else "target"
                report.notes.append(f"column {c.name}: not compared (no longer in the {where})")
    except FerryError as exc:
        fail(str(exc))
    finally:
        resources.close_all()
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        _print(report)
    raise SystemExit(0 if report.agree else 1)
