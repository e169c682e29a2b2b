"""Injected failures, for tests only: inactive unless the worker runs with FERRY_FAULTS=1.

A test sets, in the Redis hash naming.faults_key(pipeline, table), a field (a chunk
number, or "load"; "<point>@<session>" to hit only one session's messages, which wins
over the plain point) to "<count>:<kind>[:<seconds>]"; the next <count> times that point
is reached it fails:
- transient / terminal: raise that kind of error;
- sleep: wait <seconds> (a window in which a test can kill the worker or race it);
- sleepfail: wait <seconds>, then raise a terminal error;
- exit: end the process at once, like a kill -9 (os._exit).
"""
from __future__ import annotations

import os
import time

import redis

from common.config.settings import settings
from common.model import naming
from common.errors import TerminalError, TransientError
from common.state.base import StateBase

KINDS = ("transient", "terminal", "sleep", "sleepfail", "exit")


def maybe_fail(state: StateBase, point: str | int, session: int | None = None) -> None:
    if not settings().faults:
        return
    client, key = state.r, state.keys.faults
    fields = ([f"{point}@{session}"] if session is not None else []) + [str(point)]
    for field in fields:
        spec = client.hget(key, field)
        if spec and int(spec.decode().split(":")[0]) > 0:
            break
    else:
        return
    count, kind, *arg = spec.decode().split(":")
    client.hset(key, field, ":".join([str(int(count) - 1), kind, *arg]))
    if kind in ("sleep", "sleepfail"):
        time.sleep(float(arg[0]))
    if kind == "exit":
        os._exit(1)
    if kind in ("transient", "terminal", "sleepfail"):
        cls = TransientError if kind == "transient" else TerminalError
        raise cls(f"injected {kind} failure at {field} (FERRY_FAULTS)")


def inject(client: redis.Redis, pipeline: str, table: str, point: str | int, count: int, kind: str,
           seconds: float | None = None) -> None:
    assert kind in KINDS, kind
    client.hset(naming.faults_key(pipeline, table), str(point),
                f"{count}:{kind}" + (f":{seconds}" if seconds is not None else ""))
