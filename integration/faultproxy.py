"""A fault-injecting HTTP proxy in front of the local registry, on 127.0.0.1 only.

It fails the first N requests for each path (optionally only for some methods) with a 5xx (a CDN's 520
among them), a 429 (with Retry-After), a connection reset, or no response at all (the request read, the
connection closed), then forwards requests to the registry unchanged.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("503", "500", "429", "520", "reset", "noresponse")


class FaultProxy:
    def __init__(self, upstream: str, fault: str, n: int, only: Callable[[str, str], bool] | None = None) -> None:
        """Fail the first n requests of each path for which only(method, path) holds (default: all)."""
        assert fault in FAULTS
        self.upstream, self.fault, self.n, self.only = upstream, fault, n, only
        self.counts: dict[str, int] = {}
        self.injected: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def handle_one_request(self) -> None:
                # BuildKit tries HTTPS first and falls back to HTTP for an insecure registry only when the
                # server answers the TLS hello with HTTP, as Go's server does (and the real registry).
                try:
                    first = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    first = b""
                if first == b"\x16":
                    self.wfile.write(b"HTTP/1.0 400 Bad Request\r\n\r\n"
                                     b"Client sent an HTTP request to an HTTPS server.\n")
                    self.close_connection = True
                    return
                super().handle_one_request()

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _handle(self) -> None:
                body = self._body()
                path = self.path.split("?", 1)[0]
                if proxy._should_fail(self.command, path):
                    proxy._fail(self)
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                # Headers verbatim, repeated ones included (docker sends one Accept per media type).
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    if k.lower() not in ("transfer-encoding", "content-length"):
                        conn.putheader(k, v)
                if body or self.command in ("PUT", "POST", "PATCH"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body or None)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.addr = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _should_fail(self, method: str, path: str) -> bool:
        if path == "/v2/" or (self.only is not None and not self.only(method, path)):
            return False
        with self.lock:
            c = self.counts.get(path, 0)
            self.counts[path] = c + 1
            if c < self.n:
                self.injected.append((method, path))
                return True
            return False

    def _fail(self, h: BaseHTTPRequestHandler) -> None:
        if self.fault == "noresponse":
            # The request was read; the connection closes (FIN) with no answer at all.
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            h.connection.close()
            return
        if self.fault == "reset":
            # RST instead of FIN: SO_LINGER with a zero timeout, then close.
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close_connection = True
            h.connection.close()
            return
        status = int(self.fault)
        body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}'
        if status == 520:  # what a CDN in front of a registry answers: its own text, no registry error body
            body = b"error code: 520"
        if status == 429:
            body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"injected rate limit"}]}'
        h.send_response(status)
        if status == 429:
            h.send_header("Retry-After", "1")
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()
            self.injected.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
