"""Locks of a table: the table lock (one run at a time), the load lock (one load at a
time) and the early-load marker (one early load queued or running). Each is taken in one
step (take_lock.lua, or SET NX) and released only by its owner (release_lock.lua)."""
from __future__ import annotations

import json
import logging

from common.errors import LockedError
from common.model.records import FINAL_STATUSES
from common.state.base import StateBase, text

log = logging.getLogger(__name__)
_FINALS_JSON = json.dumps(FINAL_STATUSES)


class Locks(StateBase):
    def _take(self, key: str, token: str, ttl_s: int) -> str | None:
        """Take a lock, re-entrant for its owner (a redelivered task, a resumed run), in one
        step (take_lock.lua); returns None when taken, else the other owner's token."""
        owner = text(self._script("take_lock", [key], [token, int(ttl_s * 1000)]))
        return owner or None

    def acquire_lock(self, run_id: str, ttl_s: int) -> None:
        """Take the table lock for run_id; LockedError names the run that holds it."""
        owner = self._take(self.keys.lock, run_id, ttl_s)
        if owner is not None:
            raise LockedError(self.table, owner)

    def lock_owner(self) -> str | None:
        owner = self.r.get(self.keys.lock)
        return None if owner is None else text(owner)

    def renew_lock(self, run_id: str, session: int, ttl_s: int) -> int:
        """Renew a live run's lock (see renew_lock.lua for the codes)."""
        return int(self._script("renew_lock", [self.keys.lock, self.keys.meta(run_id)],
                                [run_id, session, ttl_s * 1000, _FINALS_JSON]))

    def acquire_load_lock(self, token: str, ttl_s: int) -> bool:
        """Take the load lock; re-entrant for the same token (a redelivered load task)."""
        return self._take(self.keys.load_lock, token, ttl_s) is None

    def load_lock_owner(self) -> str | None:
        owner = self.r.get(self.keys.load_lock)
        return None if owner is None else text(owner)

    def release_load_lock(self, token: str) -> bool:
        return bool(self._script("release_lock", [self.keys.load_lock], [token]))

    def take_early_load(self, token: str, ttl_s: int) -> bool:
        """Mark an early load of the table queued (one at a time); False if one is already.
        The token names its owner: only the load it was taken for releases it."""
        return bool(self.r.set(self.keys.early_load, token, nx=True, ex=ttl_s))

    def release_early_load(self, token: str) -> bool:
        return bool(self._script("release_lock", [self.keys.early_load], [token]))
