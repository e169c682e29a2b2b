"""Per-process resources: MySQL connections, S3 stores, Redis and warehouse engines.

Opened lazily in the process that uses them (never at import, never before fork) and
dropped on fork and at shutdown, so no socket is ever shared between processes.
"""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any


from common.state import client
from common.source import connection, tunnel
from common.errors import classify
from common.config.pipeline import PipelineConfig
from common.config.connections import S3Config, SourceConfig
from common.config.settings import redis_url

if TYPE_CHECKING:  # imported where used: the CLI's checks need MySQL, not boto3 or SQLAlchemy
    from common.store.s3 import Store
    from common.warehouse import Warehouse

log = logging.getLogger(__name__)

_pid = os.getpid()
_mysql: dict[tuple[Any, ...], Any] = {}
_duck: dict[tuple[Any, ...], Any] = {}
_s3: dict[tuple[Any, ...], Any] = {}
_engines: dict[tuple[Any, ...], Any] = {}
_redis: dict[str, client.Redis] = {}
_tunnels: dict[tuple[Any, ...], tunnel.Tunnel] = {}


def forget() -> None:
    """Drop handles without closing them: after fork they belong to the parent."""
    global _pid
    _mysql.clear()
    _duck.clear()
    _s3.clear()
    _engines.clear()
    _redis.clear()
    _tunnels.clear()
    _pid = os.getpid()


def _check_fork() -> None:
    if os.getpid() != _pid:
        forget()


def mysql(src: SourceConfig) -> Any:
    """A live connection to the source, reconnecting if the last one died."""
    _check_fork()
    key = (src.host, src.port, src.user, src.password, src.database, repr(sorted(src.options.items())))
    conn = _mysql.get(key)
    if conn is not None:
        try:
            conn.ping(reconnect=False)
            return conn
        except Exception:  # noqa: BLE001 - any failure means: open a new one
            drop_mysql(conn)
    try:
        conn = connection.connect(src, **endpoint(src))
    except Exception as exc:
        err = classify(exc)
        if err is exc:
            raise
        # One line naming the connection: which source, as which user.
        raise type(err)(f"source {src.user}@{src.host}:{src.port}: {err}") from exc
    _mysql[key] = conn
    return conn


def endpoint(src: SourceConfig) -> dict[str, Any]:
    """Connect arguments that reach the source: its own host and port, or the local end of
    this process's tunnel through its bastion (opened, or reopened if it dropped)."""
    if src.ssh_tunnel is None:
        return {}
    _check_fork()
    key = tunnel.key(src)
    if key not in _tunnels:
        _tunnels[key] = tunnel.Tunnel(src)
    host, port = _tunnels[key].endpoint()
    return {"host": host, "port": port}


def drop_mysql(conn: Any) -> None:
    """Close and forget a connection whose state is unknown (e.g. a read failed mid-stream)."""
    _drop(_mysql, conn)


def _drop(cache: dict[tuple[Any, ...], Any], conn: Any) -> None:
    for k, v in list(cache.items()):
        if v is conn:
            del cache[k]
    try:
        conn.close()
    except Exception:  # noqa: BLE001
        pass


def duck(src: SourceConfig) -> Any:
    """This process's DuckDB connection with the source attached (common/source/duck.py),
    through the source's endpoint (its tunnel's local end, if any)."""
    from common.source import duck as duck_reader

    _check_fork()
    where = endpoint(src)
    host, port = where.get("host", src.host), where.get("port", src.port)
    key = (host, port, src.user, src.password, src.database, repr(sorted(src.options.items())))
    if key not in _duck:
        for k in [k for k in _duck if k[2:] == key[2:]]:  # the tunnel moved: the old one is dead
            drop_duck(_duck[k])
        _duck[key] = duck_reader.connect(src, host, port)
    return _duck[key]


def drop_duck(con: Any) -> None:
    """Close and forget a DuckDB connection whose read failed (its MySQL connection may be
    mid-result)."""
    _drop(_duck, con)


def store(cfg: S3Config) -> "Store":
    from common.store.s3 import Store, make_client

    _check_fork()
    key = (cfg.endpoint_url, cfg.region, cfg.access_key_id, cfg.secret_access_key)
    if key not in _s3:
        _s3[key] = make_client(cfg)
    return Store(_s3[key], cfg.bucket)


def redis_client() -> client.Redis:
    _check_fork()
    url = redis_url()
    if url not in _redis:
        _redis[url] = client.connect(url, health_check_interval=30, socket_keepalive=True)
    return _redis[url]


def warehouse(cfg: PipelineConfig) -> "Warehouse":
    from common.warehouse import make_engine, make_warehouse

    _check_fork()
    t = cfg.target
    key = (t.type, t.host, t.port, t.database, t.user, t.password)
    if key not in _engines:
        _engines[key] = make_engine(t)
    return make_warehouse(t, cfg.target_schema, _engines[key], store(cfg.s3), cfg.s3)


def close_all() -> None:
    """Close everything this process opened (worker shutdown)."""
    for conn in list(_mysql.values()):
        drop_mysql(conn)
    for con in list(_duck.values()):
        drop_duck(con)
    for engine in _engines.values():
        engine.dispose()
    for conn in _redis.values():
        conn.close()
    for t in _tunnels.values():
        t.close()
    _tunnels.clear()
    _s3.clear()
    _engines.clear()
    _redis.clear()
