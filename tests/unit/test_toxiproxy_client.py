"""Request shapes and error mapping of the Toxiproxy client, against a mock transport."""

import json
from collections.abc import Callable

import httpx
import pytest

from chaos.toxiproxy import (
    REMOVE_TIMEOUT,
    Toxic,
    ToxiproxyClient,
    ToxiproxyError,
    ToxiproxyUnavailable,
    cut,
    fault,
)

Handler = Callable[[httpx.Request], httpx.Response]

PROXY_JSON = {
    "name": "central",
    "listen": "127.0.0.1:21000",
    "upstream": "127.0.0.1:8000",
    "enabled": True,
    "toxics": [],
}
TOXIC_JSON = {
    "name": "latency_downstream",
    "type": "latency",
    "stream": "downstream",
    "toxicity": 1,
    "attributes": {"latency": 500, "jitter": 0},
}


def api_error(status: int, message: str) -> httpx.Response:
    # What the server sends: JSON through Go's http.Error, so a text/plain content type.
    body = json.dumps({"error": message, "status": status}) + "\n"
    return httpx.Response(status, text=body, headers={"content-type": "text/plain"})


class Recorder:
    """A mock transport that records (method, path, json body) and answers from a handler."""

    def __init__(self, handler: Handler) -> None:
        self.calls: list[tuple[str, str, object]] = []
        self.handler = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.calls.append((request.method, request.url.path, body))
        return self.handler(request)

    def client(self) -> ToxiproxyClient:
        return ToxiproxyClient("http://toxiproxy.test:8474/", transport=httpx.MockTransport(self))


def test_version_reads_plain_text_and_json() -> None:
    plain = Recorder(lambda _: httpx.Response(200, text="2.5.0"))
    assert plain.client().version() == "2.5.0"
    as_json = Recorder(lambda _: httpx.Response(200, json={"version": "2.12.0"}))
    assert as_json.client().version() == "2.12.0"


def test_reset_posts_to_reset() -> None:
    rec = Recorder(lambda _: httpx.Response(204))
    rec.client().reset()
    assert rec.calls == [("POST", "/reset", None)]


def test_create_proxy_deletes_any_existing_one_then_creates() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return api_error(404, "proxy not found")
        return httpx.Response(201, json={**PROXY_JSON, "listen": "127.0.0.1:21000"})

    rec = Recorder(handler)
    proxy = rec.client().create_proxy("central", "127.0.0.1:0", "127.0.0.1:8000")

    assert rec.calls == [
        ("DELETE", "/proxies/central", None),
        (
            "POST",
            "/proxies",
            {
                "name": "central",
                "listen": "127.0.0.1:0",
                "upstream": "127.0.0.1:8000",
                "enabled": True,
            },
        ),
    ]
    assert proxy.listen_port == 21000
    assert proxy.listen_host == "127.0.0.1"


def test_disable_and_enable_update_only_the_enabled_flag() -> None:
    rec = Recorder(lambda _: httpx.Response(200, json=PROXY_JSON))
    client = rec.client()
    client.disable("central")
    client.enable("central")
    assert rec.calls == [
        ("POST", "/proxies/central", {"enabled": False}),
        ("POST", "/proxies/central", {"enabled": True}),
    ]


def test_add_toxic_sends_type_stream_toxicity_and_attributes() -> None:
    rec = Recorder(lambda _: httpx.Response(200, json=TOXIC_JSON))
    toxic = rec.client().add_toxic("central", "latency", {"latency": 500, "jitter": 0})

    assert rec.calls == [
        (
            "POST",
            "/proxies/central/toxics",
            {
                "type": "latency",
                "stream": "downstream",
                "toxicity": 1.0,
                "attributes": {"latency": 500, "jitter": 0},
            },
        )
    ]
    assert toxic == Toxic(
        name="latency_downstream",
        type="latency",
        stream="downstream",
        toxicity=1.0,
        attributes={"latency": 500, "jitter": 0},
    )


def test_add_toxic_passes_a_name_and_upstream_stream() -> None:
    rec = Recorder(lambda _: httpx.Response(200, json={**TOXIC_JSON, "name": "cut-off"}))
    rec.client().add_toxic(
        "central", "timeout", {"timeout": 0}, stream="upstream", toxicity=0.5, name="cut-off"
    )
    assert rec.calls[0][2] == {
        "type": "timeout",
        "stream": "upstream",
        "toxicity": 0.5,
        "attributes": {"timeout": 0},
        "name": "cut-off",
    }


def test_update_toxic_sends_only_what_changes() -> None:
    rec = Recorder(lambda _: httpx.Response(200, json=TOXIC_JSON))
    client = rec.client()
    client.update_toxic("central", "latency_downstream", {"latency": 900})
    client.update_toxic("central", "latency_downstream", toxicity=0.25)
    assert rec.calls == [
        ("POST", "/proxies/central/toxics/latency_downstream", {"attributes": {"latency": 900}}),
        (
            "POST",
            "/proxies/central/toxics/latency_downstream",
            {"attributes": {}, "toxicity": 0.25},
        ),
    ]


def test_list_toxics_and_get_proxy_parse_the_server_shapes() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/toxics"):
            return httpx.Response(200, json=[TOXIC_JSON])
        return httpx.Response(200, json={**PROXY_JSON, "enabled": False, "toxics": [TOXIC_JSON]})

    client = Recorder(handler).client()
    assert [t.name for t in client.list_toxics("central")] == ["latency_downstream"]
    proxy = client.get_proxy("central")
    assert not proxy.enabled
    assert proxy.toxics[0].attributes == {"latency": 500, "jitter": 0}


def test_api_errors_raise_with_the_servers_message_and_status() -> None:
    rec = Recorder(lambda _: api_error(409, "toxic already exists"))
    with pytest.raises(ToxiproxyError) as caught:
        rec.client().add_toxic("central", "latency", {"latency": 1})
    assert caught.value.status_code == 409
    assert caught.value.message == "toxic already exists"
    assert "POST /proxies/central/toxics -> 409: toxic already exists" in str(caught.value)


def test_a_non_json_error_body_is_kept_as_the_message() -> None:
    rec = Recorder(lambda _: httpx.Response(502, text="bad gateway"))
    with pytest.raises(ToxiproxyError, match="bad gateway"):
        rec.client().reset()


def test_missing_ok_swallows_only_not_found() -> None:
    not_found = Recorder(lambda _: api_error(404, "toxic not found")).client()
    not_found.remove_toxic("central", "gone", missing_ok=True)
    not_found.delete_proxy("central", missing_ok=True)
    with pytest.raises(ToxiproxyError, match="toxic not found"):
        not_found.remove_toxic("central", "gone")

    broken = Recorder(lambda _: api_error(500, "boom")).client()
    with pytest.raises(ToxiproxyError, match="boom"):
        broken.delete_proxy("central", missing_ok=True)


def test_an_unreachable_server_raises_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ToxiproxyUnavailable, match="not reachable"):
        Recorder(refuse).client().version()


def test_a_removal_that_times_out_is_retried_and_a_404_then_means_removed() -> None:
    # The server goes on with a DELETE the client gave up on (it flushes the toxic's
    # buffered data first), so the retry finds the toxic gone.
    answers: list[object] = ["timeout", api_error(404, "toxic not found")]

    def slow_then_gone(request: httpx.Request) -> httpx.Response:
        assert request.extensions["timeout"]["read"] == REMOVE_TIMEOUT  # not the client's 5 s
        answer = answers.pop(0)
        if answer == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        assert isinstance(answer, httpx.Response)
        return answer

    rec = Recorder(slow_then_gone)
    rec.client().remove_toxic("central", "slow")  # not missing_ok: the 404 follows a timeout
    assert [method for method, _, _ in rec.calls] == ["DELETE", "DELETE"]


def test_a_removal_that_keeps_timing_out_raises_after_its_attempts() -> None:
    def always_slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    rec = Recorder(always_slow)
    with pytest.raises(ToxiproxyUnavailable, match="timed out"):
        rec.client().remove_toxic("central", "slow", missing_ok=True, attempts=3)
    assert len(rec.calls) == 3


@pytest.mark.parametrize(
    "error", [httpx.ConnectError("connection refused"), httpx.ConnectTimeout("timed out")]
)
def test_a_request_that_never_reached_the_server_is_not_retried(error: Exception) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    rec = Recorder(fail)
    with pytest.raises(ToxiproxyUnavailable, match="not reachable"):
        rec.client().remove_toxic("central", "slow", missing_ok=True)
    assert len(rec.calls) == 1


def test_fault_removes_the_toxic_when_the_block_raises() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(204)
        return httpx.Response(200, json={**TOXIC_JSON, "name": "slow"})

    rec = Recorder(handler)
    client = rec.client()

    def fail_inside() -> None:
        with fault(client, "central", "latency", {"latency": 500}, name="slow") as toxic:
            assert toxic.name == "slow"
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert [(method, path) for method, path, _ in rec.calls] == [
        ("POST", "/proxies/central/toxics"),
        ("DELETE", "/proxies/central/toxics/slow"),
    ]


def test_cut_reenables_the_proxy_when_the_block_raises() -> None:
    rec = Recorder(lambda _: httpx.Response(200, json=PROXY_JSON))
    client = rec.client()

    def fail_inside() -> None:
        with cut(client, "central"):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert [body for _, _, body in rec.calls] == [{"enabled": False}, {"enabled": True}]
