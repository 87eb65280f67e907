"""The facade image has no mlflow, pandas, numpy or scikit-learn: building the app must not need them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

BUILD_APP_WITHOUT_MODEL_STACK = """
import sys
for name in ("mlflow", "pandas", "numpy", "sklearn", "scipy", "skops", "matplotlib"):
    sys.modules[name] = None  # NB: makes any `import name` raise ImportError
from fastapi.testclient import TestClient
from facade.main import create_app
with TestClient(create_app()) as client:
    assert client.get("/api/v1/health").status_code == 200
    assert client.get("/openapi.json").status_code == 200
print("ok")
"""


def test_app_builds_and_serves_without_mlflow_pandas_numpy_sklearn() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BUILD_APP_WITHOUT_MODEL_STACK],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_facade_modules_never_import_the_model_stack() -> None:
    sources = "\n".join(path.read_text() for path in (REPO / "facade").rglob("*.py"))

    for name in ("mlflow", "pandas", "numpy", "sklearn"):
        assert f"import {name}" not in sources
        assert f"from {name}" not in sources
