"""The scenario set covers every fault the issue names, and its CI subset is explained."""

from __future__ import annotations

import pytest

from chaos import scenarios
from chaos.scenarios import SCENARIOS, Scenario


def test_there_are_at_least_ten_scenarios_with_unique_names() -> None:
    names = [s.name for s in SCENARIOS]
    assert len(names) >= 10
    assert len(set(names)) == len(names)


def test_every_named_fault_is_covered() -> None:
    toxics = {(t.proxy, t.type) for s in SCENARIOS for t in s.toxics}
    assert {("central", "latency"), ("central", "timeout"), ("central", "reset_peer")} <= toxics
    assert {("central", "bandwidth"), ("central", "limit_data")} <= toxics
    cuts = {c for s in SCENARIOS for c in s.cuts}
    assert cuts == {"central", "broker"}
    knobs = {k for s in SCENARIOS for k in s.sim_faults}
    assert {"drop_response_rate", "conflict_rate", "token_ttl_seconds"} <= knobs
    actions = {f.action for s in SCENARIOS for f in s.process_faults}
    assert {
        "kill_worker",
        "kill_api",
        "restart_api",
        "restart_rabbitmq",
        "restart_central",
        "rotate_key",
    } <= actions
    assert any(s.competing for s in SCENARIOS)


def test_there_are_combinations() -> None:
    def kinds(s: Scenario) -> int:
        return sum(map(bool, (s.toxics, s.cuts, s.sim_faults, s.process_faults, s.competing)))

    assert sum(kinds(s) >= 3 for s in SCENARIOS) >= 2


def test_the_central_cut_outlasts_the_backoff_cap() -> None:
    cut = scenarios.get("central-cut-beyond-backoff-cap")
    cap = float(scenarios.BASE_STORE_ENV["STORE_BACKOFF_CAP_SECONDS"])
    assert cut.fault_seconds > 2 * cap


def test_latency_exceeds_the_read_timeout() -> None:
    latency = scenarios.get("central-latency-over-timeout").toxics[0].attributes["latency"]
    timeout = float(scenarios.BASE_STORE_ENV["STORE_CENTRAL_READ_TIMEOUT_SECONDS"])
    assert latency / 1000 > timeout


def test_scenarios_left_out_of_ci_say_why() -> None:
    assert scenarios.ci_scenarios()
    for s in SCENARIOS:
        assert s.ci or s.not_in_ci_because


def test_a_scenario_must_not_be_both_in_ci_and_excused() -> None:
    with pytest.raises(ValueError, match="CI scenarios"):
        Scenario("x", "y", ci=True, not_in_ci_because="because")


def test_unknown_scenario_names_list_the_known_ones() -> None:
    with pytest.raises(KeyError, match="broker-cut"):
        scenarios.get("nope")
