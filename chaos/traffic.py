"""Concurrent local traffic against the store API, paced and bounded, recorded in a History.

The mix is what a shop does (sells and receives) plus what clients get wrong: versioned
updates that may lose a race, stale versions that must be refused (409), and resends of
acknowledged operations that must be replayed. A request whose outcome is unknown (timeout,
connection error, 5xx) is retried under the same operation_id, like a careful client, for up
to `retry_seconds`; every attempt is recorded.

The pace can be held (`hold`/`release`): while the store is down for a power cut, no new
operation starts (requests already sent keep retrying), and the schedule resumes where it
stopped, so the operations stay spread over `seconds` of the store being up instead of
bunching up after each restart.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass

import httpx

from chaos.history import History, OpKind, Outcome, StoreRequest

# Weights of each kind of operation in the mix.
MIX: dict[OpKind, int] = {"sell": 55, "receive": 20, "versioned": 10, "stale": 7, "resend": 8}
REQUEST_TIMEOUT_SECONDS = 5.0
HOLD_POLL_SECONDS = 0.05  # how soon a held operation notices the release


@dataclass(frozen=True, slots=True)
class TrafficPlan:
    api_url: str
    skus: tuple[str, ...]
    ops: int
    seconds: float  # the ops are spread evenly over this long
    concurrency: int = 6
    seed: int = 0
    retry_seconds: float = 20.0


@dataclass(frozen=True, slots=True)
class _Payload:
    operation_id: str
    sku: str
    delta: int
    version: int | None


class Traffic:
    """Runs a TrafficPlan on worker threads; `run()` blocks until every op is done."""

    def __init__(self, plan: TrafficPlan, history: History) -> None:
        self.plan = plan
        self.history = history
        self._rng = random.Random(plan.seed)
        self._lock = threading.Lock()
        self._next = 0
        self._acknowledged: list[_Payload] = []
        self._tag = uuid.uuid4().hex[:6]
        self._held_since: float | None = None  # monotonic time the pace was held, if it is
        self._held_total = 0.0  # seconds the pace was held, added to every later start
        # Zipf-like skew: a few hot SKUs take most of the traffic, like real tills.
        self._weights = [1.0 / (rank + 1) for rank in range(len(plan.skus))]

    def run(self) -> None:
        start = time.monotonic()
        threads = [
            threading.Thread(target=self._worker, args=(start,), name=f"traffic-{n}", daemon=True)
            for n in range(self.plan.concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _claim(self) -> tuple[int, random.Random] | None:
        with self._lock:
            if self._next >= self.plan.ops:
                return None
            index = self._next
            self._next += 1
            return index, random.Random(self._rng.random())

    def hold(self) -> None:
        """Start no new operation until `release` (the schedule is shifted by the hold)."""
        with self._lock:
            if self._held_since is None:
                self._held_since = time.monotonic()

    def release(self) -> None:
        with self._lock:
            if self._held_since is not None:
                self._held_total += time.monotonic() - self._held_since
                self._held_since = None

    def _delay(self, due: float) -> float:
        """Seconds until an operation due at `due` (unheld schedule) may start."""
        with self._lock:
            if self._held_since is not None:
                return HOLD_POLL_SECONDS  # held: even an operation already late waits
            return due + self._held_total - time.monotonic()

    def _worker(self, start: float) -> None:
        interval = self.plan.seconds / max(1, self.plan.ops)
        with httpx.Client(base_url=self.plan.api_url, timeout=REQUEST_TIMEOUT_SECONDS) as http:
            while (claimed := self._claim()) is not None:
                index, rng = claimed
                while (delay := self._delay(start + index * interval)) > 0:
                    time.sleep(min(delay, HOLD_POLL_SECONDS))
                self._one(http, index, rng)

    def _one(self, http: httpx.Client, index: int, rng: random.Random) -> None:
        kind: OpKind = rng.choices(list(MIX), weights=list(MIX.values()))[0]
        if kind == "resend":
            with self._lock:
                original = rng.choice(self._acknowledged) if self._acknowledged else None
            if original is not None:
                self._send(http, original, kind)
                return
            kind = "sell"
        sku = rng.choices(self.plan.skus, weights=self._weights)[0]
        delta = rng.randint(-3, -1) if kind in ("sell", "stale") else rng.randint(1, 10)
        version: int | None = None
        if kind in ("versioned", "stale"):
            current = _read_version(http, sku)
            if current is None or (kind == "stale" and current < 1):
                kind = "sell"  # the API is down or the SKU is new: no version to play with
            else:
                version = current if kind == "versioned" else current - 1
        operation_id = f"chaos-{self._tag}-{index:05d}-{uuid.uuid4().hex[:8]}"
        payload = _Payload(operation_id, sku, delta, version)
        if self._send(http, payload, kind) == "ok" and kind != "stale":
            with self._lock:
                self._acknowledged.append(payload)

    def _send(self, http: httpx.Client, payload: _Payload, kind: OpKind) -> Outcome:
        body: dict[str, object] = {"delta": payload.delta, "operation_id": payload.operation_id}
        if payload.version is not None:
            body["version"] = payload.version
        deadline = time.monotonic() + self.plan.retry_seconds
        attempt = 0
        while True:
            attempt += 1
            started = time.time()
            status: int | None = None
            replayed = False
            error: str | None = None
            try:
                response = http.post(f"/v1/local/inventory/{payload.sku}/update", json=body)
                status = response.status_code
                replayed = response.headers.get("Idempotent-Replayed") == "true"
                outcome: Outcome = (
                    "ok" if status == 200 else "refused" if status < 500 else "unknown"
                )
            except httpx.TransportError as exc:
                outcome, error = "unknown", type(exc).__name__
            self.history.record(
                StoreRequest(
                    payload.operation_id,
                    payload.sku,
                    payload.delta,
                    payload.version,
                    kind,
                    attempt,
                    outcome,
                    status,
                    replayed,
                    started,
                    time.time(),
                    error,
                )
            )
            if outcome != "unknown" or time.monotonic() >= deadline:
                return outcome
            time.sleep(0.5)


def _read_version(http: httpx.Client, sku: str) -> int | None:
    try:
        response = http.get(f"/v1/local/inventory/{sku}")
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    return int(response.json()["version"])
