"""A machine that cannot mount LazyFS: the power-cut tests skip saying why and what to
install, and fail under CI=true (a skipped power-cut test there would pass CI unproven)."""

from __future__ import annotations

from typing import Any

import pytest

from chaos.lazyfs import LazyFSError
from tests.support import lazyfs


def refuse_mounts(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: Any, **kwargs: Any) -> None:
        raise LazyFSError("fusermount3: mount failed: Operation not permitted")

    monkeypatch.setattr(lazyfs, "fuse_unavailable_reason", lambda: None)
    monkeypatch.setattr(lazyfs, "mount_lazyfs", refused)


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_missing_fuse_skips_outside_ci_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(lazyfs, "fuse_unavailable_reason", lambda: "/dev/fuse does not exist")
    expected = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(expected) as refused:
        lazyfs.require_lazyfs()
    assert "/dev/fuse does not exist" in str(refused.value)
    assert "apt-get install fuse3" in str(refused.value)


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_refused_mount_skips_outside_ci_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    refuse_mounts(monkeypatch)
    expected = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(expected) as refused:
        lazyfs.require_lazyfs()
    assert "Operation not permitted" in str(refused.value)
    assert ("CI=true" in str(refused.value)) == bool(ci)
