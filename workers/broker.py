"""A worker that survives a Redis restart.

kombu 5.7's Redis transport, closing a channel after the broker connection dropped, tries
to push the unacknowledged messages back through a connection that is already released
(`conninfo` is None): the AttributeError kills the worker's consumer ("Unrecoverable error")
instead of letting it reconnect. The messages are safe without that push: they stay in
Redis's unacked set and come back after the visibility timeout. So, with no connection left,
the push is skipped and said so; the consumer then reconnects as Celery intends.
"""
from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)
_original = kombu_redis.QoS.restore_unacked


def _restore_unacked(self: Any, client: Any = None) -> Any:
    if client is None and _dead(self):
        log.warning("broker connection lost: %d unacknowledged message(s) stay in Redis and are "
                    "delivered again after the visibility timeout", len(self._delivered))
        self._delivered.clear()
        return None
    return _original(self, client)


def _dead(qos: Any) -> bool:
    return getattr(getattr(qos.channel, "connection", None), "client", None) is None


def _guarded(name: str) -> Any:
    """ack/reject of a message delivered on a channel whose connection is gone: nothing can
    be sent on it; the message stays unacked in Redis and returns after the visibility
    timeout (a chunk that committed meanwhile then finds itself committed: counted once)."""
    original = getattr(kombu_redis.QoS, name)

    def guarded(self: Any, delivery_tag: Any, *args: Any, **kwargs: Any) -> Any:
        if _dead(self):
            log.warning("broker connection lost: %s of message %s skipped; it is delivered again after "
                        "the visibility timeout", name, delivery_tag)
            return None
        return original(self, delivery_tag, *args, **kwargs)

    return guarded


kombu_redis.QoS.restore_unacked = _restore_unacked
kombu_redis.QoS.ack = _guarded("ack")
kombu_redis.QoS.reject = _guarded("reject")
