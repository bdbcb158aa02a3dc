"""The CI-sized fleet: three stores (API + worker each, own SQLite file, identity and queue on
the shared RabbitMQ) and one central_sim, every fleet scenario (a)-(e) on it with ~80
operations per store, then the checker per store and for central as a whole, and each
scenario's proof that its fault bit the victim and no other store. The full-size run is
`python -m chaos fleet --stores 8` (docs/scaling.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.fleet import scenarios
from chaos.fleet.main import run_fleet
from chaos.fleet.runner import FleetConfig

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

CI_STORES = 3
CI_OPS_PER_STORE = 80


@pytest.mark.timeout(600)
def test_fleet_scenarios_keep_every_change_exactly_once_and_faults_isolated(
    rabbitmq_url: str, toxiproxy_server: str, tmp_path: Path
) -> None:
    config = FleetConfig(
        stores=CI_STORES, ops_per_store=CI_OPS_PER_STORE, skus_per_store=4, converge_timeout=90
    )
    run = run_fleet(
        config,
        scenarios.SCENARIOS,
        tmp_path,
        broker_url=rabbitmq_url,
        toxiproxy_url=toxiproxy_server,
        echo=False,
    )
    assert not run.errors, run.errors
    assert [r.scenario.name for r in run.results] == [s.name for s in scenarios.SCENARIOS]
    for result in run.results:
        where = tmp_path / f"{result.scenario.name}.md"
        for store in result.stores:
            check = store.check
            assert check.ok, f"{store.service}: {check.errors()}; see {where}"
            assert check.lost == check.duplicated == check.unexpected == []
            assert check.acknowledged > CI_OPS_PER_STORE // 2, f"{store.service}; see {where}"
        assert result.central_mismatches == [], f"central ≠ Σ stores; see {where}"
        assert result.converged, f"not every store converged; see {where}"
        assert result.expectations_failed == [], f"{result.expectations_failed}; see {where}"
        for suffix in ("json", "md", "png"):
            assert (tmp_path / f"{result.scenario.name}.{suffix}").stat().st_size > 0
    herd = json.loads((tmp_path / "c-regional-outage.json").read_text())["herd"]
    assert herd["applied_after_heal"] > 0
    costs = run.costs
    assert costs["stores"] == CI_STORES
    assert costs["broker_connections_per_store"] >= 1
    assert costs["rss_mb_idle"]["api"] > 0
    assert costs["rss_mb_idle"]["worker"] > 0
    assert costs["central_calls_per_change"] is not None
