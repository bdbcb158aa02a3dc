"""Which SKU a simulated client touches: Zipf-skewed ranks, as real shop traffic is. No Locust."""

import bisect
import itertools
import random


def sku_name(rank: int) -> str:
    """The SKU of a popularity rank (1 = the best seller); the benchmark's Lua uses the same."""
    return f"SKU-{rank:05d}"


class ZipfSampler:
    """Draws ranks 1..n with P(k) proportional to 1/k**s (s=0 is uniform)."""

    def __init__(self, n: int, s: float = 1.1, *, rng: random.Random | None = None) -> None:
        if n < 1:
            raise ValueError("n must be at least 1")
        if s < 0:
            raise ValueError("s must not be negative")
        self.n = n
        self.s = s
        self._rng = rng or random.Random()
        weights = [1.0 / k**s for k in range(1, n + 1)]
        total = sum(weights)
        self._cdf = [c / total for c in itertools.accumulate(weights)]
        self._cdf[-1] = 1.0

    def probability(self, rank: int) -> float:
        """P(rank); 0 outside 1..n."""
        if not 1 <= rank <= self.n:
            return 0.0
        return float(self._cdf[rank - 1] - (self._cdf[rank - 2] if rank > 1 else 0.0))

    def rank(self) -> int:
        return bisect.bisect_left(self._cdf, self._rng.random()) + 1

    def sku(self) -> str:
        return sku_name(self.rank())
