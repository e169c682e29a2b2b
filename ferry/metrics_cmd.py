"""`ferry metrics`: serve ferry's Prometheus metrics (common/state/metrics.py) over HTTP, on
loopback by default, with basic auth from FERRY_METRICS_BASIC_AUTH on every path."""
from __future__ import annotations

import base64
import hmac
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import click
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from common.config.settings import settings
from ferry.console import basic_auth, redis_client


def make_handler(registry: CollectorRegistry, credentials: list[str]) -> type[BaseHTTPRequestHandler]:
    accepted = [base64.b64encode(c.encode()).decode() for c in credentials]

    class Handler(BaseHTTPRequestHandler):
        def _authorized(self) -> bool:
            if not accepted:
                return True
            header = self.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            return scheme == "Basic" and any(hmac.compare_digest(token.strip(), a) for a in accepted)

        def do_GET(self) -> None:  # noqa: N802 - the http.server hook
            if not self._authorized():
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="ferry metrics"')
                self.end_headers()
                self.wfile.write(b"Access denied\n")
                return
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            try:
                body = generate_latest(registry)
            except Exception as exc:  # noqa: BLE001 - Redis down: say so, as a scrape error
                self.send_response(503)
                self.end_headers()
                self.wfile.write(f"ferry metrics unavailable: {exc}\n".encode())
                return
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: Any) -> None:
            pass  # one line per scrape would drown the log

    return Handler


@click.command("metrics")
@click.option("--port", type=click.IntRange(1, 65535), default=9108, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Interface to listen on (0.0.0.0 for every interface: put TLS in front).")
@click.option("--no-auth", is_flag=True, help="Serve without authentication, on purpose.")
def metrics(port: int, address: str, no_auth: bool) -> None:
    """Serve ferry's metrics for Prometheus at /metrics; basic auth from
    FERRY_METRICS_BASIC_AUTH=user:password."""
    from common.state.metrics import FerryCollector

    credentials = basic_auth("FERRY_METRICS_BASIC_AUTH", settings().metrics_basic_auth, no_auth)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FerryCollector(redis_client()))
    server = ThreadingHTTPServer((address, port), make_handler(registry, credentials))
    click.echo(f"ferry metrics on http://{address}:{port}/metrics" + ("" if credentials else " (no auth)"),
               err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
