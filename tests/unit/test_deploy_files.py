"""The deployment files: compose files valid against the compose-spec schema (no Docker engine
needed), their services healthy-gated, Prometheus config and rules accepted by promtool, and
every metric the dashboard and the alerts query really exported by the services."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from central_sim.main import create_app as create_central_app
from store_service.api.app import create_app as create_store_app
from store_service.config import Settings
from store_service.sync import metrics as worker_metrics
from tests.support.metrics import Scrape, promtool
from tests.support.processes import REPO_ROOT

COMPOSE = REPO_ROOT / "docker-compose.yml"
CHAOS_COMPOSE = REPO_ROOT / "docker-compose.chaos.yml"
FLEET_COMPOSE = REPO_ROOT / "docker-compose.fleet.yml"
DEPLOY = REPO_ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "store.json"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts_test.yml"
# RabbitMQ's Prometheus plugin: the per-queue families scraped, and the series they export.
RABBITMQ_FAMILIES = {
    "queue_coarse_metrics": (
        "rabbitmq_detailed_queue_messages_ready",
        "rabbitmq_detailed_queue_messages_unacked",
        "rabbitmq_detailed_queue_messages",
        "rabbitmq_detailed_queue_process_reductions_total",
    ),
    "queue_consumer_count": ("rabbitmq_detailed_queue_consumers",),
}
RABBITMQ_METRIC = re.compile(r"\brabbitmq_[a-zA-Z0-9_]+")
METRIC_NAME = re.compile(r"\b(?:store|central_sim)_[a-zA-Z0-9_]+")


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    # The compose-spec schema is vendored inside check-jsonschema: no network is used.
    executable = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [str(executable), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _compose(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("path", [COMPOSE, CHAOS_COMPOSE, FLEET_COMPOSE], ids=lambda p: p.name)
def test_compose_file_is_valid_against_the_compose_spec(path: Path) -> None:
    result = _check_jsonschema(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  api:\n    depends_on:\n      db: {condition: whenever}\n")
    assert _check_jsonschema(broken).returncode != 0


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies() -> None:
    services = _compose(COMPOSE)["services"]
    assert {
        "rabbitmq",
        "central_sim",
        "store-api",
        "worker",
        "beat",
        "prometheus",
        "grafana",
    } <= set(services)
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
    assert "8001:8001" in services["store-api"]["ports"]
    assert services["beat"]["deploy"]["replicas"] == 1
    assert [name for name, s in services.items() if " beat" in " ".join(s.get("command", []))] == [
        "beat"
    ]
    worker_check = " ".join(services["worker"]["healthcheck"]["test"])
    assert worker_check.startswith("CMD store-worker-healthcheck")
    # The console scripts a deployment runs (pyproject's [project.scripts]).
    assert services["store-api"]["command"][0] == "store-api"
    assert services["central_sim"]["command"][0] == "central-sim"
    plugins = services["rabbitmq"]["volumes"][1].split(":")
    assert plugins[1] == "/etc/rabbitmq/enabled_plugins"
    assert "rabbitmq_prometheus" in (REPO_ROOT / plugins[0]).read_text()
    assert services["worker"]["environment"]["STORE_WORKER_METRICS_HOST"] == "0.0.0.0"


def test_fleet_compose_gives_each_store_its_own_file_identity_queue_and_beat() -> None:
    services = _compose(FLEET_COMPOSE)["services"]
    central = json.loads(services["central_sim"]["environment"]["CENTRAL_SIM_SERVICES"])
    stores = sorted({name.rsplit("-", 1)[0] for name in services if name.startswith("store-")})
    assert stores == ["store-000", "store-001", "store-002"]
    queues, volumes, ports = set(), set(), set()
    for store in stores:
        parts = [services[f"{store}-{role}"] for role in ("api", "worker", "beat")]
        for part in parts:
            env = part["environment"]
            assert env["STORE_CENTRAL_SERVICE_NAME"] == store
            # The default secret (after `${VAR:-`) is the one central knows for this store.
            assert env["STORE_CENTRAL_SERVICE_SECRET"].split(":-", 1)[1][:-1] == central[store]
            assert env["STORE_SYNC_QUEUE"] == f"store.sync.{store}"
            assert part["volumes"] == [f"{store}-data:/data"]
        queues.add(parts[0]["environment"]["STORE_SYNC_QUEUE"])
        volumes.add(parts[0]["volumes"][0])
        ports.update(parts[0]["ports"])
        assert " beat" in " ".join(parts[2]["command"])
        assert parts[2]["deploy"]["replicas"] == 1
        # The console scripts, as in docker-compose.yml.
        assert parts[0]["command"][0] == "store-api"
        assert parts[1]["healthcheck"]["test"][1] == "store-worker-healthcheck"
    assert len(queues) == len(volumes) == len(ports) == 3
    assert all(port.startswith("127.0.0.1:") for port in ports)
    beats = [n for n, s in services.items() if " beat" in " ".join(s.get("command", []))]
    assert sorted(beats) == [f"{store}-beat" for store in stores]
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)


def test_chaos_compose_routes_central_and_broker_traffic_through_toxiproxy() -> None:
    chaos = _compose(CHAOS_COMPOSE)["services"]
    proxies = {
        p["name"]: p for p in json.loads((DEPLOY / "toxiproxy" / "toxiproxy.json").read_text())
    }
    assert chaos["toxiproxy"]["image"] == "ghcr.io/shopify/toxiproxy:2.5.0"
    central_port = proxies["central"]["listen"].rsplit(":", 1)[1]
    broker_port = proxies["rabbitmq"]["listen"].rsplit(":", 1)[1]
    assert proxies["central"]["upstream"] == "central_sim:8000"
    assert proxies["rabbitmq"]["upstream"] == "rabbitmq:5672"
    assert chaos["worker"]["environment"]["STORE_CENTRAL_URL"] == f"http://toxiproxy:{central_port}"
    for service in ("store-api", "worker", "beat"):
        assert f"@toxiproxy:{broker_port}/" in chaos[service]["environment"]["STORE_BROKER_URL"]
        assert chaos[service]["depends_on"]["toxiproxy"] == {"condition": "service_healthy"}


def test_prometheus_scrapes_the_api_the_worker_central_sim_and_rabbitmq() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {name: job["static_configs"][0]["targets"] for name, job in jobs.items()}
    assert targets == {
        "store-api": ["store-api:8001"],
        "store-worker": ["worker:9102"],
        "central_sim": ["central_sim:8000"],
        "rabbitmq-queues": ["rabbitmq:15692"],
    }
    # Per-queue figures: the plugin's default endpoint aggregates over queues.
    assert jobs["rabbitmq-queues"]["metrics_path"] == "/metrics/detailed"
    assert set(jobs["rabbitmq-queues"]["params"]["family"]) == set(RABBITMQ_FAMILIES)


def test_promtool_accepts_the_prometheus_config_and_rules() -> None:
    tool = promtool()
    for args in (["check", "config", str(PROMETHEUS)], ["check", "rules", str(ALERTS)]):
        result = subprocess.run([tool, *args], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def _promtool_test_rules(tests: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), "test", "rules", str(tests)], capture_output=True, text=True, check=False
    )


def test_the_alert_rule_tests_pass() -> None:
    """promtool's rule tests (alerts_test.yml). The queue alert: either source fires it, one
    alert per queue; a consumed queue, an empty one and another application's queue do not.
    The storage alert: a minute of failing writes fires it; a shorter blip does not."""
    result = _promtool_test_rules(ALERT_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_tests_catch_an_alert_that_ignores_consumers(tmp_path: Path) -> None:
    """Negative control: the same tests against a rule that forgot the consumer condition."""
    rules = ALERTS.read_text()
    broken = rules.replace(") == 0\n", ") >= 0\n")  # any consumer count will do
    assert broken.count(">= 0") == 2
    (tmp_path / "alerts.yml").write_text(broken)
    (tmp_path / "alerts_test.yml").write_text(ALERT_TESTS.read_text())
    result = _promtool_test_rules(tmp_path / "alerts_test.yml")
    assert result.returncode != 0
    assert "store.sync.shop-8" in result.stdout + result.stderr  # the consumed queue fired


def test_the_alert_tests_catch_a_storage_alert_without_its_minute(tmp_path: Path) -> None:
    """Negative control: a storage alert that fires at once fails the rule tests (the blip)."""
    rules = ALERTS.read_text()
    storage_rule = rules[rules.index("- alert: StoreStorageUnavailable") :]
    assert storage_rule.count("for: 1m") == 1
    broken = rules.replace(storage_rule, storage_rule.replace("for: 1m", "for: 0m"))
    (tmp_path / "alerts.yml").write_text(broken)
    (tmp_path / "alerts_test.yml").write_text(ALERT_TESTS.read_text())
    result = _promtool_test_rules(tmp_path / "alerts_test.yml")
    assert result.returncode != 0
    assert "StoreStorageUnavailable" in result.stdout + result.stderr


def _exported_metric_names(tmp_path: Path) -> set[str]:
    """Names the API, the worker and central_sim export, after a little real traffic."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        data_dir=tmp_path,
        central_url="http://127.0.0.1:9",
    )
    with TestClient(create_store_app(settings)) as api:
        body = {"delta": 1, "operation_id": "deploy-check"}
        assert api.post("/v1/local/inventory/SKU-1/update", json=body).status_code == 200
        names = Scrape(api.get("/metrics").text).families()
    names |= Scrape(generate_latest(worker_metrics.REGISTRY).decode()).families()
    central_env = {
        "CENTRAL_SIM_DATABASE_URL": f"sqlite:///{tmp_path / 'central.db'}",
        "CENTRAL_SIM_JWT_SECRET": "x" * 48,
        "CENTRAL_SIM_ADMIN_TOKEN": "admin-token-for-the-deploy-check",
        "CENTRAL_SIM_SERVICES": json.dumps({"inventory-service": "s" * 32}),
        "CENTRAL_SIM_SERVICES_FILE": "",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in central_env.items():
            patch.setenv(key, value)
        with TestClient(create_central_app()) as central:
            names |= Scrape(central.get("/metrics").text).families()
    return names


def test_dashboard_and_alerts_query_only_metrics_the_services_export(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    rules = yaml.safe_load(ALERTS.read_text())
    expressions += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for expr in expressions for name in METRIC_NAME.findall(expr)}
    assert {"store_updates_total", "store_outbox_oldest_pending_age_seconds"} <= used
    exported = _exported_metric_names(tmp_path)
    assert used - exported == set(), f"queried but never exported: {sorted(used - exported)}"
    broker_used = {name for expr in expressions for name in RABBITMQ_METRIC.findall(expr)}
    broker_scraped = {name for names in RABBITMQ_FAMILIES.values() for name in names}
    assert {"rabbitmq_detailed_queue_consumers"} <= broker_used
    assert broker_used - broker_scraped == set(), sorted(broker_used - broker_scraped)


def test_dashboard_covers_what_operators_watch() -> None:
    titles = " ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    topics = ("update rate", "latency", "backlog", "age", "sync runs", "conflicts", "errors")
    for topic in (*topics, "queue depth and consumers"):
        assert topic in titles, topic


class _Instruction(NamedTuple):
    keyword: str
    args: str


def _dockerfile_stages(text: str) -> list[list[_Instruction]]:
    """The Dockerfile's instructions, per stage: continuations joined, comments dropped."""
    logical = re.sub(r"\\\n(?:\s*#[^\n]*\n)*", " ", text)
    stages: list[list[_Instruction]] = []
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        assert stages, f"instruction before the first FROM: {line}"
        stages[-1].append(_Instruction(keyword.upper(), " ".join(args.split())))
    return stages


def test_dockerfile_is_multi_stage_uv_non_root_with_a_healthcheck() -> None:
    build, runtime = _dockerfile_stages((REPO_ROOT / "Dockerfile").read_text())
    assert any(i.keyword == "RUN" and "uv sync --frozen" in i.args for i in build)
    # The runtime stage carries no build tool: it copies the built /app from the build stage.
    assert not any("uv " in i.args for i in runtime if i.keyword == "RUN")
    assert any(i.keyword == "COPY" and i.args.startswith("--from=build") for i in runtime)
    users = [i.args for i in runtime if i.keyword == "USER"]
    assert users, "no USER in the runtime stage: it would run as root"
    assert users[-1] not in ("root", "0"), users
    assert [i for i in runtime if i.keyword == "HEALTHCHECK"]
    cmd = json.loads(next(i.args for i in reversed(runtime) if i.keyword == "CMD"))
    # A console script the installed project declares, whose module exists.
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert cmd[0] in scripts, cmd
    module = scripts[cmd[0]].split(":")[0]
    assert (REPO_ROOT / (module.replace(".", "/") + ".py")).exists(), scripts[cmd[0]]


def test_the_image_holds_every_package_the_wheel_declares() -> None:
    """A package added to pyproject but not copied into the image would fail only at run time."""
    build, _ = _dockerfile_stages((REPO_ROOT / "Dockerfile").read_text())
    copied = {i.args.split()[0] for i in build if i.keyword == "COPY"}
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert set(packages) <= copied, set(packages) - copied


def test_the_dockerfile_parser_sees_a_root_runtime_stage() -> None:
    stages = _dockerfile_stages("FROM a AS build\nRUN x \\\n  # note\n  y\nFROM b\nUSER root\n")
    assert stages[0][1] == _Instruction("RUN", "x y")
    assert stages[1][-1] == _Instruction("USER", "root")
