"""The Redis state of finished runs expires after FERRY_RUN_RETENTION_DAYS; what resume,
loads, status and s3clean need is kept."""
from __future__ import annotations

import time

from tests.conftest import Pipe
from tests.test_s3clean import _counts
from tests.test_sync import _seed

DAY = 86400.0


def _age_run(pipe: Pipe, run_id: str, days: float) -> None:
    st = pipe.state("orders")
    st.set_run_fields(run_id, finished_at=f"{time.time() - days * DAY:.3f}")


def test_old_finished_runs_expire_and_what_is_needed_stays(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 300)
    pipe.write({"orders": {}}, chunk_rows=100)
    done = []
    for _ in range(3):
        result = pipe.sync("--wait")
        assert result.code == 0
        done.append(result.report["run_id"])
        _seed(pipe, "orders", 50, append=True)
    extracted = []
    for _ in range(2):  # parts of these two await load
        result = pipe.sync("--wait", "--extract-only")
        assert result.code == 0
        extracted.append(result.report["run_id"])
        _seed(pipe, "orders", 50, append=True)
    st = pipe.state("orders")
    assert st.runs() == done + extracted
    table = pipe.table("orders")
    before = _counts(pipe.ferry("s3clean", "list", "-p", pipe.name, "-t", table).stdout)

    # Forty days later, keeping no "last runs": the loaded runs go; the ones awaiting load stay.
    expired = st.expire_runs(30 * DAY, keep_last=0, now=time.time() + 40 * DAY)
    assert expired == done
    assert st.runs() == extracted
    assert not st.run_meta(done[0]) and not st.chunks(done[0])
    assert not [k for k in st.r.scan_iter(f"ferry:{pipe.name}:*:run:{done[0]}:*")]
    # Their parts are still known to be loaded: s3clean lists them so, and may delete them.
    after = _counts(pipe.ferry("s3clean", "list", "-p", pipe.name, "-t", table).stdout)
    assert after["loaded"] == before["loaded"] > 0 and after["awaiting load"] == before["awaiting load"] > 0
    shown = pipe.ferry("runs", "show", "-p", pipe.name, "-t", table, done[0])
    assert shown.returncode == 2 and "expired" in shown.stderr

    # Nothing younger than the retention goes; the next sync loads everything, exactly.
    assert st.expire_runs(30 * DAY, keep_last=0) == []
    assert pipe.sync("--wait").code == 0
    assert pipe.assert_synced("orders") == 300 + 5 * 50


def test_the_plan_task_expires_runs_past_the_default_30_days(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 100)
    pipe.write({"orders": {}})
    runs = []
    for _ in range(5):
        result = pipe.sync("--wait")
        assert result.code == 0
        runs.append(result.report["run_id"])
    _age_run(pipe, runs[0], 31)
    _age_run(pipe, runs[1], 29)  # not yet
    assert pipe.sync("--wait").code == 0
    st = pipe.state("orders")
    assert st.runs()[:4] == runs[1:] and runs[0] not in st.runs()
    assert st.state()["expired_before"] == runs[0]
    assert pipe.ferry("status", "-p", pipe.name).returncode in (0, 1)
