"""Runs ride out a dependency that restarts: here a private Redis (broker, results and ferry's
state, append-only file on) stopped for 3 s mid-run. The run finishes on its own, exactly."""
from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import redis

from common import faults
from tests.conftest import Pipe
from tests.services import Worker, free_port, wait_for
from tests.test_sync import _seed


class PrivateRedis:
    """A redis-server of this test's own, with its append-only file in `workdir`."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                                      "--dir", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._up, 30, "the private redis-server")

    def _up(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: redis flushes its append-only file and exits
            self.proc.wait(30)


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
    worker = Worker("outage", env, log_dir, concurrency=2)
    result: list = []
    try:
        runner = threading.Thread(target=lambda: result.append(pipe.sync("--wait", timeout_s=240)))
        runner.start()
        wait_for(lambda: bool(state.runs()) and sum(c.state != "pending" for c in state.chunks(state.runs()[-1])) >= 2,
                 60, "two chunks committed")
        private.stop()
        time.sleep(3)
        private.start()
        runner.join(240)
        assert result, "the sync did not end"
        assert result[0].code == 0, result[0].stderr
        assert "waiting for Redis" in result[0].stderr and "Traceback" not in result[0].stderr
    finally:
        worker.stop()
    assert pipe.assert_synced("orders") == 4_000
    totals = state.state()
    assert totals["rows_extracted"] == totals["rows_loaded"] == "4000"
