"""A run's reports: JSON with the summary and the checker's findings, Markdown, a PNG."""

from __future__ import annotations

import json
from pathlib import Path

from chaos import scenarios
from chaos.checker import CheckResult
from chaos.faults import Event
from chaos.monitor import Sample, TriggerAnswer
from chaos.report import write_reports, write_summary
from chaos.runner import RunConfig, RunResult


def result(*, lost: list[str] | None = None) -> RunResult:
    t0 = 1_000.0
    samples = [Sample(t0 + i / 2, {"pending": max(0, 20 - i), "synced": i}) for i in range(30)]
    samples.insert(5, Sample(t0 + 2.6, None))
    return RunResult(
        scenario=scenarios.get("broker-cut"),
        config=RunConfig(ops=10),
        check=CheckResult(operations=10, requests=12, acknowledged=9, refused=1, lost=lost or []),
        started_at=t0,
        fault_opened_at=t0 + 3,
        healed_at=t0 + 9,
        traffic_done_at=t0 + 12,
        converged_at=t0 + 13.5,
        finished_at=t0 + 15,
        samples=samples,
        triggers=[TriggerAnswer(t0 + 1, 202), TriggerAnswer(t0 + 4, 503, "Retry-After 5")],
        events=[Event(t0 + 3, "fault window opens"), Event(t0 + 5, "worker SIGKILL")],
        central_stats={"totals": {"applied": 9}},
        competing=None,
    )


def test_a_passing_run_writes_json_markdown_and_png(tmp_path: Path) -> None:
    paths = write_reports(result(), tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["summary"]["passed"] is True
    assert data["summary"]["time_to_converge_seconds"] == 1.5
    assert data["scenario"]["cuts"] == ["broker"]
    assert "Every check passed." in paths["markdown"].read_text()
    assert paths["png"].read_bytes().startswith(b"\x89PNG")


def test_a_failing_run_names_the_lost_operations(tmp_path: Path) -> None:
    failing = result(lost=["op-7"])
    paths = write_reports(failing, tmp_path)
    assert "**lost** (1): op-7" in paths["markdown"].read_text()
    summary = write_summary(tmp_path).read_text()
    assert summary.count("| broker-cut |") == 1
    assert "**FAIL**" in summary


def test_the_summary_gathers_every_report_in_the_folder_in_scenario_order(
    tmp_path: Path,
) -> None:
    write_reports(result(), tmp_path)
    other = result()
    other.scenario = scenarios.get("central-latency-over-timeout")
    write_reports(other, tmp_path)
    lines = write_summary(tmp_path).read_text().splitlines()
    rows = [line.split(" | ")[0] for line in lines if line.startswith("| ") and "---" not in line]
    assert rows[1:] == ["| central-latency-over-timeout", "| broker-cut"]
