"""Injected failures, for tests only: inactive unless the worker runs with FERRY_FAULTS=1.

A test sets, in the Redis hash naming.faults_key(pipeline, table), the field
"<chunk>" to "<count>:<kind>"; the next <count> attempts of that chunk raise a
transient or terminal error (kind: transient|terminal) before reading anything.
"""
from __future__ import annotations

import os

import redis

from common import naming
from common.errors import TerminalError, TransientError


def maybe_fail(client: redis.Redis, pipeline: str, table: str, chunk: int) -> None:
    if os.environ.get("FERRY_FAULTS") != "1":
        return
    key = naming.faults_key(pipeline, table)
    spec = client.hget(key, str(chunk))
    if not spec:
        return
    count, kind = spec.decode().split(":")
    if int(count) <= 0:
        return
    client.hset(key, str(chunk), f"{int(count) - 1}:{kind}")
    cls = TransientError if kind == "transient" else TerminalError
    raise cls(f"injected {kind} failure of chunk {chunk} (FERRY_FAULTS)")


def inject(client: redis.Redis, pipeline: str, table: str, chunk: int, count: int, kind: str) -> None:
    client.hset(naming.faults_key(pipeline, table), str(chunk), f"{count}:{kind}")
