"""central_sim's control API (`/_sim`, admin token) as the chaos runner uses it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

PAGE = 10_000


class SimAdmin:
    """Seed, faults, key rotation, competing writer, journal and stock of one simulator."""

    def __init__(self, base_url: str, admin_token: str) -> None:
        self.base_url = base_url
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=15.0,
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def seed(self, sku: str, quantity: int) -> None:
        self._call("PUT", f"/_sim/inventory/{sku}", json={"quantity": quantity})

    def set_faults(self, knobs: Mapping[str, object]) -> None:
        self._call("PUT", "/_sim/faults", json=dict(knobs))

    def clear_faults(self) -> None:
        self._call("DELETE", "/_sim/faults")

    def rotate_key(self) -> None:
        self._call("POST", "/_sim/rotate-signing-key")

    def start_competing(
        self, skus: list[str], *, rate: float, min_delta: int, max_delta: int, seconds: float
    ) -> None:
        body = {
            "rate_per_second": rate,
            "skus": skus,
            "min_delta": min_delta,
            "max_delta": max_delta,
            "max_seconds": seconds,
        }
        self._call("POST", "/_sim/competing-writer", json=body)

    def stop_competing(self) -> dict[str, Any]:
        return dict(self._call("DELETE", "/_sim/competing-writer"))

    def journal(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self._call("GET", "/_sim/journal", params={"after_seq": after, "limit": PAGE})
            entries.extend(page["entries"])
            if len(page["entries"]) < PAGE:
                return entries
            after = page["next_after_seq"]

    def stock(self) -> dict[str, int]:
        quantities: dict[str, int] = {}
        params: dict[str, Any] = {"limit": PAGE}
        while True:
            page = self._call("GET", "/_sim/inventory", params=params)
            quantities.update({item["sku"]: int(item["quantity"]) for item in page["items"]})
            if page["next_after_sku"] is None:
                return quantities
            params["after_sku"] = page["next_after_sku"]

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "/_sim/stats"))
