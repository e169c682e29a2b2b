"""Real services for the tests: an S3 server (moto) and Celery worker processes."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if check():
            return
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")


class MotoServer:
    """moto's S3 server as a subprocess on a free loopback port."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_dir / "moto.log", "wb")
        self.proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT)

        def up() -> bool:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1)
                return True
            except Exception:  # noqa: BLE001
                return False

        wait_for(up, 30, "moto S3 server")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


class Worker:
    """A real `celery -A tasks worker` process."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, concurrency: int = 2,
                 queues: str = "plan,extract,load") -> None:
        self.name = name
        self.log_path = log_dir / f"worker-{name}.log"
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "INFO",
             "--concurrency", str(concurrency), "--queues", queues, "--hostname", f"{name}@%h",
             "--without-gossip", "--without-mingle"],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: b" ready." in self.log_path.read_bytes() or self.proc.poll() is not None,
                 60, f"worker {name}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker {name} exited: {self.log_path.read_text()[-3000:]}")

    def pool_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole worker (main process and pool) at once."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        self.proc.wait(30)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self.log.close()


class Sshd:
    """A real OpenSSH server on a loopback port, with a host key, a client key (with a
    passphrase) and a known_hosts file made for the test. Installed if missing."""

    PASSPHRASE = "tunnel-passphrase"

    def __init__(self, workdir: Path) -> None:
        if not Path("/usr/sbin/sshd").exists():
            subprocess.run(["bash", "-c", "apt-get update -qq && apt-get install -y -qq openssh-server"],
                           check=True, capture_output=True)
        self.dir = workdir
        self.port = free_port()
        host_key, self.client_key = workdir / "host_ed25519", workdir / "client_ed25519"
        for path, passphrase in ((host_key, ""), (self.client_key, self.PASSPHRASE)):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(path)], check=True)
        (workdir / "authorized_keys").write_text((workdir / "client_ed25519.pub").read_text())
        self.known_hosts = workdir / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {(workdir / 'host_ed25519.pub').read_text()}")
        self.user = os.environ.get("USER") or "root"
        config = workdir / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
            f"AuthorizedKeysFile {workdir / 'authorized_keys'}", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "PubkeyAuthentication yes", "PermitRootLogin prohibit-password",
            "AllowTcpForwarding yes", "UsePAM no", "StrictModes no", f"PidFile {workdir / 'sshd.pid'}",
            "LogLevel VERBOSE", ""]))
        Path("/run/sshd").mkdir(exist_ok=True)
        self.log = open(workdir / "sshd.log", "wb")
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                                     stdout=self.log, stderr=subprocess.STDOUT)

        def up() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(up, 15, "sshd")

    def tunnel_config(self, **extra: object) -> dict[str, object]:
        return {"host": "127.0.0.1", "port": self.port, "user": self.user, "private_key": str(self.client_key),
                "private_key_passphrase": "${TEST_TUNNEL_PASSPHRASE}", "known_hosts": str(self.known_hosts),
                **extra}

    def kill_sessions(self) -> int:
        """SIGKILL every session process (the tunnels drop); the listener stays up."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        pids = [int(p) for p in out.stdout.split()]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return len(pids)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


class TlsMariaDB:
    """A second, real MariaDB on a loopback port that takes TLS only
    (require_secure_transport, and a user created REQUIRE SSL), with a CA and a server
    certificate for 127.0.0.1 made for the test."""

    USER, PASSWORD = "ferry_tls", "tls-secret"

    def __init__(self, workdir: Path) -> None:
        self.dir, self.port = workdir, free_port()
        self.ca = workdir / "ca.pem"
        ssl = ["openssl", "req", "-nodes", "-newkey", "rsa:2048", "-days", "2"]
        subprocess.run([*ssl, "-x509", "-keyout", str(workdir / "ca-key.pem"), "-out", str(self.ca),
                        "-subj", "/CN=ferry test CA"], check=True, capture_output=True)
        subprocess.run([*ssl, "-keyout", str(workdir / "server-key.pem"), "-out", str(workdir / "server.csr"),
                        "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
        (workdir / "san.cnf").write_text("subjectAltName = IP:127.0.0.1\n")
        subprocess.run(["openssl", "x509", "-req", "-in", str(workdir / "server.csr"), "-CA", str(self.ca),
                        "-CAkey", str(workdir / "ca-key.pem"), "-CAcreateserial", "-days", "2",
                        "-extfile", str(workdir / "san.cnf"), "-out", str(workdir / "server-cert.pem")],
                       check=True, capture_output=True)
        data = workdir / "data"
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
                        "--auth-root-authentication-method=socket", "--skip-test-db"],
                       check=True, capture_output=True)
        self.socket = workdir / "mysqld.sock"
        self.log = open(workdir / "mariadbd.log", "wb")
        self.proc = subprocess.Popen(
            ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={data}", "--user=root", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.socket}", f"--pid-file={workdir / 'mariadbd.pid'}",
             "--skip-log-bin", "--innodb-buffer-pool-size=32M", "--require-secure-transport=ON",
             f"--ssl-ca={self.ca}", f"--ssl-cert={workdir / 'server-cert.pem'}",
             f"--ssl-key={workdir / 'server-key.pem'}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.socket.exists(), 60, "TLS MariaDB")
        self.admin(f"CREATE USER '{self.USER}'@'%' IDENTIFIED BY '{self.PASSWORD}' REQUIRE SSL",
                   f"GRANT ALL ON *.* TO '{self.USER}'@'%'")

    def admin(self, *statements: str) -> list[tuple]:
        """Statements as root over the server's socket (a socket counts as secure)."""
        import mysql.connector

        conn = mysql.connector.connect(unix_socket=str(self.socket), user="root", autocommit=True)
        rows: list[tuple] = []
        try:
            cur = conn.cursor()
            for sql in statements:
                cur.execute(sql)
                rows = cur.fetchall() if cur.with_rows else []
        finally:
            conn.close()
        return rows

    def source_config(self, **options: object) -> dict[str, object]:
        """A connections.yml source for this server, verifying its certificate by the CA."""
        return {"host": "127.0.0.1", "port": self.port, "user": self.USER, "password": self.PASSWORD,
                "options": {"ssl_ca": str(self.ca), "ssl_verify_cert": True, **options}}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()
