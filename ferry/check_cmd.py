"""`ferry check` and `ferry connections test`: what would stop a sync, found before anything
is queued. Sources are reached the way workers reach them (through their SSH tunnel)."""
from __future__ import annotations

import sys
from typing import Any

import click

from common.verify import checks
from common.config.pipeline import PipelineConfig
from common.config.connections import SourceConfig
from common.config.files import load_connections
from common.config.settings import config_dir
from common.errors import FerryError
from ferry.console import fail, pipeline_config, table_settings


def open_source(src: SourceConfig, what: str) -> Any:
    """A connection to the source (through its tunnel); exit 2 naming it if that fails."""
    from workers import resources
    try:
        return resources.mysql(src)
    except FerryError as exc:
        fail(f"{what}: {exc}")
    except Exception as exc:  # noqa: BLE001 - refused, unreachable: the driver's own words
        fail(f"{what}: cannot connect to {src.host}:{src.port}: {type(exc).__name__}: {exc}")


def source_checks(cfg: PipelineConfig, tables: list[str]) -> list[checks.TableCheck]:
    conn = open_source(cfg.source, f"source {cfg.pipeline.source}")
    return checks.check_sources(cfg, tables, conn)


def refuse_failed_tables(cfg: PipelineConfig, tables: list[str]) -> None:
    """`ferry sync`'s pre-flight: exit 2 naming every table and column that fails."""
    from workers import resources

    failed = [c for c in source_checks(cfg, tables) if not c.ok]
    resources.close_all()
    if failed:
        fail("; ".join(p for c in failed for p in c.problems) + "; nothing was queued")


@click.command()
@click.option("-p", "--pipeline", required=True)
@click.option("-t", "--table", "tables", multiple=True, help="schema.table; repeat; default: all.")
def check(pipeline: str, tables: tuple[str, ...]) -> None:
    """Check source tables and the target; exit 2 if anything would stop a sync."""
    from workers import resources

    cfg = pipeline_config(pipeline)
    names = list(tables) or sorted(cfg.pipeline.tables)
    for name in names:
        table_settings(cfg, name)
    results = source_checks(cfg, names)
    results.append(checks.check_target(cfg, resources.warehouse(cfg), names))
    for result in results:
        click.echo(f"{'ok  ' if result.ok else 'FAIL'}  {result.table}")
        for problem in result.problems:
            click.echo(f"      error: {problem}")
        for note in result.notes:
            click.echo(f"      {note}")
    resources.close_all()
    if not all(r.ok for r in results):
        sys.exit(2)


@click.group()
def connections() -> None:
    """Test the sources and targets of connections.yml."""


@connections.command("test")
@click.argument("name", required=False)
def test(name: str | None) -> None:
    """Connect to each source and target (or only NAME); one line each, exit 1 if any fails."""
    from workers import resources
    from common.source import connection

    try:
        conns = load_connections(config_dir())
    except FerryError as exc:
        fail(str(exc))
    entries = [("source", n, s) for n, s in conns.sources.items()] + \
              [("target", n, t) for n, t in conns.targets.items()]
    if name:
        entries = [e for e in entries if e[1] == name]
        if not entries:
            fail(f"connections.yml has no source or target named {name!r}")
    bad = 0
    for kind, entry, cfg in entries:
        try:
            if kind == "source":
                conn = resources.mysql(cfg)
                version = connection.server_version(conn)
                via = f" through SSH bastion {cfg.ssh_tunnel.host}:{cfg.ssh_tunnel.port}" if cfg.ssh_tunnel else ""
                click.echo(f"ok    source {entry}: {version} at {cfg.host}:{cfg.port}{via}")
            else:
                from common.warehouse import make_engine
                engine = make_engine(cfg)
                with engine.connect() as c:
                    version = c.exec_driver_sql("SELECT version()").scalar()
                engine.dispose()
                click.echo(f"ok    target {entry}: {str(version).split(',')[0]} at {cfg.host}:{cfg.port}")
        except Exception as exc:  # noqa: BLE001 - report and go on with the next one
            bad += 1
            first = (str(exc).splitlines() or [""])[0]
            click.echo(f"FAIL  {kind} {entry}: {type(exc).__name__}: {first}")
    resources.close_all()
    sys.exit(1 if bad else 0)
