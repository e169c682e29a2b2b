"""The CLI on bad input: a clear message, a non-zero exit, and nothing enqueued or changed."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import redis

from common.model import naming
from tests.conftest import REDIS_URL, Pipe
from tests.services import REPO


def _ferry(pipe: Pipe, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferry", *args], env=dict(pipe.env, **env),
                          capture_output=True, text=True, timeout=60, cwd=REPO)


def _keys(pipeline: str) -> list[bytes]:
    return list(redis.Redis.from_url(REDIS_URL).scan_iter(naming.pipeline_pattern(pipeline)))


def test_unknown_pipeline(pipe: Pipe) -> None:
    r = _ferry(pipe, "sync", "-p", "no-such-pipeline")
    assert r.returncode == 2 and "no pipeline named 'no-such-pipeline'" in r.stderr


def test_unknown_table_enqueues_nothing(pipe: Pipe) -> None:
    pipe.write({"orders": {}})
    r = _ferry(pipe, "sync", "-p", pipe.name, "-t", pipe.table("orders"), "-t", f"{pipe.db}.nope")
    assert r.returncode == 2 and f"no table '{pipe.db}.nope'" in r.stderr
    assert _keys(pipe.name) == []


def test_misspelt_key_names_file_and_key(pipe: Pipe) -> None:
    pipe.write({"orders": {"chunk_row": 5}})
    r = _ferry(pipe, "sync", "-p", pipe.name)
    assert r.returncode == 2
    assert f"{pipe.name}.yml" in r.stderr and f"tables.{pipe.db}.orders.chunk_row" in r.stderr
    assert _keys(pipe.name) == []


def test_missing_variable_names_it(pipe: Pipe) -> None:
    pipe.write({"orders": {}})
    path = pipe.config_dir / "pipelines" / f"{pipe.name}.yml"
    path.write_text(path.read_text().replace("target: pg", "target: ${NO_SUCH_TARGET_VAR}"))
    r = _ferry(pipe, "sync", "-p", pipe.name)
    assert r.returncode == 2 and "NO_SUCH_TARGET_VAR" in r.stderr and f"{pipe.name}.yml" in r.stderr
    assert _keys(pipe.name) == []


def test_bad_limit(pipe: Pipe) -> None:
    pipe.write({"orders": {}})
    r = _ferry(pipe, "sync", "-p", pipe.name, "--limit", "0")
    assert r.returncode == 2 and "--limit" in r.stderr
    assert _keys(pipe.name) == []


def test_unreachable_redis(pipe: Pipe) -> None:
    pipe.write({"orders": {}})
    r = _ferry(pipe, "sync", "-p", pipe.name, FERRY_REDIS_URL="redis://127.0.0.1:1/0")
    assert r.returncode == 2 and "cannot reach Redis" in r.stderr


def test_watermark_get_of_a_new_table(pipe: Pipe) -> None:
    pipe.write({"orders": {}})
    r = _ferry(pipe, "watermark", "get", "-p", pipe.name, "-t", pipe.table("orders"), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["cursor"] is None and doc["status_extract"] == "never run" and doc["rows_loaded"] == 0


def test_an_unreachable_redis_is_named_without_its_password(tmp_path) -> None:
    import os
    import subprocess
    import sys

    from tests.services import REPO

    env = dict(os.environ, FERRY_REDIS_URL="redis://:Sup3r-Secret@127.0.0.1:1/0", FERRY_CONFIG=str(tmp_path),
               PYTHONPATH=str(REPO))
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "p.yml").write_text("source: a\n")
    out = subprocess.run([sys.executable, "-m", "ferry", "status"], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "cannot reach Redis at redis://:***@127.0.0.1:1/0" in out.stderr
    assert "Sup3r-Secret" not in out.stderr + out.stdout


def test_a_ferry_setting_of_the_wrong_type_is_refused_naming_it(pipe: Pipe) -> None:
    pipe.write({"orders": {}})
    for name, value in (("FERRY_LOCK_TTL_S", "two hours"), ("FERRY_LOG_FORMAT", "xml"),
                        ("FERRY_OUTAGE_TOLERANCE_S", "-1")):
        r = _ferry(pipe, "sync", "-p", pipe.name, **{name: value})
        assert r.returncode == 2, (name, r.stderr)
        assert f"environment variable {name}={value!r}" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert _keys(pipe.name) == []  # nothing enqueued, no state written
    assert redis.Redis.from_url(REDIS_URL).llen("plan") == 0


def test_settings_are_read_as_declared() -> None:
    """Case of FERRY_LOG_FORMAT, an empty value as unset, FERRY_MAX_RETRIES=0 kept as 0."""
    code = ("from common.config.settings import settings; from tasks.context import RETRY; "
            "s = settings(); print(s.log_format, s.lock_ttl_s, RETRY['max_retries'])")

    def run(**env: str) -> str:
        base = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
        out = subprocess.run([sys.executable, "-c", code], env=dict(base, **env), capture_output=True,
                             text=True, timeout=60, cwd=REPO)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    assert run() == ["text", "7200", "24"]
    assert run(FERRY_LOG_FORMAT="JSON", FERRY_LOCK_TTL_S="", FERRY_MAX_RETRIES="0") == ["json", "7200", "0"]
    assert run(FERRY_OUTAGE_TOLERANCE_S="60") == ["text", "7200", "6"]  # waits of 1+2+4+8+16+30 s
