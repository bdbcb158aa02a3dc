"""The fleet scenarios, as data: which fault, on whom, when, and what it must visibly do.

Times are seconds from the start of the traffic. The victim of a one-store fault is store 0.
`expect` names the checks the runner makes that the fault bit and stayed where it was put
(`chaos.fleet.expect`); the checker's verdicts (0 lost, 0 duplicated per store, central =
seed + every store's synced deltas + the competing writer) apply to every scenario.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from chaos.scenarios import BASE_STORE_ENV, CompetingWriter


class FleetFault(StrEnum):
    PARTITION = "partition"  # one store's path to central cut (Toxiproxy disable)
    REVOKE = "revoke"  # central revokes one store's identity (secret and tokens: 401)
    REGION_OUTAGE = "region_outage"  # every store cut from central, all healed at once
    KILL_WORKER = "kill_worker"  # one store's worker SIGKILLed, started again at the heal
    NONE = "none"  # no fault: contention alone (shared SKUs, competing writer)


class Expect(StrEnum):
    VICTIM_STALLS = "victim_stalls"  # the victim synced nothing mid-window, its backlog grew
    OTHERS_SYNC = "others_sync"  # every other store kept syncing during the window
    VICTIM_AUTH_ALERT = "victim_auth_alert"  # only the victim's summary/health says auth failed
    QUEUE_GROWS = "queue_grows"  # the victim's queue held messages with no consumer
    ALL_STALL = "all_stall"  # no store synced mid-window
    CONFLICTS = "conflicts"  # central answered version conflicts


@dataclass(frozen=True, slots=True)
class FleetScenario:
    name: str
    description: str
    fault: FleetFault
    expect: tuple[Expect, ...] = ()
    shared_skus: bool = False  # every store writes the same SKUs (else each its own)
    competing: CompetingWriter | None = None
    traffic_seconds: float = 12.0
    fault_at: float = 3.0
    fault_seconds: float = 8.0


# Every store of a fleet runs with the single-store chaos settings, except a backoff cap of
# 4 s: long enough that full jitter visibly spreads a region's retries (scenario c).
FLEET_STORE_ENV: Mapping[str, str] = MappingProxyType(
    {**BASE_STORE_ENV, "STORE_BACKOFF_CAP_SECONDS": "4"}
)

SCENARIOS: tuple[FleetScenario, ...] = (
    FleetScenario(
        name="a-one-store-partitioned",
        description="Store 0 is cut from central for the window: its backlog grows while "
        "every other store keeps syncing with its lag unchanged within noise.",
        fault=FleetFault.PARTITION,
        expect=(Expect.VICTIM_STALLS, Expect.OTHERS_SYNC),
    ),
    FleetScenario(
        name="b-one-store-revoked",
        description="Central revokes store 0's identity for the window (secret and issued "
        "tokens refused): only store 0 stops, only its summary and health say auth failed; "
        "restored at the heal, it drains.",
        fault=FleetFault.REVOKE,
        expect=(Expect.VICTIM_STALLS, Expect.OTHERS_SYNC, Expect.VICTIM_AUTH_ALERT),
    ),
    FleetScenario(
        name="c-regional-outage",
        description="Every store is cut from central, then all are healed at once: the "
        "thundering herd. Time to converge, central's ingest rate after the heal, and how "
        "full jitter spreads the stores' retries.",
        fault=FleetFault.REGION_OUTAGE,
        expect=(Expect.ALL_STALL,),
        fault_seconds=10.0,
    ),
    FleetScenario(
        name="d-one-worker-dies",
        description="Store 0's worker is SIGKILLed for the window: its sync triggers pile up "
        "in its queue with no consumer (RabbitMQ's own count), the other stores are "
        "unaffected; the worker restarts at the heal and drains.",
        fault=FleetFault.KILL_WORKER,
        expect=(Expect.VICTIM_STALLS, Expect.OTHERS_SYNC, Expect.QUEUE_GROWS),
    ),
    FleetScenario(
        name="e-shared-skus",
        description="Every store writes the same SKUs, with central's competing writer at "
        "10/s on them too: version conflicts at central and the stores' rebases at scale.",
        fault=FleetFault.NONE,
        expect=(Expect.CONFLICTS,),
        shared_skus=True,
        competing=CompetingWriter(rate_per_second=10.0),
    ),
)

BY_NAME: Mapping[str, FleetScenario] = MappingProxyType({s.name: s for s in SCENARIOS})


def get(name: str) -> FleetScenario:
    """A scenario by full name or by its letter (`a`..`e`)."""
    for scenario in SCENARIOS:
        if name in (scenario.name, scenario.name.split("-", 1)[0]):
            return scenario
    raise KeyError(f"no fleet scenario {name!r}; known: {', '.join(BY_NAME)}")
