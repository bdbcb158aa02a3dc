"""Open and heal a scenario's fault window on a running stack, recording what happened when.

`open()` adds the toxics, cuts the proxies and sets the simulator's fault knobs; `run_process
faults()` then performs the process actions at their offsets; `heal()` undoes everything and
makes sure the API and a worker are running again, whatever the scenario did to them. `heal()`
is safe to call twice and after a failed `open()`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx

from chaos.scenarios import ProcessFault, Scenario
from chaos.stack import Stack
from chaos.toxiproxy import ToxiproxyError

MID_BATCH_WAIT_SECONDS = 6.0


@dataclass(frozen=True, slots=True)
class Event:
    at: float
    label: str


@dataclass
class FaultWindow:
    stack: Stack
    scenario: Scenario
    events: list[Event] = field(default_factory=list)
    opened_at: float | None = None
    healed_at: float | None = None
    _toxics: list[tuple[str, str]] = field(default_factory=list)
    _toxics_lock: threading.Lock = field(default_factory=threading.Lock)
    _stop_flapping: threading.Event = field(default_factory=threading.Event)
    _flapper: threading.Thread | None = None

    def note(self, label: str) -> None:
        self.events.append(Event(time.time(), label))

    def open(self) -> None:
        self.opened_at = time.time()
        self._add_toxics()
        client = self.stack.toxiproxy
        for proxy_name in self.scenario.cuts:
            client.disable(self.stack.proxies[proxy_name].name)
        if self.scenario.sim_faults:
            self.stack.sim.set_faults(self.scenario.sim_faults)
        self.note("fault window opens")
        if self.scenario.flap is not None and self.scenario.toxics:
            self._flapper = threading.Thread(target=self._flap, name="chaos-flap", daemon=True)
            self._flapper.start()

    def _add_toxics(self) -> None:
        client = self.stack.toxiproxy
        with self._toxics_lock:
            for n, toxic in enumerate(self.scenario.toxics):
                proxy = self.stack.proxies[toxic.proxy].name
                added = client.add_toxic(
                    proxy,
                    toxic.type,
                    dict(toxic.attributes),
                    stream=toxic.stream,
                    toxicity=toxic.toxicity,
                    name=f"chaos-{n}-{toxic.type}-{toxic.stream}",
                )
                self._toxics.append((proxy, added.name))

    def _remove_toxics(self) -> None:
        with self._toxics_lock:
            for proxy, name in self._toxics:
                self.stack.toxiproxy.remove_toxic(proxy, name, missing_ok=True)
            self._toxics.clear()

    def _flap(self) -> None:
        """Toggle the toxics (on, off, on...) until the heal.

        Why: a sync run fetches its token on a fresh connection before its first batch, so a
        toxic that is always on breaks the token call and the batch is never sent. Toxics
        that come and go land on connections that already hold a token, mid-batch, after
        central has applied it: the case that must come back `duplicate` on resend.
        """
        assert self.scenario.flap is not None
        on, off = self.scenario.flap
        while not self._stop_flapping.wait(on):
            self._remove_toxics()
            if self._stop_flapping.wait(off):
                return
            self._add_toxics()

    def run_process_faults(self) -> None:
        """Perform each process action at its offset from the opening (blocks until done)."""
        assert self.opened_at is not None
        for fault in sorted(self.scenario.process_faults, key=lambda f: f.at):
            delay = self.opened_at + fault.at - time.time()
            if delay > 0:
                time.sleep(delay)
            self._perform(fault)

    def _perform(self, fault: ProcessFault) -> None:
        stack = self.stack
        if fault.action == "kill_worker":
            held = _wait_for_lease(stack.api_url)
            stack.kill_worker()
            self.note(f"worker SIGKILL ({'mid-run' if held else 'no run in progress'})")
        elif fault.action == "start_worker":
            stack.start_worker()
            self.note("worker started")
        elif fault.action == "kill_api":
            stack.api.kill()
            self.note("API SIGKILL")
        elif fault.action == "start_api":
            stack.start_api()
            self.note("API started")
        elif fault.action == "restart_api":
            stack.api.stop()
            self.note("API stopped (SIGTERM)")
            stack.start_api()
            self.note("API started")
        elif fault.action == "restart_central":
            self.note("central_sim SIGKILL")
            stack.restart_central()
            self.note("central_sim started")
        elif fault.action == "restart_rabbitmq":
            self.note("RabbitMQ restarting")
            stack.restart_rabbitmq()
            self.note("RabbitMQ up")
        elif fault.action == "rotate_key":
            stack.sim.rotate_key()
            self.note("signing key rotated")

    def heal(self) -> None:
        client = self.stack.toxiproxy
        self._stop_flapping.set()
        if self._flapper is not None:
            self._flapper.join(timeout=30)
        self._remove_toxics()
        for proxy_name in self.scenario.cuts:
            try:
                client.enable(self.stack.proxies[proxy_name].name)
            except ToxiproxyError as exc:
                self.note(f"could not re-enable {proxy_name}: {exc.message}")
        if self.scenario.sim_faults:
            self.stack.sim.clear_faults()
        if self.healed_at is None:
            self.healed_at = time.time()
            self.note("healed")
        if not self.stack.api.alive():
            self.stack.start_api()
            self.note("API started (heal)")
        if self.stack.worker is None or not self.stack.worker.alive():
            self.stack.start_worker()
            self.note("worker started (heal)")


def _wait_for_lease(api_url: str) -> bool:
    """Wait (triggering) until a sync run holds the lease, so a kill lands mid-batch."""
    deadline = time.monotonic() + MID_BATCH_WAIT_SECONDS
    with httpx.Client(base_url=api_url, timeout=5.0) as http:
        while time.monotonic() < deadline:
            try:
                if http.get("/v1/local/sync/summary").json().get("lease_holder"):
                    return True
                http.post("/v1/local/sync/trigger")
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
    return False
