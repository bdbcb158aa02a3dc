"""A raw-socket HTTP/1.1 client for edge tests: send exactly the bytes a test wants (half a
body, a huge header, garbage after a valid request) and read back whatever the server answers.

httpx and friends refuse to send malformed requests and hide connection state; these tests
need both.
"""

import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-cased names; the last value of a repeated header wins
    body: bytes = field(repr=False)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def closes(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


class ConnectionEnded(Exception):
    """The server closed (or reset) the connection before a complete answer."""


def request_bytes(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    headers: dict[str, str] | None = None,
    content_length: int | None = None,
) -> bytes:
    """One HTTP/1.1 request; `content_length` may lie about the body (a hang-up mid-body)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    all_headers = {"Content-Length": str(len(body) if content_length is None else content_length)}
    all_headers.update(headers or {})
    lines += [f"{name}: {value}" for name, value in all_headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def json_request(path: str, document: object, *, content_type: str = "application/json") -> bytes:
    body = json.dumps(document).encode()
    return request_bytes("POST", path, body, headers={"Content-Type": content_type})


class RawConnection:
    """One TCP connection to 127.0.0.1:port; reads answers one by one from a buffer."""

    def __init__(self, port: int, *, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._buffer = b""

    def __enter__(self) -> "RawConnection":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError as exc:
            raise ConnectionEnded("connection reset") from exc
        if not chunk:
            raise ConnectionEnded("connection closed")
        self._buffer += chunk

    def read_response(self) -> RawResponse:
        """The next complete answer (Content-Length framed, as both APIs answer)."""
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            self._fill()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return RawResponse(int(status_line.split()[1]), headers, body)

    def closed_by_server(self, timeout: float) -> bool:
        """Whether the server closes the connection within `timeout` seconds (no more bytes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True
            if not chunk:
                return True
            self._buffer += chunk
        return False
