"""Proof that each fleet fault bit where it was aimed and nowhere else (a fault that did
nothing proves nothing; one that leaked to the other stores is the finding).

Judged on the sampler's points strictly inside the window, after a grace period: a sync run in
flight when the fault opens may still finish, and one sample later the fault must show.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from chaos.fleet.observe import StoreSample
from chaos.fleet.scenarios import Expect

if TYPE_CHECKING:
    from chaos.fleet.runner import FleetResult

GRACE_SECONDS = 2.5


def _inside(samples: Sequence[StoreSample], lo: float, hi: float) -> list[StoreSample]:
    return [s for s in samples if lo <= s.at <= hi]


def synced_between(samples: Sequence[StoreSample], lo: float, hi: float) -> int | None:
    """Changes the store synced between the first and the last answered sample in [lo, hi]."""
    points = [s.counts["synced"] for s in _inside(samples, lo, hi) if s.counts is not None]
    return None if len(points) < 2 else points[-1] - points[0]


def expectations(result: FleetResult) -> list[str]:
    lo, hi = result.fault_opened_at + GRACE_SECONDS, result.healed_at
    victim, others = result.stores[0], result.stores[1:]
    failed: list[str] = []
    for expect in result.scenario.expect:
        if expect is Expect.VICTIM_STALLS:
            moved = synced_between(victim.samples, lo, hi)
            if moved is None or moved > 0:
                failed.append(f"{victim.service} synced {moved} changes inside the window")
            backlog = [
                s.counts.get("pending", 0) + s.counts.get("in_flight", 0)
                for s in _inside(victim.samples, lo, hi)
                if s.counts is not None
            ]
            if len(backlog) < 2 or backlog[-1] <= backlog[0]:
                failed.append(f"{victim.service}'s backlog did not grow in the window: {backlog}")
        elif expect is Expect.OTHERS_SYNC:
            for store in others:
                moved = synced_between(store.samples, lo, hi)
                if not moved:
                    failed.append(f"{store.service} synced {moved} changes in the window")
        elif expect is Expect.VICTIM_AUTH_ALERT:
            inside = _inside(victim.samples, lo, hi)
            if not any(s.auth_failed and s.backlog_health == "degraded" for s in inside):
                failed.append(f"{victim.service}'s summary and health never said auth failed")
            for store in others:
                if any(s.auth_failed for s in store.samples):
                    failed.append(f"{store.service} reported an auth failure it did not have")
        elif expect is Expect.QUEUE_GROWS:
            inside = _inside(victim.samples, lo, hi)
            if not any(s.queue_consumers == 0 and (s.queue_messages or 0) > 0 for s in inside):
                failed.append(f"{victim.service}'s queue never held messages with no consumer")
            for store in others:
                if any(s.queue_consumers == 0 for s in _inside(store.samples, lo, hi)):
                    failed.append(f"{store.service}'s queue lost its consumer")
        elif expect is Expect.ALL_STALL:
            for store in result.stores:
                moved = synced_between(store.samples, lo, hi)
                if moved is None or moved > 0:
                    failed.append(f"{store.service} synced {moved} changes while cut off")
        elif expect is Expect.CONFLICTS:
            before = result.central_before.get("totals", {}).get("conflict", 0)
            after = result.central_after.get("totals", {}).get("conflict", 0)
            if after - before <= 0:
                failed.append("central answered no version conflict on the shared SKUs")
    return failed
