"""Config files: validated on load, every error names the file and the key."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from common.config.files import load_pipeline
from common.errors import ConfigError

CONNECTIONS = {
    "sources": {"db": {"host": "127.0.0.1", "user": "root", "password": "${DB_PASSWORD}"}},
    "targets": {"wh": {"type": "postgres", "database": "test", "user": "postgres"}},
    "s3": {"bucket": "my-bucket"},
}
PIPELINE = {"source": "db", "target": "wh", "tables": {"shop.orders": {"chunk_rows": 10}}}


def _write(d: Path, conns: dict = CONNECTIONS, pipe: dict = PIPELINE, env: str = "DB_PASSWORD=s3cret\n") -> Path:
    (d / "pipelines").mkdir(exist_ok=True)
    (d / "connections.yml").write_text(yaml.safe_dump(conns))
    (d / "pipelines" / "p1.yml").write_text(yaml.safe_dump(pipe))
    (d / ".env").write_text(env)
    return d


def test_valid_config_with_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    cfg = load_pipeline("p1", _write(tmp_path))
    assert cfg.source.password == "s3cret"
    t = cfg.table("shop.orders")
    assert (t.chunk_rows, t.part_mb, t.target_name, t.schema, t.name) == (10, 64, "orders", "shop", "orders")


def test_environment_wins_over_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "from-env")
    assert load_pipeline("p1", _write(tmp_path)).source.password == "from-env"


def test_missing_variable_names_variable_file_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    with pytest.raises(ConfigError) as err:
        load_pipeline("p1", _write(tmp_path, env=""))
    assert "DB_PASSWORD" in str(err.value) and "connections.yml" in str(err.value)
    assert "sources.db.password" in str(err.value)


def test_default_in_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE", raising=False)
    conns = dict(CONNECTIONS, s3={"bucket": "${NOPE:-fallback-bucket}"})
    assert load_pipeline("p1", _write(tmp_path, conns=conns)).s3.bucket == "fallback-bucket"


@pytest.mark.parametrize("pipe, where", [
    (dict(PIPELINE, tables={"shop.orders": {"chunk_row": 10}}), "tables.shop.orders.chunk_row"),
    (dict(PIPELINE, tables={"orders": {}}), "tables"),
    (dict(PIPELINE, tables={"shop.orders": {"chunk_rows": 0}}), "tables.shop.orders.chunk_rows"),
    (dict(PIPELINE, source="nope"), "source: 'nope'"),
    (dict(PIPELINE, target="nope"), "target: 'nope'"),
    (dict(PIPELINE, extra=1), "extra"),
])
def test_bad_pipeline_names_file_and_key(tmp_path: Path, pipe: dict, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_pipeline("p1", _write(tmp_path, pipe=pipe))
    assert "p1.yml" in str(err.value) and where in str(err.value)


@pytest.mark.parametrize("conns, where", [
    (dict(CONNECTIONS, s3={"bucket": "Bad_Bucket"}), "s3.bucket"),
    (dict(CONNECTIONS, targets={"wh": {"type": "oracle", "database": "x", "user": "u"}}), "targets.wh"),
    (dict(CONNECTIONS, sources={"db": {"host": "h", "user": "u", "port": "abc"}}), "sources.db.port"),
])
def test_bad_connections_name_file_and_key(tmp_path: Path, conns: dict, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_pipeline("p1", _write(tmp_path, conns=conns))
    assert "connections.yml" in str(err.value) and where in str(err.value)


def test_unknown_pipeline_and_table(tmp_path: Path) -> None:
    _write(tmp_path)
    with pytest.raises(ConfigError, match="no pipeline named 'p2'"):
        load_pipeline("p2", tmp_path)
    with pytest.raises(ConfigError, match="no table 'shop.nope'"):
        load_pipeline("p1", tmp_path).table("shop.nope")


def test_not_yaml(tmp_path: Path) -> None:
    _write(tmp_path)
    (tmp_path / "pipelines" / "p1.yml").write_text("tables: [unclosed")
    with pytest.raises(ConfigError, match="p1.yml: not valid YAML"):
        load_pipeline("p1", tmp_path)


@pytest.mark.parametrize("mine, theirs, clash", [
    (None, None, False),            # defaults: each pipeline under its own name
    ("shared", "shared", True),
    ("team/a", "team", True),       # one contains the other
    ("team", "team/a/b", True),
    ("team/a", "team/ab", False),   # a common string prefix is not a common folder
])
def test_pipelines_with_overlapping_s3_prefixes_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           mine: str | None, theirs: str | None,
                                                           clash: bool) -> None:
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    _write(tmp_path, pipe={**PIPELINE, **({"s3_prefix": mine} if mine else {})})
    other = {**PIPELINE, **({"s3_prefix": theirs} if theirs else {})}
    (tmp_path / "pipelines" / "p2.yml").write_text(yaml.safe_dump(other))
    if not clash:
        assert load_pipeline("p1", tmp_path).name == "p1"
        return
    for name, peer in (("p1", "p2"), ("p2", "p1")):
        with pytest.raises(ConfigError) as err:
            load_pipeline(name, tmp_path)
        text = str(err.value)
        assert f"pipelines {name!r} and {peer!r}" in text and "s3_prefix" in text, text


def test_cursor_increasing_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    pipe = {**PIPELINE, "tables": {"shop.lines": {"cursor": "id", "cursor_increasing": True}}}
    assert load_pipeline("p1", _write(tmp_path, pipe=pipe)).table("shop.lines").cursor_increasing is True


def test_redshift_keys_from_the_pipeline_and_from_redshift_keys_json(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.delenv("DB_PASSWORD", raising=False)
    pipe = {**PIPELINE, "tables": {"shop.orders": {}, "shop.items": {}, "shop.users": {}},
            "redshift_keys": {"shop.orders": {"distkey": "customer_id", "sortkey": ["created_at", "id"]}}}
    _write(tmp_path, pipe=pipe)
    (tmp_path / "pipelines" / "redshift_keys.json").write_text(json.dumps({
        "shop.orders": {"diststyle": "ALL"},          # the pipeline's own section wins
        "shop.items": {"sortkey": {"type": "interleaved", "columns": ["a", "b"]}},
        "other.table": {"distkey": "x"}}))            # another pipeline's table: not ours
    cfg = load_pipeline("p1", tmp_path)
    orders, items, users = (cfg.table(f"shop.{t}").design for t in ("orders", "items", "users"))
    assert (orders.diststyle, orders.distkey, orders.sort_type, orders.sort_columns) == \
        ("KEY", "customer_id", "compound", ("created_at", "id"))
    assert (items.diststyle, items.sort_type, items.sort_columns) == ("AUTO", "interleaved", ("a", "b"))
    assert (users.diststyle, users.sort_type) == ("AUTO", "auto")


@pytest.mark.parametrize("keys, message", [
    ({"shop.nope": {"distkey": "a"}}, "redshift_keys names 'shop.nope', which is not in tables"),
    ({"shop.orders": {"distkey": "a", "diststyle": "EVEN"}}, "needs diststyle KEY"),
    ({"shop.orders": {"diststyle": "KEY"}}, "diststyle KEY needs a distkey"),
    ({"shop.orders": {"sortkey": {"type": "zigzag", "columns": ["a"]}}}, "redshift_keys"),
])
def test_bad_redshift_keys_name_file_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             keys: dict, message: str) -> None:
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    _write(tmp_path, pipe={**PIPELINE, "redshift_keys": keys})
    with pytest.raises(ConfigError) as err:
        load_pipeline("p1", tmp_path)
    assert message in str(err.value) and "p1.yml" in str(err.value)


def test_a_bad_entry_in_redshift_keys_json_names_the_file_and_table(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    _write(tmp_path)
    (tmp_path / "pipelines" / "redshift_keys.json").write_text('{"shop.orders": {"distkey": 5, "typo": 1}}')
    with pytest.raises(ConfigError) as err:
        load_pipeline("p1", tmp_path)
    assert "redshift_keys.json: shop.orders" in str(err.value)


def test_env_file_values_are_taken_literally_and_dollar_dollar_escapes(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A password like Zq${xyz}9#k reaches the server as written (python-dotenv would expand
    ${xyz} to nothing); in YAML, $${ is a literal ${."""
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    conns = {**CONNECTIONS, "targets": {"wh": {"type": "postgres", "database": "test", "user": "postgres",
                                               "password": "pre$${NOT_A_VAR}post"}}}
    cfg = load_pipeline("p1", _write(tmp_path, conns=conns, env="DB_PASSWORD='Zq${xyz}9#k'\n"))
    assert cfg.source.password == "Zq${xyz}9#k"
    assert cfg.target.password == "pre${NOT_A_VAR}post"


@pytest.mark.parametrize("key, value", [("s3_prefix", "../../escape"), ("s3_prefix", "/abs"),
                                        ("s3_prefix", "a/../b"), ("target_schema", "../x")])
def test_prefixes_and_schemas_cannot_escape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str,
                                            value: str) -> None:
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    with pytest.raises(ConfigError) as err:
        load_pipeline("p1", _write(tmp_path, pipe={**PIPELINE, key: value}))
    assert f"pipelines/p1.yml: {key}" in str(err.value) and "'..'" in str(err.value)
