"""The shape of a log line: JSON with an ISO UTC timestamp, the level, and the request id."""

import io
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import structlog

from store_service.logs import configure_logging, request_id_var

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.BytesIO]:
    """The logging configuration the services use, writing to a buffer instead of stdout."""
    out = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out, write_through=True))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("INFO")
    yield out
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(out: io.BytesIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_an_update_event_carries_the_request_id_sku_and_operation_id(json_logs) -> None:
    log = structlog.get_logger("store_service.api.inventory")
    token = request_id_var.set("req-1")
    try:
        log.info("update_applied", sku="SKU-00001", operation_id="op-1", delta=-2)
    finally:
        request_id_var.reset(token)
    log.info("outside_a_request")
    inside, outside = _lines(json_logs)
    assert inside["event"] == "update_applied"
    assert (inside["request_id"], inside["sku"], inside["operation_id"]) == (
        "req-1",
        "SKU-00001",
        "op-1",
    )
    assert (inside["level"], inside["logger"]) == ("info", "store_service.api.inventory")
    assert "request_id" not in outside


def test_a_request_id_given_to_the_call_is_kept(json_logs) -> None:
    token = request_id_var.set("req-ambient")
    try:
        structlog.get_logger("t").info("event", request_id="req-explicit")
    finally:
        request_id_var.reset(token)
    assert _lines(json_logs)[0]["request_id"] == "req-explicit"


def test_timestamps_are_iso_utc_with_microseconds_and_the_current_time(json_logs) -> None:
    log = structlog.get_logger("t")
    before = time.time()
    for _ in range(3):
        log.info("tick")
    after = time.time()
    for line in _lines(json_logs):
        assert ISO_UTC.match(line["timestamp"]), line["timestamp"]
        stamp = datetime.strptime(line["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert before - 1e-6 <= stamp.timestamp() <= after + 1e-6


def test_standard_library_records_get_the_same_request_id(json_logs) -> None:
    token = request_id_var.set("req-2")
    try:
        logging.getLogger("celery.worker").warning("from the standard library")
    finally:
        request_id_var.reset(token)
    (line,) = _lines(json_logs)
    assert (line["request_id"], line["level"], line["logger"]) == (
        "req-2",
        "warning",
        "celery.worker",
    )
