"""Read slots: at most `max_concurrent_chunks` chunk reads from one source at once, across
every worker and host, as leases in Redis (common/state/lua/take_slot.lua) renewed while the
read runs. A worker that dies stops renewing, and its slot frees itself within a lease."""
from __future__ import annotations

import logging
import random
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import redis

from common.model import naming
from common.errors import TransientError
from common.state import scripts

log = logging.getLogger(__name__)
LEASE_S = 60


def take(client: redis.Redis, key: str, holder: str, limit: int, lease_s: float = LEASE_S) -> bool:
    """Take or renew holder's slot (take_slot.lua); False when all `limit` are held."""
    return bool(scripts.run(client, "take_slot", [key], [holder, int(time.time() * 1000), int(lease_s * 1000), limit]))


@contextmanager
def read_slot(client: redis.Redis, source: str, limit: int | None, holder: str,
              wait_s: float) -> Iterator[None]:
    """Hold one of the source's read slots while the block runs; without a limit, nothing.
    Waits up to wait_s for a free slot, then raises TransientError (the task retries)."""
    if not limit:
        yield
        return
    key = naming.source_slots_key(source)
    deadline = time.monotonic() + wait_s
    waited = False
    while not take(client, key, holder, limit):
        if time.monotonic() > deadline:
            raise TransientError(f"source {source}: all {limit} read slots (max_concurrent_chunks) "
                                 f"stayed busy for {wait_s:.0f} s")
        waited = True
        time.sleep(0.2 + random.random() * 0.3)
    if waited:
        log.info("source %s: read slot taken after waiting", source)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(LEASE_S / 3):
            try:
                take(client, key, holder, limit)
            except redis.RedisError:  # the next renewal (or the lease) covers a blip
                log.warning("source %s: could not renew read slot", source)

    keeper = threading.Thread(target=renew, name="ferry-read-slot", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join()
        client.zrem(key, holder)
