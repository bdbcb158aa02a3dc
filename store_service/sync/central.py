"""Calls to central over HTTP, with a cached bearer token, mapped to typed outcomes.

Whole-request failures never raise out of `bulk_sync`: they come back as `TransientFailure`
(retry later with backoff) or `AuthFailure` (a second 401, or the token endpoint refusing the
credentials). `get_inventory` raises `CentralUnavailable` / `CentralAuthFailed` carrying the
same values, because its callers (refresh) have nothing to record on failure.

Neither the service secret nor a token is ever logged or put in an exception message.
"""

import email.utils
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
import structlog

from store_service.config import Settings
from store_service.logs import request_id_var

log = structlog.get_logger(__name__)

# Renew this long before expiry (capped at 10% of the lifetime, so short test tokens still get
# most of their life used).
RENEW_MARGIN_SECONDS = 60.0
RENEW_MARGIN_FRACTION = 0.1


# Central's answer per item (its wire vocabulary), not the store's ItemOutcome: the run maps
# one to the other, and a rebased or parked change has no central status of its own.
class ItemStatus(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class SyncItem:
    """One change as sent to central; `version` None applies unconditionally."""

    operation_id: str
    sku: str
    delta: int
    version: int | None


@dataclass(frozen=True, slots=True)
class ItemResult:
    """Central's answer for one item: quantity/version are central's where it reported them."""

    operation_id: str
    sku: str
    status: ItemStatus
    quantity: int | None
    version: int | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BulkResults:
    results: list[ItemResult]


@dataclass(frozen=True, slots=True)
class TransientFailure:
    """The whole call failed in a way worth retrying later (central down, slow, overloaded)."""

    kind: str  # connect | timeout | server_error | rate_limited | protocol | http_status
    detail: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class AuthFailure:
    detail: str


BulkOutcome = BulkResults | TransientFailure | AuthFailure


@dataclass(frozen=True, slots=True)
class CentralItem:
    sku: str
    quantity: int
    version: int


class CentralUnavailable(Exception):
    def __init__(self, failure: TransientFailure) -> None:
        super().__init__(f"central unavailable ({failure.kind}): {failure.detail}")
        self.failure = failure


class CentralAuthFailed(Exception):
    def __init__(self, failure: AuthFailure) -> None:
        super().__init__(f"central refused our credentials: {failure.detail}")
        self.failure = failure


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class TokenCache:
    """One bearer token, fetched on first use and renewed shortly before it expires."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        service_name: str,
        service_secret: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._service_name = service_name
        self._secret = service_secret
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.acquisitions = 0

    def get(self) -> str:
        """A token that is not about to expire; fetches one when needed."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._acquire()
            assert self._token is not None
            return self._token

    def renew(self, stale: str) -> str:
        """A fresh token after central refused `stale` (unless another thread already renewed)."""
        with self._lock:
            if self._token == stale or self._token is None:
                self._acquire()
            assert self._token is not None
            return self._token

    def _acquire(self) -> None:
        started = self._clock()
        response = _request(
            self._http,
            "POST",
            "/auth/token",
            json={"service_name": self._service_name, "service_secret": self._secret},
            headers=_request_id_header(),
        )
        if response.status_code in (401, 403):
            self._token = None
            raise CentralAuthFailed(AuthFailure(f"token request refused ({response.status_code})"))
        if response.status_code >= 400:
            raise _status_failure(response)
        try:
            body = response.json()
            token = str(body["access_token"])
            expires_in = float(body.get("expires_in") or 300)
        except (ValueError, KeyError, TypeError) as exc:
            raise CentralUnavailable(
                TransientFailure("protocol", f"bad token response: {type(exc).__name__}")
            ) from None
        margin = min(RENEW_MARGIN_SECONDS, RENEW_MARGIN_FRACTION * expires_in)
        self._token = token
        self._renew_at = started + expires_in - margin
        self.acquisitions += 1
        log.info("central_token_acquired", expires_in=expires_in)


class CentralClient:
    """Central's API as typed calls; owns one pooled httpx client (close it when done)."""

    def __init__(
        self,
        *,
        base_url: str,
        service_name: str,
        service_secret: str,
        connect_timeout: float,
        read_timeout: float,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        self.tokens = TokenCache(
            self._http, service_name=service_name, service_secret=service_secret, clock=clock
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.BaseTransport | None = None
    ) -> "CentralClient":
        return cls(
            base_url=settings.central_url,
            service_name=settings.central_service_name,
            service_secret=settings.central_service_secret.get_secret_value(),
            connect_timeout=settings.central_connect_timeout_seconds,
            read_timeout=settings.central_read_timeout_seconds,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "CentralClient":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def bulk_sync(self, items: Sequence[SyncItem]) -> BulkOutcome:
        """Send one batch; one result per item in input order, or a whole-call failure."""
        payload = {
            "items": [
                {
                    "sku": item.sku,
                    "delta": item.delta,
                    "version": item.version,
                    "operation_id": item.operation_id,
                }
                for item in items
            ]
        }
        try:
            response = self._authorized("POST", "/v1/inventory/bulk-sync", json=payload)
        except CentralUnavailable as exc:
            return exc.failure
        except CentralAuthFailed as exc:
            return exc.failure
        try:
            return BulkResults(_parse_results(response.json(), items))
        except (ValueError, KeyError, TypeError) as exc:
            return TransientFailure("protocol", f"unusable bulk-sync response: {exc}")

    def get_inventory(self, sku: str) -> CentralItem | None:
        """Central's quantity and version for a SKU; None when central never saw it."""
        response = self._authorized("GET", f"/v1/inventory/{sku}", allow_404=True)
        if response.status_code == 404:
            return None
        try:
            body = response.json()
            return CentralItem(
                sku=sku, quantity=int(body["quantity"]), version=int(body["version"])
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise CentralUnavailable(
                TransientFailure("protocol", f"unusable inventory response: {exc}")
            ) from None

    def _authorized(
        self, method: str, path: str, *, json: Any = None, allow_404: bool = False
    ) -> httpx.Response:
        """One call with a bearer token, renewing it once on 401; raises on whole-call failure."""
        token = self.tokens.get()
        response = self._send(method, path, token, json)
        if response.status_code == 401:
            # The token expired early or central rotated its signing key: renew once.
            log.info("central_token_refused", path=path)
            token = self.tokens.renew(token)
            response = self._send(method, path, token, json)
            if response.status_code == 401:
                raise CentralAuthFailed(AuthFailure("central refused a freshly issued token"))
        if response.status_code == 404 and allow_404:
            return response
        if response.status_code >= 400:
            raise _status_failure(response)
        return response

    def _send(self, method: str, path: str, token: str, json: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", **_request_id_header()}
        return _request(self._http, method, path, json=json, headers=headers)


def _request(
    http: httpx.Client, method: str, path: str, *, json: Any, headers: dict[str, str]
) -> httpx.Response:
    """One HTTP exchange; network trouble becomes `CentralUnavailable` (no secrets in it)."""
    try:
        return http.request(method, path, json=json, headers=headers)
    except httpx.TimeoutException as exc:
        raise CentralUnavailable(TransientFailure("timeout", type(exc).__name__)) from None
    except httpx.TransportError as exc:
        raise CentralUnavailable(
            TransientFailure("connect", f"{type(exc).__name__}: {exc}")
        ) from None


def _request_id_header() -> dict[str, str]:
    request_id = request_id_var.get()
    return {"X-Request-ID": request_id} if request_id else {}


def _status_failure(response: httpx.Response) -> CentralUnavailable:
    """A non-success status as a transient failure (central's whole-call errors are retried)."""
    status = response.status_code
    if status == 429:
        kind = "rate_limited"
    elif status >= 500:
        kind = "server_error"
    else:
        # A 4xx on the whole call means our request is at fault (a bug or a contract change):
        # keep the changes pending and visible rather than guess a final state for them.
        kind = "http_status"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return CentralUnavailable(TransientFailure(kind, f"HTTP {status}", retry_after))


def _parse_results(body: Any, items: Sequence[SyncItem]) -> list[ItemResult]:
    raw = body["results"]
    if not isinstance(raw, list) or len(raw) != len(items):
        raise ValueError(f"expected {len(items)} results, got {len(raw)}")
    results: list[ItemResult] = []
    for item, entry in zip(items, raw, strict=True):
        if entry.get("operation_id") != item.operation_id:
            raise ValueError("results are not in input order")
        quantity, version = entry.get("quantity"), entry.get("version")
        results.append(
            ItemResult(
                operation_id=item.operation_id,
                sku=item.sku,
                status=ItemStatus(entry["status"]),
                quantity=None if quantity is None else int(quantity),
                version=None if version is None else int(version),
                reason=entry.get("reason"),
            )
        )
    return results
