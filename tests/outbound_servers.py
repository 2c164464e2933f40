"""Real loopback servers for the outbound-fetch tests: a listener that proves nobody connected, one that speaks
something other than HTTP, and a small HTTP server with fixed answers (a stdlib server in a thread, so that sync
tests driving `tests/http_server.serve` and async tests can share it)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    sized: bool = True  # False: no Content-Length, the body ends when the connection closes


class Quiet:
    """A listening socket that never accepts: the kernel still completes a handshake into its backlog, so
    `connections()` counts every connection anyone made."""

    def __init__(self, host: str, port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]

    def connections(self) -> int:
        self.sock.setblocking(False)
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


@contextmanager
def quiet(host: str = "127.0.0.1", port: int = 0) -> Iterator[Quiet]:
    listener = Quiet(host, port)
    try:
        yield listener
    finally:
        listener.sock.close()


@contextmanager
def not_http(host: str = "127.0.0.1") -> Iterator[int]:
    """An open port that answers every connection with an SSH banner and closes; yields the port."""
    sock = socket.create_server((host, 0))
    sock.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        done.set()
        thread.join(5)
        sock.close()


def closed_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (nothing listens on it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
    return port


@contextmanager
def http_answers(answers: dict[str, Answer], host: str = "127.0.0.1") -> Iterator[tuple[int, list[str]]]:
    """An HTTP server answering GET paths from `answers` (404 otherwise); yields its port and the paths requested."""
    requested: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            answer = answers.get(self.path, Answer(404))
            self.send_response(answer.status)
            for name, value in answer.headers:
                self.send_header(name, value)
            if answer.sized:
                self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
