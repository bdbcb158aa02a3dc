"""A clock a test moves by hand: pass it where code takes `now`/`clock` instead of time.time."""

import time


class Clock:
    """Starts at `start` (the wall clock by default); each call moves it on by `step`."""

    def __init__(self, start: float | None = None, step: float = 0.0) -> None:
        self.now = time.time() if start is None else start
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
