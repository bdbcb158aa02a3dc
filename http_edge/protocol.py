"""The HTTP/1.1 protocol both services are served with: uvicorn's h11 implementation, with
answers a client can read at the protocol level too.

h11, not httptools: h11 stops parsing at a request's end until its answer is sent (a valid
request followed by garbage gets its own answer before the 400), and bounds a request head
(`h11_max_incomplete_event_size`); uvicorn's httptools protocol parses everything it receives
at once (the garbage's 400 closed the connection under the first answer) and buffers any header
size. The cost on the hot path is measured in docs/performance.md.

What this adds to uvicorn's H11Protocol:
- refusals are problem documents (`type: about:blank`, RFC 9457 §4.2): 431 for a head over
  the limit, 400 for bytes that are not HTTP, 408 for a request not received in time; each
  says `Connection: close` and closes;
- a request (head and body) must arrive within `request_timeout` seconds of its first byte, and
  a new connection must start one within that time: a client holding a half-sent request
  gets a 408 and is closed, instead of holding a connection and its buffers forever.
"""

import asyncio
from http import HTTPStatus
from typing import Any

import h11
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

PROBLEM_JSON = b"application/problem+json"
MAX_HEADER_BYTES = 16_384
"""The request line and headers together (nginx's and h11's default)."""
REQUEST_TIMEOUT_SECONDS = 10.0
"""From a request's first byte (or a connection's opening) to its last byte."""


class _RecordingConnection(h11.Connection):
    """h11's connection, remembering the protocol error it raised (its status hint: 431), and
    holding every request head to `max_head_bytes`: h11 bounds only a head still incomplete,
    so one that arrives whole in a single read passed at any size."""

    def __init__(self, max_head_bytes: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_head_bytes)
        self.max_head_bytes = max_head_bytes
        self.last_error: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        try:
            event = super().next_event()
            if isinstance(event, h11.Request) and _head_size(event) > self.max_head_bytes:
                raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
        except h11.RemoteProtocolError as exc:
            self.last_error = exc
            raise
        return event


def _head_size(request: h11.Request) -> int:
    """The request line and headers, as sent (give or take the line ends' whitespace)."""
    size = len(request.method) + len(request.target) + 12
    return size + sum(len(name) + len(value) + 4 for name, value in request.headers)


def refusal_bytes(status: int, detail: str) -> bytes:
    """A complete HTTP/1.1 answer with a problem document, closing the connection."""
    phrase = HTTPStatus(status).phrase
    body = orjson.dumps(
        {"type": "about:blank", "title": phrase, "status": status, "detail": detail}
    )
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        f"content-type: {PROBLEM_JSON.decode()}\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class EdgeH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with problem-document refusals and a request deadline."""

    request_timeout: float = REQUEST_TIMEOUT_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._edge_conn = _RecordingConnection(self._head_limit())
        self.conn = self._edge_conn
        self._deadline: asyncio.TimerHandle | None = None

    # --- the request deadline ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]  # uvicorn narrows it
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._arm()  # a no-op if a deadline runs: it counts from the request's first byte
        super().data_received(data)
        self._track()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start a pipelined request: track it
        self._track()

    def _arm(self) -> None:
        if self._deadline is None and not self.transport.is_closing():
            self._deadline = self.loop.call_later(self.request_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _track(self) -> None:
        """Keep the deadline while a request is partly received; drop it once it is whole."""
        state = self.conn.their_state
        partial = state is h11.SEND_BODY or (state is h11.IDLE and bool(self.conn.trailing_data[0]))
        if partial:
            self._arm()
        else:
            self._disarm()

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        state = self.conn.their_state
        if state is h11.IDLE and not self.conn.trailing_data[0]:
            self.transport.close()  # a connection that never sent a byte: nothing to answer
            return
        answered = cycle is not None and cycle.response_started
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app reading the body sees the client as gone
            cycle.message_event.set()
        if not answered:
            detail = f"The request did not arrive within {self.request_timeout:g} seconds."
            self.transport.write(refusal_bytes(408, detail))
        self.transport.close()

    # --- protocol errors ------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        error = self._edge_conn.last_error
        status = error.error_status_hint if error is not None else 400
        if status == 431:
            detail = f"The request line and headers are limited to {self._head_limit()} bytes."
        else:
            detail = "The bytes received are not a valid HTTP/1.1 request."
        cycle = self.cycle
        started = cycle is not None and cycle.response_started and not cycle.response_complete
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        if not started:
            self.transport.write(refusal_bytes(status, detail))
        self._disarm()
        self.transport.close()

    def _head_limit(self) -> int:
        return self.config.h11_max_incomplete_event_size or MAX_HEADER_BYTES


def edge_protocol(*, request_timeout: float = REQUEST_TIMEOUT_SECONDS) -> type[EdgeH11Protocol]:
    """The protocol class with its request deadline (uvicorn takes a class, not an instance)."""
    if request_timeout == EdgeH11Protocol.request_timeout:
        return EdgeH11Protocol
    return type("EdgeH11Protocol", (EdgeH11Protocol,), {"request_timeout": request_timeout})
