"""Prometheus metrics of one app instance, on its own registry so tests can build many apps."""

from prometheus_client import CollectorRegistry, Counter


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.writes = Counter(
            "central_sim_writes",
            "Write outcomes per service (applied, duplicate, conflict, rejected).",
            ["service", "status"],
            registry=registry,
        )
        self.faults = Counter(
            "central_sim_faults_injected",
            "Faults the simulator injected, by kind.",
            ["fault"],
            registry=registry,
        )
        self.tokens = Counter(
            "central_sim_tokens_issued", "Access tokens issued.", ["service"], registry=registry
        )
        self.auth_failures = Counter(
            "central_sim_auth_failures",
            "Refused credentials or tokens, by reason.",
            ["reason"],
            registry=registry,
        )
        self.competing = Counter(
            "central_sim_competing_writer_changes",
            "Competing writer attempts (applied, refused).",
            ["outcome"],
            registry=registry,
        )
