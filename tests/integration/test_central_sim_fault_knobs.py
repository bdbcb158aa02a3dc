"""Every fault knob over real HTTP: it has its effect, and DELETE /_sim/faults clears it.
Plus key rotation, the competing writer, and journal sums equal to stock."""

import time
import uuid
from typing import Any

import httpx
import pytest

from harness.central import CentralSim
from tests.support.stack import wait_for

pytestmark = pytest.mark.integration
PROBLEMS = "https://central-sim/problems/"


class Central:
    """Small helpers over one test's client: seed, set faults, adjust, read."""

    def __init__(self, sim: CentralSim, http: httpx.Client) -> None:
        self.sim = sim
        self.http = http
        self.headers = sim.auth_headers()

    def seed(self, sku: str, quantity: int) -> int:
        response = self.http.put(
            f"/_sim/inventory/{sku}", json={"quantity": quantity}, headers=self.sim.admin_headers
        )
        return int(response.json()["version"])

    def faults(self, **knobs: object) -> dict[str, object]:
        response = self.http.put("/_sim/faults", json=knobs, headers=self.sim.admin_headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def clear(self) -> dict[str, object]:
        response = self.http.delete("/_sim/faults", headers=self.sim.admin_headers)
        assert response.status_code == 200
        return dict(response.json())

    def adjust(
        self, sku: str, delta: int, version: int | None = None, key: str | None = None
    ) -> httpx.Response:
        return self.http.post(
            f"/v1/inventory/{sku}/adjust",
            json={"sku": sku, "delta": delta, "version": version},
            headers={**self.headers, "Idempotency-Key": key or str(uuid.uuid4())},
        )

    def stock(self, sku: str) -> tuple[int, int]:
        body = self.http.get(f"/v1/inventory/{sku}", headers=self.headers).json()
        return body["quantity"], body["version"]

    def journal(self) -> list[dict[str, Any]]:
        return list(
            self.http.get("/_sim/journal?limit=10000", headers=self.sim.admin_headers).json()[
                "entries"
            ]
        )

    def stats(self) -> dict[str, Any]:
        return dict(self.http.get("/_sim/stats", headers=self.sim.admin_headers).json())


@pytest.fixture
def central(sim: CentralSim, http: httpx.Client) -> Central:
    return Central(sim, http)


def test_delete_faults_resets_every_knob_in_one_call(central: Central) -> None:
    defaults = central.clear()
    changed = central.faults(
        conflict_rate=0.5,
        conflict_next={"A": 2},
        error_rate=0.1,
        throttle_rate=0.1,
        throttle_retry_after_seconds=7,
        latency_ms=5,
        latency_jitter_ms=5,
        drop_response_rate=0.1,
        auth_failure_rate=0.1,
        token_ttl_seconds=30,
    )
    assert all(changed[name] != value for name, value in defaults.items())
    assert central.http.get("/_sim/faults", headers=central.sim.admin_headers).json() == changed

    assert central.clear() == defaults
    assert central.faults(error_rate=0.0)["conflict_next"] == {}


def test_invalid_knob_is_a_422_problem(central: Central) -> None:
    response = central.http.put(
        "/_sim/faults", json={"error_rate": 3}, headers=central.sim.admin_headers
    )
    assert response.status_code == 422
    assert response.json()["field"] == "error_rate"


def test_conflict_rate_moves_central_first_and_answers_conflict(central: Central) -> None:
    version = central.seed("A", 10)
    central.faults(conflict_rate=1.0)

    conflict = central.adjust("A", -1, version=version)
    unversioned = central.adjust("A", -1)  # like an order system: never injected

    assert conflict.status_code == 409
    assert conflict.json()["current_version"] == version + 1
    assert unversioned.status_code == 200
    competing = [e for e in central.journal() if e["kind"] == "competing"]
    assert [(e["service"], e["delta"], e["sku"]) for e in competing] == [("central-sim", 0, "A")]

    central.clear()
    assert central.adjust("A", -1, version=version + 2).status_code == 200


def test_conflict_next_conflicts_exactly_n_writes_to_that_sku(central: Central) -> None:
    version = central.seed("A", 10)
    central.seed("B", 10)
    central.faults(conflict_next={"A": 2})

    statuses = []
    for _ in range(3):
        response = central.adjust("A", -1, version=version)
        statuses.append(response.status_code)
        version = response.json().get("current_version", version)
    assert statuses == [409, 409, 200]
    assert central.adjust("B", -1, version=1).status_code == 200
    assert (
        central.http.get("/_sim/faults", headers=central.sim.admin_headers).json()["conflict_next"]
        == {}
    )


def test_conflicts_apply_per_item_in_bulk_sync(central: Central) -> None:
    central.seed("A", 10)
    central.seed("B", 10)
    central.faults(conflict_next={"A": 1})
    items = [
        {"sku": "A", "delta": -1, "version": 1, "operation_id": "a"},
        {"sku": "B", "delta": -1, "version": 1, "operation_id": "b"},
    ]
    results = central.http.post(
        "/v1/inventory/bulk-sync", json={"items": items}, headers=central.headers
    ).json()["results"]
    assert [r["status"] for r in results] == ["conflict", "applied"]


def test_error_rate_answers_503_and_applies_nothing(central: Central) -> None:
    central.seed("A", 10)
    central.faults(error_rate=1.0)

    response = central.adjust("A", -1)
    bulk = central.http.post(
        "/v1/inventory/bulk-sync",
        json={"items": [{"sku": "A", "delta": -1, "operation_id": "x"}]},
        headers=central.headers,
    )

    assert response.status_code == 503
    assert response.json()["type"] == PROBLEMS + "service-unavailable"
    assert bulk.status_code == 503
    central.clear()
    assert central.stock("A") == (10, 1)


def test_throttle_rate_answers_429_with_retry_after(central: Central) -> None:
    central.seed("A", 10)
    central.faults(throttle_rate=1.0, throttle_retry_after_seconds=3)

    response = central.adjust("A", -1)
    read = central.http.get("/v1/inventory/A", headers=central.headers)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert read.status_code == 429
    central.clear()
    assert central.stock("A") == (10, 1)


def test_latency_delays_answers(central: Central) -> None:
    central.seed("A", 10)
    central.faults(latency_ms=300, latency_jitter_ms=50)

    started = time.monotonic()
    assert central.http.get("/v1/inventory/A", headers=central.headers).status_code == 200
    delayed = time.monotonic() - started
    assert delayed >= 0.3

    central.clear()
    started = time.monotonic()
    central.http.get("/v1/inventory/A", headers=central.headers)
    # Not a speed check: the knob's 300 ms is gone, whatever else a busy machine adds to both.
    assert time.monotonic() - started < delayed - 0.25


def test_drop_response_commits_then_answers_502(central: Central) -> None:
    central.seed("A", 10)
    central.faults(drop_response_rate=1.0)

    lost = central.adjust("A", -3, key="op-lost")
    lost_bulk = central.http.post(
        "/v1/inventory/bulk-sync",
        json={"items": [{"sku": "A", "delta": -2, "operation_id": "op-lost-bulk"}]},
        headers=central.headers,
    )

    assert lost.status_code == 502
    assert lost.json()["type"] == PROBLEMS + "response-dropped"
    assert lost_bulk.status_code == 502
    central.clear()
    assert central.stock("A") == (5, 3)  # both were applied
    resend = central.adjust("A", -3, key="op-lost")
    assert resend.json()["status"] == "duplicate"
    stats = central.stats()["services"]["inventory-service"]
    assert stats["dropped_response"] == 2
    assert stats["applied"] == 2


def test_auth_failure_rate_refuses_valid_tokens(central: Central) -> None:
    central.seed("A", 10)
    central.faults(auth_failure_rate=1.0)

    response = central.http.get("/v1/inventory/A", headers=central.headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    central.clear()
    assert central.http.get("/v1/inventory/A", headers=central.headers).status_code == 200


def test_token_ttl_override_shortens_new_tokens(central: Central) -> None:
    central.seed("A", 10)
    central.faults(token_ttl_seconds=1)
    issued = central.http.post(
        "/auth/token",
        json={
            "service_name": "inventory-service",
            "service_secret": central.sim.services["inventory-service"],
        },
    ).json()
    assert issued["expires_in"] == 1
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}

    def refused() -> httpx.Response | None:
        answer = central.http.get("/v1/inventory/A", headers=bearer)
        return answer if answer.status_code == 401 else None

    expired = wait_for("the one-second token to expire", refused, timeout=10)

    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]
    central.clear()
    renewed = central.http.post(
        "/auth/token",
        json={
            "service_name": "inventory-service",
            "service_secret": central.sim.services["inventory-service"],
        },
    )
    assert renewed.json()["expires_in"] == 900


def test_rotating_the_signing_key_invalidates_old_tokens(central: Central) -> None:
    central.seed("A", 10)
    old = central.headers

    rotated = central.http.post("/_sim/rotate-signing-key", headers=central.sim.admin_headers)

    assert rotated.status_code == 200
    refused = central.http.get("/v1/inventory/A", headers=old)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert (
        central.http.get("/v1/inventory/A", headers=central.sim.auth_headers()).status_code == 200
    )


def test_competing_writer_moves_stock_and_is_journaled(central: Central) -> None:
    for sku in ("C1", "C2"):
        central.seed(sku, 3)
    admin = central.sim.admin_headers

    started = central.http.post(
        "/_sim/competing-writer",
        json={"rate_per_second": 200, "skus": ["C1", "C2"], "min_delta": -2, "max_delta": 1},
        headers=admin,
    )
    assert started.status_code == 200, started.text
    wait_for(
        "the competing writer to apply a few adjustments",
        lambda: central.http.get("/_sim/competing-writer", headers=admin).json()["applied"] > 10,
        timeout=10,
    )
    stopped = central.http.delete("/_sim/competing-writer", headers=admin).json()

    assert stopped["running"] is False
    assert stopped["stopped_reason"] == "stopped"
    assert stopped["applied"] > 10
    assert central.http.get("/_sim/competing-writer", headers=admin).json() == stopped
    entries = [e for e in central.journal() if e["service"] == "order-service"]
    assert len(entries) == stopped["applied"]
    assert all(e["kind"] == "adjust" for e in entries)
    # The no-negative rule holds for the competing writer too.
    assert all(int(e["quantity"]) >= 0 for e in entries)
    order_stats = central.stats()["services"]["order-service"]
    assert order_stats["applied"] == stopped["applied"]
    assert order_stats["rejected"] == stopped["refused"]
    assert_journal_sums_equal_stock(central)


def test_competing_writer_stops_by_itself_after_max_seconds(central: Central) -> None:
    central.seed("C1", 100)
    admin = central.sim.admin_headers
    central.http.post(
        "/_sim/competing-writer",
        json={
            "rate_per_second": 50,
            "skus": ["C1"],
            "min_delta": 1,
            "max_delta": 1,
            "max_seconds": 0.3,
        },
        headers=admin,
    )
    state = wait_for(
        "the competing writer to stop by itself",
        lambda: (
            (s := central.http.get("/_sim/competing-writer", headers=admin).json())["running"]
            is False
            and s
        ),
        timeout=10,
    )
    assert state["running"] is False
    assert state["stopped_reason"] == "max_seconds"


def test_invalid_competing_writer_config_is_422(central: Central) -> None:
    response = central.http.post(
        "/_sim/competing-writer",
        json={"rate_per_second": 10, "skus": ["C1"], "min_delta": 2, "max_delta": 1},
        headers=central.sim.admin_headers,
    )
    assert response.status_code == 422


def assert_journal_sums_equal_stock(central: Central) -> None:
    sums: dict[str, int] = {}
    for entry in central.journal():
        sku = str(entry["sku"])
        sums[sku] = sums.get(sku, 0) + int(entry["delta"])
    listing = central.http.get("/_sim/inventory", headers=central.sim.admin_headers).json()
    assert sums == {row["sku"]: row["quantity"] for row in listing["items"]}


def test_journal_sums_equal_stock_under_mixed_traffic_and_faults(central: Central) -> None:
    for sku in ("A", "B", "C"):
        central.seed(sku, 20)
    central.faults(conflict_rate=0.3, drop_response_rate=0.2)
    central.http.post(
        "/_sim/competing-writer",
        json={"rate_per_second": 100, "skus": ["A", "B"], "min_delta": -3, "max_delta": 3},
        headers=central.sim.admin_headers,
    )
    for round_ in range(20):
        items = [
            {
                "sku": sku,
                "delta": delta,
                "version": round_ % 3 or None,
                "operation_id": f"{round_}-{sku}",
            }
            for sku, delta in (("A", -1), ("B", 2), ("C", -5))
        ]
        central.http.post("/v1/inventory/bulk-sync", json={"items": items}, headers=central.headers)
    central.http.delete("/_sim/competing-writer", headers=central.sim.admin_headers)
    central.clear()

    assert_journal_sums_equal_stock(central)
    seqs = [e["seq"] for e in central.journal()]
    assert seqs == sorted(seqs)


def test_journal_pages_by_seq(central: Central) -> None:
    for i in range(5):
        central.seed(f"P{i}", i)
    admin = central.sim.admin_headers
    first = central.http.get("/_sim/journal?limit=2", headers=admin).json()
    rest = central.http.get(
        f"/_sim/journal?after_seq={first['next_after_seq']}&limit=10", headers=admin
    ).json()
    assert [e["sku"] for e in first["entries"] + rest["entries"]] == [f"P{i}" for i in range(5)]
    too_big = central.http.get("/_sim/journal?limit=10001", headers=admin)
    assert too_big.status_code == 422
