"""How a store node's URLs are pointed through its Toxiproxy proxies."""

import pytest

from chaos.node import via
from chaos.toxiproxy import Proxy

PROXY = Proxy(name="p", listen="127.0.0.1:4242", upstream="127.0.0.1:5672", enabled=True)


@pytest.mark.parametrize(
    ("url", "through"),
    [
        ("amqp://guest:guest@127.0.0.1:5672//", "amqp://guest:guest@127.0.0.1:4242//"),
        ("amqp://127.0.0.1:5672//", "amqp://127.0.0.1:4242//"),
        ("amqp://user@rabbit:5672/vhost", "amqp://user@127.0.0.1:4242/vhost"),
        ("amqp://us%40r:p%3Aw@rabbit:5672/v", "amqp://us%40r:p%3Aw@127.0.0.1:4242/v"),
        ("http://127.0.0.1:8000/path?q=1", "http://127.0.0.1:4242/path?q=1"),
    ],
)
def test_via_swaps_only_the_address_and_keeps_the_credentials_as_written(
    url: str, through: str
) -> None:
    assert via(url, PROXY) == through
