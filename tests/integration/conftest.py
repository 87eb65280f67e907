"""Fixtures of the integration tests: the figures they measure, printed at the end of the run."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.figures import record, write_summary


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """Report a measured figure (printed in the "measured figures" section of the summary)."""
    return lambda name, value: record(request.config, name, value)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    write_summary(terminalreporter)
