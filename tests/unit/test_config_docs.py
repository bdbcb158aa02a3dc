"""docs/configuration.md is generated from the Settings classes and must match them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from scripts import config_docs


def test_the_committed_configuration_page_matches_the_settings() -> None:
    committed = config_docs.DOC_PATH.read_text(encoding="utf-8")
    assert committed == config_docs.render(), (
        f"docs/configuration.md is stale: run `{config_docs.REGENERATE}` and commit the result"
    )


def test_check_mode_says_how_to_regenerate_a_stale_page(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stale = tmp_path / "docs" / "configuration.md"
    stale.parent.mkdir()
    stale.write_text("# Configuration\n\nold\n", encoding="utf-8")
    monkeypatch.setattr(config_docs, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(config_docs, "DOC_PATH", stale)

    assert config_docs.main(["--check"]) == 1
    assert config_docs.REGENERATE in capsys.readouterr().err

    assert config_docs.main([]) == 0
    assert config_docs.main(["--check"]) == 0


class _Example(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EX_")

    token: SecretStr = Field(SecretStr("do-not-print-me"), description="A secret with a default.")
    keys: Annotated[frozenset[SecretStr], Field(description="Secrets in a set.")] = frozenset()
    name: str = Field("x", pattern=r"^a|b$", min_length=1, description="A | in a pattern.")
    limit: int = Field(5, json_schema_extra={"maximum": 9}, description="From the schema extra.")
    hidden: str | None = Field(
        None, json_schema_extra={"secret": True}, description="Marked secret by its schema extra."
    )


def test_secrets_show_no_default_and_constraints_come_from_the_metadata() -> None:
    rows = {row.variable: row for row in config_docs.rows(config_docs.Service("ex", _Example))}

    assert rows["`EX_TOKEN`"].default == "not shown (secret)"
    assert "**secret**" in rows["`EX_TOKEN`"].type
    assert "**secret**" in rows["`EX_KEYS`"].type
    assert "**secret**" in rows["`EX_HIDDEN`"].type
    assert rows["`EX_NAME`"].constraints == "length ≥ 1, pattern `^a|b$`"
    assert rows["`EX_LIMIT`"].constraints == "≤ 9"
    page = "\n".join(config_docs.table(config_docs.Service("ex", _Example)))
    assert "do-not-print-me" not in page
    assert r"pattern `^a\|b$`" in page, "a pipe must not split the table cell"


def test_a_setting_without_a_description_is_an_error() -> None:
    class Undocumented(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="UN_")
        level: str = "INFO"

    with pytest.raises(ValueError, match="level has no description"):
        config_docs.rows(config_docs.Service("un", Undocumented))
