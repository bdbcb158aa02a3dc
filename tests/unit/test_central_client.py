"""The central client: token caching and renewal, outcome mapping, no secrets leaking."""

import json
from collections.abc import Callable

import httpx
import pytest

from store_service.logs import request_id_var
from store_service.sync.central import (
    AuthFailure,
    BulkResults,
    CentralClient,
    CentralUnavailable,
    ItemStatus,
    SyncItem,
    TransientFailure,
    parse_retry_after,
)

SECRET = "s3cret-value"
Handler = Callable[[httpx.Request], httpx.Response]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeServer:
    """Issues numbered tokens; accepts only the newest; runs a per-test bulk handler."""

    def __init__(self, expires_in: int = 300) -> None:
        self.expires_in = expires_in
        self.issued = 0
        self.valid: set[str] = set()
        self.requests: list[httpx.Request] = []
        self.bulk: Handler = self._echo_applied
        self.refuse_credentials = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/auth/token":
            body = json.loads(request.content)
            if self.refuse_credentials or body["service_secret"] != SECRET:
                return httpx.Response(401, json={"title": "bad credentials"})
            self.issued += 1
            token = f"token-{self.issued}"
            self.valid = {token}
            return httpx.Response(
                200,
                json={"access_token": token, "token_type": "bearer", "expires_in": self.expires_in},
            )
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid:
            return httpx.Response(401, headers={"WWW-Authenticate": "Bearer"})
        if request.url.path == "/v1/inventory/bulk-sync":
            return self.bulk(request)
        if request.url.path == "/v1/inventory/KNOWN":
            return httpx.Response(200, json={"sku": "KNOWN", "quantity": 7, "version": 3})
        return httpx.Response(404, json={"title": "not found"})

    @staticmethod
    def _echo_applied(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)["items"]
        return httpx.Response(
            200,
            json={
                "results": [
                    {
                        "operation_id": item["operation_id"],
                        "sku": item["sku"],
                        "status": "applied",
                        "quantity": 10 + item["delta"],
                        "version": 2,
                        "reason": None,
                    }
                    for item in items
                ]
            },
        )


def make_client(server: Handler, clock: Clock | None = None) -> CentralClient:
    return CentralClient(
        base_url="http://central.test",
        service_name="inventory-service",
        service_secret=SECRET,
        connect_timeout=1.0,
        read_timeout=1.0,
        transport=httpx.MockTransport(server),
        clock=clock or Clock(),
    )


ITEMS = [SyncItem("op-1", "SKU-1", 3, 1), SyncItem("op-2", "SKU-2", -1, None)]


def test_results_map_to_typed_outcomes_in_input_order() -> None:
    server = FakeServer()
    outcome = make_client(server).bulk_sync(ITEMS)
    assert isinstance(outcome, BulkResults)
    assert [(r.operation_id, r.status, r.quantity) for r in outcome.results] == [
        ("op-1", ItemStatus.APPLIED, 13),
        ("op-2", ItemStatus.APPLIED, 9),
    ]
    sent = json.loads(server.requests[-1].content)["items"]
    assert sent[1] == {"sku": "SKU-2", "delta": -1, "version": None, "operation_id": "op-2"}


def test_token_is_cached_between_calls() -> None:
    server = FakeServer()
    client = make_client(server)
    client.bulk_sync(ITEMS)
    client.bulk_sync(ITEMS)
    assert server.issued == 1


def test_token_is_renewed_shortly_before_it_expires() -> None:
    server, clock = FakeServer(expires_in=900), Clock()
    client = make_client(server, clock)
    client.bulk_sync(ITEMS)
    clock.now += 900 - 60 - 1
    client.bulk_sync(ITEMS)
    assert server.issued == 1
    clock.now += 2  # inside the 60 s renewal margin
    client.bulk_sync(ITEMS)
    assert server.issued == 2


def test_a_short_lived_token_renews_at_ninety_percent_of_its_life() -> None:
    server, clock = FakeServer(expires_in=10), Clock()
    client = make_client(server, clock)
    client.bulk_sync(ITEMS)
    clock.now += 9.1
    client.bulk_sync(ITEMS)
    assert server.issued == 2


def test_a_refused_token_is_renewed_once_and_the_call_retried() -> None:
    server = FakeServer()
    client = make_client(server)
    client.bulk_sync(ITEMS)
    server.valid = set()  # central rotated its signing key
    outcome = client.bulk_sync(ITEMS)
    assert isinstance(outcome, BulkResults)
    assert server.issued == 2


def test_a_second_refusal_is_an_auth_failure() -> None:
    server = FakeServer()
    server.bulk = lambda _request: httpx.Response(401)
    outcome = make_client(server).bulk_sync(ITEMS)
    assert isinstance(outcome, AuthFailure)
    assert server.issued == 2


def test_refused_credentials_are_an_auth_failure_that_never_shows_the_secret() -> None:
    server = FakeServer()
    server.refuse_credentials = True
    outcome = make_client(server).bulk_sync(ITEMS)
    assert isinstance(outcome, AuthFailure)
    assert SECRET not in repr(outcome)


@pytest.mark.parametrize(
    ("response", "kind", "retry_after"),
    [
        (httpx.Response(503), "server_error", None),
        (httpx.Response(502), "server_error", None),
        (httpx.Response(429, headers={"Retry-After": "7"}), "rate_limited", 7.0),
        (httpx.Response(400, json={"title": "bad"}), "http_status", None),
        (httpx.Response(200, json={"results": []}), "protocol", None),
        (httpx.Response(200, content=b"not json"), "protocol", None),
    ],
)
def test_whole_call_failures_are_transient(
    response: httpx.Response, kind: str, retry_after: float | None
) -> None:
    server = FakeServer()
    server.bulk = lambda _request: response
    outcome = make_client(server).bulk_sync(ITEMS)
    assert isinstance(outcome, TransientFailure)
    assert (outcome.kind, outcome.retry_after) == (kind, retry_after)


@pytest.mark.parametrize(
    ("error", "kind"),
    [(httpx.ConnectError("refused"), "connect"), (httpx.ReadTimeout("slow"), "timeout")],
)
def test_network_errors_are_transient(error: Exception, kind: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    outcome = make_client(handler).bulk_sync(ITEMS)
    assert isinstance(outcome, TransientFailure)
    assert outcome.kind == kind


def test_get_inventory_reads_quantity_and_version() -> None:
    item = make_client(FakeServer()).get_inventory("KNOWN")
    assert item is not None
    assert (item.quantity, item.version) == (7, 3)


def test_a_sku_central_never_saw_is_none() -> None:
    assert make_client(FakeServer()).get_inventory("NEW") is None


def test_get_inventory_raises_when_central_is_down() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(CentralUnavailable):
        make_client(handler).get_inventory("KNOWN")


def test_the_bound_request_id_is_sent_along() -> None:
    server = FakeServer()
    token = request_id_var.set("req-42")
    try:
        make_client(server).bulk_sync(ITEMS)
    finally:
        request_id_var.reset(token)
    assert {r.headers.get("X-Request-ID") for r in server.requests} == {"req-42"}


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=90.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
