"""The local API over real HTTP against a real SQLite file (a uvicorn subprocess)."""

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.store import StoreApi, start_store_api

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
JSON_TYPE = {"content-type": "application/json"}
COUNTS = "SELECT (SELECT count(*) FROM changes), (SELECT count(*) FROM inventory_items)"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreApi]:
    """One server for the module (start-up costs seconds); tests use SKUs of their own."""
    api = start_store_api(tmp_path_factory.mktemp("store"))
    yield api
    api.process.stop()


@pytest.fixture
def own_store(tmp_path: Path) -> Iterator[StoreApi]:
    api = start_store_api(tmp_path)
    yield api
    api.process.stop()


@pytest.fixture
def client(store: StoreApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=store.base_url, timeout=10) as c:
        yield c


def update(client: httpx.Client, sku: str, delta: int, op: str | None = None, **extra: object):
    body = {"delta": delta, "operation_id": op or str(uuid.uuid4()), **extra}
    return client.post(f"/v1/local/inventory/{sku}/update", json=body)


def db_rows(store: StoreApi, sql: str, *params: object) -> list[tuple]:
    conn = sqlite3.connect(store.database)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_an_update_applies_locally_and_queues_one_change(
    client: httpx.Client, store: StoreApi
) -> None:
    response = update(client, "SKU-1", 12, "op-first")
    assert response.status_code == 200
    assert response.json() == {
        "sku": "SKU-1",
        "quantity": 12,
        "version": 1,
        "operation_id": "op-first",
        "delta": 12,
        "sync_status": "pending",
    }
    assert "idempotent-replayed" not in response.headers
    item = client.get("/v1/local/inventory/SKU-1").json()
    assert (item["quantity"], item["version"], item["pending_delta"], item["pending_count"]) == (
        12,
        1,
        12,
        1,
    )
    status = client.get("/v1/local/sync/status/op-first").json()
    assert (status["status"], status["attempts"], status["delta"]) == ("pending", 0, 12)
    assert db_rows(store, "SELECT operation_id, status FROM changes WHERE sku='SKU-1'") == [
        ("op-first", "pending")
    ]


def test_a_replay_returns_the_identical_answer_and_changes_nothing(
    client: httpx.Client, store: StoreApi
) -> None:
    first = update(client, "SKU-2", 5, "op-replay")
    update(client, "SKU-2", 1)  # the SKU moves on in between
    replay = update(client, "SKU-2", 5, "op-replay")
    assert replay.status_code == first.status_code == 200
    assert replay.content == first.content
    assert replay.headers["idempotent-replayed"] == "true"
    assert client.get("/v1/local/inventory/SKU-2").json()["quantity"] == 6
    assert db_rows(store, "SELECT count(*) FROM changes WHERE sku='SKU-2'") == [(2,)]


def test_an_operation_id_reused_with_another_payload_is_422(client: httpx.Client) -> None:
    update(client, "SKU-3", 5, "op-reused")
    for other in ({"delta": 6}, {"delta": 5, "version": 1}):
        response = client.post(
            "/v1/local/inventory/SKU-3/update", json={"operation_id": "op-reused", **other}
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"].endswith("/operation-id-reused")
    other_sku = update(client, "SKU-4", 5, "op-reused")
    assert other_sku.status_code == 422
    assert client.get("/v1/local/inventory/SKU-3").json()["quantity"] == 5
    assert client.get("/v1/local/inventory/SKU-4").status_code == 404


def test_a_stale_version_is_409_with_the_current_state(client: httpx.Client) -> None:
    update(client, "SKU-5", 10)
    update(client, "SKU-5", -1, version=1)
    stale = update(client, "SKU-5", -1, version=1)
    assert stale.status_code == 409
    assert stale.headers["content-type"] == PROBLEM
    problem = stale.json()
    assert problem["type"].endswith("/version-conflict")
    assert (problem["current_quantity"], problem["current_version"]) == (9, 2)
    assert client.get("/v1/local/inventory/SKU-5").json()["quantity"] == 9


def test_selling_below_zero_is_409_and_changes_nothing(
    client: httpx.Client, store: StoreApi
) -> None:
    update(client, "SKU-6", 2)
    refused = update(client, "SKU-6", -3)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/insufficient-stock")
    assert refused.json()["current_quantity"] == 2
    assert db_rows(store, "SELECT count(*) FROM changes WHERE sku='SKU-6'") == [(1,)]


def test_a_refused_operation_can_be_resent_once_fixed(client: httpx.Client) -> None:
    update(client, "SKU-7", 1)
    assert update(client, "SKU-7", -1, "op-fixed", version=0).status_code == 409
    assert update(client, "SKU-7", -1, "op-fixed", version=1).status_code == 200


def test_two_hundred_concurrent_unversioned_updates_lose_nothing(store: StoreApi) -> None:
    deltas = [(i % 7) + 1 for i in range(200)]

    async def run() -> list[int]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=store.base_url, limits=limits, timeout=30) as c:
            responses = await asyncio.gather(
                *(
                    c.post(
                        "/v1/local/inventory/HOT-1/update",
                        json={"delta": d, "operation_id": f"hot-{i}"},
                    )
                    for i, d in enumerate(deltas)
                )
            )
        return [r.status_code for r in responses]

    statuses = asyncio.run(run())
    assert statuses == [200] * 200
    item = httpx.get(f"{store.base_url}/v1/local/inventory/HOT-1").json()
    assert item["quantity"] == sum(deltas)
    assert item["version"] == 200
    assert (item["pending_delta"], item["pending_count"]) == (sum(deltas), 200)
    assert db_rows(store, "SELECT count(*), sum(delta) FROM changes WHERE sku='HOT-1'") == [
        (200, sum(deltas))
    ]


def test_fifty_concurrent_requests_with_one_operation_id_apply_once(store: StoreApi) -> None:
    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=store.base_url, timeout=30) as c:
            return await asyncio.gather(
                *(
                    c.post(
                        "/v1/local/inventory/DUP-1/update",
                        json={"delta": 3, "operation_id": "same-op"},
                    )
                    for _ in range(50)
                )
            )

    responses = asyncio.run(run())
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    replayed = [r for r in responses if r.headers.get("idempotent-replayed") == "true"]
    assert len(replayed) == 49
    assert httpx.get(f"{store.base_url}/v1/local/inventory/DUP-1").json()["quantity"] == 3
    assert db_rows(store, "SELECT count(*) FROM changes WHERE operation_id='same-op'") == [(1,)]


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b'{"delta": -1,', {"content-type": "application/json"}, 400),
        (b"not json at all", {"content-type": "application/json"}, 400),
        (b'{"delta": true, "operation_id": "x1"}', {"content-type": "application/json"}, 422),
        (b'{"delta": 1.5, "operation_id": "x1"}', {"content-type": "application/json"}, 422),
        (b'{"delta": "1", "operation_id": "x1"}', {"content-type": "application/json"}, 422),
        (b'{"delta": 0, "operation_id": "x1"}', {"content-type": "application/json"}, 422),
        (b'{"delta": 1000001, "operation_id": "x1"}', {"content-type": "application/json"}, 422),
        (b'{"delta": 1}', {"content-type": "application/json"}, 422),
        (b'{"delta": 1, "operation_id": ""}', {"content-type": "application/json"}, 422),
        (b'{"delta": 1, "operation_id": "' + b"a" * 129 + b'"}', JSON_TYPE, 422),
        (b'{"delta": 1, "operation_id": "bad id"}', JSON_TYPE, 422),
        (b'{"delta": 1, "operation_id": "x1", "version": -1}', JSON_TYPE, 422),
        (b'{"delta": 1, "operation_id": "x1", "surprise": 1}', JSON_TYPE, 422),
        (b"[1, 2]", {"content-type": "application/json"}, 422),
        (b'{"delta": 1, "operation_id": "x1"}', {"content-type": "text/plain"}, 415),
        (b'{"delta": 1, "operation_id": "x1", "pad": "' + b"a" * 20_000 + b'"}', {}, 413),
    ],
)
def test_malformed_and_oversized_bodies_are_4xx_problems_that_change_nothing(
    client: httpx.Client, store: StoreApi, body: bytes, headers: dict[str, str], status: int
) -> None:
    before = db_rows(store, COUNTS)
    response = client.post("/v1/local/inventory/BAD-1/update", content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status
    assert "Traceback" not in response.text
    assert db_rows(store, COUNTS) == before


def test_a_streamed_oversized_body_is_413(client: httpx.Client, store: StoreApi) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"delta": 1, "operation_id": "x1", "pad": "'
        for _ in range(40):
            yield b"a" * 1024
        yield b'"}'

    before = db_rows(store, COUNTS)
    response = client.post(
        "/v1/local/inventory/BAD-2/update",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert db_rows(store, COUNTS) == before


@pytest.mark.parametrize(
    "path",
    [
        "/v1/local/inventory/-bad-start/update",
        "/v1/local/inventory/" + "A" * 65 + "/update",
        "/v1/local/inventory/sku%20space/update",
    ],
)
def test_a_bad_sku_is_a_422_problem(client: httpx.Client, path: str) -> None:
    response = client.post(path, json={"delta": 1, "operation_id": "x1"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


def test_unknown_things_are_404_problems(client: httpx.Client) -> None:
    for path in ("/v1/local/inventory/NOPE", "/v1/local/sync/status/nope", "/nowhere"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM


def _change_pages(client: httpx.Client, params: dict[str, str | int]) -> list[list[str]]:
    """The operation_ids of every page of `/v1/local/changes`, following next_after_id."""
    pages: list[list[str]] = []
    after_id: int | None = 0
    while after_id is not None and len(pages) < 1_000:
        response = client.get("/v1/local/changes", params={**params, "after_id": after_id})
        assert response.status_code == 200, response.text
        pages.append([change["operation_id"] for change in response.json()["items"]])
        after_id = response.json()["next_after_id"]
    assert after_id is None, "the listing did not end"
    return pages


def test_lists_page_through_inventory_and_changes_by_status(client: httpx.Client) -> None:
    for n in range(5):
        update(client, f"LIST-{n}", n + 1, f"list-op-{n}")
    for n in range(5):
        update(client, "LIST-CH", 1, f"list-ch-{n}")
    first = client.get("/v1/local/inventory", params={"limit": 2, "after": "LIST-"}).json()
    assert [i["sku"] for i in first["items"]] == ["LIST-0", "LIST-1"]
    rest = client.get("/v1/local/inventory", params={"after": first["next_after"], "limit": 3})
    assert [i["sku"] for i in rest.json()["items"]] == ["LIST-2", "LIST-3", "LIST-4"]

    # A SKU's pages may be short (each looks through a bounded window): follow them to the end.
    pages = _change_pages(client, {"status": "pending", "sku": "LIST-CH", "limit": 3})
    assert all(len(page) <= 3 for page in pages)
    assert [op for page in pages for op in page] == [f"list-ch-{n}" for n in range(5)]
    synced = _change_pages(client, {"status": "synced", "sku": "LIST-CH"})
    assert [op for page in synced for op in page] == []
    assert client.get("/v1/local/changes", params={"status": "bogus"}).status_code == 422
    assert client.get("/v1/local/inventory", params={"limit": 501}).status_code == 422


def test_changes_survive_closing_and_reopening_the_app(own_store: StoreApi) -> None:
    store = own_store
    with httpx.Client(base_url=store.base_url, timeout=10) as c:
        for n in range(20):
            assert update(c, "KEEP-1", 1, f"keep-{n}").status_code == 200
    store.process.kill()  # no graceful shutdown: acknowledged means durable
    store.restart()
    with httpx.Client(base_url=store.base_url, timeout=10) as c:
        assert c.get("/v1/local/inventory/KEEP-1").json()["quantity"] == 20
        replay = update(c, "KEEP-1", 1, "keep-3")
        assert replay.headers["idempotent-replayed"] == "true"
        assert c.get("/v1/local/sync/status/keep-19").json()["status"] == "pending"


def test_the_request_id_is_echoed_or_made(client: httpx.Client) -> None:
    given = client.get("/v1/local/inventory", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = client.get("/v1/local/inventory")
    assert len(made.headers["x-request-id"]) == 32
