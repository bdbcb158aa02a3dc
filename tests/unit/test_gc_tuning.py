"""The collector set-up the API and the worker apply once they are ready."""

import gc
import weakref
from collections.abc import Iterator

import pytest

from store_service.gc_tuning import YOUNG_THRESHOLD, tune_garbage_collector
from store_service.sync import signals as worker_signals


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


@pytest.mark.usefixtures("restored_collector")
def test_young_collections_wait_for_many_allocations_and_start_up_objects_are_frozen() -> None:
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()
    tune_garbage_collector()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("restored_collector")
def test_a_burst_of_live_objects_below_the_threshold_triggers_no_collection() -> None:
    # What an API under load looks like to the collector: thousands of live request objects.
    tune_garbage_collector()
    collections: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        live = [{"request": n} for n in range(YOUNG_THRESHOLD // 2)]
    finally:
        gc.callbacks.remove(count)
    assert len(live) == YOUNG_THRESHOLD // 2
    assert collections == []


class _Holder:
    """A cycle holding a large body, as an httpx response and its stream do."""

    def __init__(self) -> None:
        self.body = b"x" * 100_000
        self.me = self


def _cycle_survives(allocations: int) -> bool:
    holder = _Holder()
    alive = weakref.ref(holder)
    del holder
    batch = [(n, [n]) for n in range(allocations)]  # a batch's worth of new containers
    assert len(batch) == allocations
    return alive() is not None


@pytest.mark.usefixtures("restored_collector")
def test_the_worker_freezes_start_up_objects_and_keeps_the_default_young_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()
    monkeypatch.setattr(worker_signals, "start_worker_observability", lambda *_args: None)
    worker_signals._on_worker_init(sender=None)
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() > 0
    # So a batch's reference cycles are freed within the batch; at the API's threshold they stay.
    assert not _cycle_survives(5_000)
    tune_garbage_collector()
    assert _cycle_survives(5_000)
