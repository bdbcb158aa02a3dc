"""The collector set-up the API and the worker apply once they are ready."""

import gc
from collections.abc import Iterator

import pytest

from store_service.gc_tuning import YOUNG_THRESHOLD, tune_garbage_collector


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
