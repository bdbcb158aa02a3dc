"""Keep the garbage collector off the objects a process builds once and keeps for life, and (in
the API) off the objects of requests still in flight."""

import gc

YOUNG_THRESHOLD = 50_000
"""Net container allocations before a young-generation collection (CPython's default: 700).

Under load the API holds every in-flight request's objects (coroutines, frames, closures,
futures) for as long as the request waits for its group commit, so with the default a young
collection ran about 140 times a second, each walking those live objects (~0.25 ms) only to
promote them: 28-48 µs of collector time per update, 6-10% of the event loop
(docs/performance.md). The objects are freed by reference counting when the request ends; the
collector is only needed for reference cycles, and 50,000 uncollected objects at most are a
few megabytes. Older generations keep their thresholds (10 and 10 younger collections).

For the API only: the sync worker has no requests in flight, and each bulk-sync call leaves
its httpx request and response (bodies of ~100 KB for a batch of 1,000) in a reference cycle,
which only the collector frees. At 50,000 they piled up between the rare older collections
(drain RSS 66 → 128 MB over 300,000 changes, 194 MB at 1,000,000); at CPython's 700 the
drain's RSS stays at 66-69 MB (docs/performance.md, "The drain path: decisions and their
reasons").
"""


def tune_garbage_collector() -> None:
    """The API's set-up: freeze what start-up built, then make young collections rare. Call
    once, when ready. The worker only freezes (`freeze_startup_objects`)."""
    freeze_startup_objects()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def freeze_startup_objects() -> None:
    """Move everything built so far (modules, routes, schemas, the Celery app) out of the
    collector's view.

    They live as long as the process, yet every full collection walked all of them (~136,000 in
    the API): under load that was a ~150 ms pause about every 1.3 s, the update path's p99, and
    ~10% of its CPU (docs/performance.md). Frozen, a full collection takes a few milliseconds.
    """
    gc.collect()
    gc.freeze()
