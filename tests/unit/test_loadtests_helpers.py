"""The load harness's pure helpers: Zipf sampling, shapes, thresholds, lock-wait quantiles (no
Locust imported)."""

import itertools
import random
import sys
from collections import Counter
from pathlib import Path

import pytest

from loadtests.plans import plan, stage_at
from loadtests.sampling import ZipfSampler, sku_name
from loadtests.thresholds import (
    RunStats,
    Thresholds,
    aggregated_from_csv,
    parse_duration,
    violations,
)


def test_zipf_probabilities_sum_to_one_and_fall_with_rank() -> None:
    sampler = ZipfSampler(1000, 1.1)
    probs = [sampler.probability(k) for k in range(1, 1001)]
    assert sum(probs) == pytest.approx(1.0)
    assert all(a > b for a, b in itertools.pairwise(probs))
    assert sampler.probability(0) == sampler.probability(1001) == 0.0


def test_zipf_draws_follow_the_distribution() -> None:
    sampler = ZipfSampler(100, 1.0, rng=random.Random(7))
    counts = Counter(sampler.rank() for _ in range(50_000))
    assert set(counts) <= set(range(1, 101))
    assert counts[1] / 50_000 == pytest.approx(sampler.probability(1), rel=0.05)
    assert counts[1] > counts[2] > counts[10]


def test_zipf_with_zero_skew_is_uniform_and_bad_arguments_are_refused() -> None:
    assert ZipfSampler(4, 0).probability(3) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="n must"):
        ZipfSampler(0)
    with pytest.raises(ValueError, match="negative"):
        ZipfSampler(3, -1)


def test_sku_names_match_the_benchmark_script() -> None:
    assert sku_name(7) == "SKU-00007"
    lua = (Path(__file__).parents[2] / "loadtests" / "update.lua").read_text()
    assert "SKU-%05d" in lua


@pytest.mark.parametrize("shape", ["steady", "ramp", "spike", "soak"])
def test_every_shape_peaks_at_the_users_asked_and_ends_on_time(shape: str) -> None:
    stages = plan(shape, users=50, duration=100)
    assert max(s.users for s in stages) == 50
    assert stage_at(stages, 0) is not None
    assert stage_at(stages, 99.9) is not None
    assert stage_at(stages, 100) is None


def test_a_spike_jumps_from_a_fifth_to_the_peak_and_back() -> None:
    stages = plan("spike", users=50, duration=100)
    assert [stage_at(stages, t)[0] for t in (10, 50, 90)] == [10, 50, 10]  # type: ignore[index]


def test_a_ramp_climbs_step_by_step() -> None:
    users = [stage_at(plan("ramp", users=40, duration=100), t)[0] for t in (5, 55, 95)]  # type: ignore[index]
    assert users == [4, 24, 40]


def test_unknown_shapes_and_empty_plans_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown shape"):
        plan("wave", users=5, duration=10)
    with pytest.raises(ValueError, match="users must"):
        plan("steady", users=0, duration=10)


def test_a_clean_fast_run_passes() -> None:
    assert violations(RunStats(1000, 0, 80, 150), Thresholds()) == []


def test_each_broken_threshold_is_reported() -> None:
    limits = Thresholds(p95_ms=100, p99_ms=200, max_failure_ratio=0.01, min_requests=10)
    broken = violations(RunStats(requests=5, failures=1, p95_ms=150, p99_ms=250), limits)
    assert len(broken) == 4
    assert any("failure ratio 0.2000" in b for b in broken)


def test_latency_thresholds_can_be_switched_off_from_the_environment() -> None:
    limits = Thresholds.from_env(
        {"LOAD_P95_MS": "none", "LOAD_P99_MS": "", "LOAD_MAX_FAILURE_RATIO": "0"}
    )
    assert (limits.p95_ms, limits.p99_ms, limits.max_failure_ratio) == (None, None, 0.0)
    assert violations(RunStats(10, 0, 9e9, 9e9), limits) == []
    assert violations(RunStats(10, 1, 1, 1), limits) != []


def test_the_aggregated_row_is_read_from_locusts_csv(tmp_path: Path) -> None:
    csv = tmp_path / "x_stats.csv"
    csv.write_text(
        "Type,Name,Request Count,Failure Count,95%,99%\n"
        "POST,update [till sell],90,0,40,80\n"
        ",Aggregated,120,2,45,N/A\n"
    )
    assert aggregated_from_csv(csv) == RunStats(120, 2, 45.0, 0.0)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30", 30), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("1.5m", 90)]
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_the_helpers_do_not_drag_locust_in() -> None:
    assert "locust" not in sys.modules


def test_the_draining_shape_fails_when_the_sync_backlog_does_not_shrink() -> None:
    limits = Thresholds(max_backlog_left=0.5)

    def stats(samples: list[int]) -> RunStats:
        return RunStats(requests=100, failures=0, p95_ms=1, p99_ms=1, backlog_samples=samples)

    assert violations(stats([900, 1200, 700, 300]), limits) == []
    (broken,) = violations(stats([900, 1200, 1100, 1000]), limits)
    assert "did not shrink: 1000 left of a peak of 1200" in broken
    assert violations(stats([]), limits) == []  # not the draining shape: nothing to judge


def test_lock_waits_reads_the_histogram_from_a_metrics_text() -> None:
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from loadtests.drain_while_selling import lock_waits

    registry = CollectorRegistry()
    waits = Histogram(
        "store_sqlite_write_lock_wait_seconds",
        "waits",
        buckets=(0.001, 0.01, 0.1, 1),
        registry=registry,
    )
    for seconds in (0.0005, 0.005, 0.005, 0.05, 5.0):
        waits.observe(seconds)
    result = lock_waits(generate_latest(registry).decode())
    assert (result["count"], result["sum_s"]) == (5, pytest.approx(5.0605))
    # p50: rank 2.5 of 5 is 1.5 of the 2 waits in the (1, 10] ms bucket: 1 + 9 x 0.75 ms.
    assert result["p50_ms"] == pytest.approx(7.75)
    # p99: past the last finite bucket, the histogram can only say "at least 1 s".
    assert result["p99_ms"] == pytest.approx(1000.0)
    assert lock_waits("")["count"] == 0
