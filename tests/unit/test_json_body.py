"""Both services' JSON body rules: unique keys, and which media types are a JSON document."""

import pytest

from http_edge.json_body import DuplicateKey, check_unique_keys, is_json_document


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'{"delta": 1, "delta": 2}', "delta"),
        (b'{"items": [{"sku": "a", "sku": "b"}]}', "sku"),
        (b'{"a": {"b": 1, "b": 1}}', "b"),
    ],
)
def test_a_repeated_key_at_any_depth_is_named(raw: bytes, key: str) -> None:
    with pytest.raises(DuplicateKey) as refused:
        check_unique_keys(raw)
    assert refused.value.key == key


@pytest.mark.parametrize(
    "raw", [b'{"delta": 1, "operation_id": "x"}', b'[{"a": 1}, {"a": 2}]', b"not json", b"{"]
)
def test_unique_keys_and_text_that_is_not_json_pass(raw: bytes) -> None:
    check_unique_keys(raw)  # not JSON: the model's parser answers it as malformed


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/vnd.store+json", True),
        ("application/merge-patch+json", False),
        ("application/json-patch+json", False),
        ("text/json", False),
        ("text/plain", False),
        (None, False),
    ],
)
def test_only_json_document_types_are_accepted(content_type: str | None, accepted: bool) -> None:
    assert is_json_document(content_type) is accepted
