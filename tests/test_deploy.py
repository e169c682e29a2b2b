"""docker-compose.yml and the Dockerfile keep the properties a deployment relies on (checked
without a Docker engine; `make compose-demo` runs the stack where there is one)."""
from __future__ import annotations

import re
import subprocess
import sys

import yaml

from tests.services import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
ONE_SHOTS = {"s3-init", "seed"}
BACKENDS = {"mysql", "redis", "postgres", "s3"}
DOCKERFILE = (REPO / "Dockerfile").read_text()


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies() -> None:
    for name, svc in SERVICES.items():
        check = svc.get("healthcheck")
        if name in ONE_SHOTS:
            assert svc.get("restart") == "no", name
            continue
        # The worker's comes from the image's HEALTHCHECK (the worker health task).
        assert (check and check.get("test")) or (svc.get("build") and "HEALTHCHECK" in DOCKERFILE), name
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert cond["condition"] in ("service_healthy", "service_completed_successfully"), (name, dep)
    worker_deps = SERVICES["worker"]["depends_on"]
    assert all(worker_deps[b]["condition"] == "service_healthy" for b in BACKENDS)
    assert worker_deps["s3-init"]["condition"] == "service_completed_successfully"


def test_nothing_but_flower_and_metrics_is_published_and_those_on_loopback_with_auth() -> None:
    for name in BACKENDS | {"worker", "beat", "seed", "s3-init"}:
        assert "ports" not in SERVICES[name], name
    for name, port in (("flower", 5555), ("metrics", 9108)):
        assert SERVICES[name]["ports"] == [f"127.0.0.1:{port}:{port}"]
        assert "--no-auth" not in SERVICES[name]["command"]
    debug = yaml.safe_load((REPO / "deploy" / "compose.debug.yml").read_text())["services"]
    assert set(debug) == BACKENDS and all(p.startswith("127.0.0.1:") for s in debug.values() for p in s["ports"])


def test_credentials_come_from_an_env_file_that_never_reaches_the_image() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    for line in text.splitlines():
        # A credential's value in the file itself (not a $VARIABLE read from .env).
        assert not re.search(r"(?i)(password|basic_auth|secret)\w*\s*[:=]\s*[\"']?[\w-]", line), line
    assert "HOST_AUTH_METHOD" not in text and "ALLOW_EMPTY" not in text
    for name in BACKENDS - {"s3"} | {"worker", "flower", "metrics"}:
        assert ".env" in SERVICES[name]["env_file"], name
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".git" in ignored and "tests" in ignored
    assert ".env" in (REPO / ".gitignore").read_text().split()
    example = (REPO / "deploy" / "compose.env.example").read_text()
    for var in ("MARIADB_ROOT_PASSWORD", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "FLOWER_BASIC_AUTH",
                "FERRY_METRICS_BASIC_AUTH", "FERRY_REDIS_URL"):
        assert re.search(rf"^{var}=\S+", example, re.M), var


def test_config_is_mounted_read_only_and_the_seed_reaches_mysql_by_name() -> None:
    for name in ("worker", "flower", "metrics", "beat", "seed", "s3-init"):
        svc = SERVICES[name]
        mounts = [v for v in svc["volumes"] if ":/config" in v]
        assert mounts and all(v.endswith(":ro") for v in mounts), name
        assert svc["environment"]["FERRY_CONFIG"] == "/config"
        assert svc["environment"]["MYSQL_HOST"] == "mysql" and svc["environment"]["PGHOST"] == "postgres"
    assert "demo.seed" in " ".join(SERVICES["seed"]["command"])
    assert "ensure_bucket" in " ".join(SERVICES["s3-init"]["command"])
    assert "COPY" in DOCKERFILE and "connections.yml" not in DOCKERFILE.split("COPY", 1)[1].split("\n")[0]


def test_workers_scale_with_distinct_names_and_images_are_pinned() -> None:
    worker = SERVICES["worker"]
    assert "container_name" not in worker and "worker@%h" in worker["command"]
    for name, svc in SERVICES.items():
        image = svc.get("image", "")
        assert re.fullmatch(r"[\w./-]+:\d[\w.-]*", image), (name, image)  # a version, never latest
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-", DOCKERFILE, re.M)


def test_image_runs_as_a_user_without_test_packages_and_checks_its_worker() -> None:
    user = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.M)
    assert user and user[-1] not in ("root", "0")
    installs = re.findall(r"pip install[^\n]*", DOCKERFILE)
    assert any("-r requirements.txt" in i for i in installs)
    assert not any("requirements-test" in i or "pytest" in i for i in installs)
    runtime = (REPO / "requirements.txt").read_text().lower()
    for test_only in ("pytest", "sqlglot", "sqlfluff", "moto"):
        assert not re.search(rf"^{test_only}\b", runtime, re.M), test_only
    assert re.search(r"^HEALTHCHECK .*\n?.*ferry health", DOCKERFILE, re.M)


def test_ferry_health_answers_for_a_live_worker_and_fails_for_a_missing_one(workers: list) -> None:
    import json
    import os
    import socket

    from tests.conftest import REDIS_URL

    env = dict(os.environ, FERRY_REDIS_URL=REDIS_URL, CELERY_BROKER_URL=REDIS_URL,
               CELERY_RESULT_BACKEND=REDIS_URL, PYTHONPATH=str(REPO))
    name = f"{workers[0].name}@{socket.gethostname()}"
    ok = subprocess.run([sys.executable, "-m", "ferry", "health", "--hostname", name], env=env, cwd=REPO,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["mysql_cext"] is True and json.loads(ok.stdout)["worker"] == name
    gone = subprocess.run([sys.executable, "-m", "ferry", "health", "--hostname", "nobody@nowhere",
                           "--timeout", "2"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert gone.returncode == 1 and "nobody@nowhere" in gone.stderr
