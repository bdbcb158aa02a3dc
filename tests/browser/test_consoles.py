"""Both consoles in a real browser (Debian's Chromium via Playwright) against the real stack:
central_sim, the store API with API keys on, a Celery worker on RabbitMQ, `manual` conflicts.

A conflict is made through the simulator panel's fault knobs, appears in the store console
without a reload, is retried from the keyboard and watched until synced; another is discarded
after a confirmation (and first refused with a forged CSRF token); a change whose SKU and
operation id are markup is shown as text. Screenshots go to the report directory (and to
docs/img with UPDATE_DOCS_SCREENSHOTS=1).
"""

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, Dialog, Page, expect

from store_service.storage.db import connect, transaction
from tests.support.browser import DESKTOP, TABLET, chromium, require_chromium, screenshot
from tests.support.stack import Stack, start_stack, wait_for
from tests.support.store_db import local_update

pytestmark = pytest.mark.browser

KEY = "backoffice-key-browser-0123456789"
MARKUP_SKU = "<img src=x id=injected-sku>"
MARKUP_OP = '"><b id=injected-op>op</b>'
POLL = "0.5"  # the consoles' live parts refresh twice a second here


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, rabbitmq_url: str) -> Iterator[Stack]:
    require_chromium()
    stack = start_stack(
        tmp_path_factory.mktemp("consoles"),
        rabbitmq_url,
        central_overrides={"CONSOLE_POLL_SECONDS": POLL},
        STORE_CONFLICT_STRATEGY="manual",
        STORE_API_KEYS=KEY,
        STORE_CONSOLE_POLL_SECONDS=POLL,
    )
    stack.http.headers["X-API-Key"] = KEY  # the stack's own calls to the store API
    yield stack
    stack.stop()


@pytest.fixture
def browser() -> Iterator[BrowserContext]:
    with chromium() as context:
        yield context


def sign_in(page: Page, url: str, secret: str, label: str) -> None:
    page.goto(url)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label(label).fill(secret)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(url)


def conflict_row(page: Page, operation_id: str):  # a Playwright Locator
    return page.locator("#conflicts tr").filter(has_text=operation_id)


def test_store_console_from_conflict_to_synced(stack: Stack, browser: BrowserContext) -> None:
    store, sim = browser.new_page(), browser.new_page()
    console = f"{stack.api.base_url}/console"
    panel = f"{stack.central.base_url}/_sim/console"

    # Sign-in with keys on: a wrong key is refused (and not echoed), the right one admitted.
    store.goto(console)
    store.get_by_label("API key").fill("not-a-key")
    store.get_by_role("button", name="Sign in").click()
    expect(store.get_by_role("alert")).to_contain_text("Sign-in refused")
    expect(store.locator("body")).not_to_contain_text("not-a-key")
    store.get_by_label("API key").fill(KEY)
    store.get_by_role("button", name="Sign in").click()
    expect(store).to_have_url(console)

    # The store learns central's version for two SKUs (versioned sends can conflict).
    for sku in ("SKU-RETRY", "SKU-DISCARD"):
        stack.seed(sku, 50)
        stack.refresh(sku)

    # Central's next write to each SKU conflicts: set through the panel's fault knobs.
    sign_in(sim, panel, stack.central.admin_token, "Admin token")
    for sku in ("SKU-RETRY", "SKU-DISCARD"):
        sim.get_by_label("conflict next: SKU").fill(sku)
        sim.get_by_label("conflict next: writes (0 removes)").fill("1")
        sim.get_by_role("button", name="Apply knobs").click()
        expect(sim.get_by_test_id("done")).to_contain_text("faults set")
        expect(sim.locator("#controls")).to_contain_text(sku)

    retry_op = stack.update("SKU-RETRY", -5)
    discard_op = stack.update("SKU-DISCARD", -3)
    stack.wait_settled([retry_op, discard_op], settled={"conflict"})

    # Both appear in the open console without a reload (htmx polling).
    store.bring_to_front()
    expect(conflict_row(store, retry_op)).to_be_visible()
    expect(conflict_row(store, discard_op)).to_be_visible()
    expect(conflict_row(store, retry_op)).to_contain_text("manual")
    expect(store.get_by_test_id("count-conflict")).to_have_text("2")
    assert screenshot(store, "console").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A change whose SKU and operation id are markup, written straight into the store's
    # database (the API would refuse the SKU), is shown as text.
    db = connect(stack.tmp_path / "store.db")
    try:
        local_update(db, MARKUP_SKU, -1, MARKUP_OP)
        with transaction(db):
            db.execute(
                "UPDATE changes SET status = 'conflict', resolution = 'manual' "
                "WHERE operation_id = ?",
                (MARKUP_OP,),
            )
    finally:
        db.close()
    expect(conflict_row(store, MARKUP_OP)).to_be_visible()
    expect(conflict_row(store, MARKUP_OP)).to_contain_text(MARKUP_SKU)
    assert store.locator("#injected-sku, #injected-op").count() == 0, "markup stays text"
    screenshot(store, "console-escaping")
    store.set_viewport_size(TABLET)
    assert store.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(store, "console-tablet")
    store.set_viewport_size(DESKTOP)

    # A forged CSRF token is refused: the problem is shown, nothing changes. (The focus on
    # the button pauses the panel's polling, which would otherwise swap in a fresh form.)
    discard_form = conflict_row(store, discard_op).locator("form").last
    discard_form.get_by_role("button").focus()
    discard_form.locator("input[name=csrf_token]").evaluate("input => { input.value = 'forged'; }")
    store.once("dialog", lambda dialog: dialog.accept())
    store.keyboard.press("Enter")
    expect(store.locator("#flash")).to_contain_text("CSRF token missing or invalid")
    assert stack.change(discard_op)["status"] == "conflict"

    # Retry from the keyboard: focus the button, press Enter; the row leaves the panel.
    store.reload()  # a fresh CSRF token in the forms
    store.get_by_role("button", name=f"Retry change {retry_op}").focus()
    store.keyboard.press("Enter")
    expect(conflict_row(store, retry_op)).to_have_count(0)
    assert stack.change(retry_op)["status"] in {"pending", "in_flight", "synced"}

    # Watch it travel to synced on its search page (live, no reload).
    store.goto(f"{console}/changes?operation_id={retry_op}")
    state = store.locator(f'tr[data-operation-id="{retry_op}"] [data-testid=state]')
    last_trigger = 0.0

    def synced() -> bool:
        nonlocal last_trigger
        if time.monotonic() - last_trigger > 2.0:
            stack.trigger()  # no beat in this stack: ask the worker for a run
            last_trigger = time.monotonic()
        return state.inner_text() == "synced"

    wait_for("the retried change shown as synced", synced, timeout=40.0, every=0.3)
    stack.assert_applied_exactly_once([retry_op])

    # Discard, after the confirmation, and the dismissal of a first one.
    store.goto(console)
    dismissed: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dismissed.append(dialog.message)
        dialog.dismiss()

    store.once("dialog", dismiss)
    store.get_by_role("button", name=f"Discard change {discard_op}").click()
    wait_for("the confirmation", lambda: dismissed, timeout=10.0)
    assert "leaves the local stock" in dismissed[0]
    assert stack.change(discard_op)["status"] == "conflict", "dismissed: nothing changed"
    store.once("dialog", lambda dialog: dialog.accept())
    store.get_by_role("button", name=f"Discard change {discard_op}").click()
    expect(conflict_row(store, discard_op)).to_have_count(0)
    expect(store.locator("#flash")).to_contain_text(
        f"Discard: change {discard_op} is now discarded"
    )
    assert stack.change(discard_op)["status"] == "discarded"
    stack.assert_local_equals_central_plus_pending("SKU-DISCARD")

    # The markup change can be acted on too (its id travels URL-encoded).
    store.once("dialog", lambda dialog: dialog.accept())
    store.get_by_role("button", name=f"Discard change {MARKUP_OP}").click()
    expect(conflict_row(store, MARKUP_OP)).to_have_count(0)

    # One item's view; then sign out ends the session.
    store.goto(f"{console}/items/SKU-RETRY")
    expect(store.get_by_test_id("local-quantity")).to_have_text(
        str(stack.item("SKU-RETRY")["quantity"])
    )
    screenshot(store, "console-item")
    store.get_by_role("button", name="Sign out").click()
    store.goto(console)
    expect(store).to_have_url(re.compile(r"/console/login"))

    sim.bring_to_front()
    sim.reload()
    screenshot(sim, "sim-console")


def test_sim_panel_revokes_and_restores_the_store(stack: Stack, browser: BrowserContext) -> None:
    """Revoke the store's service in the panel: its sync fails with an auth error the store
    console shows; restore it: the change goes through."""
    sim, store = browser.new_page(), browser.new_page()
    sign_in(sim, f"{stack.central.base_url}/_sim/console", stack.central.admin_token, "Admin token")
    sign_in(store, f"{stack.api.base_url}/console", KEY, "API key")
    sim.bring_to_front()
    sim.get_by_role("button", name="Revoke inventory-service").click()
    expect(sim.get_by_test_id("done")).to_contain_text("service revoked")

    operation_id = stack.update("SKU-AUTH", 2)
    stack.trigger()
    store.bring_to_front()
    expect(store.get_by_test_id("central-auth")).to_contain_text("refused", timeout=30_000)
    assert stack.change(operation_id)["status"] == "pending", "kept, not lost"

    sim.bring_to_front()
    sim.get_by_role("button", name="Restore inventory-service").click()
    expect(sim.get_by_test_id("done")).to_contain_text("service restored")
    (change,) = stack.wait_settled([operation_id], timeout=40.0)
    assert change["status"] == "synced"
    expect(sim.get_by_test_id("total-applied")).not_to_have_text("0")
