"""Version conflicts injected by central_sim, under each conflict strategy, with a real worker."""

from collections.abc import Iterator

import pytest

from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.integration

SETTLED = {"synced", "discarded", "conflict", "rejected"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, rabbitmq_url: str) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("sync-conflicts"), rabbitmq_url, worker=False)
    yield stack
    stack.stop()


def _conflicted_change(stack: Stack, strategy: str, sku: str) -> tuple[str, dict]:
    """Seed and learn the SKU, make central's next write to it conflict, sync one change."""
    stack.start_worker(STORE_CONFLICT_STRATEGY=strategy)
    stack.clear_faults()
    stack.seed(sku, 50)
    stack.refresh(sku)  # the store now sends versions for this SKU
    stack.faults(conflict_next={sku: 1})
    operation_id = stack.update(sku, -5)
    (change,) = stack.wait_settled([operation_id], settled=SETTLED)
    return operation_id, change


def test_rebase_resends_the_delta_on_centrals_new_version(stack: Stack) -> None:
    operation_id, change = _conflicted_change(stack, "rebase", "SKU-REBASE")
    assert change["status"] == "synced"
    faults = stack.http.get(
        f"{stack.central.base_url}/_sim/faults", headers=stack.central.admin_headers
    )
    assert "SKU-REBASE" not in faults.json()["conflict_next"], "the injected conflict was hit"
    stack.assert_applied_exactly_once([operation_id])
    stack.assert_local_equals_central_plus_pending("SKU-REBASE")
    assert stack.item("SKU-REBASE")["pending_count"] == 0


def test_central_wins_discards_the_local_delta(stack: Stack) -> None:
    operation_id, change = _conflicted_change(stack, "central_wins", "SKU-CW")
    assert (change["status"], change["resolution"]) == ("discarded", "central_wins")
    stack.assert_applied_exactly_once([])
    assert operation_id not in {e["operation_id"] for e in stack.journal()}
    stack.assert_local_equals_central_plus_pending("SKU-CW")
    assert stack.item("SKU-CW")["quantity"] == stack.central_item("SKU-CW")[0]


def test_manual_parks_the_change_until_an_operator_retries_it(stack: Stack) -> None:
    operation_id, change = _conflicted_change(stack, "manual", "SKU-MAN")
    assert (change["status"], change["resolution"]) == ("conflict", "manual")
    stack.assert_local_equals_central_plus_pending("SKU-MAN")
    item = stack.item("SKU-MAN")
    assert (item["pending_delta"], item["pending_count"]) == (-5, 1)

    response = stack.http.post(f"{stack.api.base_url}/v1/local/changes/{operation_id}/retry")
    assert response.status_code == 200
    (change,) = stack.wait_settled([operation_id])
    assert change["status"] == "synced"
    stack.assert_applied_exactly_once([operation_id])
    stack.assert_local_equals_central_plus_pending("SKU-MAN")
