"""A small typed client for Toxiproxy's HTTP API (server v2.x), over httpx.

Why not the `toxiproxy-python` package: it has been unmaintained since 2019 and still depends
on `future`, the Python 2 compatibility layer. The API is a dozen JSON endpoints, so this
module speaks it directly:

    GET  /version                              server version (plain text in v2.5)
    POST /reset                                re-enable every proxy, remove every toxic
    GET  /proxies                              {name: proxy}
    POST /proxies                              create {name, listen, upstream, enabled}
    GET|POST|DELETE /proxies/{name}            show, update (listen/upstream/enabled), delete
    GET|POST /proxies/{name}/toxics            list, add {name?, type, stream, toxicity, attributes}
    GET|POST|DELETE /proxies/{name}/toxics/{t} show, update {attributes, toxicity}, remove

Errors come back as `{"error": message, "status": code}`; they raise `ToxiproxyError` with the
server's message. Toxic attributes (all integers; times in milliseconds unless noted):

    latency     latency, jitter            delay each chunk of data
    bandwidth   rate (KB/s)                throttle throughput
    slow_close  delay                      delay the close after the peer closed
    timeout     timeout (0 = forever)      stop all data, close after timeout
    reset_peer  timeout                    TCP RST after timeout (0 = at the first data)
    slicer      average_size, size_variation (bytes), delay (microseconds)
    limit_data  bytes                      close the connection after that many bytes

`stream` is the direction the toxic acts on: `downstream` (server → client, the default) or
`upstream` (client → server). `fault()` and `cut()` are context managers that always heal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, TypeAlias

import httpx

ToxicType: TypeAlias = Literal[
    "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"
]
Stream: TypeAlias = Literal["upstream", "downstream"]
Attributes: TypeAlias = Mapping[str, int | float]

DEFAULT_URL = "http://127.0.0.1:8474"
REMOVE_TIMEOUT = 30.0  # seconds one DELETE of a toxic may take (see remove_toxic)
REMOVE_ATTEMPTS = 3


class ToxiproxyError(Exception):
    """The Toxiproxy API refused a request; `status_code` and the server's `message`."""

    def __init__(self, status_code: int, message: str, *, method: str, path: str) -> None:
        super().__init__(f"Toxiproxy {method} {path} -> {status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.method = method
        self.path = path


class ToxiproxyUnavailable(ToxiproxyError):
    """The Toxiproxy API could not be reached at all."""


@dataclass(frozen=True, slots=True)
class Toxic:
    name: str
    type: str
    stream: Stream
    toxicity: float
    attributes: dict[str, int | float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Toxic:
        return cls(
            name=data["name"],
            type=data["type"],
            stream=data["stream"],
            toxicity=float(data.get("toxicity", 1.0)),
            attributes=dict(data.get("attributes") or {}),
        )


@dataclass(frozen=True, slots=True)
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...] = ()

    @property
    def listen_host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Proxy:
        return cls(
            name=data["name"],
            listen=data["listen"],
            upstream=data["upstream"],
            enabled=bool(data["enabled"]),
            toxics=tuple(Toxic.from_json(t) for t in data.get("toxics") or ()),
        )


class ToxiproxyClient:
    """Synchronous client for one Toxiproxy server. Use as a context manager or call close()."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ToxiproxyClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- server -------------------------------------------------------------------------

    def version(self) -> str:
        """The server's version (v2.5 answers plain text, later versions JSON)."""
        response = self._request("GET", "/version")
        text = response.text.strip()
        if text.startswith("{"):
            return str(response.json().get("version", text))
        return text

    def reset(self) -> None:
        """Enable every proxy and remove every toxic; one attempt, with `remove_toxic`'s long
        timeout, since the server flushes each toxic's buffered data as it removes it."""
        self._request("POST", "/reset", timeout=REMOVE_TIMEOUT)

    # --- proxies ------------------------------------------------------------------------

    def proxies(self) -> dict[str, Proxy]:
        data = self._request("GET", "/proxies").json()
        return {name: Proxy.from_json(p) for name, p in data.items()}

    def create_proxy(self, name: str, listen: str, upstream: str, *, enabled: bool = True) -> Proxy:
        """Create `name`, replacing any proxy of that name (and its toxics) first.

        `listen` may use port 0; the returned proxy carries the port the server bound.
        """
        self.delete_proxy(name, missing_ok=True)
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return Proxy.from_json(self._request("POST", "/proxies", json=body).json())

    def get_proxy(self, name: str) -> Proxy:
        return Proxy.from_json(self._request("GET", f"/proxies/{name}").json())

    def update_proxy(
        self,
        name: str,
        *,
        listen: str | None = None,
        upstream: str | None = None,
        enabled: bool | None = None,
    ) -> Proxy:
        body: dict[str, Any] = {}
        if listen is not None:
            body["listen"] = listen
        if upstream is not None:
            body["upstream"] = upstream
        if enabled is not None:
            body["enabled"] = enabled
        return Proxy.from_json(self._request("POST", f"/proxies/{name}", json=body).json())

    def delete_proxy(self, name: str, *, missing_ok: bool = False) -> None:
        try:
            self._request("DELETE", f"/proxies/{name}")
        except ToxiproxyError as exc:
            if not (missing_ok and exc.status_code == 404):
                raise

    def enable(self, name: str) -> Proxy:
        """Start listening again (heals a `disable`)."""
        return self.update_proxy(name, enabled=True)

    def disable(self, name: str) -> Proxy:
        """A full cut: close the listener and every open connection through the proxy."""
        return self.update_proxy(name, enabled=False)

    # --- toxics -------------------------------------------------------------------------

    def list_toxics(self, proxy: str) -> list[Toxic]:
        data = self._request("GET", f"/proxies/{proxy}/toxics").json()
        return [Toxic.from_json(t) for t in data]

    def add_toxic(
        self,
        proxy: str,
        type: ToxicType,
        attributes: Attributes | None = None,
        *,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> Toxic:
        """Add a toxic; without `name` the server names it `<type>_<stream>`."""
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        if name is not None:
            body["name"] = name
        data = self._request("POST", f"/proxies/{proxy}/toxics", json=body).json()
        return Toxic.from_json(data)

    def update_toxic(
        self,
        proxy: str,
        name: str,
        attributes: Attributes | None = None,
        *,
        toxicity: float | None = None,
    ) -> Toxic:
        """Change some attributes and/or the toxicity; what is not given stays as it was."""
        body: dict[str, Any] = {"attributes": dict(attributes or {})}
        if toxicity is not None:
            body["toxicity"] = toxicity
        data = self._request("POST", f"/proxies/{proxy}/toxics/{name}", json=body).json()
        return Toxic.from_json(data)

    def remove_toxic(
        self,
        proxy: str,
        name: str,
        *,
        missing_ok: bool = False,
        timeout: float = REMOVE_TIMEOUT,
        attempts: int = REMOVE_ATTEMPTS,
    ) -> None:
        """Remove a toxic, waiting for the server to flush what the toxic still holds.

        Why the long wait and the retry: the server answers a DELETE only after every open
        connection has passed on the data the toxic buffered, each chunk given up to 5 s
        (Toxiproxy issues #412 and #558), so a latency toxic over a busy or dead connection
        can take longer than an ordinary call. A DELETE that timed out on our side goes on
        on the server; the retry queues behind it and finds the toxic gone (404), which then
        means removed, not missing.
        """
        path = f"/proxies/{proxy}/toxics/{name}"
        timed_out = False
        for attempt in range(1, attempts + 1):
            try:
                self._request("DELETE", path, timeout=timeout)
                return
            except ToxiproxyUnavailable as exc:
                # Only a request the server may have received goes on there: not a connect
                # or pool timeout.
                sent = isinstance(exc.__cause__, httpx.ReadTimeout | httpx.WriteTimeout)
                if not sent or attempt == attempts:
                    raise
                timed_out = True
            except ToxiproxyError as exc:
                if exc.status_code == 404 and (missing_ok or timed_out):
                    return
                raise

    # --- transport ----------------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, json: Any = None, timeout: float | None = None
    ) -> httpx.Response:
        try:
            response = self._http.request(
                method,
                path,
                json=json,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        except httpx.TransportError as exc:
            raise ToxiproxyUnavailable(
                0, f"not reachable at {self.base_url}: {exc!r}", method=method, path=path
            ) from exc
        if response.is_success:
            return response
        raise ToxiproxyError(
            response.status_code, _error_message(response), method=method, path=path
        )


def _error_message(response: httpx.Response) -> str:
    # The server sends `{"error": ..., "status": ...}` (with a text/plain content type).
    text = response.text.strip()
    try:
        data = response.json()
    except ValueError:
        return text or response.reason_phrase
    if isinstance(data, dict) and "error" in data:
        return str(data["error"])
    return text


# The parameters mirror ToxiproxyClient.add_toxic, which this forwards to.
@contextlib.contextmanager
def fault(
    client: ToxiproxyClient,
    proxy: str,
    type: ToxicType,
    attributes: Attributes | None = None,
    *,
    stream: Stream = "downstream",
    toxicity: float = 1.0,
    name: str | None = None,
) -> Iterator[Toxic]:
    """Apply one toxic for the duration of the block; it is removed however the block ends."""
    toxic = client.add_toxic(proxy, type, attributes, stream=stream, toxicity=toxicity, name=name)
    try:
        yield toxic
    finally:
        client.remove_toxic(proxy, toxic.name, missing_ok=True)


@contextlib.contextmanager
def cut(client: ToxiproxyClient, proxy: str) -> Iterator[Proxy]:
    """Disable the proxy (refuse and drop every connection) for the block; always re-enabled."""
    disabled = client.disable(proxy)
    try:
        yield disabled
    finally:
        client.enable(proxy)
