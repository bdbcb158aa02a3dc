"""Hostile and unlucky clients at the HTTP edge of both services: real uvicorn processes, real
sockets, raw bytes where a well-behaved client library would refuse to send them.

Each test pins one promise of docs/api.md#security-and-limits: a clear answer (an RFC 9457
problem) for bad input that changes nothing, and never "refused" for a change that was made.
"""

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.central import CentralSim
from harness.processes import poll
from harness.store import StoreApi, start_store_api
from tests.support.metrics import scrape
from tests.support.raw_http import (
    ConnectionEnded,
    RawConnection,
    json_request,
    request_bytes,
)

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
ERROR_MARKS = ("unhandled_error", "Exception in ASGI application", "Traceback")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreApi]:
    api = start_store_api(tmp_path_factory.mktemp("edge-store"))
    yield api
    api.process.stop()


def port_of(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


def update_path(sku: str) -> str:
    return f"/v1/local/inventory/{sku}/update"


def changes_for(store: StoreApi, operation_id: str) -> list[tuple[str, int]]:
    conn = sqlite3.connect(store.database)
    try:
        rows = conn.execute(
            "SELECT sku, delta FROM changes WHERE operation_id = ?", (operation_id,)
        ).fetchall()
    finally:
        conn.close()
    return [(str(sku), int(delta)) for sku, delta in rows]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# --- 1. a client that hangs up mid-body -------------------------------------------------------


def test_a_hang_up_mid_body_is_counted_as_client_closed_not_as_an_error(store: StoreApi) -> None:
    metrics = store.base_url + "/metrics"
    before = scrape(metrics)
    mark = store.process.log_size()
    operation_id = str(uuid.uuid4())
    body = json.dumps({"delta": 1, "operation_id": operation_id}).encode()
    with RawConnection(port_of(store.base_url)) as conn:
        conn.send(
            request_bytes(
                "POST",
                update_path("EDGE-HANGUP"),
                body[:9],
                headers={"Content-Type": "application/json"},
                content_length=100,
            )
        )
    update_counter = "store_updates_total"

    def counted() -> bool:
        now = scrape(metrics)
        return now.value(update_counter, outcome="client_closed") > before.value(
            update_counter, outcome="client_closed"
        )

    poll("the hang-up counted as client_closed", lambda: counted() or None, timeout=10)
    after = scrape(metrics)
    assert after.value(update_counter, outcome="error") == before.value(
        update_counter, outcome="error"
    )
    handler = "/v1/local/inventory/{sku}/update"
    assert after.value(
        "store_http_requests_total", method="POST", status="5xx", handler=handler
    ) == before.value("store_http_requests_total", method="POST", status="5xx", handler=handler)
    logged = store.process.log_since(mark)
    assert not any(marker in logged for marker in ERROR_MARKS), logged
    assert changes_for(store, operation_id) == []


# --- 2. header size and idle half-sent requests -----------------------------------------------


def test_headers_over_the_limit_get_a_431_problem_and_the_connection_closes(
    store: StoreApi,
) -> None:
    with RawConnection(port_of(store.base_url)) as conn:
        conn.send(request_bytes("GET", "/v1/local/inventory", headers={"X-Filler": "a" * 32_768}))
        response = conn.read_response()
        assert response.status == 431
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["status"] == 431
        assert response.closes
        assert conn.closed_by_server(timeout=5)


def test_headers_under_the_limit_are_served(store: StoreApi) -> None:
    with RawConnection(port_of(store.base_url)) as conn:
        conn.send(request_bytes("GET", "/v1/local/inventory", headers={"X-Filler": "a" * 8_000}))
        assert conn.read_response().status == 200


def test_pending_huge_headers_do_not_grow_memory(store: StoreApi) -> None:
    pid = store.process.pid
    assert pid is not None
    before = rss_kib(pid)
    head = b"GET /v1/local/inventory HTTP/1.1\r\nHost: x\r\nX-Filler: "
    chunk = b"a" * 65_536
    connections = [RawConnection(port_of(store.base_url)) for _ in range(10)]
    try:
        for conn in connections:
            try:
                conn.send(head)
                for _ in range(32):  # up to 2 MiB each, never finishing the header
                    conn.send(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused and closed early: what the limit is for
        grown = rss_kib(pid) - before
        assert grown < 8 * 1024, f"RSS grew by {grown} KiB"
        for conn in connections:
            assert conn.closed_by_server(timeout=5)
    finally:
        for conn in connections:
            conn.close()


def test_an_idle_half_sent_request_times_out_with_a_408(tmp_path: Path) -> None:
    api = start_store_api(tmp_path, server_args=("--request-timeout", "1"))
    try:
        with RawConnection(port_of(api.base_url)) as conn:
            conn.send(b"POST /v1/local/inventory/EDGE-IDLE/update HTTP/1.1\r\nHost: x\r\n")
            response = conn.read_response()  # the head never completes
            assert response.status == 408
            assert response.headers["content-type"] == PROBLEM
            assert response.closes
            assert conn.closed_by_server(timeout=5)
    finally:
        api.process.stop()


# --- 3. a 5xx on a kept-alive connection ------------------------------------------------------


def test_every_request_on_a_kept_alive_connection_gets_an_answer_after_a_500(
    tmp_path: Path,
) -> None:
    api = start_store_api(tmp_path)
    try:
        conn_db = sqlite3.connect(api.database)
        conn_db.execute("DROP TABLE inventory_items")  # an unexpected failure for every update
        conn_db.close()
        mark = api.process.log_size()
        answered = 0
        with RawConnection(port_of(api.base_url)) as conn:
            for n in range(10):
                body = {"delta": 1, "operation_id": f"edge-500-{n}"}
                conn.send(json_request(update_path("EDGE-500"), body))
                try:
                    response = conn.read_response()
                except ConnectionEnded:
                    pytest.fail(f"request {n}: the connection ended without an answer")
                assert response.status == 500
                assert response.headers["content-type"] == PROBLEM
                answered += 1
                if response.closes:
                    break  # said so: the client knows the next request needs a new connection
        assert answered == 10
        assert "Exception in ASGI application" not in api.process.log_since(mark)
    finally:
        api.process.stop()


# --- 4. a valid update followed by garbage ----------------------------------------------------


def test_a_valid_update_followed_by_garbage_gets_its_own_answer_first(store: StoreApi) -> None:
    operation_id = str(uuid.uuid4())
    request = json_request(update_path("EDGE-GARBAGE"), {"delta": 2, "operation_id": operation_id})
    with RawConnection(port_of(store.base_url)) as conn:
        conn.send(request + b"\x16\x03\x01 not http at all\r\n\r\n")
        first = conn.read_response()
        assert first.status == 200, first.body
        assert first.json()["operation_id"] == operation_id
        second = conn.read_response()
        assert second.status == 400
        assert second.headers["content-type"] == PROBLEM
        assert second.closes
    assert changes_for(store, operation_id) == [("EDGE-GARBAGE", 2)]


# --- 5. duplicate JSON keys -------------------------------------------------------------------


def test_duplicate_keys_in_an_update_are_refused_naming_the_key(store: StoreApi) -> None:
    operation_id = str(uuid.uuid4())
    raw = f'{{"delta": 1, "delta": 2, "operation_id": "{operation_id}"}}'.encode()
    response = httpx.post(
        store.base_url + update_path("EDGE-DUP"),
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"].endswith("/duplicate-key")
    assert problem["field"] == "delta"
    assert changes_for(store, operation_id) == []


def test_a_duplicated_operation_id_is_refused(store: StoreApi) -> None:
    raw = b'{"delta": 1, "operation_id": "edge-a", "operation_id": "edge-b"}'
    response = httpx.post(
        store.base_url + update_path("EDGE-DUP"),
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "operation_id"
    assert changes_for(store, "edge-a") == changes_for(store, "edge-b") == []


def test_duplicate_keys_nested_in_a_central_request_are_refused(sim: CentralSim) -> None:
    raw = (
        b'{"items": [{"operation_id": "dup-1", "sku": "S-1", "delta": 1, "delta": 5,'
        b' "version": null}]}'
    )
    response = httpx.post(
        sim.base_url + "/v1/inventory/bulk-sync",
        content=raw,
        headers={"Content-Type": "application/json", **sim.auth_headers()},
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["field"] == "delta"
    assert sim.admin().journal() == []


def test_duplicate_keys_in_a_token_request_are_refused(sim: CentralSim) -> None:
    name = "inventory-service"
    raw = json.dumps({"service_name": name, "service_secret": sim.services[name]})
    raw = raw[:-1] + ', "service_name": "order-service"}'
    response = httpx.post(
        sim.base_url + "/auth/token", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["field"] == "service_name"


# --- 6. validation problems are bounded and never echo input ----------------------------------


SECRET_VALUE = "zz-never-echo-this-zz"


def many_unknown_keys(**known: object) -> bytes:
    document: dict[str, object] = dict(known)
    document.update({f"k{n:04d}": SECRET_VALUE for n in range(1_500)})
    return json.dumps(document).encode()


def assert_bounded_validation_problem(response: httpx.Response, sent: int) -> None:
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert len(response.content) < 4_096 < sent
    problem = response.json()
    assert problem["error_count"] >= 1_500
    assert len(problem["errors"]) == 10
    assert SECRET_VALUE not in response.text


def test_store_validation_problems_are_capped_and_echo_no_values(store: StoreApi) -> None:
    raw = many_unknown_keys(delta=1, operation_id=str(uuid.uuid4()))
    raw = raw[:16_000].rsplit(b",", 1)[0] + b"}"  # under the 16 KiB body limit
    response = httpx.post(
        store.base_url + update_path("EDGE-VALID"),
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert len(response.content) < 4_096
    assert SECRET_VALUE not in response.text
    assert response.json()["error_count"] > 10


def test_central_validation_problems_are_capped_and_echo_no_values(sim: CentralSim) -> None:
    raw = many_unknown_keys(service_name="x", service_secret="y")
    response = httpx.post(
        sim.base_url + "/auth/token", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_bounded_validation_problem(response, len(raw))


# --- 8. content types -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "application/merge-patch+json", "application/json-patch+json", "text/plain"],
)
def test_an_update_without_a_json_document_type_is_refused_with_415(
    store: StoreApi, content_type: str | None
) -> None:
    operation_id = str(uuid.uuid4())
    body = json.dumps({"delta": 1, "operation_id": operation_id}).encode()
    headers = {} if content_type is None else {"Content-Type": content_type}
    with RawConnection(port_of(store.base_url)) as conn:
        conn.send(request_bytes("POST", update_path("EDGE-TYPE"), body, headers=headers))
        response = conn.read_response()
    assert response.status == 415
    assert response.headers["content-type"] == PROBLEM
    assert changes_for(store, operation_id) == []


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/x+json"]
)
def test_an_update_typed_as_a_json_document_is_applied(store: StoreApi, content_type: str) -> None:
    operation_id = str(uuid.uuid4())
    response = httpx.post(
        store.base_url + update_path("EDGE-TYPE"),
        content=json.dumps({"delta": 1, "operation_id": operation_id}),
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 200, response.text
    assert changes_for(store, operation_id) == [("EDGE-TYPE", 1)]
