"""`ferry discover`: write a pipeline file from the source's own schema (common/source/discover.py
decides; this writes it, commented, and checks that ferry reads it back)."""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import click
import yaml

from common.config.settings import config_dir
from common.errors import FerryError
from ferry.console import fail


def _q(text: str) -> str:
    """A YAML scalar for any name (a JSON string is one)."""
    return json.dumps(text)


def render(source: str, target: str, schema: str, target_schema: str | None, proposals: list) -> str:
    """The pipeline file's text: one entry per table, each choice explained in a comment."""
    today = datetime.date.today().isoformat()
    lines = [f"# Written by `ferry discover` from source {source}, schema {schema}, on {today}.",
             "# Each table's strategy is the one ferry recommends, and the comment above it says why;",
             "# review them, then `ferry check -p <this file's name>`.",
             f"source: {_q(source)}", f"target: {_q(target)}"]
    if target_schema:
        lines.append(f"target_schema: {_q(target_schema)}")
    lines.append("tables:")
    for p in proposals:
        if p.skipped:
            lines += [f"  # {p.key}: not copied: {p.skipped}", f"  # {_q(p.key)}: {{}}"]
            continue
        lines += [f"  # {why}" for why in p.why]
        lines.append(f"  {_q(p.key)}:")
        for name, value in p.settings.items():
            if name == "exclude_columns":
                lines.append("    exclude_columns:")
                for col in value:
                    lines.append(f"      - {_q(col)}  # {p.excluded[col]}")
            else:
                lines.append(f"    {name}: {json.dumps(value)}")
    if not any(not p.skipped for p in proposals):
        lines.append("  {}")
    return "\n".join(lines) + "\n"


@click.command()
@click.option("-s", "--source", required=True, help="A source of connections.yml.")
@click.option("--target", required=True, help="A target of connections.yml.")
@click.option("--schema", "schema", required=True, help="The source database (MySQL schema) to read.")
@click.option("--tables", "pattern", default=None, help="Only tables whose name matches: a glob, or several, "
                                                        "comma-separated (film*,actor).")
@click.option("--target-schema", default=None, help="The pipeline's target_schema (default: the target's schema).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the pipeline file here (default: print it); an existing file is kept unless --force.")
@click.option("--force", is_flag=True, help="Overwrite the output file.")
def discover(source: str, target: str, schema: str, pattern: str | None, target_schema: str | None,
             output: Path | None, force: bool) -> None:
    """Write a pipeline file with one entry per table of SCHEMA, each with the strategy ferry
    recommends and why (nothing secret is written: only names)."""
    from common.config.files import load_connections
    from common.source import discover as finder
    from workers import resources

    directory = config_dir(None)
    try:
        conns = load_connections(directory)
    except FerryError as exc:
        fail(str(exc))
    if source not in conns.sources:
        fail(f"connections.yml: no source {source!r} (known: {', '.join(sorted(conns.sources)) or 'none'})")
    if target not in conns.targets:
        fail(f"connections.yml: no target {target!r} (known: {', '.join(sorted(conns.targets)) or 'none'})")
    if output is not None and output.exists() and not force:
        fail(f"{output} exists; choose another -o, or --force to overwrite it")
    try:
        conn = resources.mysql(conns.sources[source])
        proposals = finder.discover(conn, schema, pattern)
    except FerryError as exc:
        fail(f"source {source}: {exc}")
    except Exception as exc:  # noqa: BLE001 - refused, unreachable: the driver's own words
        fail(f"source {source}: {type(exc).__name__}: {exc}")
    finally:
        resources.close_all()
    if not proposals:
        fail(f"source {source}: schema {schema!r} has no base table" + (f" matching {pattern!r}" if pattern else ""))
    text = render(source, target, schema, target_schema, proposals)
    yaml.safe_load(text)  # (what it wrote is YAML; `ferry check` checks the rest)
    if output is None:
        click.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    written = sum(1 for p in proposals if not p.skipped)
    click.echo(f"wrote {output}: {written} table(s)" + (f", {len(proposals) - written} left out (see the comments)"
                                                         if written < len(proposals) else ""), err=True)
