"""`ferry beat`: tables with a `schedule:` sync on their own, through the same code path as
`ferry sync`; a tick that finds the table busy is skipped with one log line."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from common.state import faults
from tests.conftest import Pipe
from tests.services import REPO, Worker, wait_for
from tests.test_sync import _seed


def test_a_one_second_schedule_runs_skips_while_busy_and_stays_exact(isolated: Pipe, log_dir: Path) -> None:
    pipe = isolated
    _seed(pipe, "orders", 2_000)
    pipe.write({"orders": {"schedule": {"every": "1s"}}, "customers_unscheduled": {"schedule": "off"}},
               chunk_rows=1000, schedule="*/5 * * * *")
    table = pipe.table("orders")
    st = pipe.state("orders")
    faults.inject(st.r, pipe.name, table, 0, 1, "sleep", 3)  # the first run stays busy for ~3 ticks
    worker = Worker("beatwork", pipe.env, log_dir, concurrency=2)
    beat_log = open(log_dir / "beat.log", "wb")
    beat = subprocess.Popen([sys.executable, "-m", "ferry", "beat", "--schedule-file",
                             str(log_dir / f"beat-{pipe.name}")], env=pipe.env, cwd=REPO,
                            stdout=beat_log, stderr=subprocess.STDOUT)

    def ticks() -> tuple[list[str], list[str]]:
        text = Path(worker.log_path).read_text()
        return (re.findall(rf"scheduled sync of {re.escape(table)} \(pipeline {pipe.name}\): run (\S+) queued", text),
                re.findall(rf"scheduled sync of {re.escape(table)} \(pipeline {pipe.name}\) skipped", text))

    try:
        wait_for(lambda: len(ticks()[0]) >= 2 and len(ticks()[1]) >= 1
                 and all(st.run_meta(r).get("status") == "succeeded" for r in ticks()[0][:2]), 90,
                 "two scheduled runs and a skipped tick")
    finally:
        beat.terminate()
        beat.wait(20)
        beat_log.close()
        wait_for(lambda: st.lock_owner() is None, 60, "the last scheduled run")
        worker.stop()
    queued, skipped = ticks()
    assert len(queued) + len(skipped) >= 3 and len(skipped) >= 1
    assert queued == st.runs()  # every run was started by a tick, none twice
    assert all(st.run_meta(r).get("scheduled") == "1" for r in queued)
    assert pipe.assert_synced("orders") == 2_000
    # The schedules beat read: the table's own, and the one switched off is absent.
    text = (log_dir / "beat.log").read_text()
    assert f"{pipe.name} {table}: <freq: 1.00 second>" in text and "customers_unscheduled" not in text


def test_bad_schedules_are_refused_naming_file_and_key(pipe: Pipe) -> None:
    pipe.write({"orders": {"schedule": "*/5 * * *"}})
    out = pipe.ferry("beat")
    assert out.returncode == 2 and f"pipelines/{pipe.name}.yml" in out.stderr and "5 fields" in out.stderr
    pipe.write({"orders": {"schedule": {"every": "5x"}}})
    out = pipe.ferry("sync", "-p", pipe.name)
    assert out.returncode == 2 and "every: '5x'" in out.stderr
