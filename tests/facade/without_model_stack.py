"""A pytest plugin that makes the model stack and ``training`` unimportable, as in the facade's image.

Loaded with ``-p tests.facade.without_model_stack``: before the first conftest is loaded, any import
of a blocked package (directly, or inside a library) starts raising ImportError. Importing this
module does nothing else.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

import pytest

BLOCKED = frozenset(
    {"mlflow", "pandas", "numpy", "sklearn", "scipy", "skops", "matplotlib", "fairlearn", "training"}
)


class _Blocker:
    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed where only the facade's dependencies are")
        return None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests() -> None:
    for name in [m for m in sys.modules if m.split(".")[0] in BLOCKED]:
        del sys.modules[name]
    sys.meta_path.insert(0, _Blocker())
