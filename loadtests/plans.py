"""Load shapes as data: how many users at which second, for steady, ramp, spike and soak.

Pure functions (no Locust), so they are unit-tested; `loadtests/locustfile.py` wraps the
selected one in a `LoadTestShape`. Every plan ends: `stage_at` returns None after `duration`.
"""

from dataclasses import dataclass

SHAPES = ("steady", "ramp", "spike", "soak", "draining")


@dataclass(frozen=True, slots=True)
class Stage:
    until: float  # seconds since start
    users: int
    spawn_rate: float


def plan(shape: str, *, users: int, duration: float) -> list[Stage]:
    """The stages of a shape peaking at `users` and lasting `duration` seconds."""
    if users < 1 or duration <= 0:
        raise ValueError("users must be >= 1 and duration > 0")
    if shape in ("steady", "soak", "draining"):
        # Soak is steady held long (its default duration is longer: see the CLI); draining is
        # steady selling while the locustfile asks the store to sync and watches the backlog.
        warmup = min(10.0, duration / 10)
        return [Stage(duration, users, max(1.0, users / max(warmup, 1.0)))]
    if shape == "ramp":
        steps = 10
        return [
            Stage(duration * (i + 1) / steps, max(1, round(users * (i + 1) / steps)), users)
            for i in range(steps)
        ]
    if shape == "spike":
        base = max(1, users // 5)
        return [
            Stage(duration * 0.4, base, max(1.0, base / 2)),
            Stage(duration * 0.6, users, float(users)),  # everyone arrives within a second
            Stage(duration, base, float(users)),
        ]
    raise ValueError(f"unknown shape {shape!r}; choose from {', '.join(SHAPES)}")


def stage_at(stages: list[Stage], elapsed: float) -> tuple[int, float] | None:
    """(users, spawn rate) at `elapsed` seconds, or None when the plan is over."""
    for stage in stages:
        if elapsed < stage.until:
            return stage.users, stage.spawn_rate
    return None
