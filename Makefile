# ferry: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv services test test-redshift demo bench flower compose-demo clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-test.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

services:
	bash scripts/ensure_services.sh

# Three test processes (pytest-xdist) on two cores: most of a test is waiting for workers,
# services and timeouts. Each process has its own Redis databases, S3 server and workers
# (tests/conftest.py); FERRY_TEST_PROCESSES=0 runs the suite in one process.
FERRY_TEST_PROCESSES ?= 3

test: venv services
	$(PY) -m pytest -q -n $(FERRY_TEST_PROCESSES) --durations=10

# The live smoke test against your own cluster (see tests/test_redshift_live.py for the
# FERRY_REDSHIFT_TEST_* variables); skipped, with the reason, when they are not set.
test-redshift: venv services
	$(PY) -m pytest -q -rs -m redshift tests/test_redshift_live.py

demo: venv services
	bash demo/run.sh

bench: venv services
	$(PY) -m pip install -q -r bench/requirements.txt
	$(PY) -m bench.bench_sync --rows $${BENCH_ROWS:-1000000}
	$(PY) -m bench.bench_sync --sync-only --rows $${BENCH_RSS_ROWS:-4000000} --table bench.orders_4m
	$(PY) -m bench.bench_wide
	$(PY) -m bench.bench_plan
	$(PY) -m bench.bench_reconcile --rows $${BENCH_ROWS:-1000000} --keys-rows $${BENCH_RECONCILE_KEYS_ROWS:-10000000}

flower: venv
	$(VENV)/bin/ferry flower

# The demo through docker compose (needs a Docker engine): .env from the example on first use.
compose-demo:
	test -f .env || cp deploy/compose.env.example .env
	docker compose up -d --build --wait
	docker compose run --rm seed
	docker compose exec worker ferry sync -p demo -t shop.orders --wait
	docker compose exec worker ferry verify -p demo -t shop.orders

clean:
	rm -rf $(VENV) .run .pytest_cache
