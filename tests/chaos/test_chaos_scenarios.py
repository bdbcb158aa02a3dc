"""The CI-sized chaos subset: each CI scenario end to end with ~150 operations, then the
checker. A failing case names the lost/duplicated/unexpected operation ids and keeps the
process logs and the report (JSON, Markdown, PNG) under the test's temp folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos import scenarios
from chaos.report import write_reports
from chaos.runner import run_scenario
from chaos.scenarios import Scenario
from tests.support.chaos_ci import ci_config

CI_OPS = 150

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


# The power-cut scenarios have their own test (tests/chaos/test_power_loss.py): a FUSE mount,
# per-cut checks, and a negative control that must fail the checker.
@pytest.mark.parametrize(
    "scenario",
    [s for s in scenarios.ci_scenarios() if s.power_cuts is None],
    ids=lambda s: s.name,
)
def test_scenario_keeps_every_change_exactly_once(
    scenario: Scenario, rabbitmq_url: str, toxiproxy_server: str, tmp_path: Path
) -> None:
    config = ci_config(CI_OPS, rabbitmq_url, toxiproxy_server, tmp_path)
    result = run_scenario(scenario, config)
    paths = write_reports(result, tmp_path)
    check = result.check
    assert result.converged, f"no convergence within 90 s; see {paths['markdown']}"
    assert check.ok, f"{check.errors()}; see {paths['markdown']}"
    assert not result.expectations_failed, result.expectations_failed
    assert check.acknowledged > CI_OPS // 2, "most operations must be acknowledged"
    assert check.lost == check.duplicated == check.unexpected == []
