"""Runs ride out a dependency that restarts: here a private Redis (broker, results and ferry's
state, append-only file on) stopped for 3 s mid-run. The run finishes on its own, exactly."""
from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis

from common.state import faults
from tests.conftest import Pipe
from tests.services import Worker, free_port, wait_for
from tests.test_readers import readers_in_log
from tests.test_sync import _seed


class PrivateServer:
    """A server process of this test's own on a free port: started until it answers, stopped
    with SIGTERM (a clean shutdown: Redis flushes its append-only file, MariaDB drops every
    client connection)."""

    what = "server"
    stop_wait_s = 30

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def up(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.up, 60, f"the private {self.what}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(self.stop_wait_s)


def _sync_through_a_restart(pipe: Pipe, server: PrivateServer, down_s: float, worker: Worker) -> Any:
    """`sync --wait` of orders; once two chunks are committed the server stops for down_s
    and starts again; the sync must end on its own with exit 0. Returns its result."""
    state = pipe.state("orders")
    result: list = []
    try:
        runner = threading.Thread(target=lambda: result.append(pipe.sync("--wait", timeout_s=240)))
        runner.start()
        wait_for(lambda: bool(state.runs()) and sum(c.state != "pending" for c in state.chunks(state.runs()[-1])) >= 2,
                 60, "two chunks committed")
        server.stop()
        time.sleep(down_s)
        server.start()
        runner.join(240)
        assert result, "the sync did not end"
        assert result[0].code == 0, result[0].stderr
    finally:
        worker.stop()
    return result[0]


class PrivateRedis(PrivateServer):
    """A redis-server of this test's own, with its append-only file in `workdir`."""

    what = "redis-server"

    def __init__(self, workdir: Path) -> None:
        super().__init__()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def argv(self) -> list[str]:
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--appendonly", "yes",
                "--appendfsync", "always", "--save", "", "--dir", str(self.workdir)]

    def up(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    yield server
    server.stop()


def test_a_redis_restart_mid_run_is_ridden_out(private_redis: PrivateRedis, isolated: Pipe,
                                               log_dir: Path) -> None:
    """(private_redis comes first: it outlives the pipe's own clean-up, which reads it.)"""
    pipe = isolated
    private = private_redis
    env = dict(pipe.env, FERRY_REDIS_URL=private.url, CELERY_BROKER_URL=private.url,
               CELERY_RESULT_BACKEND=private.url, FERRY_VISIBILITY_TIMEOUT_S="25")
    pipe.env = env
    pipe.redis_url = private.url
    _seed(pipe, "orders", 4_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    table = pipe.table("orders")
    state = pipe.state("orders")
    faults.inject(state.r, pipe.name, table, 2, 1, "sleep", 6)
    result = _sync_through_a_restart(pipe, private, 3, Worker("outage", env, log_dir, concurrency=2))
    assert "waiting for Redis" in result.stderr and "Traceback" not in result.stderr
    assert pipe.assert_synced("orders") == 4_000
    totals = state.state()
    assert totals["rows_extracted"] == totals["rows_loaded"] == "4000"


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own (initdb as the postgres user), on a free port."""

    BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1] if Path("/usr/lib/postgresql").exists() else None

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.data = workdir / "pgdata"
        self.data.mkdir()
        subprocess.run(["chown", "-R", "postgres", str(workdir)], check=True)
        self._as_postgres([str(self.BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"])
        self.start()

    def _as_postgres(self, argv: list[str]) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._as_postgres([str(self.BIN / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.data / "log"),
                           "-o", f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1", "start"])

    def stop(self) -> None:
        self._as_postgres([str(self.BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    import shutil
    import tempfile

    if PrivatePostgres.BIN is None:
        pytest.skip("no PostgreSQL server binaries")
    # Not under pytest's tmp_path: the postgres user must be able to reach it.
    workdir = Path(tempfile.mkdtemp(prefix="ferry-pg-"))
    server = PrivatePostgres(workdir)
    yield server
    try:
        server.stop()
    except subprocess.CalledProcessError:
        pass
    shutil.rmtree(workdir, ignore_errors=True)


def test_postgres_down_during_the_load_is_ridden_out(private_postgres: PrivatePostgres, pipe: Pipe,
                                                     workers: list) -> None:
    """The warehouse goes away before the load starts and comes back 60 s later (the old
    five retries gave up after about 19 s): the load waits, then loads exactly once."""
    import psycopg
    import yaml

    from tests import compare

    path = pipe.config_dir / "connections.yml"
    conns = yaml.safe_load(path.read_text())
    conns["targets"][f"pg-{pipe.name}"] = {"type": "postgres", "host": "127.0.0.1", "port": private_postgres.port,
                                          "database": "postgres", "user": "postgres"}
    path.write_text(yaml.safe_dump(conns))
    _seed(pipe, "orders", 3_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    doc = yaml.safe_load((pipe.config_dir / "pipelines" / f"{pipe.name}.yml").read_text())
    doc["target"] = f"pg-{pipe.name}"
    (pipe.config_dir / "pipelines" / f"{pipe.name}.yml").write_text(yaml.safe_dump(doc))
    assert pipe.sync("--wait", "--extract-only").code == 0
    private_postgres.stop()
    result: list = []
    runner = threading.Thread(target=lambda: result.append(pipe.sync("--wait", "--load-only", timeout_s=300)))
    runner.start()
    time.sleep(60)
    private_postgres.start()
    runner.join(300)
    assert result and result[0].code == 0, result[0].stderr if result else "no result"
    schema = pipe.schema_of("orders")
    with psycopg.connect(host="127.0.0.1", port=private_postgres.port, dbname="postgres", user="postgres") as pg:
        n = compare.assert_same_rows(list(compare.source_rows(pipe.mysql(), pipe.table("orders"), schema)),
                                     list(compare.target_rows(pg, pipe.db, "orders", schema)), schema)
    assert n == 3_000


class PrivateMariaDB(PrivateServer):
    """A MariaDB server of this test's own (its own data directory and port, no grant tables)."""

    what = "MariaDB"
    stop_wait_s = 60

    def __init__(self, workdir: Path) -> None:
        super().__init__()
        self.data = workdir / "mariadb"
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.data}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=180)
        self.start()

    def argv(self) -> list[str]:
        return ["mariadbd", "--no-defaults", f"--datadir={self.data}", f"--port={self.port}",
                "--bind-address=127.0.0.1", f"--socket={self.data}/sock", f"--pid-file={self.data}/pid",
                "--user=root", "--skip-grant-tables", "--innodb-buffer-pool-size=32M",
                "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
                f"--log-error={self.data}/error.log"]

    def up(self) -> bool:
        import mysql.connector

        try:
            mysql.connector.connect(host="127.0.0.1", port=self.port, user="root", connection_timeout=1).close()
            return True
        except mysql.connector.Error:
            return False


@pytest.fixture
def private_mariadb(tmp_path: Path) -> Iterator[PrivateMariaDB]:
    server = PrivateMariaDB(tmp_path)
    yield server
    server.stop()


def test_a_mariadb_restart_mid_run_is_ridden_out(private_mariadb: PrivateMariaDB, isolated: Pipe,
                                                 log_dir: Path) -> None:
    """The source restarts (down 25 s; five quick retries used to give up after about 19 s)
    with two chunks committed and the others reading or queued: they fail on lost or refused
    connections, retry, and the run finishes on its own, exactly."""
    import mysql.connector

    from demo.seed import seed
    from tests import compare

    pipe = isolated
    server = private_mariadb
    pipe.use_source(host="127.0.0.1", port=server.port, user="root", password="")
    assert seed(pipe.table("orders"), 4_000, host="127.0.0.1", port=server.port, user="root") == 4_000
    pipe.write({"orders": {}}, chunk_rows=1000)
    state = pipe.state("orders")
    faults.inject(state.r, pipe.name, pipe.table("orders"), 2, 1, "sleep", 4)
    worker = Worker("srcdown", pipe.env, log_dir, concurrency=2)
    _sync_through_a_restart(pipe, server, 25, worker)
    log = worker.log_path.read_text()
    assert "MySQL" in log and "retry" in log, "a chunk met the restart and retried"
    assert readers_in_log(worker.log_path, pipe.table("orders")) == {"duckdb"}
    src = mysql.connector.connect(host="127.0.0.1", port=server.port, user="root", database=pipe.db)
    src.cursor().execute("SET time_zone = '+00:00'")
    schema = pipe.schema_of("orders")
    n = compare.assert_same_rows(list(compare.source_rows(src, pipe.table("orders"), schema)),
                                 list(compare.target_rows(pipe.pg(), pipe.db, "orders", schema)), schema)
    assert n == 4_000
    totals = state.state()
    assert totals["rows_extracted"] == totals["rows_loaded"] == "4000"
