"""SSH tunnels to sources behind a bastion (sshtunnel over paramiko, key authentication).

A tunnel is a per-process resource: paramiko's transport does not survive fork(), so
workers open tunnels lazily in the pool process (workers/resources.py) and the CLI
opens its own. Its threads are daemons: an open tunnel never keeps a process alive.
Errors name the bastion and never carry key material or passphrases.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

import paramiko
import sshtunnel

from common.config.connections import SourceConfig, SshTunnelConfig
from common.errors import ConfigError, TransientError

log = logging.getLogger(__name__)
_warned: set[str] = set()
_warn_lock = threading.Lock()


def _where(cfg: SshTunnelConfig) -> str:
    return f"SSH bastion {cfg.user}@{cfg.host}:{cfg.port}"


def _host_key(cfg: SshTunnelConfig) -> paramiko.PKey | None:
    """The bastion's key from known_hosts; None when checking is off."""
    if not cfg.strict_host_key_checking:
        with _warn_lock:
            if cfg.host not in _warned:
                _warned.add(cfg.host)
                log.warning("%s: host key checking is off (strict_host_key_checking: false)", _where(cfg))
        return None
    path = cfg.known_hosts.expanduser()
    try:
        known = paramiko.HostKeys(str(path))
    except (OSError, paramiko.SSHException) as exc:
        raise ConfigError(f"{_where(cfg)}: cannot read known_hosts {path}: {type(exc).__name__}") from None
    name = cfg.host if cfg.port == 22 else f"[{cfg.host}]:{cfg.port}"
    keys = known.lookup(name)
    if not keys:
        raise ConfigError(f"{_where(cfg)}: unknown host key: {name} is not in {path} (add it with "
                          f"ssh-keyscan -p {cfg.port} {cfg.host}, after checking its fingerprint)")
    return next(iter(keys.values()))


def _verify_host_key(cfg: SshTunnelConfig, expected: paramiko.PKey) -> None:
    """Compare the key the bastion shows with known_hosts before anything is sent to it
    (sshtunnel reports a mismatch only as "could not open tunnels")."""
    try:
        transport = paramiko.Transport((cfg.host, cfg.port))
    except OSError as exc:
        raise TransientError(f"{_where(cfg)}: cannot connect: {exc}") from None
    try:
        # Ask for the kind of key known_hosts holds (a server may hold several).
        transport.get_security_options().key_types = [expected.get_name()]
        transport.start_client(timeout=15)
        shown = transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise TransientError(f"{_where(cfg)}: SSH handshake failed: {exc}") from None
    finally:
        transport.close()
    if shown.get_name() != expected.get_name() or shown.asbytes() != expected.asbytes():
        raise ConfigError(f"{_where(cfg)}: host key does not match {cfg.known_hosts} (changed host key, "
                          f"or a different server: {shown.get_name()} {shown.fingerprint})")


def _private_key(cfg: SshTunnelConfig) -> paramiko.PKey:
    path = cfg.private_key.expanduser()
    try:
        passphrase = cfg.private_key_passphrase
        return paramiko.PKey.from_path(path, password=passphrase.encode() if passphrase else None)
    except FileNotFoundError:
        raise ConfigError(f"{_where(cfg)}: private key file {path} not found") from None
    except (paramiko.SSHException, ValueError, OSError) as exc:
        # paramiko's message names the problem (bad passphrase, unknown format), not the key.
        raise ConfigError(f"{_where(cfg)}: cannot load private key {path}: {exc}") from None


class Tunnel:
    """One forward from a local port to the source's host:port, through the bastion."""

    def __init__(self, src: SourceConfig) -> None:
        assert src.ssh_tunnel is not None
        self.cfg = src.ssh_tunnel
        self.remote = (src.host, src.port)
        self._forwarder: Any = None

    def _open(self) -> None:
        cfg = self.cfg
        expected = _host_key(cfg)
        if expected is not None:
            _verify_host_key(cfg, expected)
        forwarder = sshtunnel.SSHTunnelForwarder(
            (cfg.host, cfg.port), ssh_username=cfg.user, ssh_pkey=_private_key(cfg),
            ssh_host_key=expected, remote_bind_address=self.remote,
            local_bind_address=("127.0.0.1", 0), allow_agent=False, host_pkey_directories=[],
            ssh_config_file=None, set_keepalive=15.0, logger=logging.getLogger("ferry.sshtunnel"))
        forwarder.daemon_forward_servers = True
        forwarder.daemon_transport = True
        try:
            forwarder.start()
        except paramiko.BadHostKeyException:
            raise ConfigError(f"{_where(cfg)}: host key does not match {cfg.known_hosts} (changed "
                              f"host key, or a different server)") from None
        except paramiko.SSHException as exc:
            if "host key" in str(exc).lower():
                raise ConfigError(f"{_where(cfg)}: host key does not match {cfg.known_hosts} (changed "
                                  f"host key, or a different server)") from None
            raise TransientError(f"{_where(cfg)}: {exc}") from None
        except (sshtunnel.BaseSSHTunnelForwarderError, EOFError, OSError) as exc:
            raise TransientError(f"{_where(cfg)}: could not open the tunnel: {type(exc).__name__}: {exc}") from None
        self._forwarder = forwarder
        log.info("%s: tunnel open to %s:%d on 127.0.0.1:%d", _where(cfg), *self.remote,
                 forwarder.local_bind_port)

    def endpoint(self) -> tuple[str, int]:
        """The local (host, port) that reaches the source; reopens a dropped tunnel."""
        fwd = self._forwarder
        if fwd is not None and fwd.is_active:
            return "127.0.0.1", fwd.local_bind_port
        if fwd is not None:
            log.warning("%s: tunnel down; reopening it", _where(self.cfg))
            self.close()
        self._open()
        return "127.0.0.1", self._forwarder.local_bind_port

    def close(self) -> None:
        if self._forwarder is not None:
            try:
                self._forwarder.stop(force=True)
            except Exception:  # noqa: BLE001 - closing a broken tunnel may fail; it is gone anyway
                pass
            self._forwarder = None


def key(src: SourceConfig) -> tuple[Any, ...]:
    """What identifies one tunnel of a process: the bastion, the user and the forwarded target."""
    t = src.ssh_tunnel
    assert t is not None
    return (t.host, t.port, t.user, str(t.private_key), src.host, src.port)

