"""`ferry pipelines list|show`: the pipelines of the config directory, and one of them as ferry
resolves it (defaults filled in, `${VAR}` substituted), with every secret masked."""
from __future__ import annotations

from typing import Any

import click
import yaml

from common.config.files import load_pipeline
from common.config.settings import config_dir
from common.errors import FerryError
from ferry.console import fail, pipeline_config

_SECRETS = {"password", "private_key_passphrase", "secret_access_key", "access_key_id"}


def _masked(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: ("***" if k in _SECRETS and v else _masked(v)) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_masked(v) for v in node]
    return str(node) if hasattr(node, "__fspath__") else node


@click.group()
def pipelines() -> None:
    """List the pipelines of the config directory, or show one resolved."""


@pipelines.command("list")
def list_() -> None:
    """One line per pipelines/*.yml: name, source, target and tables (or why it is invalid)."""
    files = sorted((config_dir() / "pipelines").glob("*.yml"))
    if not files:
        fail(f"no pipelines in {config_dir() / 'pipelines'}")
    bad = 0
    for path in files:
        try:
            cfg = load_pipeline(path.stem)
            click.echo(f"{cfg.name}: {cfg.pipeline.source} -> {cfg.pipeline.target}, "
                       f"{len(cfg.pipeline.tables)} table(s)")
        except FerryError as exc:
            bad += 1
            click.echo(f"{path.stem}: INVALID: {str(exc).splitlines()[0]}")
    if bad:
        raise SystemExit(2)


@pipelines.command("show")
@click.argument("name")
def show(name: str) -> None:
    """The pipeline as ferry resolves it, secrets masked."""
    cfg = pipeline_config(name)
    doc = {"pipeline": cfg.name, "config_dir": str(cfg.directory),
           "source": {"name": cfg.pipeline.source, **cfg.source.model_dump()},
           "target": {"name": cfg.pipeline.target, **cfg.target.model_dump(by_alias=True)},
           "target_schema": cfg.target_schema, "s3": cfg.s3.model_dump(),
           "s3_prefix": cfg.s3_prefix,
           "tables": {key: cfg.table(key).model_dump(by_alias=True, exclude={"key"})
                      for key in cfg.pipeline.tables}}
    click.echo(yaml.safe_dump(_masked(doc), sort_keys=False, allow_unicode=True))
