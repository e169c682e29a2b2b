"""What runs inside the worker processes."""
from __future__ import annotations


def test_worker_uses_mysql_c_extension(workers: list) -> None:
    from tasks.health import health

    for queue in ("plan", "extract", "load"):
        facts = health.apply_async(queue=queue).get(timeout=60)
        assert facts["mysql_cext"] is True, facts
        assert facts["mysql_connector"].split(".")[0] != "26"


def test_this_process_has_the_c_extension() -> None:
    import mysql.connector

    assert mysql.connector.HAVE_CEXT


def test_ferry_worker_command_consumes_its_queues(ferry_env: dict, log_dir) -> None:
    import subprocess
    import sys

    from tasks.health import health
    from tests.services import REPO, wait_for

    log = log_dir / "ferry-worker-cmd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ferry", "worker", "--concurrency", "1",
                                 "--queues", "ferry-test-only", "--hostname", "solo@%h"],
                                cwd=REPO, env=ferry_env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: b" ready." in log.read_bytes() or proc.poll() is not None, 60, "ferry worker")
            facts = health.apply_async(queue="ferry-test-only").get(timeout=60)
            assert facts["worker"].startswith("solo@") and facts["mysql_cext"] is True
        finally:
            proc.terminate()
            proc.wait(30)
