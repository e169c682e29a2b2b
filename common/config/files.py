"""Reading the config files: connections.yml and pipelines/<name>.yml, validated on load.

Every error names the file and the key at fault. `${VAR}` (or `${VAR:-default}`) in any
string value is taken from the environment, else from DIR/.env."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from pydantic import ValidationError

from common.config.design import read_keys_file
from common.config.settings import config_dir
from common.errors import ConfigError
from common.config.base import Model as _Model
from common.config.connections import Connections, S3Config
from common.config.pipeline import Pipeline, PipelineConfig

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
"""${VAR} or ${VAR:-default} in a YAML value; $${ is a literal ${ (the escape)."""

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
