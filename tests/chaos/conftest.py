"""Chaos tests need a real RabbitMQ and a real Toxiproxy: in CI their absence fails the test,
elsewhere it skips with the command that starts them.

We do not use the shared `toxiproxy` fixture: it resets the whole server (every proxy and
toxic, including other suites' proxies); a chaos run only ever touches its own proxies.
"""

from __future__ import annotations

import pytest

from chaos.toxiproxy import ToxiproxyClient, ToxiproxyError
from tests.support.processes import REPO_ROOT, require
from tests.support.services import TOXIPROXY_SCRIPT, toxiproxy_url


@pytest.fixture(scope="session")
def toxiproxy_server() -> str:
    """The URL of a running Toxiproxy server."""
    url = toxiproxy_url()
    with ToxiproxyClient(url) as client:
        try:
            client.version()
            answers = True
        except ToxiproxyError:
            answers = False
    require(
        answers, f"Toxiproxy at {url}", f"bash {TOXIPROXY_SCRIPT.relative_to(REPO_ROOT)} ensure"
    )
    return url
