"""The Redis broker as kombu keeps it: a worker that survives a Redis restart, and the
messages a killed worker lost.

kombu 5.7's Redis transport, closing a channel after the broker connection dropped, tries
to push the unacknowledged messages back through a connection that is already released
(`conninfo` is None): the AttributeError kills the worker's consumer ("Unrecoverable error")
instead of letting it reconnect. The messages are safe without that push: they stay in
Redis's unacked set and come back after the visibility timeout. So, with no connection left,
the push is skipped and said so; the consumer then reconnects as Celery intends.
"""
from __future__ import annotations

import base64
import json
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


# ---- messages a killed worker lost -------------------------------------------------------
# kombu's Redis transport takes a message off its queue (BRPOP) before it records it as
# unacknowledged (a second round trip, QoS.append): a worker killed between the two loses
# it for good, and no visibility timeout brings it back (celery/kombu#305). ferry looks for
# the messages of a run's pending chunks where kombu keeps them (the queue's lists, one per
# priority step, and the unacked hash) and sends again one that is in neither.

def chunk_messages(app: Any, queue: str, run_id: str) -> set[int]:
    """Numbers of the run's chunks that have a message queued on `queue` or held
    unacknowledged by a worker (read through kombu's own channel and key names)."""
    found: set[int] = set()
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        client = channel.client
        raw = [m for pri in channel.priority_steps for m in client.lrange(channel._q_for_pri(queue, pri), 0, -1)]
        held = [json.loads(v)[0] for v in client.hvals(channel.unacked_key)]
        for message in [json.loads(m) for m in raw] + held:
            number = _chunk_of(message, run_id)
            if number is not None:
                found.add(number)
    return found


def _chunk_of(message: dict[str, Any], run_id: str) -> int | None:
    """The chunk number of an extract or reconcile message of the run (Celery's message
    protocol 2: the body is [args, kwargs, embed], base64 in the Redis transport)."""
    if (message.get("headers") or {}).get("task") not in ("ferry.extract_chunk", "ferry.reconcile_range"):
        return None
    body = message.get("body", "")
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args = json.loads(body)[0]
    return int(args[3]) if len(args) > 3 and args[2] == run_id else None
