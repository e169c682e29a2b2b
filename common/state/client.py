"""Connections to Redis: the only place a client is made (workers keep one per process,
the CLI one per command)."""
from __future__ import annotations

from typing import Any

import redis

RedisError = redis.RedisError
Redis = redis.Redis


def connect(url: str, **options: Any) -> redis.Redis:
    """A client for `url` (redis://[:password@]host:port/db); options as redis-py takes them."""
    return redis.Redis.from_url(url, **options)
