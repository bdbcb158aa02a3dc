"""The simulated competing writer: a background thread adjusting central stock at a rate.

It journals as the configured competing identity (`order-service` by default), applies deltas
unconditionally (no version, like an order system), and never takes stock below zero: a refused
delta is counted, not applied, not journaled. Its configuration and counts live in SQLite, so a
restarted simulator resumes it until `max_seconds` after the original start.
"""

import random
import threading
import time
import uuid
from typing import Annotated, Any

import structlog
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    model_validator,
)

from central_sim import storage
from central_sim.db import Database
from central_sim.ledger import MAX_ABS_DELTA, SKU_PATTERN, JournalEntry, JournalKind, Stock
from central_sim.metrics import Metrics
from central_sim.schemas import integral_float_to_int

STATE_NAME = "competing_writer"
log = structlog.get_logger("central_sim.competing")


# A JSON integer (5.0 included, as everywhere in central_sim); zero allowed in a range bound.
Delta = Annotated[
    int,
    Field(ge=-MAX_ABS_DELTA, le=MAX_ABS_DELTA),
    Strict(),
    BeforeValidator(integral_float_to_int),
]


class CompetingWriterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # At least one per 100 s: a vanishing rate (5e-324) overflowed the thread's wait timeout.
    rate_per_second: float = Field(ge=0.01, le=1000, description="Adjustments per second.")
    skus: list[Annotated[str, StringConstraints(pattern=SKU_PATTERN)]] = Field(
        min_length=1, max_length=10_000
    )
    min_delta: Delta = -3
    max_delta: Delta = 3
    max_seconds: float = Field(600, gt=0, le=86_400, description="Stops by itself after this.")

    @model_validator(mode="after")
    def _sane_range(self) -> "CompetingWriterConfig":
        if self.min_delta > self.max_delta:
            raise ValueError("min_delta must be <= max_delta")
        if self.min_delta == self.max_delta == 0:
            raise ValueError("the delta range must contain a non-zero value")
        return self


class CompetingWriter:
    """Owns the writer thread; every method is safe to call from any request thread."""

    def __init__(self, *, db: Database, service: str, rng: random.Random, metrics: Metrics):
        self._db = db
        self._service = service
        self._rng = rng
        self._metrics = metrics
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._state: dict[str, Any] = {"running": False}

    def resume(self) -> None:
        """At startup: restart a writer that was running when the process went away."""
        with self._db.read() as conn:
            state = storage.get_state(conn, STATE_NAME)
        if not state:
            return
        self._state = state
        if state.get("running"):
            if time.time() < state["started_at"] + state["config"]["max_seconds"]:
                self._launch()
            else:
                self._finish("max_seconds")

    def start(self, config: CompetingWriterConfig) -> dict[str, Any]:
        self.stop("replaced")
        with self._guard:
            self._state = {
                "running": True,
                "service": self._service,
                "config": config.model_dump(),
                "started_at": time.time(),
                "applied": 0,
                "refused": 0,
                "stopped_at": None,
                "stopped_reason": None,
            }
            with self._db.write() as conn:
                storage.put_state(conn, STATE_NAME, self._state)
            self._launch()
        log.info("competing_writer_started", **config.model_dump(exclude={"skus"}))
        return self.status()

    def stop(self, reason: str = "stopped") -> dict[str, Any]:
        """Stop the thread and record why; a no-op when it is not running."""
        self.halt()
        if self._state.get("running"):
            self._finish(reason)
        return self.status()

    def halt(self) -> None:
        """Stop the thread but keep the persisted state (process shutdown: resume later)."""
        with self._guard:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    def forget(self) -> None:
        """Stop and erase all state (simulator reset)."""
        self.halt()
        self._state = {"running": False}
        with self._db.write() as conn:
            storage.delete_state(conn, STATE_NAME)

    def status(self) -> dict[str, Any]:
        state = dict(self._state)
        state["running"] = bool(state.get("running")) and self._thread is not None
        if state.get("config"):
            state["stops_at"] = state["started_at"] + state["config"]["max_seconds"]
        return state

    def _launch(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._stop,), name="competing-writer", daemon=True
        )
        self._thread.start()

    def _finish(self, reason: str) -> None:
        self._state.update(running=False, stopped_at=time.time(), stopped_reason=reason)
        with self._db.write() as conn:
            storage.put_state(conn, STATE_NAME, self._state)
        log.info("competing_writer_stopped", reason=reason, applied=self._state.get("applied"))

    def _run(self, stop: threading.Event) -> None:
        config = CompetingWriterConfig.model_validate(self._state["config"])
        deadline = self._state["started_at"] + config.max_seconds
        interval = 1.0 / config.rate_per_second
        next_at = time.monotonic()
        while not stop.wait(timeout=max(0.0, next_at - time.monotonic())):
            if time.time() >= deadline:
                with self._guard:
                    if self._stop is stop:
                        self._thread = None
                self._finish("max_seconds")
                return
            try:
                self._tick(config)
            except Exception:
                log.exception("competing_writer_tick_failed")
            next_at += interval
            # After a stall (e.g. a long fsync) do not burst to catch up.
            next_at = max(next_at, time.monotonic() - 1.0)

    def _tick(self, config: CompetingWriterConfig) -> None:
        sku = self._rng.choice(config.skus)
        delta = 0
        while delta == 0:  # the validator guarantees a non-zero value exists
            delta = self._rng.randint(config.min_delta, config.max_delta)
        with self._db.write() as conn:
            stock = storage.load_stock(conn, [sku]).get(sku)
            quantity = stock.quantity if stock else 0
            version = stock.version if stock else 0
            if quantity + delta < 0:
                outcome = "rejected"
                self._state["refused"] = self._state.get("refused", 0) + 1
            else:
                outcome = "applied"
                self._state["applied"] = self._state.get("applied", 0) + 1
                storage.save_stock(conn, {sku: Stock(quantity + delta, version + 1, True)}, [sku])
                entry = JournalEntry(
                    JournalKind.ADJUST,
                    f"competing-{uuid.uuid4()}",
                    self._service,
                    sku,
                    delta,
                    quantity + delta,
                    version + 1,
                )
                storage.append_journal(conn, [entry], storage.utc_iso(time.time()))
            storage.add_stats(conn, self._service, {outcome: 1})
            storage.put_state(conn, STATE_NAME, self._state)
        self._metrics.competing.labels("applied" if outcome == "applied" else "refused").inc()
        self._metrics.writes.labels(self._service, outcome).inc()
