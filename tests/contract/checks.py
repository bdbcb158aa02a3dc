"""Custom Schemathesis checks: the semantics a JSON Schema cannot state, for both APIs.

Imported by the pytest contract tests and, as the CLI's hooks module (`schemathesis.toml`:
`hooks = "tests.contract.checks"`), by `schemathesis run`. Every check is registered globally but
acts only on the operations it is about (by operationId), and only on a first, successful write,
so each generated write is followed by:

- a replay of the exact request: same status and body, `Idempotent-Replayed: true`, and no
  second effect (the item is unchanged, central's journal holds the key once);
- a write with a stale version: 409 with the current quantity and version, nothing recorded;
- the same operation_id with another delta: 422, nothing applied.

bulk-sync: one result per item in input order, and a replay of a batch turns every `applied`
result into a `duplicate` with the original quantity and version, journaled once.

`positive_data_acceptance_beyond_schema` replaces the built-in `positive_data_acceptance`
(disabled in the config) with the very same check, except for refusals that depend on state or
on two fields at once, which no JSON Schema can express (listed in `STATEFUL_REFUSALS`).
"""

import json
import os
import uuid
from collections import Counter
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import schemathesis
from schemathesis.core.failures import Failure
from schemathesis.specs.openapi.checks import positive_data_acceptance as builtin_acceptance

STORE_UPDATE = "update_item"
SIM_ADJUST = "adjust_v1_inventory__sku__adjust_post"
SIM_BULK = "bulk_sync_v1_inventory_bulk_sync_post"
SIM_COMPETING = "start_competing_writer__sim_competing_writer_post"
ADMIN_TOKEN_ENV = "CENTRAL_SIM_ADMIN_TOKEN"
MAX_ABS_DELTA = 1_000_000  # the smaller of the two APIs' bounds

# operationId -> problem `type` suffixes that a schema-valid request may honestly get as a 422:
STATEFUL_REFUSALS: dict[str, tuple[str, ...]] = {
    # the operation_id was used before with another payload (state, not shape)
    STORE_UPDATE: ("/operation-id-reused",),
    # same for the Idempotency-Key; and body sku != path sku (two fields at once)
    SIM_ADJUST: ("/idempotency-key-reused", "/sku-mismatch"),
}
# Model-level (cross-field) validation errors: min_delta <= max_delta, a non-zero range.
CROSS_FIELD_VALIDATION = {SIM_COMPETING}


# How often each semantic check ran its full sequence (tests assert they did run at all).
RAN: Counter[str] = Counter()


class ContractViolation(AssertionError):
    """A semantic rule broken; the message says which and shows the evidence."""


def _operation_id(case: Any) -> str | None:
    return case.operation.definition.raw.get("operationId")


def _first_success(response: Any) -> bool:
    return response.status_code == 200 and "idempotent-replayed" not in response.headers


# --- talking to the API under test --------------------------------------------------------


def _session(case: Any) -> requests.Session:
    """A requests session to the API under test: in-process ASGI or over the network."""
    if case.operation.app is not None:
        from schemathesis.python.asgi import get_client

        return get_client(case.operation.app)
    return requests.Session()


def _url(response: Any, path: str, query: str = "") -> str:
    parts = urlsplit(response.request.url)
    base = parts.path[: parts.path.find("/v1/")] if "/v1/" in parts.path else ""
    return urlunsplit((parts.scheme, parts.netloc, base + path, query, ""))


def _auth_headers(response: Any) -> dict[str, str]:
    sent = response.request.headers
    return {k: v for k, v in sent.items() if k.lower() in {"authorization", "x-api-key"}}


def _send(case: Any, method: str, url: str, **kwargs: Any) -> requests.Response:
    with _session(case) as session:
        return session.request(method, url, timeout=30, **kwargs)


def _replay(case: Any, response: Any) -> requests.Response:
    sent = response.request
    return _send(case, sent.method, sent.url, data=sent.body, headers=dict(sent.headers))


def _get_json(case: Any, response: Any, path: str, query: str = "") -> Any:
    answer = _send(case, "GET", _url(response, path, query), headers=_auth_headers(response))
    return answer.status_code, answer.json() if answer.content else None


def _admin_get(case: Any, response: Any, path: str, query: str) -> Any:
    token = os.environ.get(ADMIN_TOKEN_ENV)
    if not token:
        return None  # no admin token in this run: the journal cannot be read
    answer = _send(
        case, "GET", _url(response, path, query), headers={"Authorization": f"Bearer {token}"}
    )
    return answer.json() if answer.status_code == 200 else None


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ContractViolation(message)


def _other_delta(delta: int) -> int:
    """A different non-zero delta within bounds."""
    if abs(delta) == 1:
        return 2 * delta
    return delta - 1 if delta > 0 else delta + 1


def _problem(answer: requests.Response) -> dict[str, Any]:
    _expect(
        answer.headers.get("content-type", "").startswith("application/problem+json"),
        f"expected a problem document, got {answer.headers.get('content-type')}: {answer.text}",
    )
    body: dict[str, Any] = answer.json()
    return body


# --- store: POST /v1/local/inventory/{sku}/update -----------------------------------------


@schemathesis.check
def store_update_semantics(ctx: Any, response: Any, case: Any) -> bool | None:
    """Replay, stale version and reused operation_id, after each first successful update."""
    if _operation_id(case) != STORE_UPDATE or not _first_success(response):
        return None
    first = response.json()
    sku, op = first["sku"], first["operation_id"]
    item_path = f"/v1/local/inventory/{sku}"

    _, before = _get_json(case, response, item_path)
    replay = _replay(case, response)
    _expect(replay.status_code == 200, f"replay answered {replay.status_code}: {replay.text}")
    _expect(
        replay.headers.get("idempotent-replayed") == "true",
        "a replay must carry `Idempotent-Replayed: true`",
    )
    _expect(replay.content == response.content, "a replay must return the very same body")
    _, after = _get_json(case, response, item_path)
    _expect(after == before, f"a replay changed the item: {before} -> {after}")
    status_code, change = _get_json(case, response, f"/v1/local/sync/status/{op}")
    _expect(status_code == 200 and change["delta"] == first["delta"], f"change: {change}")

    auth = _auth_headers(response)
    url = _url(response, f"/v1/local/inventory/{sku}/update")
    stale_op = f"stale-{uuid.uuid4()}"
    stale = _send(
        case,
        "POST",
        url,
        json={"delta": first["delta"], "operation_id": stale_op, "version": first["version"] + 1},
        headers=auth,
    )
    _expect(stale.status_code == 409, f"a stale version got {stale.status_code}: {stale.text}")
    problem = _problem(stale)
    _expect(problem["type"].endswith("/version-conflict"), f"409 type: {problem['type']}")
    _expect(
        (problem.get("current_quantity"), problem.get("current_version"))
        == (after["quantity"], after["version"]),
        f"409 must carry the current state {after}: {problem}",
    )
    status_code, _ = _get_json(case, response, f"/v1/local/sync/status/{stale_op}")
    _expect(status_code == 404, "a refused write must leave no change behind")

    reused = _send(
        case,
        "POST",
        url,
        json={"delta": _other_delta(first["delta"]), "operation_id": op},
        headers=auth,
    )
    _expect(reused.status_code == 422, f"a reused operation_id got {reused.status_code}")
    _expect(_problem(reused)["type"].endswith("/operation-id-reused"), reused.text)
    _, final = _get_json(case, response, item_path)
    _expect(final == after, f"refused writes changed the item: {after} -> {final}")
    RAN["store_update_semantics"] += 1
    return True


# --- central_sim: adjust and bulk-sync -----------------------------------------------------


def _journaled_once(case: Any, response: Any, sku: str, operation_id: str) -> None:
    journal = _admin_get(case, response, "/_sim/journal", f"sku={sku}&limit=10000")
    if journal is None:
        return
    entries = [e for e in journal["entries"] if e["operation_id"] == operation_id]
    _expect(len(entries) == 1, f"{operation_id} journaled {len(entries)} times, not once")


@schemathesis.check
def central_adjust_semantics(ctx: Any, response: Any, case: Any) -> bool | None:
    """Replay, stale version and reused key, after each first successful adjust."""
    if _operation_id(case) != SIM_ADJUST or not _first_success(response):
        return None
    first = response.json()
    sku, key = first["sku"], first["operation_id"]

    replay = _replay(case, response)
    _expect(replay.status_code == 200, f"replay answered {replay.status_code}: {replay.text}")
    _expect(replay.headers.get("idempotent-replayed") == "true", "replay header missing")
    again = replay.json()
    _expect(
        again == {**first, "status": "duplicate"},
        f"a replay must return the original outcome as a duplicate: {first} vs {again}",
    )
    _journaled_once(case, response, sku, key)

    auth = _auth_headers(response)
    url = _url(response, f"/v1/inventory/{sku}/adjust")
    # No version is ever ahead of central's: version + 1000 is stale or from the future alike.
    sent_delta = int(_sent_json(response).get("delta", 1))
    stale = _send(
        case,
        "POST",
        url,
        json={"sku": sku, "delta": sent_delta, "version": first["version"] + 1000},
        headers={**auth, "Idempotency-Key": f"stale-{uuid.uuid4()}"},
    )
    _expect(stale.status_code == 409, f"a stale version got {stale.status_code}: {stale.text}")
    problem = _problem(stale)
    _expect(problem["type"].endswith("/version-conflict"), problem["type"])
    # A competing writer may move central on, never back.
    _expect(
        isinstance(problem.get("current_quantity"), int)
        and problem.get("current_version", -1) >= first["version"],
        f"409 must carry central's current state: {problem}",
    )

    reused = _send(
        case,
        "POST",
        url,
        json={"sku": sku, "delta": _other_delta(sent_delta)},
        headers={**auth, "Idempotency-Key": key},
    )
    _expect(reused.status_code == 422, f"a reused key got {reused.status_code}: {reused.text}")
    _expect(_problem(reused)["type"].endswith("/idempotency-key-reused"), reused.text)
    _journaled_once(case, response, sku, key)
    RAN["central_adjust_semantics"] += 1
    return True


def _sent_json(response: Any) -> dict[str, Any]:
    body = response.request.body
    try:
        value = json.loads(body) if body else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@schemathesis.check
def central_bulk_sync_semantics(ctx: Any, response: Any, case: Any) -> bool | None:
    """One result per item in order; a replayed batch is all duplicates of what was applied."""
    if _operation_id(case) != SIM_BULK or response.status_code != 200:
        return None
    items = _sent_json(response).get("items", [])
    results = response.json()["results"]
    _expect(len(results) == len(items), f"{len(items)} items but {len(results)} results")
    for item, result in zip(items, results, strict=True):
        if isinstance(item, dict) and isinstance(item.get("operation_id"), str):
            _expect(result["operation_id"] == item["operation_id"], "results out of input order")
    replay = _replay(case, response)
    _expect(replay.status_code == 200, f"replay answered {replay.status_code}: {replay.text}")
    for result, again in zip(results, replay.json()["results"], strict=True):
        if result["status"] != "applied":
            continue
        _expect(
            again == {**result, "status": "duplicate"},
            f"a replayed applied item must be a duplicate of the original: {result} vs {again}",
        )
        _journaled_once(case, response, result["sku"], result["operation_id"])
    RAN["central_bulk_sync_semantics"] += 1
    return True


# --- the built-in acceptance check, minus refusals no schema can express ------------------


def _honest_refusal(case: Any, response: Any) -> bool:
    if response.status_code != 422:
        return False
    operation_id = _operation_id(case)
    try:
        problem = response.json()
    except ValueError:
        return False
    problem_type = str(problem.get("type", ""))
    if problem_type.endswith(STATEFUL_REFUSALS.get(operation_id or "", ())):
        return True
    # A model-level validator blames the whole body: {"field": ""}.
    errors = problem.get("errors") or []
    return operation_id in CROSS_FIELD_VALIDATION and all(
        e.get("field") == "" for e in errors if isinstance(e, dict)
    )


@schemathesis.check
def positive_data_acceptance_beyond_schema(ctx: Any, response: Any, case: Any) -> bool | None:
    try:
        return builtin_acceptance(ctx, response, case)
    except Failure:
        if _honest_refusal(case, response):
            return None
        raise
