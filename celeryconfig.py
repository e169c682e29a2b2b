"""Celery settings for ferry's workers and clients (read by tasks.celery.app).

Time limits and the visibility timeout come from the environment so tests (and
operators) can shorten them; the visibility timeout always stays above the hard
time limit, or a slow task would be delivered to a second worker while it runs.
"""
import os

from kombu import Exchange, Queue

from common.config.settings import settings

_env = settings()


def _soft(hard: int) -> int:
    return max(hard - 60, int(hard * 0.9))


task_time_limit = _env.task_time_limit_s
task_soft_time_limit = _soft(task_time_limit)
# The load has a limit of its own: bounded loads (load_max_mb) keep each transaction well inside it.
_load_limit = _env.load_limit_s
task_annotations = {"ferry.load_run": {"time_limit": _load_limit, "soft_time_limit": _soft(_load_limit)}}
_longest = max(task_time_limit, _load_limit)
_visibility = _env.visibility_s
if _visibility <= _longest:
    raise ValueError(f"FERRY_VISIBILITY_TIMEOUT_S ({_visibility}) must exceed FERRY_TASK_TIME_LIMIT_S and "
                     f"FERRY_LOAD_TIME_LIMIT_S ({task_time_limit}, {_load_limit})")

# The table lock must outlive a dead worker's held messages: if it expired first, a new
# sync would resume the run while those messages come back, and one chunk would run twice.
_lock_ttl = _env.lock_ttl_s
if _lock_ttl <= _visibility:
    raise ValueError(f"FERRY_LOCK_TTL_S ({_lock_ttl}) must exceed FERRY_VISIBILITY_TIMEOUT_S ({_visibility})")

# (Celery's own variables: not ferry's settings.)
broker_url = os.environ.get("CELERY_BROKER_URL") or _env.redis_url
result_backend = os.environ.get("CELERY_RESULT_BACKEND") or _env.redis_url
broker_connection_retry_on_startup = True
broker_transport_options = {
    "visibility_timeout": _visibility,
    # A dead worker's messages are looked for every interval x throttle seconds.
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
}
result_backend_transport_options = {"visibility_timeout": _visibility}
# A task that ends while Redis restarts keeps trying to store its result (and so to count
# in its chord) instead of failing the chord: every 10 ms doubling to 10 s, for about the
# outage tolerance.
result_backend_always_retry = True
result_backend_max_sleep_between_retries_ms = 10_000
result_backend_max_retries = int(_env.outage_tolerance_s / 10) + 10
result_expires = 7 * 24 * 3600

imports = ("tasks.plan", "tasks.extract", "tasks.reconcile", "tasks.load", "tasks.failed", "tasks.keepalive", "tasks.sync",
           "tasks.health", "workers.lifecycle")
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]

task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_track_started = True
worker_send_task_events = True
task_send_sent_event = True

task_default_queue = "plan"
# Each worker also consumes a queue of its own (`ferry health` runs the health task there).
worker_direct = True
# Declared, so a plain `celery -A tasks worker` consumes all three (not only the default).
# (Exchange and routing key named after the queue, as Celery makes missing queues.)
task_queues = tuple(Queue(name, Exchange(name), routing_key=name) for name in ("plan", "extract", "load"))
task_routes = {
    "ferry.plan_table": {"queue": "plan"},
    "ferry.extract_chunk": {"queue": "extract"},
    "ferry.load_run": {"queue": "load"},
    "ferry.load_early": {"queue": "load"},
    "ferry.run_failed": {"queue": "plan"},
    "ferry.keep_run_alive": {"queue": "plan"},
    "ferry.scheduled_sync": {"queue": "plan"},
    "ferry.reconcile_range": {"queue": "extract"},
    "ferry.scheduled_reconcile": {"queue": "plan"},
}
