"""Scrape Prometheus expositions in tests, and run `promtool` on them when it is installed."""

import shutil
import subprocess
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import in_ci


@dataclass(frozen=True)
class Scrape:
    text: str

    def value(self, name: str, **labels: str) -> float:
        """The sample `name{labels}` (exact label set); 0 when absent (a counter not yet used)."""
        for family in text_string_to_metric_families(self.text):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return float(sample.value)
        return 0.0

    def has_sample(self, name: str, **labels: str) -> bool:
        """Whether the sample `name{labels}` (exact label set) is exposed at all."""
        return any(
            sample.name == name and sample.labels == labels
            for family in text_string_to_metric_families(self.text)
            for sample in family.samples
        )

    def families(self) -> set[str]:
        """Every metric family named in `# TYPE` lines, plus every sample name."""
        names: set[str] = set()
        for family in text_string_to_metric_families(self.text):
            names.add(family.name)
            names.update(sample.name for sample in family.samples)
        for line in self.text.splitlines():
            if line.startswith("# TYPE "):
                names.add(line.split()[2])
        return names


def scrape(url: str) -> Scrape:
    response = httpx.get(url, timeout=10.0)
    response.raise_for_status()
    return Scrape(response.text)


def promtool() -> str:
    """The promtool binary; skipped where absent, a failure in CI (`.ci/run` installs it)."""
    path = shutil.which("promtool")
    if path is None:
        if in_ci():
            pytest.fail("CI=true and promtool is missing (apt-get install -y prometheus)")
        pytest.skip("promtool is not installed (apt-get install -y prometheus)")
    return path


def promtool_check_metrics(text: str) -> None:
    result = subprocess.run(
        [promtool(), "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, f"promtool check metrics:\n{output}"
