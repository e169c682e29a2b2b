"""Operating ferry: a plain `celery -A tasks worker` consumes every queue, `ferry worker`
passes Celery's own options through, `ferry runs show` lists a run's chunks with their
errors, `ferry pipelines` shows the resolved config with secrets masked, `--version`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from common.state import faults
from common.model import naming
from tests.conftest import Pipe
from tests.services import REPO, wait_for
from tests.test_sync import _seed


def test_a_plain_celery_worker_consumes_plan_extract_and_load(isolated: Pipe, log_dir: Path) -> None:
    pipe = isolated
    _seed(pipe, "orders", 1_500)
    pipe.write({"orders": {}}, chunk_rows=500)
    log = open(log_dir / "plain-worker.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "INFO",
                             "--concurrency", "2", "--hostname", "plain@%h"],
                            cwd=REPO, env=pipe.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: b" ready." in (log_dir / "plain-worker.log").read_bytes(), 60, "the worker")
        result = pipe.sync("--wait", timeout_s=120)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    assert result.code == 0, result.stderr
    assert b"extract" in (log_dir / "plain-worker.log").read_bytes()  # it listed the queue
    assert pipe.assert_synced("orders") == 1_500


def test_ferry_worker_passes_celery_options_through(isolated: Pipe, log_dir: Path) -> None:
    pipe = isolated
    log_path = log_dir / "passthrough.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "ferry", "worker", "-c", "1", "--hostname", "pt@%h",
                             "--max-tasks-per-child", "7", "--without-gossip"],
                            cwd=REPO, env=pipe.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: b" ready." in log_path.read_bytes() or proc.poll() is not None, 60, "the worker")
        stats = subprocess.run([sys.executable, "-m", "celery", "-A", "tasks", "inspect", "stats", "-j",
                                "-d", "pt@" + __import__("socket").gethostname()],
                               cwd=REPO, env=pipe.env, capture_output=True, text=True, timeout=60)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    doc = json.loads(stats.stdout[stats.stdout.index("{"):])
    assert next(iter(doc.values()))["pool"]["max-tasks-per-child"] == 7


def test_runs_show_lists_every_chunk_with_its_error(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 3_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    state = pipe.state("orders")
    faults.inject(state.r, pipe.name, pipe.table("orders"), 1, 1, "terminal")
    failed = pipe.sync("--wait")
    assert failed.code == 1
    shown = pipe.ferry("runs", "show", "-p", pipe.name, "-t", pipe.table("orders"), "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["run_id"] == failed.report["run_id"] and doc["status"] == "failed"
    by_number = {c["chunk"]: c for c in doc["chunks"]}
    assert by_number[1]["state"] == "pending" and "injected terminal failure" in by_number[1]["error"]
    assert by_number[0]["state"] == "done" and by_number[0]["rows"] == 1000 and by_number[0]["attempts"] == 1
    assert by_number[0]["worker"] and by_number[0]["seconds"] is not None
    text = pipe.ferry("runs", "show", "-p", pipe.name, "-t", pipe.table("orders"))
    assert "error (session 1): TerminalError: injected terminal failure" in text.stdout
    missing = pipe.ferry("runs", "show", "-p", pipe.name, "-t", pipe.table("orders"), "r-nope")
    assert missing.returncode == 2 and "has no run 'r-nope'" in missing.stderr


def test_pipelines_list_and_show_mask_secrets_and_version(pipe: Pipe) -> None:
    path = pipe.config_dir / "connections.yml"
    saved = path.read_text()
    conns = yaml.safe_load(saved)
    conns["sources"]["mysql"]["password"] = "pw-${TEST_MYSQL_PASSWORD:-}-Zq9"
    path.write_text(yaml.safe_dump(conns))
    try:
        pipe.write({"orders": {"strategy": "full"}})
        listed = pipe.ferry("pipelines", "list")
        shown = pipe.ferry("pipelines", "show", pipe.name)
    finally:
        path.write_text(saved)
    assert f"{pipe.name}: mysql -> pg, 1 table(s)" in listed.stdout
    doc = yaml.safe_load(shown.stdout)
    assert doc["source"]["password"] == "***" and doc["s3"]["secret_access_key"] == "***"
    assert "Zq9" not in shown.stdout and "testing" not in shown.stdout
    assert doc["tables"][pipe.table("orders")]["strategy"] == "full"
    assert doc["tables"][pipe.table("orders")]["chunk_rows"] == 100000  # defaults filled in
    version = pipe.ferry("--version")
    assert version.returncode == 0 and version.stdout.startswith("ferry, version ")


def test_sync_attaches_to_an_active_run_and_every_exit_path_has_its_json(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 3_000)
    _seed(pipe, "other", 100)
    pipe.write({"orders": {}, "other": {}}, chunk_rows=1000)
    state = pipe.state("orders")
    for n in range(3):
        faults.inject(state.r, pipe.name, pipe.table("orders"), n, 1, "sleep", 12)
    queued = pipe.ferry("sync", "-p", pipe.name, "-t", pipe.table("orders"), "--json-output", "-")
    assert queued.returncode == 0
    run_id = json.loads(queued.stdout)["runs"][pipe.table("orders")]
    wait_for(lambda: state.lock_owner() == run_id, 30, "the run to hold its lock")
    # Without --wait a busy table is skipped (exit 4) and the others run.
    skipped = pipe.sync()
    assert skipped.code == 4 and skipped.report["busy_tables"] == [pipe.table("orders")]
    assert pipe.table("other") in skipped.report["runs"]
    # --timeout passes while it runs: exit 3, the JSON names the real run.
    timed_out = pipe.sync("--wait", "-t", pipe.table("orders"), "--timeout", "1")
    assert timed_out.code == 3 and timed_out.report["runs"] == {pipe.table("orders"): run_id}
    # --wait attaches to it and waits for its end.
    attached = pipe.sync("--wait", "-t", pipe.table("orders"))
    assert attached.code == 0, attached.stderr
    assert "attaching to it" in attached.stderr and attached.report["run_id"] == run_id
    assert attached.report["table_metrics"][pipe.table("orders")]["status"] == "succeeded"
    # A refused sync writes its JSON too.
    refused = pipe.sync("-t", "nope.nope")
    assert refused.code == 2 and refused.report["status"] == "refused" and "nope.nope" in refused.report["reason"]
    assert pipe.assert_synced("orders") == 3_000


def test_cancel_then_sync_loads_committed_parts_and_retry_resumes(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 3_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    state = pipe.state("orders")
    faults.inject(state.r, pipe.name, pipe.table("orders"), 2, 1, "sleep", 6)
    assert pipe.ferry("sync", "-p", pipe.name).returncode == 0
    wait_for(lambda: bool(state.runs()) and [c.state for c in state.chunks(state.runs()[-1])][:2] == ["done", "done"],
             60, "chunks 0 and 1")
    run_id = state.runs()[-1]
    assert pipe.ferry("cancel", "-p", pipe.name, "-t", pipe.table("orders")).returncode == 2  # needs --yes
    cancelled = pipe.ferry("cancel", "-p", pipe.name, "-t", pipe.table("orders"), "--yes")
    assert cancelled.returncode == 0 and f"run {run_id} cancelled" in cancelled.stdout
    assert state.lock_owner() is None and state.run_meta(run_id)["status"] == "cancelled"
    retried = pipe.ferry("retry", "-p", pipe.name, "-t", pipe.table("orders"))
    assert retried.returncode == 0 and f"retrying run {run_id} (session 2)" in retried.stdout
    wait_for(lambda: state.run_meta(run_id).get("status") == "succeeded", 60, "the retried run")
    assert pipe.assert_synced("orders") == 3_000
    nothing = pipe.ferry("retry", "-p", pipe.name)
    assert nothing.returncode == 2 and "nothing to retry" in nothing.stderr


def test_status_reports_services_workers_and_tables(pipe: Pipe, workers: list) -> None:
    _seed(pipe, "orders", 1_000)
    pipe.write({"orders": {}}, chunk_rows=500)
    assert pipe.sync("--wait").code == 0
    up = pipe.ferry("status", "-p", pipe.name, "--json")
    assert up.returncode == 0, up.stdout + up.stderr
    doc = json.loads(up.stdout)
    assert doc["problems"] == [] and all(set(q) >= {"plan", "extract", "load"} for q in doc["workers"].values())
    table = doc["pipelines"][pipe.name][pipe.table("orders")]
    assert table["last_run"]["rows"] == 1_000 and table["last_run"]["status"] == "succeeded"
    assert table["parts_awaiting_load"] == 0 and table["cursor"]
    text = pipe.ferry("status", "-p", pipe.name)
    assert f"  {pipe.table('orders')}: id, cursor" in text.stdout and "last r" in text.stdout

    path = pipe.config_dir / "connections.yml"
    saved = path.read_text()
    conns = yaml.safe_load(saved)
    conns["targets"]["pgdown"] = dict(conns["targets"]["pg"], port=1)
    path.write_text(yaml.safe_dump(conns))
    pipe_path = pipe.config_dir / "pipelines" / f"{pipe.name}.yml"
    pipe_path.write_text(pipe_path.read_text().replace("target: pg", "target: pgdown"))
    try:
        down = pipe.ferry("status", "-p", pipe.name)
    finally:
        path.write_text(saved)
    assert down.returncode == 1 and "WARNING: warehouse pgdown unreachable" in down.stdout


def test_wait_names_a_queue_nobody_consumes_and_prints_timestamped_lines(isolated: Pipe, log_dir: Path) -> None:
    import re
    import threading
    import time as _time

    from tests.services import Worker

    pipe = isolated
    _seed(pipe, "orders", 1_000)
    pipe.write({"orders": {}}, chunk_rows=500)
    planner = Worker("noextract", pipe.env, log_dir, concurrency=1, queues="plan,load")
    extractor = None
    result: list = []
    started = _time.time()
    runner = threading.Thread(target=lambda: result.append(pipe.sync("--wait", timeout_s=120)))
    runner.start()
    try:
        _time.sleep(12)  # the warning comes within seconds; the run waits for an extract worker
        extractor = Worker("lateextract", pipe.env, log_dir, concurrency=1, queues="extract")
        runner.join(120)
    finally:
        planner.stop()
        if extractor:
            extractor.stop()
    err = result[0].stderr
    assert result[0].code == 0, err
    assert "no live worker consumes the 'extract' queue" in err and "'plan'" not in err.split("WARNING")[1][:60]
    lines = [line for line in err.splitlines() if re.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} ", line)]
    assert len(lines) >= 3  # state changes and the 10-second heartbeat, each stamped
    assert any("summary " + pipe.table("orders") in line and "rows loaded 1,000" in line for line in lines)
    assert _time.time() - started < 100


def test_workers_log_one_line_per_chunk_and_json_on_request(isolated: Pipe, log_dir: Path) -> None:
    from tests.services import Worker

    pipe = isolated
    _seed(pipe, "orders", 1_000)
    pipe.write({"orders": {}}, chunk_rows=500)
    table = pipe.table("orders")
    st = pipe.state("orders")
    faults.inject(st.r, pipe.name, table, 1, 2, "transient")  # chunk 1 fails twice, then works
    worker = Worker("jsonlog", dict(pipe.env, FERRY_LOG_FORMAT="json"), log_dir, concurrency=1)
    try:
        assert pipe.sync("--wait", timeout_s=120).code == 0
        # A plan task that finds the table locked (a race the CLI cannot see): expected.
        st.r.set(naming.table_lock_key(pipe.name, table), "someone-else", ex=60)
        run_id = naming.new_run_id()
        subprocess.run([sys.executable, "-c", "from tasks import app; app.send_task('ferry.plan_table', "
                        f"args=[{pipe.name!r}, {table!r}, {run_id!r}], queue='plan')"],
                       env=pipe.env, cwd=REPO, check=True, timeout=60)
        wait_for(lambda: st.run_meta(run_id).get("status") == "failed", 30, "the locked plan task")
        wait_for(lambda: b"raised expected" in Path(worker.log_path).read_bytes(), 10, "its log line")
    finally:
        worker.stop()
    text = Path(worker.log_path).read_text()
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    chunks = [r for r in records if r["message"].startswith("chunk committed:")]
    assert len(chunks) == 2 and all(r["level"] == "INFO" and "rows 500" in r["message"] for r in chunks)
    assert any("loaded 2 parts" in r["message"] for r in records)
    # Expected conditions: one WARNING line each, naming the table, and no traceback anywhere.
    retries = [r for r in records if " retry: " in r["message"]]
    assert len(retries) == 2 and all(r["level"] == "WARNING" and f"table {table} run " in r["message"]
                                     and r["message"].endswith(" chunk 1)") for r in retries), retries
    locked = [r for r in records if "is locked by active run" in r["message"]]
    assert len(locked) == 1 and locked[0]["level"] == "WARNING" and "someone-else" in locked[0]["message"]
    assert not any("exc" in r for r in records) and "Traceback" not in text


def test_purged_extract_queue_then_cancel_then_sync_is_exact(isolated: Pipe, log_dir: Path) -> None:
    """Lost messages (a purged queue): the run waits with its lock held; `ferry cancel` frees
    the table, and `ferry sync --wait` loads what the run committed and copies the rest."""
    from tests.services import Worker

    pipe = isolated
    _seed(pipe, "orders", 3_000)
    pipe.write({"orders": {}}, chunk_rows=500)
    table = pipe.table("orders")
    st = pipe.state("orders")
    faults.inject(st.r, pipe.name, table, 2, 1, "sleep", 5)  # chunk 2 runs while 3-5 wait queued
    worker = Worker("purged", pipe.env, log_dir, concurrency=1)
    try:
        assert pipe.ferry("sync", "-p", pipe.name).returncode == 0
        wait_for(lambda: bool(st.runs()) and len(st.chunks(st.runs()[-1])) == 6
                 and st.chunks(st.runs()[-1])[1].state != "pending", 60, "chunks 0 and 1")
        run_id = st.runs()[-1]
        purge = subprocess.run([sys.executable, "-m", "celery", "-A", "tasks", "purge", "-f", "-Q", "extract"],
                               env=pipe.env, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert purge.returncode == 0 and "Purged 3 messages" in purge.stdout, purge.stdout + purge.stderr
        wait_for(lambda: st.chunks(run_id)[2].state != "pending", 30, "chunk 2")
        assert [c.state for c in st.chunks(run_id)] == ["done"] * 3 + ["pending"] * 3
        assert st.lock_owner() == run_id  # stuck: nobody will ever run chunks 3-5
        busy = pipe.sync()
        assert busy.code == 4 and busy.report["busy_tables"] == [table]

        cancelled = pipe.ferry("cancel", "-p", pipe.name, "-t", table, "--yes")
        assert cancelled.returncode == 0 and f"run {run_id} cancelled" in cancelled.stdout
        again = pipe.sync("--wait")
        assert again.code == 0, again.stderr
        assert again.report["run_id"] != run_id
    finally:
        worker.stop()
    assert pipe.assert_synced("orders") == 3_000
    totals = st.state()
    assert totals["rows_extracted"] == totals["rows_loaded"] == "3000"  # nothing read twice


def test_a_lost_load_message_is_sent_again_and_the_run_ends_exactly(isolated: Pipe, log_dir: Path) -> None:
    """Every chunk committed, but the load that would end the run is lost (the load queue
    purged while no worker consumed it): the keep-alive notices once the last commit is a
    renewal interval old, sends the load again, and the run ends on its own, exact."""
    from tests.services import Worker

    pipe = isolated
    # Renewals (and the check) every 2 s.
    pipe.env = dict(pipe.env, FERRY_TASK_TIME_LIMIT_S="6", FERRY_VISIBILITY_TIMEOUT_S="8", FERRY_LOCK_TTL_S="10")
    _seed(pipe, "orders", 3_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    st = pipe.state("orders")
    extractor = Worker("noload", pipe.env, log_dir, concurrency=2, queues="plan,extract")
    loader = None
    try:
        assert pipe.ferry("sync", "-p", pipe.name).returncode == 0
        wait_for(lambda: bool(st.runs()) and len(st.chunks(st.runs()[-1])) == 3
                 and all(c.state == "done" for c in st.chunks(st.runs()[-1])), 60, "every chunk committed")
        run_id = st.runs()[-1]
        purge = subprocess.run([sys.executable, "-m", "celery", "-A", "tasks", "purge", "-f", "-Q", "load"],
                               env=pipe.env, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert purge.returncode == 0 and "Purged 1 message" in purge.stdout, purge.stdout + purge.stderr
        assert st.run_meta(run_id)["status"] == "extracting" and st.lock_owner() == run_id
        loader = Worker("loader", pipe.env, log_dir, concurrency=1, queues="load")
        wait_for(lambda: st.run_meta(run_id).get("status") == "succeeded", 60, "the run to end")
    finally:
        extractor.stop()
        if loader:
            loader.stop()
    assert "never ran (a lost message)" in Path(extractor.log_path).read_text()
    assert st.run_meta(run_id)["session"] == "1" and st.lock_owner() is None
    totals = st.state()
    assert totals["rows_extracted"] == totals["rows_loaded"] == "3000"
    assert pipe.assert_synced("orders") == 3_000


def test_a_lost_extract_message_is_sent_again_and_the_run_ends_exactly(isolated: Pipe, log_dir: Path) -> None:
    """kombu's Redis transport takes a message off the queue before it records it as
    unacknowledged: a worker killed between the two loses the message for good, and no
    visibility timeout brings it back. Here chunk 1's message is taken off the extract queue
    by hand (what such a worker leaves behind); the keep-alive finds it in neither the queue
    nor the unacked hash at two renewals in a row, sends it again, and the run ends exact."""
    import base64
    import json as json_

    import redis as redis_

    from tests.conftest import ISOLATED_REDIS_URL
    from tests.services import Worker

    pipe = isolated
    pipe.env = dict(pipe.env, FERRY_TASK_TIME_LIMIT_S="6", FERRY_VISIBILITY_TIMEOUT_S="8", FERRY_LOCK_TTL_S="10")
    _seed(pipe, "orders", 3_000)
    pipe.write({"orders": {}}, chunk_rows=1000)
    st = pipe.state("orders")
    planner = Worker("planonly", pipe.env, log_dir, concurrency=1, queues="plan")
    worker = None
    try:
        assert pipe.ferry("sync", "-p", pipe.name).returncode == 0
        broker = redis_.Redis.from_url(ISOLATED_REDIS_URL)
        wait_for(lambda: broker.llen("extract") == 3, 60, "three extract messages queued")
        run_id = st.runs()[-1]
        for raw in broker.lrange("extract", 0, -1):
            args = json_.loads(base64.b64decode(json_.loads(raw)["body"]))[0]
            if args[2] == run_id and args[3] == 1:
                assert broker.lrem("extract", 1, raw) == 1
        assert broker.llen("extract") == 2
        worker = Worker("extractor", pipe.env, log_dir, concurrency=2, queues="extract,load")
        wait_for(lambda: st.run_meta(run_id).get("status") == "succeeded", 90, "the run to end")
    finally:
        planner.stop()
        if worker:
            worker.stop()
    assert "chunk 1 has no message in the broker" in Path(planner.log_path).read_text()
    assert st.run_meta(run_id)["session"] == "1" and st.lock_owner() is None
    totals = st.state()
    assert totals["rows_extracted"] == totals["rows_loaded"] == "3000"
    assert pipe.assert_synced("orders") == 3_000
