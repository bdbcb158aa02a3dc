"""Oversized, malformed and over-wide bodies are refused with a 4xx problem and change nothing,
on every write route of both APIs (the store's update route has its own tests over HTTP in
tests/integration/test_local_api.py)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from central_sim.main import create_app as create_sim
from store_service.api.app import create_app as create_store
from tests.support.central_app import ADMIN, auth, sim_settings
from tests.support.store_db import make_settings

PROBLEM = "application/problem+json"
JSON = {"content-type": "application/json"}


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_sim(sim_settings(tmp_path, max_body_bytes=4096))) as client:
        yield client


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path / "store.db", max_body_bytes=1024)
    with TestClient(create_store(settings)) as client:
        yield client


def _journal_and_stock(sim: TestClient) -> tuple[object, object]:
    journal = sim.get("/_sim/journal", headers=ADMIN).json()["entries"]
    stock = sim.get("/_sim/inventory", headers=ADMIN).json()["items"]
    return journal, stock


def _assert_problem(response, statuses: set[int]) -> None:
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


ADJUST = "/v1/inventory/SKU-1/adjust"
BULK = "/v1/inventory/bulk-sync"
SIM_BAD_BODIES = [
    ("oversized", b'{"sku": "SKU-1", "delta": 1, "pad": "' + b"x" * 8000 + b'"}', {413}),
    ("malformed", b'{"sku": "SKU-1", "delta": ', {400, 422}),
    ("not-json", b"\xff\xfe\x00", {400, 422}),
    ("array", b"[1, 2]", {422}),
    ("unknown-field", b'{"sku": "SKU-1", "delta": 1, "qty": 5}', {422}),
    ("bool-delta", b'{"sku": "SKU-1", "delta": true}', {422}),
    ("delta-out-of-bounds", b'{"sku": "SKU-1", "delta": 10000000000}', {422}),
    ("long-sku", b'{"sku": "' + b"S" * 65 + b'", "delta": 1}', {422}),
]


@pytest.mark.parametrize(("name", "body", "statuses"), SIM_BAD_BODIES, ids=lambda v: str(v)[:20])
def test_central_adjust_refuses_bad_bodies_and_changes_nothing(
    sim: TestClient, name: str, body: bytes, statuses: set[int]
) -> None:
    before = _journal_and_stock(sim)
    headers = {**auth(sim), **JSON, "Idempotency-Key": f"op-{name}"}
    _assert_problem(sim.post(ADJUST, content=body, headers=headers), statuses)
    assert _journal_and_stock(sim) == before


@pytest.mark.parametrize(
    ("body", "statuses"),
    [
        (
            b'{"items": [' + b'{"sku": "SKU-1", "delta": 1, "operation_id": "a"},' * 200 + b"]}",
            {413},
        ),
        (b'{"items": [', {400, 422}),
        (b'{"items": [], "extra": 1}', {422}),
        (b'{"items": "nope"}', {422}),
    ],
    ids=["oversized", "malformed", "unknown-field", "not-a-list"],
)
def test_central_bulk_sync_refuses_bad_bodies_and_changes_nothing(
    sim: TestClient, body: bytes, statuses: set[int]
) -> None:
    before = _journal_and_stock(sim)
    _assert_problem(sim.post(BULK, content=body, headers={**auth(sim), **JSON}), statuses)
    assert _journal_and_stock(sim) == before


def test_a_bulk_item_with_an_unknown_field_is_an_invalid_item(sim: TestClient) -> None:
    items = [
        {"sku": "SKU-1", "delta": 1, "operation_id": "ok"},
        {"sku": "SKU-1", "delta": 1, "operation_id": "typo", "quantity": 99},
    ]
    results = sim.post(BULK, json={"items": items}, headers=auth(sim)).json()["results"]
    assert [r["status"] for r in results] == ["applied", "rejected"]
    assert results[1]["reason"] == "invalid_item"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/auth/token", b'{"service_name": "x", "service_secret": "y", "role": "admin"}'),
        ("PUT", "/_sim/inventory/SKU-1", b'{"quantity": 5, "version": 1}'),
        ("PUT", "/_sim/faults", b'{"error_rate": 1, "everything": true}'),
        ("PUT", "/_sim/inventory/SKU-1", b'{"quantity": ' + b"9" * 5000 + b"}"),
    ],
    ids=["token-unknown-field", "seed-unknown-field", "faults-unknown-field", "seed-oversized"],
)
def test_other_central_write_bodies_are_bounded(
    sim: TestClient, method: str, path: str, body: bytes
) -> None:
    before = _journal_and_stock(sim)
    faults = sim.get("/_sim/faults", headers=ADMIN).json()
    response = sim.request(method, path, content=body, headers={**ADMIN, **JSON})
    _assert_problem(response, {413, 422})
    assert _journal_and_stock(sim) == before
    assert sim.get("/_sim/faults", headers=ADMIN).json() == faults


@pytest.mark.parametrize(
    "path",
    [
        "/v1/local/inventory/SKU-1/update",
        "/v1/local/inventory/SKU-1/refresh",
        "/v1/local/sync/trigger",
        "/v1/local/changes/op-1/retry",
        "/v1/local/changes/op-1/discard",
    ],
)
def test_store_write_routes_refuse_oversized_bodies_and_change_nothing(
    store: TestClient, path: str
) -> None:
    body = b'{"delta": 1, "operation_id": "big", "pad": "' + b"x" * 4096 + b'"}'
    _assert_problem(store.post(path, content=body, headers=JSON), {413})
    assert store.get("/v1/local/changes").json()["items"] == []
    assert store.get("/v1/local/inventory").json()["items"] == []


@pytest.mark.parametrize(
    ("query", "status"),
    [("limit=0", 422), ("limit=501", 422), ("after_id=-1", 422), ("sku=" + "S" * 65, 422)],
)
def test_store_page_sizes_and_filters_are_bounded(
    store: TestClient, query: str, status: int
) -> None:
    _assert_problem(store.get(f"/v1/local/changes?{query}"), {status})


@pytest.mark.parametrize(("query", "status"), [("limit=0", 422), ("limit=10001", 422)])
def test_central_page_sizes_are_bounded(sim: TestClient, query: str, status: int) -> None:
    _assert_problem(sim.get(f"/_sim/journal?{query}", headers=ADMIN), {status})
