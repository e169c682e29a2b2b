"""`ferry flower`: basic auth on every path (Flower's own /metrics and /healthcheck
included), credentials only from the environment, and tasks that name their table."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import Pipe
from tests.services import REPO, free_port, wait_for
from tests.test_sync import _seed

USER, PASSWORD = "ops", "s3cret-Flower-pw"


def _get(port: int, path: str, auth: bool) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except urllib.error.URLError:
        return 0, b""  # not listening (yet)


def test_flower_needs_credentials_everywhere_and_shows_tables(pipe: Pipe, workers: list, log_dir: Path) -> None:
    refused = pipe.ferry("flower", "--port", str(free_port()))
    assert refused.returncode == 2 and "FLOWER_BASIC_AUTH" in refused.stderr
    bad = subprocess.run([sys.executable, "-m", "ferry", "flower"], env=dict(pipe.env, FLOWER_BASIC_AUTH="nopassword"),
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "user:password" in bad.stderr

    port = free_port()
    log = open(log_dir / "flower.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "ferry", "flower", "--port", str(port)],
                            env=dict(pipe.env, FLOWER_BASIC_AUTH=f"{USER}:{PASSWORD}"), cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _get(port, "/healthcheck", True)[0] == 200, 60, "flower")
        assert PASSWORD not in " ".join(proc.args)  # (never on a command line)
        _seed(pipe, "orders", 2_000)
        pipe.write({"orders": {}}, chunk_rows=1000)
        result = pipe.sync("--wait")
        assert result.code == 0, result.stderr
        run_id, table = result.report["run_id"], pipe.table("orders")

        for path in ("/", "/tasks", "/api/tasks", "/api/workers", "/metrics", "/healthcheck",
                     f"/api/task/info/{run_id}"):
            code, _ = _get(port, path, auth=False)
            assert code == 401, (path, code)

        def tasks() -> dict:
            return json.loads(_get(port, "/api/tasks?limit=1000", True)[1])

        wait_for(lambda: any(t.get("name") == "ferry.load_run" and run_id in (t.get("args") or "")
                             for t in tasks().values()), 30, "the load task in Flower")
        mine = [t for t in tasks().values() if run_id in (t.get("args") or "")]
        by_name: dict[str, list[str]] = {}
        for t in mine:
            by_name.setdefault(t["name"], []).append(t["args"])
        assert len(by_name["ferry.extract_chunk"]) == 2 and len(by_name["ferry.load_run"]) == 1, by_name
        for args in by_name["ferry.extract_chunk"] + by_name["ferry.load_run"] + by_name["ferry.plan_table"]:
            assert args.startswith(f"(pipeline={pipe.name!r}, table={table!r}, run={run_id!r}"), args
        assert "[" not in by_name["ferry.load_run"][0]  # not the chord's result list
        assert _get(port, "/metrics", True)[0] == 200
        assert _get(port, "/", True)[0] == 200
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
