"""Figures measured by tests (shed rate, seconds to recover...), printed at the end of the run.

A test reports a number rather than passing or failing on wall-clock time; these are the numbers.
"""

from __future__ import annotations

import pytest

FIGURES = pytest.StashKey[dict[str, str]]()


def record(config: pytest.Config, name: str, value: str) -> None:
    """Keep ``name: value`` for the summary at the end of the run."""
    config.stash.setdefault(FIGURES, {})[name] = value


def write_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the recorded figures once (both conftests that call this share one stash)."""
    figures = terminalreporter.config.stash.get(FIGURES, {})
    if not figures:
        return
    terminalreporter.section("measured figures")
    for name, value in figures.items():
        terminalreporter.write_line(f"{name}: {value}")
    figures.clear()
