"""What a scenario reads from a running store API once its traffic stops: convergence (nothing
pending or in flight), central's final stock learned by refresh, and the whole outbox and local
view for the checker. Shared by the one-store runner and the fleet (one store per call)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx

from chaos.monitor import trigger_once

PAGE = 500


def sleep_until(at: float) -> None:
    delay = at - time.time()
    if delay > 0:
        time.sleep(delay)


def converge(api_url: str, timeout: float) -> float | None:
    """Trigger syncs until nothing is pending or in flight; the time it happened, or None."""
    deadline = time.monotonic() + timeout
    last_trigger = 0.0
    with httpx.Client(base_url=api_url, timeout=15.0) as http:
        while time.monotonic() < deadline:
            try:
                counts = http.get("/v1/local/sync/summary").json()["counts"]
            except (httpx.HTTPError, ValueError, KeyError):
                counts = None
            if counts is not None and not counts.get("pending") and not counts.get("in_flight"):
                return time.time()
            if time.monotonic() - last_trigger > 2.0:
                trigger_once(http)
                last_trigger = time.monotonic()
            time.sleep(0.25)
    return None


def refresh(api_url: str, skus: Sequence[str]) -> None:
    """Learn central's stock for `skus` (retrying a 503 for a few seconds)."""
    with httpx.Client(base_url=api_url, timeout=15.0) as http:
        for sku in skus:
            for _ in range(20):
                if http.post(f"/v1/local/inventory/{sku}/refresh").status_code == 200:
                    break
                time.sleep(0.5)


def pages(http: httpx.Client, path: str, key: str, cursor: str, next_key: str) -> list[Any]:
    """Every item of a keyset-paginated listing."""
    items: list[Any] = []
    params: dict[str, Any] = {"limit": PAGE}
    while True:
        page = http.get(path, params=params)
        page.raise_for_status()
        body = page.json()
        items.extend(body[key])
        if body[next_key] is None:
            return items
        params[cursor] = body[next_key]


def outbox_and_view(api_url: str) -> tuple[list[Any], dict[str, Any]]:
    """Every change in the outbox, and the local view by SKU."""
    with httpx.Client(base_url=api_url, timeout=30.0) as http:
        changes = pages(http, "/v1/local/changes", "items", "after_id", "next_after_id")
        local = pages(http, "/v1/local/inventory", "items", "after", "next_after")
    return changes, {item["sku"]: item for item in local}
