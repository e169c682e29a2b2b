"""Operating ferry: a plain `celery -A tasks worker` consumes every queue, `ferry worker`
passes Celery's own options through, `ferry runs show` lists a run's chunks with their
errors, `ferry pipelines` shows the resolved config with secrets masked, `--version`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from common import faults
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
    assert "error: TerminalError: injected terminal failure" in text.stdout
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
