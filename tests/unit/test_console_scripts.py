"""The console scripts a deployment runs ([project.scripts]): each resolves to a function, is
installed beside the interpreter, answers --help, and is documented in docs/operations.md."""

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.processes import REPO_ROOT

SCRIPTS: dict[str, str] = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
    "scripts"
]
OPERATIONS = REPO_ROOT / "docs" / "operations.md"


def test_a_deployment_has_its_commands() -> None:
    expected = {"store-api", "store-refresh", "store-backup", "store-worker-healthcheck"}
    assert expected | {"central-sim"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_the_script_resolves_installs_and_answers_help(name: str) -> None:
    module, function = SCRIPTS[name].split(":")
    assert callable(getattr(importlib.import_module(module), function))
    executable = Path(sys.executable).parent / name
    assert executable.exists(), f"{name} not installed: run `uv sync`"
    result = subprocess.run(
        [str(executable), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:"), result.stdout


def documented_scripts(text: str) -> set[str]:
    """Names in the first column of operations.md's console script table."""
    rows = (line for line in text.splitlines() if line.startswith("| `"))
    return {row.split("`")[1].split()[0] for row in rows}


def test_every_script_is_documented_in_the_operations_page() -> None:
    documented = documented_scripts(OPERATIONS.read_text())
    assert set(SCRIPTS) - documented == set(), "add them to docs/operations.md's table"


def test_the_documentation_check_sees_a_missing_row() -> None:
    text = OPERATIONS.read_text()
    lines = text.splitlines()
    without = "\n".join(line for line in lines if not line.startswith("| `store-backup"))
    assert "store-backup" not in documented_scripts(without)
    assert "store-backup" in documented_scripts(text)
