"""The repository's habits, checked: CI runs the lint and the tests, the license is the declared one,
the pre-commit hooks are the lint's, and nothing cites a document the repository does not hold."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / line for line in listed.stdout.splitlines() if (ROOT / line).is_file()]


def test_ci_runs_the_lint_and_the_readme_test_command() -> None:
    commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]

    assert "make lint" in commands
    assert "make test" in commands
    assert "make test" in (ROOT / "README.md").read_text()


def test_the_license_is_the_apache_license_pyproject_declares() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_pre_commit_runs_the_lints_tools_from_the_venv() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    entries = [hook["entry"] for repo in config["repos"] for hook in repo["hooks"]]

    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    for tool in (".venv/bin/ruff check", ".venv/bin/ruff format", ".venv/bin/mypy"):
        assert any(entry.startswith(tool) for entry in entries), tool


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_pre_commit_accepts_the_config() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "pre-commit"), "validate-config", ".pre-commit-config.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_nothing_cites_a_document_the_repository_does_not_hold() -> None:
    # NB: built from parts, so that this file does not cite them either.
    outside = ["DESIGN" + ".md", "STYLE" + ".md", "/work/" + "shared", "../" + "shared"]
    cited = re.compile(r"docs/[A-Za-z0-9_.-]+\.md")
    problems = []
    for path in tracked_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        problems += [f"{path.relative_to(ROOT)}: {name}" for name in outside if name in text]
        problems += [
            f"{path.relative_to(ROOT)}: {doc} is missing"
            for doc in set(cited.findall(text))
            if not (ROOT / doc).is_file()
        ]

    assert problems == []
