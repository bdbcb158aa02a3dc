"""The store console in-process: pages, escaping, CSRF, sessions, read-only mode, the actions
(through the same `operator.act` as the JSON API), and the security headers on every answer."""

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from store_service.api.app import create_app
from store_service.api.health import OK, HealthChecker
from store_service.storage.db import transaction
from tests.support.store_db import (
    assert_local_view_consistent,
    local_update,
    make_database,
    make_settings,
    status_of,
)

KEY = "backoffice-key-0123456789"
MARKUP_SKU = '<script>alert("sku")</script>'
MARKUP_OP = '"><img src=x onerror=alert(1)>'
HTML = {"accept": "text/html"}
HTMX = {"hx-request": "true"}


def _quiet_health(client: TestClient) -> None:
    """No broker or central in unit tests: probes that answer at once."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]  # set by the lifespan
    runtime.health = HealthChecker(
        runtime.settings, probes={name: (lambda _s: (OK, None)) for name in ("database", "worker")}
    )


def _park(conn: sqlite3.Connection, sku: str, operation_id: str, delta: int = -2) -> None:
    """A change parked in conflict, written directly (the API would refuse this SKU)."""
    local_update(conn, sku, delta, operation_id)
    with transaction(conn):
        conn.execute(
            "UPDATE changes SET status = 'conflict', resolution = 'manual', "
            "last_error = 'version conflict <b>at</b> central' WHERE operation_id = ?",
            (operation_id,),
        )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = make_database(tmp_path / "store.db")
    yield conn
    conn.close()


def _client(tmp_path: Path, **overrides: object) -> Iterator[TestClient]:
    settings = make_settings(tmp_path / "store.db", migrate_on_startup=False, **overrides)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        _quiet_health(client)
        yield client


@pytest.fixture
def open_client(tmp_path: Path, db: sqlite3.Connection) -> Iterator[TestClient]:
    yield from _client(tmp_path)


@pytest.fixture
def keyed_client(tmp_path: Path, db: sqlite3.Connection) -> Iterator[TestClient]:
    yield from _client(tmp_path, api_keys=frozenset({SecretStr(KEY)}))


@pytest.fixture
def reads_client(tmp_path: Path, db: sqlite3.Connection) -> Iterator[TestClient]:
    yield from _client(
        tmp_path, api_keys=frozenset({SecretStr(KEY)}), api_allow_anonymous_reads=True
    )


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page carries a CSRF token"
    return match.group(1)


def assert_secured(response) -> None:
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


def sign_in(client: TestClient, key: str = KEY) -> None:
    form = client.get("/console/login", headers=HTML)
    response = client.post(
        "/console/login",
        data={"csrf_token": csrf_of(form.text), "credential": key, "next": "/console"},
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console"


def test_overview_shows_counts_conflicts_and_secure_headers(
    open_client: TestClient, db: sqlite3.Connection
) -> None:
    _park(db, "SKU-1", "op-parked")
    local_update(db, "SKU-2", 3, "op-pending")
    page = open_client.get("/console", headers=HTML)
    assert page.status_code == 200
    assert_secured(page)
    assert page.headers["cache-control"] == "no-store"
    assert 'data-testid="count-conflict">1<' in page.text
    assert 'data-testid="count-pending">1<' in page.text
    assert "op-parked" in page.text
    assert "Retry" in page.text
    assert "Discard" in page.text
    assert "<script>" not in page.text.replace('<script src="/console/static/', "")
    for path in ("/console/fragments/status", "/console/fragments/conflicts"):
        fragment = open_client.get(path, headers=HTMX)
        assert fragment.status_code == 200
        assert_secured(fragment)
        assert "<html" not in fragment.text  # a fragment, swapped into the page


def test_every_database_value_is_escaped(open_client: TestClient, db: sqlite3.Connection) -> None:
    _park(db, MARKUP_SKU, MARKUP_OP)
    pages = [
        open_client.get("/console", headers=HTML),
        open_client.get("/console/changes", headers=HTML),
        open_client.get("/console/changes", params={"sku": MARKUP_SKU}, headers=HTML),
        open_client.get("/console/items/" + MARKUP_SKU.replace("/", "%2F"), headers=HTML),
    ]
    for page in pages:
        assert page.status_code == 200, page.text
        assert MARKUP_SKU not in page.text
        assert MARKUP_OP not in page.text
        assert "<b>at</b>" not in page.text
        assert "&lt;script&gt;alert(&#34;sku&#34;)&lt;/script&gt;" in page.text
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in pages[0].text


def test_retry_needs_the_sessions_csrf_token(
    open_client: TestClient, db: sqlite3.Connection
) -> None:
    _park(db, "SKU-1", "op-1")
    page = open_client.get("/console", headers=HTML)
    for token in (None, "forged", csrf_of(page.text) + "x"):
        data = {} if token is None else {"csrf_token": token}
        refused = open_client.post("/console/changes/op-1/retry", data=data, headers=HTMX)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"].endswith("/csrf-token-invalid")
        assert_secured(refused)
        assert status_of(db, "op-1") == "conflict", "a refused action changes nothing"
    # A token from another session is refused too (CSRF is bound to the session).
    other = TestClient(open_client.app, follow_redirects=False)
    foreign = csrf_of(other.get("/console", headers=HTML).text)
    refused = open_client.post("/console/changes/op-1/retry", data={"csrf_token": foreign})
    assert refused.status_code == 403
    done = open_client.post("/console/changes/op-1/retry", data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 303
    assert done.headers["location"] == "/console"
    assert status_of(db, "op-1") == "pending"


def test_discard_by_htmx_answers_the_conflicts_panel(
    open_client: TestClient, db: sqlite3.Connection
) -> None:
    _park(db, "SKU-1", "op-1")
    _park(db, "SKU-1", "op-2", delta=-1)
    token = csrf_of(open_client.get("/console", headers=HTML).text)
    answer = open_client.post(
        "/console/changes/op-1/discard", data={"csrf_token": token}, headers=HTMX
    )
    assert answer.status_code == 200
    assert "Parked conflicts (1)" in answer.text
    assert "op-2" in answer.text
    assert status_of(db, "op-1") == "discarded"
    assert_local_view_consistent(db)
    again = open_client.post(
        "/console/changes/op-1/discard", data={"csrf_token": token}, headers=HTMX
    )
    assert again.status_code == 409, "the JSON API's refusal: not in conflict"
    missing = open_client.post(
        "/console/changes/nope/retry", data={"csrf_token": token}, headers=HTML
    )
    assert missing.status_code == 404
    assert "<html" in missing.text, "a page for a navigation"
    assert_secured(missing)


def test_with_keys_the_console_asks_for_a_key_once(
    keyed_client: TestClient, db: sqlite3.Connection
) -> None:
    _park(db, "SKU-1", "op-1")
    first = keyed_client.get("/console", headers=HTML)
    assert first.status_code == 303
    assert first.headers["location"].startswith("/console/login?next=/console")
    assert keyed_client.get("/console/fragments/status", headers=HTMX).status_code == 401
    form = keyed_client.get("/console/login", headers=HTML)
    assert_secured(form)
    wrong = keyed_client.post(
        "/console/login", data={"csrf_token": csrf_of(form.text), "credential": "not-the-key"}
    )
    assert wrong.status_code == 401
    assert "not-the-key" not in wrong.text
    no_csrf = keyed_client.post("/console/login", data={"credential": KEY})
    assert no_csrf.status_code == 403
    response = keyed_client.post(
        "/console/login",
        data={"csrf_token": csrf_of(form.text), "credential": KEY, "next": "https://evil.test/"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console"
    cookie = response.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/console", "Max-Age=28800"):
        assert attribute in cookie
    assert KEY not in cookie, "the session names the key by an HMAC, never the key"
    page = keyed_client.get("/console", headers=HTML)
    assert page.status_code == 200
    assert "Sign out" in page.text
    token = csrf_of(page.text)
    assert token != csrf_of(form.text), "a new CSRF token at sign-in"
    retried = keyed_client.post("/console/changes/op-1/retry", data={"csrf_token": token})
    assert retried.status_code == 303
    assert status_of(db, "op-1") == "pending"
    out = keyed_client.post("/console/logout", data={"csrf_token": token})
    assert out.status_code == 303
    assert 'store_console=""' in out.headers["set-cookie"]
    assert keyed_client.get("/console", headers=HTML).status_code == 303


def test_a_tampered_session_cookie_is_no_session(keyed_client: TestClient) -> None:
    sign_in(keyed_client)
    cookie = keyed_client.cookies["store_console"]
    keyed_client.cookies.clear()
    keyed_client.cookies.set("store_console", cookie[:-2] + "xx", path="/console")
    assert keyed_client.get("/console", headers=HTML).status_code == 303


def test_anonymous_reads_make_a_read_only_console(
    reads_client: TestClient, db: sqlite3.Connection
) -> None:
    _park(db, "SKU-1", "op-1")
    page = reads_client.get("/console", headers=HTML)
    assert page.status_code == 200
    assert "Read-only" in page.text
    assert "Sign in to act" in page.text
    assert "/retry" not in page.text
    assert "/discard" not in page.text
    token = csrf_of(reads_client.get("/console/login", headers=HTML).text)  # same session
    refused = reads_client.post(
        "/console/changes/op-1/retry", data={"csrf_token": token}, headers=HTMX
    )
    assert refused.status_code == 401
    assert status_of(db, "op-1") == "conflict"
    sign_in(reads_client)
    assert "/retry" in reads_client.get("/console", headers=HTML).text


def test_search_by_sku_operation_id_and_state(
    open_client: TestClient, db: sqlite3.Connection
) -> None:
    local_update(db, "SKU-A", 1, "op-a1")
    local_update(db, "SKU-B", 1, "op-b1")
    _park(db, "SKU-A", "op-a2")

    def shown(**params: str) -> list[str]:
        page = open_client.get("/console/changes", params=params, headers=HTML)
        assert page.status_code == 200, page.text
        return re.findall(r'<tr data-operation-id="([^"]+)"', page.text)

    assert shown() == ["op-a2", "op-b1", "op-a1"], "newest first"
    assert shown(sku="SKU-A") == ["op-a2", "op-a1"]
    assert shown(state="conflict") == ["op-a2"]
    assert shown(sku="SKU-A", state="pending") == ["op-a1"]
    assert shown(operation_id="op-b1") == ["op-b1"]
    assert shown(operation_id="op-b1", sku="SKU-A") == []
    assert shown(state="") == ["op-a2", "op-b1", "op-a1"], "the form's 'any'"
    bad = open_client.get("/console/changes", params={"state": "lost"})
    assert bad.status_code == 422
    assert bad.json()["type"].endswith("/validation-error")


def test_item_view_and_unknown_sku(open_client: TestClient, db: sqlite3.Connection) -> None:
    local_update(db, "SKU-1", 4, "op-1")
    page = open_client.get("/console/items/SKU-1", headers=HTML)
    assert page.status_code == 200
    assert 'data-testid="local-quantity">4<' in page.text
    assert "op-1" in page.text
    missing = open_client.get("/console/items/SKU-NONE", headers=HTML)
    assert missing.status_code == 404
    assert "SKU not found" in missing.text


def test_static_files_are_served_with_the_headers(open_client: TestClient) -> None:
    for path in ("/console/static/console.js", "/console/static/vendor/htmx/htmx.min.js"):
        response = open_client.get(path)
        assert response.status_code == 200
        assert_secured(response)
    assert open_client.get("/console/static/../../store_service/config.py").status_code == 404


def test_the_update_path_carries_no_console_headers(open_client: TestClient) -> None:
    response = open_client.post(
        "/v1/local/inventory/SKU-1/update", json={"delta": 1, "operation_id": "op-hot"}
    )
    assert response.status_code == 200
    assert "content-security-policy" not in response.headers, "no console middleware"
