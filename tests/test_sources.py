"""Reaching real sources: through an SSH bastion (a real sshd whose sessions are killed
mid-run), and with a cap on concurrent chunk reads, through each reader."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from common.model import naming
from common.state import faults
from tests.conftest import MYSQL, Pipe
from tests.test_readers import readers_in_log, readers_of
from tests import compare
from tests.services import Sshd, TlsMariaDB, Worker, wait_for
from tests.test_sync import _seed


def test_a_sync_through_a_bastion_survives_its_sessions_being_killed_twice(
        isolated: Pipe, sshd: Sshd, log_dir: Path) -> None:
    pipe = isolated
    _seed(pipe, "orders", 6_000)
    pipe.use_source(ssh_tunnel=sshd.tunnel_config())
    pipe.write({"orders": {}}, chunk_rows=1000, batch_rows=200)
    state = pipe.state("orders")
    for n in range(6):  # every chunk holds its read open 1.5 s after its first batch
        faults.inject(state.r, pipe.name, pipe.table("orders"), f"read:{n}", 1, "sleep", 1.5)
    worker = Worker("tunnel", pipe.env, log_dir, concurrency=2)
    try:
        done = threading.Event()
        result: list = []
        runner = threading.Thread(target=lambda: (result.append(pipe.sync("--wait", timeout_s=180)), done.set()))
        runner.start()
        wait_for(lambda: bool(state.runs()), 60, "the plan, read through the tunnel")
        killed = 0
        for _ in range(2):
            time.sleep(1.0)  # reads are open now, streaming through the tunnel
            killed += sshd.kill_sessions()
        runner.join(200)
    finally:
        worker.stop()
    assert killed >= 2
    assert result and result[0].code == 0, result and result[0].stderr
    log = Path(worker.log_path).read_text()
    assert "tunnel down; reopening it" in log
    assert readers_in_log(worker.log_path, pipe.table("orders")) == {"duckdb"}  # through the tunnel's local end
    assert sshd.PASSPHRASE not in log and "PRIVATE KEY" not in log
    totals = state.state()
    assert totals["rows_extracted"] == totals["rows_loaded"] == "6000"
    assert pipe.assert_synced("orders") == 6_000


def test_an_unknown_bastion_host_key_is_an_error_naming_the_bastion(
        isolated: Pipe, sshd: Sshd, log_dir: Path, tmp_path: Path) -> None:
    pipe = isolated
    _seed(pipe, "orders", 10)
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    pipe.use_source(ssh_tunnel=sshd.tunnel_config(known_hosts=str(empty)))
    pipe.write({"orders": {}})
    worker = Worker("hostkey", pipe.env, log_dir, concurrency=1)
    try:
        result = pipe.sync("--wait", timeout_s=60)
    finally:
        worker.stop()
    assert result.code != 0
    text = result.stderr + str(result.report)
    assert f"SSH bastion {sshd.user}@127.0.0.1:{sshd.port}" in text and "unknown host key" in text


def _reads_now(conn, table: str) -> int:
    cur = conn.cursor()
    cur.execute("SELECT COUNT(*) FROM information_schema.processlist WHERE command = 'Query'"
                " AND info LIKE %s AND info NOT LIKE '%%processlist%%'", (f"%FROM `{table.split('.')[0]}`.%",))
    return int(cur.fetchone()[0])


def _slots_held(r: Any, source: str) -> int:
    return int(r.zcount(naming.source_slots_key(source), int(time.time() * 1000), "+inf"))


@pytest.mark.parametrize("reader", ["connector", "duckdb"])
def test_at_most_max_concurrent_chunks_reads_at_once(isolated: Pipe, log_dir: Path, reader: str) -> None:
    """Two slots, four workers, six chunks each held open by a second: never more than two
    reads at once. The connector streams its result, so the server's processlist shows each
    open read; DuckDB's extension stores a page's whole result before handing it on, so the
    server is done with it at once, and the reads held open are counted in the slots' leases."""
    pipe = isolated
    # Chunks of 10 MB: a paused connector read keeps its query open on the server (the
    # result does not fit in the socket buffers).
    pipe.execute("CREATE TABLE blobs (id INT NOT NULL PRIMARY KEY, payload VARCHAR(20000) NOT NULL)"
                 " DEFAULT CHARSET=latin1",
                 "INSERT INTO blobs SELECT seq, REPEAT(MD5(seq), 625) FROM seq_1_to_3000")
    # (read_timeout_s and max_execution_time_ms send a table to the connector: duck.why_not)
    pipe.use_source(max_concurrent_chunks=2, **({"read_timeout_s": 120, "max_execution_time_ms": 60_000}
                                                if reader == "connector" else {}))
    pipe.write({"blobs": {"reader": reader}}, chunk_rows=500, batch_rows=20, batch_mb=512)
    state = pipe.state("blobs")
    for n in range(6):
        faults.inject(state.r, pipe.name, pipe.table("blobs"), f"read:{n}", 1, "sleep", 1.0)
    workers = [Worker(f"limit{i}", pipe.env, log_dir, concurrency=1) for i in range(4)]
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        import mysql.connector
        conn = mysql.connector.connect(autocommit=True, **MYSQL)
        while not stop.is_set():
            seen.append(_reads_now(conn, pipe.table("blobs")) if reader == "connector"
                        else _slots_held(state.r, pipe.source_name))
            time.sleep(0.05)
        conn.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = pipe.sync("--wait", timeout_s=180)
    finally:
        stop.set()
        watcher.join()
        for w in workers:
            w.stop()
    assert result.code == 0, result.stderr
    assert max(seen) == 2, f"simultaneous reads seen: {sorted(set(seen))}"
    assert pipe.assert_synced("blobs") == 3_000
    assert readers_of(workers, pipe.table("blobs")) == {reader}


def test_a_changed_bastion_host_key_is_refused_and_no_secret_is_printed(
        pipe: Pipe, sshd: Sshd, tmp_path: Path) -> None:
    import subprocess

    import yaml

    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    changed = tmp_path / "known_hosts"
    changed.write_text(f"[127.0.0.1]:{sshd.port} {(tmp_path / 'other_host_key.pub').read_text()}")
    path = pipe.config_dir / "connections.yml"
    saved = path.read_text()
    conns = yaml.safe_load(saved)
    conns["sources"]["bastioned"] = dict(conns["sources"]["mysql"], ssh_tunnel=sshd.tunnel_config())
    conns["sources"]["spoofed"] = dict(conns["sources"]["mysql"],
                                       ssh_tunnel=sshd.tunnel_config(known_hosts=str(changed)))
    path.write_text(yaml.safe_dump(conns))
    try:
        good = pipe.ferry("connections", "test", "bastioned")
        bad = pipe.ferry("connections", "test", "spoofed")
    finally:
        path.write_text(saved)
    assert good.returncode == 0 and f"through SSH bastion 127.0.0.1:{sshd.port}" in good.stdout
    assert bad.returncode == 1
    assert f"SSH bastion {sshd.user}@127.0.0.1:{sshd.port}: host key does not match" in bad.stdout
    for out in (good, bad):
        assert Sshd.PASSPHRASE not in out.stdout + out.stderr


def test_session_limits_are_set_on_the_source_connection() -> None:
    from common.source import connection
    from common.config.connections import SourceConfig

    conn = connection.connect(SourceConfig(host=MYSQL["host"], port=MYSQL["port"], user=MYSQL["user"],
                                       password=MYSQL["password"], max_execution_time_ms=1500, read_timeout_s=7))
    try:
        cur = conn.cursor()
        cur.execute("SELECT @@session.max_statement_time")
        assert float(cur.fetchone()[0]) == 1.5
        assert conn.read_timeout == 7
    finally:
        conn.close()


@pytest.mark.parametrize("reader", ["duckdb", "connector"])
def test_a_source_that_takes_only_tls_is_read_by_each_reader_with_its_certificate_checked(
        pipe: Pipe, workers: list, log_dir: Path, tls_mariadb: TlsMariaDB, reader: str) -> None:
    """A second MariaDB that refuses plain connections (require_secure_transport, a user
    REQUIRE SSL): the source's ssl_ca and ssl_verify_cert reach both readers' connections,
    so every chunk is read over TLS with the server's certificate verified by the CA."""
    server = tls_mariadb
    server.admin(f"CREATE DATABASE `{pipe.db}`",
                 f"CREATE TABLE `{pipe.db}`.orders (id INT NOT NULL PRIMARY KEY, amount DECIMAL(12,2) NOT NULL,"
                 " note VARCHAR(40), at TIMESTAMP(6) NULL)",
                 f"INSERT INTO `{pipe.db}`.orders SELECT seq, seq * 1.25, IF(seq % 5 = 0, NULL, CONCAT('n', seq)),"
                 f" FROM_UNIXTIME(1700000000 + seq) FROM `{pipe.db}`.seq_1_to_3000")
    try:
        pipe.use_source(**server.source_config())
        pipe.write({"orders": {"reader": reader}}, chunk_rows=1000)
        result = pipe.sync("--wait")
        assert result.code == 0, result.stderr
        import mysql.connector
        conn = mysql.connector.connect(host="127.0.0.1", port=server.port, user=server.USER,
                                       password=server.PASSWORD, ssl_ca=str(server.ca), ssl_verify_cert=True)
        conn.cursor().execute("SET time_zone = '+00:00'")
        schema = pipe.schema_of("orders")
        assert compare.assert_same_rows(list(compare.source_rows(conn, pipe.table("orders"), schema)),
                                        list(compare.target_rows(pipe.pg(), pipe.db, "orders", schema)),
                                        schema) == 3000
        conn.close()
        assert readers_of(workers, pipe.table("orders")) == {reader}
    finally:
        server.admin(f"DROP DATABASE `{pipe.db}`")


def test_duckdb_checks_the_servers_certificate_and_is_refused_without_tls(tls_mariadb: TlsMariaDB,
                                                                        tmp_path: Path) -> None:
    """The extension's connection verifies the certificate against the source's ssl_ca (a
    CA that did not sign it fails the connection), and plain connections are refused."""
    import subprocess

    from common.config.connections import SourceConfig
    from common.source import duck

    server = tls_mariadb
    good = duck.connect(SourceConfig(**server.source_config()), "127.0.0.1", server.port)
    cipher = good.execute("SELECT * FROM mysql_query('src', 'SHOW SESSION STATUS LIKE ''Ssl_cipher''')").fetchall()
    good.close()
    assert cipher[0][1].startswith("TLS_"), cipher
    other = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-nodes", "-newkey", "rsa:2048", "-days", "1", "-x509", "-keyout",
                    str(tmp_path / "other-key.pem"), "-out", str(other), "-subj", "/CN=another CA"],
                   check=True, capture_output=True)
    with pytest.raises(Exception) as wrong_ca:
        duck.connect(SourceConfig(**server.source_config(ssl_ca=str(other))), "127.0.0.1", server.port)
    text = str(wrong_ca.value)
    assert f"source {server.USER}@127.0.0.1:{server.port}" in text and "certificate" in text.lower(), text
    with pytest.raises(Exception) as plain:
        duck.connect(SourceConfig(**dict(server.source_config(), options={"ssl_disabled": True})),
                     "127.0.0.1", server.port)
    assert "Access denied" in str(plain.value), plain.value
