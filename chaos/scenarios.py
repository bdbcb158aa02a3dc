"""The chaos scenarios, as data: what breaks, when, for how long, and how the stack is tuned.

A scenario is read by the runner (`chaos.runner`) and never holds code. Times are seconds
relative to the start of the local traffic. The fault window opens at `fault_at` and heals
`fault_seconds` later; process faults inside it happen at their own offsets from the opening.
A scenario with `power_cuts` keeps its window open until its power cuts are done instead (the
store's data directory on a LazyFS mount, see `chaos.power`).

Stack settings shared by every scenario (`BASE_STORE_ENV`) are deliberately small: a read
timeout of 1.5 s (so a latency toxic of 3 s is "above the client timeout"), a backoff cap of
2 s (so an 8 s cut is "longer than the backoff cap") and a 10 s lease (so a SIGKILLed run's
lease expires during the scenario, not after it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal, TypeAlias, TypeVar

from chaos.toxiproxy import Stream, ToxicType

ProxyName: TypeAlias = Literal["central", "broker"]
ProcessAction: TypeAlias = Literal[
    "kill_worker",  # SIGKILL the Celery worker while a run holds the lease (mid-batch)
    "start_worker",  # start the worker again
    "kill_api",  # SIGKILL the store API
    "start_api",  # start the store API again (same port, same database)
    "restart_api",  # SIGTERM + start the store API (graceful restart under load)
    "restart_central",  # SIGKILL central_sim and start it again on the same file
    "restart_rabbitmq",  # stop + start the (shared) RabbitMQ node
    "rotate_key",  # central_sim rotates its signing key: every issued token fails
]
CutMoment: TypeAlias = Literal[
    "random",  # once the traffic reached the cut's share of the operations, a moment later
    "mid_batch",  # then, right after central applied a sync batch whose answer is on its way
    "checkpoint",  # then, while a WAL checkpoint is copying pages into the database file
]


V = TypeVar("V")


def _frozen(mapping: Mapping[str, V] | None = None) -> Mapping[str, V]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class ToxicFault:
    """One Toxiproxy toxic on one of the run's proxies, present for the whole window."""

    proxy: ProxyName
    type: ToxicType
    attributes: Mapping[str, int] = field(default_factory=_frozen)
    stream: Stream = "downstream"
    toxicity: float = 1.0


@dataclass(frozen=True, slots=True)
class ProcessFault:
    """A process action `at` seconds after the window opens."""

    action: ProcessAction
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class CompetingWriter:
    """central_sim's competing writer (`order-service`), running while the traffic runs."""

    rate_per_second: float = 10.0
    min_delta: int = -2
    max_delta: int = 3


@dataclass(frozen=True, slots=True)
class PowerCuts:
    """Power cuts under the store: every store process SIGKILLed at once, the unsynced writes of
    its data directory dropped, the mount remounted and checked, the store started again.

    Cut k waits for `moments[k % len(moments)]`. The traffic's clients retry an unknown outcome
    for `client_retry_seconds`, longer than a restart takes on a busy machine, so the store
    being down is an outage the tills ride out, not a run of unknown operations.
    """

    count: int = 20  # cuts in `python -m chaos run`
    ci_count: int = 3  # cuts in the CI subset (`--ci`, tests/chaos)
    moments: tuple[CutMoment, ...] = ("random",)
    client_retry_seconds: float = 90.0

    def __post_init__(self) -> None:
        if self.count < 1 or self.ci_count < 1 or not self.moments:
            raise ValueError("power cuts need a positive count and at least one moment")


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    toxics: tuple[ToxicFault, ...] = ()
    cuts: tuple[ProxyName, ...] = ()  # proxies disabled (a full cut) for the window
    sim_faults: Mapping[str, object] = field(default_factory=_frozen)  # PUT /_sim/faults
    process_faults: tuple[ProcessFault, ...] = ()
    competing: CompetingWriter | None = None
    # (on, off) seconds: the toxics come and go during the window instead of staying on.
    flap: tuple[float, float] | None = None
    store_env: Mapping[str, object] = field(default_factory=_frozen)
    traffic_seconds: float = 12.0  # the ops are paced over this long
    fault_at: float = 3.0
    fault_seconds: float = 6.0
    ci: bool = False
    not_in_ci_because: str = ""
    # What the window must visibly do, checked by the runner (e.g. "trigger_503").
    expect: tuple[str, ...] = ()
    power_cuts: PowerCuts | None = None
    # A negative control runs a deliberately broken store: it passes only when the checker
    # reports lost acknowledged changes (proof that the fault can catch what it is for).
    negative_control: bool = False

    def __post_init__(self) -> None:
        if self.ci == bool(self.not_in_ci_because):
            raise ValueError(f"{self.name}: CI scenarios have no reason, others must give one")
        if self.power_cuts is not None and (self.process_faults or self.cuts):
            raise ValueError(f"{self.name}: power cuts restart the store themselves")


BASE_STORE_ENV: Mapping[str, str] = MappingProxyType(
    {
        "STORE_CENTRAL_CONNECT_TIMEOUT_SECONDS": "1",
        "STORE_CENTRAL_READ_TIMEOUT_SECONDS": "1.5",
        "STORE_BACKOFF_BASE_SECONDS": "0.2",
        "STORE_BACKOFF_CAP_SECONDS": "2",
        "STORE_SYNC_LEASE_SECONDS": "10",
        "STORE_SYNC_BATCH_SIZE": "100",
        "STORE_SYNC_SOON_SECONDS": "0.5",
        "STORE_SYNC_TIME_BUDGET_SECONDS": "30",
        "STORE_REBASE_MAX_ATTEMPTS": "50",
        "STORE_CONFLICT_STRATEGY": "rebase",
    }
)

# Toxics on central flap (1 s on, 0.7 s off), see FaultWindow._flap for why.
_FLAP = (1.0, 0.7)
# Slow every central answer enough that a batch is in flight when the worker is killed.
_SLOW_CENTRAL = ToxicFault("central", "latency", _frozen({"latency": 400, "jitter": 100}))
# The CI subset must stay well under 5 minutes on two busy cores (each scenario costs ~30 s
# of process start-up alone there), so single faults that a CI combination covers run only
# in the full set.
_IN_CI_COMBO = "covered in CI by combo-drop-conflict-kill (CI time budget)"
_IN_CI_COMBO_CUT = "CI time budget; combo-drop-conflict-kill loses responses in CI"
_CI_BUDGET = "CI time budget (each CI scenario costs 30-50 s on two busy cores)"
_HEAVY_BROKER_RESTART = (
    "restarts the shared RabbitMQ node (10-30 s, disturbs every other user of the broker); "
    "`broker-cut` covers losing the broker path in CI"
)

_POWER_LOSS = Scenario(
    name="power-loss",
    description="The store's data directory on LazyFS, and power cuts under traffic: every "
    "store process SIGKILLed at once, the unsynced writes dropped, remount, "
    "`PRAGMA integrity_check`, restart. Every other cut lands right after central applied a "
    "sync batch whose answer is still on its way (central slowed to 400 ms), so the worker "
    "never recorded the outcome and the resend must come back `duplicate`.",
    toxics=(_SLOW_CENTRAL,),
    power_cuts=PowerCuts(moments=("mid_batch", "random")),
    # A pace, not a duration: the cuts end when their count is reached, and the clients catch
    # up after each restart.
    traffic_seconds=40.0,
    fault_at=1.0,
    ci=True,
)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="central-latency-over-timeout",
        description="Latency of 1.6 s ± 1 s on central's answers, above the store's 1.5 s read "
        "timeout on average: a run whose token gets through and whose bulk answer does not "
        "times out after central applied the batch; the resend must come back `duplicate`.",
        toxics=(ToxicFault("central", "latency", _frozen({"latency": 1600, "jitter": 1000})),),
        ci=True,
    ),
    Scenario(
        name="central-timeout-toxic",
        description="Toxiproxy `timeout` on central's answers, flapping: data stops and the "
        "connection closes after 2 s; requests reach central, responses never come back.",
        toxics=(ToxicFault("central", "timeout", _frozen({"timeout": 2000})),),
        flap=_FLAP,
        not_in_ci_because="same effect as central-latency-over-timeout; kept for the full run",
    ),
    Scenario(
        name="central-reset-peer",
        description="reset_peer 150 ms after a connection's first request (the token call): "
        "the TCP RST lands while the first bulk call is in flight, often after central "
        "committed it.",
        toxics=(ToxicFault("central", "reset_peer", _frozen({"timeout": 150}), stream="upstream"),),
        not_in_ci_because=_IN_CI_COMBO,
    ),
    Scenario(
        name="central-response-cut",
        description="limit_data: each connection to central closes after 2 KB of answers; "
        "the token (~0.5 KB) gets through, bulk answers are cut mid-response after central "
        "applied the batch.",
        toxics=(ToxicFault("central", "limit_data", _frozen({"bytes": 2048})),),
        not_in_ci_because=_IN_CI_COMBO_CUT,
    ),
    Scenario(
        name="central-bandwidth-starvation",
        description="Central's answers throttled to 1 KB/s both ways: bulk calls outlive "
        "the read timeout; small ones trickle through.",
        toxics=(
            ToxicFault("central", "bandwidth", _frozen({"rate": 1})),
            ToxicFault("central", "bandwidth", _frozen({"rate": 1}), stream="upstream"),
        ),
        not_in_ci_because=_CI_BUDGET,
    ),
    Scenario(
        name="central-cut-beyond-backoff-cap",
        description="Worker→central fully cut for 8 s, four times the 2 s backoff cap: "
        "every run fails fast, changes back off and pile up, then drain after the heal.",
        cuts=("central",),
        fault_seconds=8.0,
        ci=True,
    ),
    Scenario(
        name="broker-cut",
        description="API/worker→RabbitMQ cut for 12 s: sync triggers answer 503 with "
        "Retry-After, updates keep being acknowledged, nothing is lost after the heal.",
        cuts=("broker",),
        # Longer than the API's publish deadline (5 s) twice over, so a trigger sent during
        # the cut cannot be rescued by the heal.
        fault_seconds=12.0,
        expect=("trigger_503",),
        ci=True,
    ),
    Scenario(
        name="central-drops-responses",
        description="Central applies 40% of writes and then loses the response (502): the "
        "resend must come back `duplicate`, never apply twice.",
        sim_faults=_frozen({"drop_response_rate": 0.4}),
        not_in_ci_because=_IN_CI_COMBO,
    ),
    Scenario(
        name="conflict-storm",
        description="30% injected version conflicts plus the competing writer at 20/s on "
        "the same SKUs: rebase resends on central's version until applied.",
        sim_faults=_frozen({"conflict_rate": 0.3}),
        competing=CompetingWriter(rate_per_second=20.0),
        not_in_ci_because=_IN_CI_COMBO,
    ),
    Scenario(
        name="token-expiry-and-key-rotation",
        description="Tokens live 1 s and the signing key rotates twice mid run: the store "
        "must renew on 401 and keep syncing.",
        sim_faults=_frozen({"token_ttl_seconds": 1}),
        process_faults=(ProcessFault("rotate_key", 1.0), ProcessFault("rotate_key", 4.0)),
        not_in_ci_because=_IN_CI_COMBO,
    ),
    Scenario(
        name="worker-sigkill-mid-batch",
        description="SIGKILL of the worker while a run holds the lease with a batch in "
        "flight (central slowed to 400 ms), restarted 4 s later; the lease expires, the "
        "in-flight changes are recovered and resent.",
        toxics=(_SLOW_CENTRAL,),
        process_faults=(ProcessFault("kill_worker", 0.0), ProcessFault("start_worker", 4.0)),
        not_in_ci_because=_IN_CI_COMBO,
    ),
    Scenario(
        name="api-kill-under-load",
        description="SIGKILL of the store API under load, started again 1 s later: every "
        "acknowledged change survives (fsync before the answer), clients retry unknowns "
        "with the same operation_id.",
        process_faults=(ProcessFault("kill_api", 0.5), ProcessFault("start_api", 1.5)),
        ci=True,
    ),
    Scenario(
        name="api-restart-under-load",
        description="Graceful restart (SIGTERM, start) of the store API under load.",
        process_faults=(ProcessFault("restart_api", 0.5),),
        not_in_ci_because="api-kill-under-load is the harsher case and runs in CI",
    ),
    Scenario(
        name="rabbitmq-restart",
        description="The RabbitMQ node restarts mid run: triggers fail while it is down, the "
        "worker reconnects, the quorum queue survives, nothing is lost.",
        process_faults=(ProcessFault("restart_rabbitmq", 0.0),),
        fault_seconds=2.0,
        traffic_seconds=20.0,
        not_in_ci_because=_HEAVY_BROKER_RESTART,
    ),
    Scenario(
        name="central-restart",
        description="central_sim is SIGKILLed and started again on the same SQLite file "
        "mid run (its ledger and idempotency keys survive).",
        process_faults=(ProcessFault("restart_central", 1.0),),
        not_in_ci_because=_CI_BUDGET,
    ),
    Scenario(
        name="combo-drop-conflict-kill",
        description="Dropped responses (20%), injected conflicts (20%), resets on a third "
        "of central's answers, the competing writer, 2 s tokens with a key rotation, and a "
        "worker SIGKILL mid-batch, all at once (the CI subset's broad net).",
        toxics=(
            _SLOW_CENTRAL,
            ToxicFault("central", "reset_peer", _frozen({"timeout": 0}), toxicity=0.3),
        ),
        sim_faults=_frozen(
            {"drop_response_rate": 0.2, "conflict_rate": 0.2, "token_ttl_seconds": 2}
        ),
        competing=CompetingWriter(rate_per_second=10.0),
        process_faults=(
            ProcessFault("rotate_key", 0.5),
            ProcessFault("kill_worker", 1.0),
            ProcessFault("start_worker", 4.0),
        ),
        ci=True,
    ),
    Scenario(
        name="combo-latency-brokercut-token",
        description="Jittery latency around the read timeout, the broker path cut, short "
        "tokens and a key rotation, then a central restart.",
        toxics=(ToxicFault("central", "latency", _frozen({"latency": 1200, "jitter": 800})),),
        cuts=("broker",),
        sim_faults=_frozen({"token_ttl_seconds": 2}),
        process_faults=(ProcessFault("rotate_key", 2.0), ProcessFault("restart_central", 4.0)),
        not_in_ci_because=_CI_BUDGET,
    ),
    _POWER_LOSS,
    Scenario(
        name="power-loss-during-checkpoint",
        description="Power cuts (as power-loss) that land while a WAL checkpoint is copying "
        "pages into the database file: the harness watches the wal-index, freezes the store "
        "(SIGSTOP) when a checkpoint holds its lock with pages written and not yet synced, "
        "confirms it, then SIGKILLs: the cut drops those pages, the WAL must restore them.",
        power_cuts=PowerCuts(moments=("checkpoint",)),
        traffic_seconds=_POWER_LOSS.traffic_seconds,
        fault_at=_POWER_LOSS.fault_at,
        ci=True,
    ),
    replace(
        _POWER_LOSS,
        name="power-loss-control",
        description="Negative control of power-loss: the same cuts against a store whose "
        "commits are acknowledged without an fsync (STORE_SQLITE_SYNCHRONOUS="
        "OFF-UNSAFE-FOR-TESTS). Passes only when the checker reports lost acknowledged "
        "changes: proof that the cuts and the checker catch a store that is not durable.",
        store_env=_frozen({"STORE_SQLITE_SYNCHRONOUS": "OFF-UNSAFE-FOR-TESTS"}),
        negative_control=True,
    ),
)

BY_NAME: Mapping[str, Scenario] = MappingProxyType({s.name: s for s in SCENARIOS})


def ci_scenarios() -> tuple[Scenario, ...]:
    return tuple(s for s in SCENARIOS if s.ci)


def get(name: str) -> Scenario:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no scenario {name!r}; known: {', '.join(BY_NAME)}") from None
