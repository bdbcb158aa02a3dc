"""State lives in the SQLite file: stock, journal, idempotency records, faults, the rotated
signing key and a running competing writer all survive a restart (even a SIGKILL)."""

from pathlib import Path

import httpx
import pytest

from harness.central import start_central

pytestmark = pytest.mark.integration


def test_state_survives_a_crash_and_restart(tmp_path: Path) -> None:
    sim = start_central(tmp_path)
    try:
        admin = sim.admin_headers
        with httpx.Client(base_url=sim.base_url, timeout=10.0) as http:
            http.put("/_sim/inventory/A", json={"quantity": 10}, headers=admin)
            http.put("/_sim/inventory/W", json={"quantity": 1000}, headers=admin)
            before_rotation = sim.auth_headers()
            http.post("/_sim/rotate-signing-key", headers=admin)
            headers = sim.auth_headers()
            adjusted = http.post(
                "/v1/inventory/A/adjust",
                json={"sku": "A", "delta": -4, "version": 1},
                headers={**headers, "Idempotency-Key": "op-1"},
            )
            assert adjusted.status_code == 200
            http.put("/_sim/faults", json={"conflict_next": {"A": 1}}, headers=admin)
            http.post(
                "/_sim/competing-writer",
                json={"rate_per_second": 20, "skus": ["W"], "min_delta": 1, "max_delta": 1},
                headers=admin,
            )
            journal_before = http.get("/_sim/journal", headers=admin).json()["entries"]

        sim.restart(kill=True)

        with httpx.Client(base_url=sim.base_url, timeout=10.0) as http:
            # The key rotated before the crash is still the key: newer token valid, older not.
            assert http.get("/v1/inventory/A", headers=headers).json() == {
                "sku": "A",
                "quantity": 6,
                "version": 2,
            }
            assert http.get("/v1/inventory/A", headers=before_rotation).status_code == 401
            replay = http.post(
                "/v1/inventory/A/adjust",
                json={"sku": "A", "delta": -4, "version": 1},
                headers={**headers, "Idempotency-Key": "op-1"},
            )
            assert replay.status_code == 200
            assert replay.json() == {**adjusted.json(), "status": "duplicate"}
            assert http.get("/_sim/faults", headers=admin).json()["conflict_next"] == {"A": 1}
            journal_after = http.get("/_sim/journal", headers=admin).json()["entries"]
            assert journal_after[: len(journal_before)] == journal_before
            writer = http.get("/_sim/competing-writer", headers=admin).json()
            assert writer["running"] is True
            stopped = http.delete("/_sim/competing-writer", headers=admin).json()
            assert stopped["applied"] >= 1
    finally:
        sim.stop()
