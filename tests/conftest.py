"""Fixtures: real MariaDB, Redis, PostgreSQL, a moto S3 server and Celery workers.

Each test gets its own pipeline name, MySQL database, PostgreSQL schema and S3
prefix; the Redis database (13 unless $FERRY_TEST_REDIS_URL says otherwise) is
flushed before and after the session and the test's keys after each test.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import common  # noqa: F401  (mysql.connector before pyarrow)
import mysql.connector
import psycopg
import pytest
import redis
import yaml

from common.model import naming
from common.config.connections import S3Config
from common.store.s3 import Store, make_client
from common.model.types import TableSchema
from common.state.table import TableState
from tests import compare
from tests.services import REPO, MotoServer, Sshd, TlsMariaDB, Worker

# Each test process (pytest-xdist runs several) has two Redis databases of its own: one
# shared by its tests and workers, one for the tests that start and kill their own workers.
# Serial runs use 13 and 14; xdist process gwN uses base + 2N and base + 2N + 1 (base 1,
# FERRY_TEST_REDIS_DB_BASE to move them; 15 is the bench smoke test's).
_XDIST = os.environ.get("PYTEST_XDIST_WORKER", "")
_DB = (int(os.environ.get("FERRY_TEST_REDIS_DB_BASE", "1")) + 2 * int(_XDIST[2:])) if _XDIST else 13
_REDIS = os.environ.get("FERRY_TEST_REDIS", "redis://127.0.0.1:6379")
REDIS_URL = os.environ.get("FERRY_TEST_REDIS_URL") or f"{_REDIS}/{_DB}"
MYSQL = dict(host=os.environ.get("MYSQL_HOST", "127.0.0.1"), port=int(os.environ.get("MYSQL_PORT", "3306")),
             user=os.environ.get("MYSQL_USER", "root"), password=os.environ.get("MYSQL_PASSWORD", ""))
PG_DSN = os.environ.get("FERRY_TEST_PG_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres")
BUCKET = "ferry-test"


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def moto(log_dir: Path) -> Iterator[MotoServer]:
    server = MotoServer(log_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def config_dir(tmp_path_factory: pytest.TempPathFactory, moto: MotoServer) -> Path:
    d = tmp_path_factory.mktemp("config")
    (d / "pipelines").mkdir()
    (d / "connections.yml").write_text(yaml.safe_dump({
        "sources": {"mysql": {"host": MYSQL["host"], "port": MYSQL["port"], "user": MYSQL["user"],
                              "password": "${TEST_MYSQL_PASSWORD:-}"}},
        "targets": {"pg": {"type": "postgres", "host": "127.0.0.1", "port": 5432, "database": "test",
                           "user": "postgres", "schema": "public"}},
        "s3": {"bucket": BUCKET, "prefix": "ferry", "region": "us-east-1", "endpoint_url": moto.url,
               "access_key_id": "testing", "secret_access_key": "testing"},
    }))
    return d


SALT = "pepper é 1"
"""The hash salt of the tests' `transform: hash` columns (salt_env: FERRY_TEST_SALT)."""


@pytest.fixture(scope="session")
def ferry_env(config_dir: Path) -> Iterator[dict[str, str]]:
    """Environment shared by the test process, the CLI and the workers."""
    env = dict(os.environ, FERRY_CONFIG=str(config_dir), FERRY_REDIS_URL=REDIS_URL,
               CELERY_BROKER_URL=REDIS_URL, CELERY_RESULT_BACKEND=REDIS_URL,
               TEST_MYSQL_PASSWORD=MYSQL["password"], FERRY_TASK_TIME_LIMIT_S="300",
               FERRY_VISIBILITY_TIMEOUT_S="360", PYTHONPATH=str(REPO), FERRY_FAULTS="1",
               TEST_TUNNEL_PASSPHRASE=Sshd.PASSPHRASE, FERRY_TEST_SALT=SALT)
    saved = dict(os.environ)
    os.environ.update(env)
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield env
    client.flushdb()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def s3_store(ferry_env: dict[str, str], moto: MotoServer) -> Store:
    cfg = S3Config(bucket=BUCKET, endpoint_url=moto.url,
                                                access_key_id="testing", secret_access_key="testing")
    store = Store(make_client(cfg), BUCKET)
    store.ensure_bucket("us-east-1")
    return store


@pytest.fixture(scope="session")
def workers(ferry_env: dict[str, str], s3_store: Store, log_dir: Path) -> Iterator[list[Worker]]:
    """Two worker processes of two pool processes each, on every queue."""
    started = [Worker("w1", ferry_env, log_dir), Worker("w2", ferry_env, log_dir)]
    yield started
    for w in started:
        w.stop()


@pytest.fixture(scope="session")
def tls_mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsMariaDB]:
    server = TlsMariaDB(tmp_path_factory.mktemp("tls-mariadb"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    server = Sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@dataclass
class SyncResult:
    code: int
    report: dict[str, Any]
    stderr: str


@dataclass
class Pipe:
    """One test's pipeline with its own database, schema and S3 prefix."""

    name: str
    db: str
    config_dir: Path
    env: dict[str, str]
    store: Store
    redis_url: str = REDIS_URL
    source_name: str = "mysql"
    _conns: list[Any] = field(default_factory=list)

    def use_source(self, **settings: Any) -> None:
        """Give this pipeline a source of its own in connections.yml: the test MySQL with
        these settings (ssh_tunnel, max_concurrent_chunks, ...). Call before write()."""
        path = self.config_dir / "connections.yml"
        conns = yaml.safe_load(path.read_text())
        self.source_name = f"mysql-{self.name}"
        conns["sources"][self.source_name] = dict(conns["sources"]["mysql"], **settings)
        path.write_text(yaml.safe_dump(conns))

    def write(self, tables: dict[str, dict[str, Any]], **defaults: Any) -> None:
        doc = {"source": self.source_name, "target": "pg", "s3_prefix": self.name, "target_schema": self.db,
               "defaults": defaults, "tables": {f"{self.db}.{t}": cfg for t, cfg in tables.items()}}
        (self.config_dir / "pipelines" / f"{self.name}.yml").write_text(yaml.safe_dump(doc))

    def table(self, name: str) -> str:
        return f"{self.db}.{name}"

    def mysql(self) -> Any:
        conn = mysql.connector.connect(database=self.db, autocommit=True, **MYSQL)
        conn.cursor().execute("SET time_zone = '+00:00'")  # as ferry reads
        self._conns.append(conn)
        return conn

    def execute(self, *statements: str, params: Any = None) -> None:
        conn = self.mysql()
        cur = conn.cursor()
        for stmt in statements:
            cur.execute(stmt, params)
        cur.close()

    def pg(self) -> psycopg.Connection:
        conn = psycopg.connect(PG_DSN, autocommit=True)
        self._conns.append(conn)
        return conn

    def state(self, table: str) -> TableState:
        return TableState(redis.Redis.from_url(self.redis_url), self.name, self.table(table))

    def ferry(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
        """Any ferry command, as a subprocess with this pipeline's environment."""
        return subprocess.run([sys.executable, "-m", "ferry", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout_s, cwd=REPO)

    def sync(self, *args: str, timeout_s: float = 240) -> SyncResult:
        out = self.config_dir / f"{self.name}-report.json"
        out.unlink(missing_ok=True)
        proc = subprocess.run([sys.executable, "-m", "ferry", "sync", "-p", self.name, *args,
                               "--json-output", str(out)],
                              env=self.env, capture_output=True, text=True, timeout=timeout_s, cwd=REPO)
        report = json.loads(out.read_text()) if out.exists() else {}
        return SyncResult(proc.returncode, report, proc.stderr)

    def schema_of(self, table: str) -> TableSchema:
        schema = self.state(table).schema()
        assert schema is not None, f"no recorded schema for {table}"
        return schema

    def assert_synced(self, table: str, target: str | None = None, where: str | None = None) -> int:
        """Target rows equal source rows (every column; with `where`, the source rows it
        selects); returns the row count."""
        schema = self.schema_of(table)
        return compare.assert_same_rows(
            list(compare.source_rows(self.mysql(), self.table(table), schema, where)),
            list(compare.target_rows(self.pg(), self.db, target or table, schema)), schema)

    def close(self) -> None:
        for c in self._conns:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass


def _new_pipe(env: dict[str, str], config_dir: Path, store: Store, redis_url: str) -> Pipe:
    token = secrets.token_hex(4)
    return Pipe(name=f"t-{token}", db=f"ft_{token}", config_dir=config_dir, env=env, store=store,
                redis_url=redis_url)


@pytest.fixture
def pipe(ferry_env: dict[str, str], config_dir: Path, s3_store: Store) -> Iterator[Pipe]:
    p = _new_pipe(ferry_env, config_dir, s3_store, REDIS_URL)
    yield from _with_pipe(p)


# Tests that start and kill their own workers get a broker of their own.
ISOLATED_REDIS_URL = os.environ.get("FERRY_TEST_ISOLATED_REDIS_URL") or f"{_REDIS}/{_DB + 1}"


@pytest.fixture
def isolated(ferry_env: dict[str, str], config_dir: Path, s3_store: Store) -> Iterator[Pipe]:
    """A pipe on its own Redis database (broker included), for tests that start and kill
    their own workers; time limits are short so a dead worker's tasks return quickly."""
    env = dict(ferry_env, FERRY_REDIS_URL=ISOLATED_REDIS_URL, CELERY_BROKER_URL=ISOLATED_REDIS_URL,
               CELERY_RESULT_BACKEND=ISOLATED_REDIS_URL, FERRY_TASK_TIME_LIMIT_S="20",
               FERRY_VISIBILITY_TIMEOUT_S="25")
    client = redis.Redis.from_url(ISOLATED_REDIS_URL)
    client.flushdb()
    p = _new_pipe(env, config_dir, s3_store, ISOLATED_REDIS_URL)
    yield from _with_pipe(p)
    client.flushdb()


def _with_pipe(p: Pipe) -> Iterator[Pipe]:
    admin = mysql.connector.connect(autocommit=True, **MYSQL)
    admin.cursor().execute(f"CREATE DATABASE `{p.db}`")
    yield p
    p.close()
    admin.cursor().execute(f"DROP DATABASE IF EXISTS `{p.db}`")
    admin.close()
    with psycopg.connect(PG_DSN, autocommit=True) as pg:
        pg.execute(f'DROP SCHEMA IF EXISTS "{p.db}" CASCADE')
    client = redis.Redis.from_url(p.redis_url)
    for key in client.scan_iter(naming.pipeline_pattern(p.name), count=1000):
        client.delete(key)
    p.store.delete(k for k, _ in p.store.list(f"ferry/{p.name}/"))
    (p.config_dir / "pipelines" / f"{p.name}.yml").unlink(missing_ok=True)
