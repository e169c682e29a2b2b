"""The Lua scripts of common/state/lua/, read and registered once per process, each called
through `run` (each script's file starts with its KEYS and ARGV; lua/lib/ holds fragments
that several scripts include)."""
from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any, Sequence

import redis
from redis.commands.core import Script

_LUA = Path(__file__).with_name("lua")
_INCLUDE = re.compile(r"^--#include (\S+)$", re.M)


def _text(path: Path) -> str:
    """A script's text with its `--#include NAME` lines replaced by lua/lib/NAME: Redis
    scripts cannot call one another, so a rule two scripts share is written once there."""
    return _INCLUDE.sub(lambda m: (_LUA / "lib" / m.group(1)).read_text(), path.read_text())


TEXTS = {path.stem: _text(path) for path in sorted(_LUA.glob("*.lua"))}
_registered: dict[str, Script] = {}
_lock = threading.Lock()


def _script(client: Any, name: str) -> Script:
    script = _registered.get(name)
    if script is None:
        with _lock:
            script = _registered.get(name)
            if script is None:
                script = _registered[name] = client.register_script(TEXTS[name])
    return script


def run(client: redis.Redis | Any, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """Run script `name` on `client` (a connection or a pipeline): EVALSHA, loading the
    script into a Redis that does not know it yet (a restarted or another server)."""
    return _script(client, name)(keys=list(keys), args=list(args), client=client)
