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
