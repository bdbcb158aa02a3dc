"""The power-cut pieces without a mount: the scenarios' data, when cuts happen, what a run
must show, the wal-index reading (on a real SQLite file, the lock held by another process),
and the per-cut report."""

from __future__ import annotations

import sqlite3
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chaos import scenarios
from chaos import traffic as traffic_module
from chaos.history import History
from chaos.power import PowerCut, expectations, summary, traffic_targets
from chaos.report import power_cut_table
from chaos.scenarios import PowerCuts, Scenario
from chaos.traffic import Traffic, TrafficPlan
from chaos.walindex import (
    CHECKPOINT_LOCK_BYTE,
    HEADER_BYTES,
    WalIndex,
    WalIndexReader,
    parse_counters,
)


def cut(number: int = 1, **changes: Any) -> PowerCut:
    base = PowerCut(
        number=number,
        moment="random",
        at=0.0,
        caught=True,
        unsynced_bytes=4096,
        dirty_files=2,
        dirty_dirs=0,
        syncs=10,
        acknowledged=50,
        acknowledged_since_restart=20,
        at_risk=5,
        unrecorded_at_central=0,
        integrity=["ok"],
        recovered={"synced": 45, "pending": 5},
        lost=[],
        checkpoint=None,
        down_seconds=2.0,
    )
    return replace(base, **changes)


# --- scenarios -------------------------------------------------------------------------------


def test_the_power_cut_scenarios_exist_with_20_cuts_and_3_in_ci() -> None:
    for name in ("power-loss", "power-loss-during-checkpoint", "power-loss-control"):
        plan = scenarios.get(name).power_cuts
        assert plan is not None
        assert (plan.count, plan.ci_count) == (20, 3)
    assert "checkpoint" in scenarios.get("power-loss-during-checkpoint").power_cuts.moments  # type: ignore[union-attr]  # asserted above
    assert "mid_batch" in scenarios.get("power-loss").power_cuts.moments  # type: ignore[union-attr]  # asserted above


def test_only_the_control_weakens_durability() -> None:
    control = scenarios.get("power-loss-control")
    assert control.negative_control
    assert control.store_env["STORE_SQLITE_SYNCHRONOUS"] == "OFF-UNSAFE-FOR-TESTS"
    for s in scenarios.SCENARIOS:
        if s is not control:
            assert not s.negative_control
            assert "STORE_SQLITE_SYNCHRONOUS" not in s.store_env


def test_power_cuts_refuse_process_faults_and_empty_plans() -> None:
    with pytest.raises(ValueError, match="restart the store themselves"):
        Scenario(
            name="x",
            description="x",
            power_cuts=PowerCuts(),
            process_faults=(scenarios.ProcessFault("kill_api", 0.0),),
            ci=True,
        )
    with pytest.raises(ValueError, match="positive count"):
        PowerCuts(count=0)
    with pytest.raises(ValueError, match="at least one moment"):
        PowerCuts(moments=())


# --- when the cuts happen --------------------------------------------------------------------


@pytest.mark.parametrize(("ops", "cuts"), [(1000, 20), (120, 3), (50, 20)])
def test_cut_targets_spread_over_the_traffic_increasing_and_seeded(ops: int, cuts: int) -> None:
    targets = traffic_targets(ops, cuts, seed=7)
    assert len(targets) == cuts
    assert targets == sorted(targets)
    assert targets[0] >= 1
    assert targets[-1] < ops
    assert targets == traffic_targets(ops, cuts, seed=7)


# --- what a run must show --------------------------------------------------------------------


def test_a_clean_run_meets_its_expectations() -> None:
    s = scenarios.get("power-loss")
    cuts = [cut(1, moment="mid_batch", unrecorded_at_central=3), cut(2)]
    assert expectations(s, cuts, planned=2) == []


def test_a_lost_change_a_bad_integrity_check_or_a_missing_cut_fail_the_run() -> None:
    s = scenarios.get("power-loss")
    failed = expectations(
        s,
        [
            cut(1, lost=["op-1"], moment="mid_batch", unrecorded_at_central=1),
            cut(2, integrity=["x"]),
        ],
        planned=3,
    )
    assert any("only 2 of 3" in f for f in failed)
    assert any("op-1" in f for f in failed)
    assert any("cut 2: integrity_check" in f for f in failed)


def test_mid_batch_cuts_must_leave_an_unrecorded_batch_at_least_once() -> None:
    s = scenarios.get("power-loss")
    failed = expectations(s, [cut(1, moment="mid_batch")], planned=1)
    assert failed == ["no mid-batch cut left a change applied at central and unrecorded"]


def test_a_checkpoint_cut_that_missed_its_checkpoint_fails() -> None:
    s = scenarios.get("power-loss-during-checkpoint")
    failed = expectations(s, [cut(1, moment="checkpoint", caught=False)], planned=1)
    assert failed == ["cut 1 did not land during a WAL checkpoint"]


def test_the_negative_control_fails_when_nothing_is_lost_and_passes_when_something_is() -> None:
    control = scenarios.get("power-loss-control")
    assert expectations(control, [cut(1)], planned=1) == [
        "negative control: no cut lost an acknowledged change"
    ]
    assert expectations(control, [cut(1, lost=["op-1"], integrity=["bad"])], planned=1) == []


def test_the_summary_gives_the_figures_docs_show() -> None:
    checkpoint = {"backfill_attempted": 30, "backfilled": 10, "copying": True}
    figures = summary(
        [
            cut(1, unsynced_bytes=100, at_risk=2, unrecorded_at_central=7),
            cut(2, lost=["a"], checkpoint=checkpoint, unrecorded_at_central=3, syncs=30),
        ]
    )
    assert figures["cuts"] == 2
    assert figures["unsynced_bytes_max"] == 4096
    assert figures["acknowledged_at_risk_max"] == 5
    assert figures["lost"] == figures["cuts_that_lost"] == 1
    assert figures["checkpoint_frames_mean"] == 20
    assert figures["unrecorded_at_central_max"] == 7  # not 10: still the same changes
    assert figures["syncs_since_mount_mean"] == 20
    assert summary([]) == {"cuts": 0}


def test_the_report_has_one_row_per_cut() -> None:
    rows = power_cut_table([cut(1), cut(2, lost=["a", "b"], caught=False)])
    assert len(rows) == 3
    assert "| 2 | random | **no** | 4096 | 2 | 10 |" in rows[2]
    assert rows[2].endswith("| 2 | 2.0 s |")


# --- the wal-index ---------------------------------------------------------------------------


def test_parse_counters_reads_mxframe_nbackfill_and_nbackfill_attempted() -> None:
    header = bytearray(HEADER_BYTES)
    struct.pack_into("=I", header, 16, 42)
    struct.pack_into("=I", header, 96, 7)
    struct.pack_into("=I", header, 128, 30)
    assert parse_counters(bytes(header)) == (42, 7, 30)
    with pytest.raises(ValueError, match="136 bytes"):
        parse_counters(bytes(10))


def test_copying_needs_the_lock_and_unsynced_frames() -> None:
    assert WalIndex(40, 10, 30, 123).copying
    assert WalIndex(40, 10, 30, 123).frames_being_copied == 20
    # After crash recovery the counters look like this with no checkpoint at all.
    assert not WalIndex(40, 0, 40, None).copying
    assert not WalIndex(40, 30, 30, 123).copying


def test_the_reader_sees_a_real_wal_and_who_holds_the_checkpoint_lock(tmp_path: Path) -> None:
    database = tmp_path / "w.db"
    reader = WalIndexReader(database)
    assert reader.read() is None  # no -shm yet
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("CREATE TABLE t (x)")
        for n in range(5):
            conn.execute("INSERT INTO t VALUES (?)", (n,))
        seen = reader.read()
        assert seen is not None
        assert seen.wal_frames >= 5
        assert not seen.checkpoint_running
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        after = reader.read()
        assert after is not None
        assert after.backfilled == after.backfill_attempted == after.wal_frames
        # Another process holds the checkpoint lock byte: the reader names it.
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD_LOCK, str(database) + "-shm", str(CHECKPOINT_LOCK_BYTE)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "locked"
            locked = reader.read()
            assert locked is not None
            assert locked.checkpointer_pid == holder.pid
        finally:
            holder.kill()
            holder.wait(timeout=10)
    finally:
        reader.close()
        conn.close()


_HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX, 1, int(sys.argv[2]))
print("locked", flush=True)
time.sleep(60)
"""


# --- the traffic's pace held over an outage --------------------------------------------------


def test_a_held_pace_starts_nothing_and_shifts_the_schedule_by_the_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(traffic_module.time, "monotonic", lambda: now[0])
    plan = TrafficPlan("http://127.0.0.1:9", ("A",), ops=10, seconds=10.0)
    traffic = Traffic(plan, History())
    assert traffic._delay(100.0) == 0.0  # due now: starts now
    traffic.hold()
    now[0] = 130.0
    assert traffic._delay(100.0) > 0  # held: waits however late it is
    assert traffic._delay(50.0) > 0  # even one that was already late when the hold began
    traffic.release()
    assert traffic._delay(130.0) == pytest.approx(30.0)  # later operations shift by the hold
    traffic.release()  # a second release changes nothing
    assert traffic._delay(130.0) == pytest.approx(30.0)
