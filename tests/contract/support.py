"""Shared pieces of the in-process contract tests: config from the repo's schemathesis.toml,
CI bounds, and counters of generated cases."""

import json
import os
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis

from harness.central import CentralSim, start_central
from tests.support.processes import REPO_ROOT

# CI bounds: enough for thousands of cases per API across phases, within the 3-minute budget on
# a shared 2-core machine. Raise them locally: CONTRACT_MAX_EXAMPLES=300 uv run pytest -m contract
MAX_EXAMPLES = int(os.environ.get("CONTRACT_MAX_EXAMPLES", "50"))
STATEFUL_EXAMPLES = int(os.environ.get("CONTRACT_STATEFUL_EXAMPLES", "40"))
STATEFUL_STEPS = 8
# pytest-timeout per test: a runaway operation fails instead of eating the CI budget.
OPERATION_TIMEOUT_SECONDS = 120

# Cases sent, by test module and phase; printed at the end.
CASES: Counter[str] = Counter()


def load_config(*, title: str, auth: dict[str, Any] | None = None) -> schemathesis.Config:
    """schemathesis.toml for the project `title`, with CI-sized generation and, if given, that
    project's auth replaced (`${VAR}` substitution happens here, from os.environ)."""
    data = tomllib.loads((REPO_ROOT / "schemathesis.toml").read_text())
    data.pop("hooks", None)  # the checks are imported by the test modules themselves
    data["generation"] = {**data.get("generation", {}), "max-examples": MAX_EXAMPLES}
    projects = [p for p in data.pop("project", []) if p["title"] == title]
    for project in projects:
        if auth is not None:
            project["auth"] = auth
        for key, value in project.items():
            if key != "title":
                data[key] = _merged(data.get(key), value)
    return schemathesis.Config.from_dict(data)


def _merged(base: Any, override: Any) -> Any:
    """Nested tables merge (a project's [phases.stateful] keeps the global [phases] keys)."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: _merged(base.get(k), v) for k, v in override.items()}}
    return override


def stateful_settings() -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=STATEFUL_EXAMPLES,
        stateful_step_count=STATEFUL_STEPS,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        database=None,
        # No shrinking: a stateful run talks to a server whose state moved on, so replaying a
        # scenario draws differently and Hypothesis reports a flaky strategy instead of the
        # real failure; the failing scenario is printed as run.
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )


def start_sim_on_port(tmp_path: Path, port: int, services: dict[str, str]) -> CentralSim:
    """A central_sim subprocess on a port chosen before the app under test was configured (the
    ASGI schemas are built at import, so the store's central_url must be known by then)."""
    return start_central(tmp_path, port=port, SERVICES=json.dumps(services))
