"""The control channel of a LazyFS mount: JSON lines over a Unix socket, never TCP.

A request is one line `{"cmd": "ping"}`, `{"cmd": "stats"}` or `{"cmd": "cut"}`; the answer
is one line, `{"ok": true, ...}` or `{"ok": false, "error": "..."}`. `ping` answers with the
lazyfs process's pid, `stats` with the counters, `cut` with the counters after the cut. A
connection may send several requests, one answer each, in order.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import socketserver
import threading
import time
from pathlib import Path
from typing import Any

from chaos.lazyfs.model import LazyFS, Stats

MAX_LINE = 4096  # a request or answer is a few hundred bytes
MAX_REQUESTS_PER_CONNECTION = 10_000
IDLE_TIMEOUT = 60.0  # a connection silent this long is closed
UNIX_PATH_MAX = 107  # sun_path holds 108 bytes with the terminating NUL


class LazyFSError(RuntimeError):
    """The mount could not be started, reached or driven."""


def answer(model: LazyFS, line: bytes) -> dict[str, Any]:
    """The answer to one request line."""
    try:
        request = json.loads(line)
    except ValueError as exc:
        return {"ok": False, "error": f"not JSON: {exc}"}
    command = request.get("cmd") if isinstance(request, dict) else None
    try:
        if command == "ping":
            return {"ok": True, "pid": os.getpid()}
        if command == "stats":
            return {"ok": True, "stats": dataclasses.asdict(model.stats())}
        if command == "cut":
            return {"ok": True, "stats": dataclasses.asdict(model.cut())}
    except OSError as exc:
        return {"ok": False, "error": f"{command} failed: {exc}"}
    return {"ok": False, "error": f"unknown command {command!r}; use ping, stats or cut"}


class _Handler(socketserver.StreamRequestHandler):
    timeout = IDLE_TIMEOUT

    def handle(self) -> None:
        server = self.server
        assert isinstance(server, ControlServer)
        try:
            for _ in range(MAX_REQUESTS_PER_CONNECTION):
                line = self.rfile.readline(MAX_LINE + 1)
                if not line:
                    return
                if len(line) > MAX_LINE:
                    self._reply({"ok": False, "error": f"request longer than {MAX_LINE} bytes"})
                    return
                self._reply(answer(server.model, line))
        except OSError:
            return  # the client went away or stayed silent past the idle timeout

    def _reply(self, message: dict[str, Any]) -> None:
        self.wfile.write(json.dumps(message).encode() + b"\n")
        self.wfile.flush()


class ControlServer(socketserver.ThreadingUnixStreamServer):
    """Serves the control channel of one model on a thread of its own."""

    daemon_threads = True

    def __init__(self, path: Path, model: LazyFS) -> None:
        if len(os.fsencode(path)) > UNIX_PATH_MAX:
            raise LazyFSError(f"control socket path longer than {UNIX_PATH_MAX} bytes: {path}")
        self.model = model
        self.path = path
        path.unlink(missing_ok=True)  # a socket left by a killed earlier run
        super().__init__(str(path), _Handler)
        os.chmod(path, 0o600)
        # A short poll: close() waits for the serving loop to notice the shutdown.
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name="lazyfs-control"
        )

    def start(self) -> None:
        self._thread.daemon = True
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self.shutdown()
        self.server_close()
        self.path.unlink(missing_ok=True)


class LazyFSControl:
    """A client of one mount's control channel; one connection per call."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout

    def ping(self) -> int:
        """The pid of the lazyfs process."""
        pid = self._call("ping").get("pid")
        if not isinstance(pid, int):
            raise LazyFSError(f"ping answered without a pid: {pid!r}")
        return pid

    def stats(self) -> Stats:
        return _stats(self._call("stats"))

    def cut(self) -> Stats:
        """Drop every unsynced byte and directory entry; the stats after the cut."""
        return _stats(self._call("cut"))

    def _call(self, command: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        data = b""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(str(self.path))
                sock.sendall(json.dumps({"cmd": command}).encode() + b"\n")
                while not data.endswith(b"\n"):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or len(data) > MAX_LINE:
                        raise LazyFSError(f"{command}: no complete answer in {self.timeout} s")
                    sock.settimeout(remaining)
                    chunk = sock.recv(MAX_LINE)
                    if not chunk:
                        raise LazyFSError(f"{command}: the lazyfs process closed the connection")
                    data += chunk
        except OSError as exc:
            raise LazyFSError(f"{command}: control socket {self.path}: {exc}") from exc
        message = json.loads(data)
        if not isinstance(message, dict) or message.get("ok") is not True:
            error = message.get("error") if isinstance(message, dict) else message
            raise LazyFSError(f"{command}: {error}")
        return message


def _stats(message: dict[str, Any]) -> Stats:
    raw = message.get("stats")
    if not isinstance(raw, dict):
        raise LazyFSError(f"answer without stats: {message!r}")
    values: dict[str, int] = {}
    for item in dataclasses.fields(Stats):
        value = raw.get(item.name)
        if not isinstance(value, int):
            raise LazyFSError(f"stats field {item.name} missing or not an integer: {raw!r}")
        values[item.name] = value
    return Stats(**values)
