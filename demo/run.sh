#!/usr/bin/env bash
# The demo: a table in the local MySQL, the embedded S3 server, two workers, one sync
# into the local PostgreSQL, then source and target row counts. Run by `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export FERRY_CONFIG="$PWD"
export FERRY_REDIS_URL="${FERRY_REDIS_URL:-redis://127.0.0.1:6379/0}"
PORT="${FERRY_S3_PORT:-5000}"
export FERRY_S3_ENDPOINT="http://127.0.0.1:${PORT}"
mkdir -p .run
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$PY" -m demo.seed --rows "${DEMO_ROWS:-200000}"

if ! curl -fs -o /dev/null "$FERRY_S3_ENDPOINT/moto-api/" 2>/dev/null; then
  .venv/bin/moto_server -H 127.0.0.1 -p "$PORT" > .run/moto.log 2>&1 &
  pids+=($!)
  for _ in $(seq 1 60); do curl -fs -o /dev/null "$FERRY_S3_ENDPOINT/moto-api/" && break; sleep 0.5; done
fi
"$PY" -m demo.prepare

for n in 1 2; do
  .venv/bin/ferry worker --concurrency 2 --hostname "demo$n@%h" --loglevel WARNING > ".run/worker$n.log" 2>&1 &
  pids+=($!)
done

.venv/bin/ferry sync -p demo -t shop.orders --wait --json-output .run/demo-report.json
"$PY" -m demo.counts
.venv/bin/ferry verify -p demo -t shop.orders
