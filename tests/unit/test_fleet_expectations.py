"""The fleet's fault expectations fail when a fault did not bite or leaked to other stores
(negative controls), pass when it stayed where it was aimed; the herd report reads central's
journal and the retry schedule; the scenario data is well formed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chaos.checker import CheckResult
from chaos.fleet import scenarios
from chaos.fleet.expect import expectations
from chaos.fleet.herd import herd_report
from chaos.fleet.observe import StoreSample
from chaos.fleet.runner import FleetConfig, FleetResult, StoreOutcome, scenario_skus
from chaos.fleet.scenarios import Expect, FleetScenario

OPEN, HEAL = 100.0, 110.0


def samples(
    synced: list[int],
    *,
    backlog: list[int] | None = None,
    auth: bool = False,
    queue: tuple[int, int] = (0, 1),
) -> list[StoreSample]:
    """One sample a second from OPEN - 2 on."""
    backlog = backlog or [0] * len(synced)
    return [
        StoreSample(
            OPEN - 2 + n,
            {"synced": s, "pending": b, "in_flight": 0},
            float(b),
            auth,
            "degraded" if auth else "ok",
            queue[0],
            queue[1],
        )
        for n, (s, b) in enumerate(zip(synced, backlog, strict=True))
    ]


def result(expect: tuple[Expect, ...], stores: list[list[StoreSample]], **kw: Any) -> FleetResult:
    scenario = FleetScenario("x-test", "test", scenarios.FleetFault.NONE, expect=expect)
    outcomes = [
        StoreOutcome(f"store-{n:03d}", CheckResult(), HEAL + 1, s, {}, {})
        for n, s in enumerate(stores)
    ]
    return FleetResult(
        scenario=scenario,
        config=FleetConfig(stores=len(stores)),
        stores=outcomes,
        central_mismatches=[],
        started_at=OPEN - 3,
        fault_opened_at=OPEN,
        healed_at=HEAL,
        traffic_done_at=HEAL,
        finished_at=HEAL + 2,
        central_before=kw.get("before", {}),
        central_after=kw.get("after", {}),
        central_requests={},
        competing=None,
        herd=None,
    )


FLAT = list(range(14))  # synced 0..13: keeps syncing
STALLED = [5] * 14
GROWING = list(range(14))


def test_isolated_partition_passes() -> None:
    r = result(
        (Expect.VICTIM_STALLS, Expect.OTHERS_SYNC),
        [samples(STALLED, backlog=GROWING), samples(FLAT)],
    )
    assert expectations(r) == []


def test_a_victim_that_kept_syncing_fails() -> None:
    r = result((Expect.VICTIM_STALLS,), [samples(FLAT, backlog=GROWING), samples(FLAT)])
    assert any("store-000 synced" in f for f in expectations(r))


def test_a_fault_that_leaked_to_another_store_fails() -> None:
    r = result((Expect.OTHERS_SYNC,), [samples(STALLED), samples(STALLED)])
    assert expectations(r) == ["store-001 synced 0 changes in the window"]


def test_auth_alert_must_show_on_the_victim_only() -> None:
    victim = samples(STALLED, backlog=GROWING, auth=True)
    assert expectations(result((Expect.VICTIM_AUTH_ALERT,), [victim, samples(FLAT)])) == []
    leaked = expectations(result((Expect.VICTIM_AUTH_ALERT,), [victim, samples(FLAT, auth=True)]))
    assert leaked == ["store-001 reported an auth failure it did not have"]
    silent = expectations(result((Expect.VICTIM_AUTH_ALERT,), [samples(STALLED), samples(FLAT)]))
    assert silent == ["store-000's summary and health never said auth failed"]


def test_queue_growth_needs_messages_with_no_consumer() -> None:
    dead = samples(STALLED, queue=(4, 0))
    assert expectations(result((Expect.QUEUE_GROWS,), [dead, samples(FLAT)])) == []
    consumed = expectations(result((Expect.QUEUE_GROWS,), [samples(STALLED), samples(FLAT)]))
    assert consumed == ["store-000's queue never held messages with no consumer"]


def test_conflicts_must_happen_on_shared_skus() -> None:
    none = result((Expect.CONFLICTS,), [samples(FLAT)], after={"totals": {"conflict": 0}})
    assert expectations(none) == ["central answered no version conflict on the shared SKUs"]
    some = result((Expect.CONFLICTS,), [samples(FLAT)], after={"totals": {"conflict": 3}})
    assert expectations(some) == []


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def test_herd_report_counts_store_arrivals_after_the_heal_only() -> None:
    journal = [
        {"service": "store-000", "kind": "adjust", "at": iso(HEAL - 1)},  # before the heal
        {"service": "store-000", "kind": "adjust", "at": iso(HEAL + 0.2)},
        {"service": "store-001", "kind": "adjust", "at": iso(HEAL + 0.3)},
        {"service": "store-001", "kind": "adjust", "at": iso(HEAL + 1.2)},
        {"service": "order-service", "kind": "competing", "at": iso(HEAL + 0.5)},
    ]
    herd = herd_report(journal, {"store-000", "store-001"}, HEAL, HEAL + 3, [HEAL + 0.1, HEAL + 2])
    assert herd.applied_after_heal == 3
    assert herd.first_after_heal == {"store-000": 0.2, "store-001": 0.3}
    assert herd.arrivals == [(0.0, 2), (1.0, 1)]
    assert herd.peak_rate == 4.0
    assert herd.time_to_converge == 3.0
    assert herd.due_count == 2
    assert herd.due_distinct_100ms == 2


def test_scenario_skus_are_per_store_unless_shared() -> None:
    own = scenario_skus(scenarios.get("a"), 3, 2)
    assert own[0] == ("FA-S000-00", "FA-S000-01")
    assert len({sku for s in own for sku in s}) == 6
    shared = scenario_skus(scenarios.get("e"), 3, 2)
    assert shared[0] == shared[2] == ("FE-X-00", "FE-X-01")


def test_every_scenario_expects_its_fault_to_show_and_letters_resolve() -> None:
    assert [s.name[0] for s in scenarios.SCENARIOS] == list("abcde")
    for scenario in scenarios.SCENARIOS:
        assert scenario.expect, scenario.name
        assert scenarios.get(scenario.name[0]) is scenario
    with pytest.raises(KeyError):
        scenarios.get("z")


def test_reports_write_json_markdown_and_png_with_the_per_store_rows(tmp_path: Any) -> None:
    from chaos.fleet.report import write_reports

    r = result((Expect.OTHERS_SYNC,), [samples(STALLED, backlog=GROWING), samples(FLAT)])
    r.herd = herd_report([], {"store-000"}, HEAL, HEAL + 1, [HEAL + 0.5])
    r.expectations_failed = expectations(r)
    paths = write_reports(r, tmp_path)
    body = paths["json"].read_text()
    assert '"service": "store-001"' in body
    markdown = paths["markdown"].read_text()
    assert "| store-000 |" in markdown
    assert "Thundering herd" in markdown
    assert "expectation failed: store-001" not in markdown  # store-001 kept syncing
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
