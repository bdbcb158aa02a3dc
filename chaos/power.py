"""Power cuts under the store: its data directory on a LazyFS mount (`chaos.lazyfs`), and the
loop that cuts the power N times while the traffic runs.

One cut, in this order (the LazyFS package docstring says why the order matters):

1. Wait for the cut's share of the traffic (cut k of N once k/(N+1) of the operations have a
   definite answer, ± 30% of a share, seeded), then for its moment (`CutMoment`): `random` a
   moment later; `mid_batch` right after central applied a sync batch of the store (central's
   answers are slowed, so the worker has not heard back); `checkpoint` while a WAL checkpoint
   is copying pages into the database file (`chaos.walindex`: the store is frozen with SIGSTOP,
   the checkpoint confirmed in the wal-index, then killed).
2. SIGKILL the API and the worker at once: every process that has the mount open.
3. Record what the cut is about to drop: the mount's unsynced bytes, files and directories;
   what the clients had acknowledged, and which of those central had not applied (at risk:
   on the store's disk only).
4. Cut, unmount, mount again. Nothing opens the database between the kill and the cut.
5. Open the database (the first connection since the cut: WAL recovery), run
   `PRAGMA integrity_check` and read the outbox: every change acknowledged before the kill
   must be there (`lost` otherwise); changes central applied that the recovered outbox does
   not call synced are outcomes the worker had not recorded (they will be resent).
6. Start the API and a worker, wait until both answer. From the kill to here the traffic's
   pace is held (`Traffic.hold`), so every cut lands with traffic still to come.

The checker (`chaos.checker`) still decides at the end, over the whole run; the per-cut
records say which cut lost what, and show that each kind of moment was really hit.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chaos.history import History
from chaos.lazyfs import LazyFSMount, Stats, mount_lazyfs
from chaos.scenarios import CutMoment, PowerCuts, Scenario
from chaos.stack import Stack
from chaos.traffic import Traffic
from chaos.walindex import WalIndex, WalIndexReader
from harness.central import SERVICE_NAMES
from harness.processes import Process, kill_together

STORE_SERVICE = SERVICE_NAMES[0]
SHARE_JITTER = 0.3  # a cut's traffic target moves by up to this share of one interval
RANDOM_DELAY_SECONDS = 0.3  # `random`: up to this long after the target is reached
PROGRESS_WAIT_SECONDS = 120.0  # longest wait for the traffic to reach a cut's target
MID_BATCH_WAIT_SECONDS = 20.0  # longest wait for central to apply a batch
CHECKPOINT_WAIT_SECONDS = 30.0  # longest wait for a checkpoint to be caught copying
MID_BATCH_POLL_SECONDS = 0.02  # far below central's slowed answer (400 ± 100 ms)
CHECKPOINT_POLL_SECONDS = 0.0005  # a checkpoint copies for 1-20 ms on the mount
MOUNT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class PowerCut:
    """One cut: when and how it landed, what it dropped, and what the database held after."""

    number: int
    moment: CutMoment
    at: float  # the SIGKILL (wall clock)
    caught: bool  # the moment was found (random: always); False: cut after the wait ran out
    unsynced_bytes: int  # held by the mount, dropped by the cut
    dirty_files: int
    dirty_dirs: int
    syncs: int  # fsync + fdatasync calls the mount saw since it was mounted
    acknowledged: int  # operations acknowledged before the kill, the whole run so far
    acknowledged_since_restart: int
    at_risk: int  # acknowledged and not applied at central: only on the store's disk
    unrecorded_at_central: int  # applied at central, not synced in the recovered outbox
    integrity: list[str]
    recovered: dict[str, int]  # the outbox by status after recovery
    lost: list[str]  # acknowledged before the kill, missing after it (first cut to miss it)
    checkpoint: dict[str, Any] | None  # the wal-index when the store was frozen
    down_seconds: float  # from the kill until the API and the worker answer again

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PowerRig:
    """The mount under the store: `<workdir>/disk` (what survives) seen at `<workdir>/store`."""

    mount: LazyFSMount

    @classmethod
    def start(cls, workdir: Path) -> PowerRig:
        backing, mountpoint = workdir / "disk", workdir / "store"
        backing.mkdir(parents=True, exist_ok=True)
        mountpoint.mkdir(parents=True, exist_ok=True)
        mount = mount_lazyfs(
            backing,
            mountpoint,
            workdir / "lazyfs.sock",
            log_path=workdir / "logs" / "lazyfs.log",
            timeout=MOUNT_TIMEOUT_SECONDS,
        )
        return cls(mount)

    @property
    def mountpoint(self) -> Path:
        return self.mount.mountpoint

    def cut_and_remount(self) -> None:
        self.mount.cut()
        self.mount = self.mount.remount(timeout=MOUNT_TIMEOUT_SECONDS)

    def stop(self) -> None:
        """Unmount (a clean unmount syncs what is left); never raises."""
        try:
            self.mount.unmount(timeout=MOUNT_TIMEOUT_SECONDS)
        except Exception as exc:
            print(f"could not unmount {self.mountpoint}: {exc!r}")


def traffic_targets(ops: int, cuts: int, seed: int) -> list[int]:
    """How many requests must have a definite answer before each cut: cut k at k/(cuts+1) of
    the operations, moved by up to SHARE_JITTER of one interval; increasing, below `ops`."""
    rng = random.Random(seed)
    share = ops / (cuts + 1)
    targets = []
    for k in range(1, cuts + 1):
        targets.append(max(1, round(k * share + rng.uniform(-SHARE_JITTER, SHARE_JITTER) * share)))
    return targets


@dataclass(frozen=True, slots=True)
class Recovered:
    integrity: list[str]
    statuses: dict[str, str]  # operation_id -> status


def inspect_database(path: Path) -> Recovered:
    """The first connection after a cut: WAL recovery, the integrity check, the outbox."""
    try:
        # mode=rw: a database file the cut removed must read as missing, not be created empty.
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None, timeout=30.0)
    except sqlite3.Error as exc:
        return Recovered([f"cannot open: {exc}"], {})
    try:
        integrity = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
        rows = conn.execute("SELECT operation_id, status FROM changes").fetchall()
    except sqlite3.Error as exc:
        return Recovered([f"error: {exc}"], {})
    finally:
        conn.close()
    return Recovered(integrity, {str(op): str(status) for op, status in rows})


def acknowledged_operations(history: History) -> set[str]:
    return {r.operation_id for r in history.requests() if r.outcome == "ok"}


def applied_at_central(journal: Sequence[Mapping[str, Any]]) -> set[str]:
    return {str(e["operation_id"]) for e in journal if e["service"] == STORE_SERVICE}


@dataclass
class PowerCutter:
    """Cuts the power under a running stack `count` times while the traffic runs."""

    rig: PowerRig
    stack: Stack
    traffic: Traffic  # held from each kill to the restart: the outage stretches its pace
    history: History
    plan: PowerCuts
    count: int
    ops: int
    seed: int
    note: Callable[[str], None]
    cuts: list[PowerCut] = field(default_factory=list)
    _acknowledged: set[str] = field(default_factory=set)
    _lost: set[str] = field(default_factory=set)

    @property
    def database(self) -> Path:
        return self.rig.mountpoint / "store.db"

    def run(self, traffic: threading.Thread) -> list[PowerCut]:
        rng = random.Random(self.seed + 1)
        targets = traffic_targets(self.ops, self.count, self.seed)
        for number, target in enumerate(targets, start=1):
            moment = self.plan.moments[(number - 1) % len(self.plan.moments)]
            self._wait_for_progress(target, traffic)
            self.cuts.append(self._cut(number, moment, rng))
        return self.cuts

    def _wait_for_progress(self, target: int, traffic: threading.Thread) -> None:
        deadline = time.monotonic() + PROGRESS_WAIT_SECONDS
        while self.history.settled() < target and traffic.is_alive():
            if time.monotonic() > deadline:
                self.note(f"traffic short of {target} answers after {PROGRESS_WAIT_SECONDS:.0f} s")
                return
            time.sleep(0.02)

    # --- one cut ------------------------------------------------------------------------

    def _store_processes(self) -> list[Process]:
        return [p for p in (self.stack.api, self.stack.worker) if p is not None]

    def _cut(self, number: int, moment: CutMoment, rng: random.Random) -> PowerCut:
        checkpoint: WalIndex | None = None
        if moment == "random":
            time.sleep(rng.uniform(0.0, RANDOM_DELAY_SECONDS))
            caught = True
            kill_together(self._store_processes())
        elif moment == "mid_batch":
            caught = self._wait_for_a_batch_applied()
            kill_together(self._store_processes())
        else:
            checkpoint = self._freeze_during_checkpoint()
            caught = checkpoint is not None
            kill_together(self._store_processes())  # SIGKILL ends a stopped process too
        self.traffic.hold()
        killed_at = time.time()
        label = f"power cut {number} ({moment}{'' if caught else ', moment not found'})"
        self.note(label)

        # What the cut is about to drop, and what was acknowledged where.
        stats: Stats = self.rig.mount.stats()
        applied = applied_at_central(self.stack.sim.journal())
        acknowledged = acknowledged_operations(self.history)

        self.rig.cut_and_remount()
        recovered = inspect_database(self.database)

        present = set(recovered.statuses)
        lost = sorted(acknowledged - present - self._lost)
        self._lost.update(lost)
        unrecorded = sum(
            1 for op, status in recovered.statuses.items() if status != "synced" and op in applied
        )
        since_restart = len(acknowledged - self._acknowledged)
        self._acknowledged = acknowledged

        try:
            self._restart()
        finally:
            self.traffic.release()
        self.note(f"store restarted after cut {number}")
        return PowerCut(
            number=number,
            moment=moment,
            at=killed_at,
            caught=caught,
            unsynced_bytes=stats.unsynced_bytes,
            dirty_files=stats.dirty_files,
            dirty_dirs=stats.dirty_dirs,
            syncs=stats.fsyncs + stats.fdatasyncs,
            acknowledged=len(acknowledged),
            acknowledged_since_restart=since_restart,
            at_risk=len(acknowledged - applied),
            unrecorded_at_central=unrecorded,
            integrity=recovered.integrity,
            recovered=dict(Counter(recovered.statuses.values())),
            lost=lost,
            checkpoint=None if checkpoint is None else checkpoint.as_dict(),
            down_seconds=round(time.time() - killed_at, 2),
        )

    def _restart(self) -> None:
        """The API and a worker start together (each takes seconds to import)."""
        self.stack.api.start()
        self.stack.node.launch_worker()
        self.stack.node.wait_ready()

    def _wait_for_a_batch_applied(self) -> bool:
        """Until central applies one more change of the store: its answer is still on the way
        (central's answers are slowed), so the worker has recorded nothing of that batch."""
        before = self._applied_count()
        deadline = time.monotonic() + MID_BATCH_WAIT_SECONDS
        while time.monotonic() < deadline:
            if self._applied_count() > before:
                return True
            time.sleep(MID_BATCH_POLL_SECONDS)
        return False

    def _applied_count(self) -> int:
        services = self.stack.sim.stats().get("services", {})
        return int(services.get(STORE_SERVICE, {}).get("applied", 0))

    def _freeze_during_checkpoint(self) -> WalIndex | None:
        """Watch the wal-index until a store process is copying a checkpoint, freeze the store
        (SIGSTOP) and read it again: a checkpoint still copying is returned with the store
        frozen; one that finished in between is let go (SIGCONT) and the watch goes on."""
        processes = self._store_processes()
        pids = {p.pid for p in processes}
        reader = WalIndexReader(self.database)
        deadline = time.monotonic() + CHECKPOINT_WAIT_SECONDS
        try:
            while time.monotonic() < deadline:
                seen = reader.read()
                if seen is not None and seen.copying and seen.checkpointer_pid in pids:
                    for process in processes:
                        process.pause()
                    frozen = reader.read()
                    if frozen is not None and frozen.copying and frozen.checkpointer_pid in pids:
                        return frozen
                    for process in processes:
                        process.resume()
                time.sleep(CHECKPOINT_POLL_SECONDS)
            return None
        finally:
            reader.close()  # nothing on the mount may stay open across the cut


def expectations(scenario: Scenario, cuts: Sequence[PowerCut], planned: int) -> list[str]:
    """What the cuts themselves must show (the checker judges the whole run besides)."""
    failed = []
    if len(cuts) < planned:
        failed.append(f"only {len(cuts)} of {planned} power cuts were made")
    lost = [op for cut in cuts for op in cut.lost]
    if scenario.negative_control:
        if not lost:
            failed.append("negative control: no cut lost an acknowledged change")
        return failed
    if lost:
        failed.append(f"{len(lost)} acknowledged changes missing after a cut: {lost[:20]}")
    for cut in cuts:
        if cut.integrity != ["ok"]:
            failed.append(f"cut {cut.number}: integrity_check answered {cut.integrity[:5]}")
        if cut.moment == "checkpoint" and not cut.caught:
            failed.append(f"cut {cut.number} did not land during a WAL checkpoint")
    mid_batch = [cut for cut in cuts if cut.moment == "mid_batch"]
    if mid_batch and not any(cut.unrecorded_at_central for cut in mid_batch):
        failed.append("no mid-batch cut left a change applied at central and unrecorded")
    return failed


def summary(cuts: Sequence[PowerCut]) -> dict[str, Any]:
    """The figures docs/chaos.md shows for one scenario's cuts."""
    if not cuts:
        return {"cuts": 0}
    unsynced = [cut.unsynced_bytes for cut in cuts]
    at_risk = [cut.at_risk for cut in cuts]
    return {
        "cuts": len(cuts),
        "moments_caught": sum(cut.caught for cut in cuts),
        "unsynced_bytes_mean": round(sum(unsynced) / len(cuts)),
        "unsynced_bytes_max": max(unsynced),
        "acknowledged_at_risk_mean": round(sum(at_risk) / len(cuts), 1),
        "acknowledged_at_risk_max": max(at_risk),
        "acknowledged_since_restart_mean": round(
            sum(cut.acknowledged_since_restart for cut in cuts) / len(cuts), 1
        ),
        # A change stays unrecorded until its resend, so a sum would count it at every cut.
        "unrecorded_at_central_max": max(cut.unrecorded_at_central for cut in cuts),
        "syncs_since_mount_mean": round(sum(cut.syncs for cut in cuts) / len(cuts)),
        "checkpoint_frames_mean": _mean_frames(cuts),
        "integrity_ok": sum(cut.integrity == ["ok"] for cut in cuts),
        "lost": sum(len(cut.lost) for cut in cuts),
        "cuts_that_lost": sum(bool(cut.lost) for cut in cuts),
        "down_seconds_mean": round(sum(cut.down_seconds for cut in cuts) / len(cuts), 1),
    }


def _mean_frames(cuts: Sequence[PowerCut]) -> float | None:
    frames = [
        cut.checkpoint["backfill_attempted"] - cut.checkpoint["backfilled"]
        for cut in cuts
        if cut.checkpoint is not None
    ]
    return round(sum(frames) / len(frames), 1) if frames else None
