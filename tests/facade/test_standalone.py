"""The facade tests run where only the facade's dependencies are installed: no model stack, no training."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.facade.without_model_stack import BLOCKED

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def test_every_facade_test_module_imports_with_the_model_stack_unimportable() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
            "-p", "tests.facade.without_model_stack", str(HERE),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    test_files = {path.name for path in HERE.rglob("test_*.py")}
    assert {line.split("::")[0].rsplit("/", 1)[-1] for line in collected} == test_files
    assert len(collected) > 200


def test_no_facade_test_imports_the_model_stack_even_inside_a_function() -> None:
    """Collection imports every module; a test could still import lazily, so read them all."""
    offending = []
    for path in HERE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offending += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] in BLOCKED]

    assert offending == []
