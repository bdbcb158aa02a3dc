"""What a test needs beyond the harness: CI-aware refusal when a real service is missing."""

import os

import pytest

from harness.processes import REPO_ROOT

__all__ = ["REPO_ROOT", "in_ci", "require"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(available: bool, what: str, how_to_start: str) -> None:
    """Fail in CI, skip with instructions elsewhere, when a service a test needs is absent."""
    if available:
        return
    message = f"{what} is not available; start it with: {how_to_start}"
    if in_ci():
        pytest.fail(f"CI=true and {message}")
    pytest.skip(message)
