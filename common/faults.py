"""Injected failures, for tests only: inactive unless the worker runs with FERRY_FAULTS=1.

A test sets, in the Redis hash naming.faults_key(pipeline, table), a field (a chunk
number, or "load") to "<count>:<kind>[:<seconds>]"; the next <count> times that point
is reached it fails:
- transient / terminal: raise that kind of error;
- sleep: wait <seconds> (a window in which a test can kill the worker);
- exit: end the process at once, like a kill -9 (os._exit).
"""
from __future__ import annotations

import os
import time

import redis

from common import naming
from common.errors import TerminalError, TransientError

KINDS = ("transient", "terminal", "sleep", "exit")


def maybe_fail(client: redis.Redis, pipeline: str, table: str, point: str | int) -> None:
    if os.environ.get("FERRY_FAULTS") != "1":
        return
    key = naming.faults_key(pipeline, table)
    spec = client.hget(key, str(point))
    if not spec:
        return
    count, kind, *arg = spec.decode().split(":")
    if int(count) <= 0:
        return
    client.hset(key, str(point), ":".join([str(int(count) - 1), kind, *arg]))
    if kind == "sleep":
        time.sleep(float(arg[0]))
    elif kind == "exit":
        os._exit(1)
    else:
        cls = TransientError if kind == "transient" else TerminalError
        raise cls(f"injected {kind} failure at {point} (FERRY_FAULTS)")


def inject(client: redis.Redis, pipeline: str, table: str, point: str | int, count: int, kind: str,
           seconds: float | None = None) -> None:
    assert kind in KINDS, kind
    client.hset(naming.faults_key(pipeline, table), str(point),
                f"{count}:{kind}" + (f":{seconds}" if seconds is not None else ""))
