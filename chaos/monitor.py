"""Background observers during a run: the outbox sampler and the periodic sync trigger.

The sampler reads `GET /v1/local/sync/summary` every ~0.5 s (the timeline's backlog and sync
outcome curves); the trigger loop plays a fast beat (`POST /v1/local/sync/trigger` every
second) and records every answer, so a broker outage shows as 503s on the timeline. Frequent
runs matter: a toxic only bites a run that is in progress, and a run every second keeps the
scenarios' timing the same whatever the store's sync-soon debounce is set to.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    counts: dict[str, int] | None  # None: the API did not answer


@dataclass(frozen=True, slots=True)
class TriggerAnswer:
    at: float
    status: int | None  # None: connection error or timeout
    detail: str = ""


class _Loop:
    """Calls `tick` every `every` seconds on a daemon thread until stopped."""

    def __init__(self, every: float, name: str) -> None:
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.every)

    def tick(self) -> None:
        raise NotImplementedError


class Sampler(_Loop):
    def __init__(self, api_url: str, every: float = 0.5) -> None:
        super().__init__(every, "chaos-sampler")
        self.samples: list[Sample] = []
        self._http = httpx.Client(base_url=api_url, timeout=2.0)

    def tick(self) -> None:
        try:
            response = self._http.get("/v1/local/sync/summary")
            counts = dict(response.json()["counts"]) if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, KeyError):
            counts = None
        self.samples.append(Sample(time.time(), counts))

    def stop(self) -> None:
        super().stop()
        self._http.close()


class Trigger(_Loop):
    def __init__(self, api_url: str, every: float = 1.0) -> None:
        super().__init__(every, "chaos-trigger")
        self.answers: list[TriggerAnswer] = []
        # Longer than the API's own publish deadline, so a 503 is seen as a 503.
        self._http = httpx.Client(base_url=api_url, timeout=15.0)

    def tick(self) -> None:
        self.answers.append(trigger_once(self._http))

    def stop(self) -> None:
        super().stop()
        self._http.close()


def trigger_once(http: httpx.Client) -> TriggerAnswer:
    try:
        response = http.post("/v1/local/sync/trigger")
    except httpx.HTTPError as exc:
        return TriggerAnswer(time.time(), None, type(exc).__name__)
    detail = response.headers.get("Retry-After", "")
    return TriggerAnswer(time.time(), response.status_code, detail and f"Retry-After {detail}")
