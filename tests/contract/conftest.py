"""Contract level: print how many cases each API got."""

import pytest

from tests.contract.checks import RAN
from tests.contract.support import CASES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if CASES:
        counts = ", ".join(f"{name}: {count}" for name, count in sorted(CASES.items()))
        terminalreporter.write_line(f"contract cases sent: {counts}")
    if RAN:
        ran = ", ".join(f"{name}: {count}" for name, count in sorted(RAN.items()))
        terminalreporter.write_line(f"semantic checks completed: {ran}")
