"""Settings: defaults, the deprecated MODEL_STAGE mapped to an alias, and refused configurations."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from facade.core.config import Settings, get_settings
from tests.pki import issue, make_ca


def test_defaults() -> None:
    settings = Settings()

    assert settings.MODEL_ALIAS == "champion"
    assert settings.MODEL_NAME == "credit-score"
    assert settings.MLFLOW_TRACKING_URI == "http://127.0.0.1:5001"
    assert settings.SCORING_URL == "http://127.0.0.1:5002"
    assert (settings.HOST, settings.PORT, settings.MAX_BATCH_SIZE) == ("127.0.0.1", 8000, 1000)
    assert settings.DEBUG is False
    assert (settings.DRIFT_WINDOW_SIZE, settings.DRIFT_MIN_SAMPLES) == (1000, 100)


def test_reliability_defaults() -> None:
    settings = Settings()

    timeouts = (
        settings.UPSTREAM_CONNECT_TIMEOUT,
        settings.UPSTREAM_READ_TIMEOUT,
        settings.UPSTREAM_POOL_TIMEOUT,
    )
    assert timeouts == (1.0, 5.0, 1.0)
    assert settings.UPSTREAM_RETRY_ATTEMPTS == 3
    assert (settings.BREAKER_FAILURE_THRESHOLD, settings.BREAKER_COOL_DOWN_SECONDS) == (5, 2.0)
    assert (settings.MAX_IN_FLIGHT, settings.MAX_BODY_BYTES) == (64, 2 * 1024 * 1024)
    assert settings.api_keys == ()
    assert (settings.SHUTDOWN_DRAIN_SECONDS, settings.SHUTDOWN_GRACE_SECONDS) == (0.0, 8)


def test_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_NAME", "Scoring")
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("MODEL_ALIAS", "challenger")

    settings = get_settings()

    assert (settings.APP_NAME, settings.PORT, settings.MODEL_ALIAS) == ("Scoring", 9000, "challenger")


@pytest.mark.parametrize(("stage", "alias"), [("Production", "champion"), ("Staging", "challenger")])
def test_model_stage_maps_to_an_alias_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, stage: str, alias: str
) -> None:
    monkeypatch.setenv("MODEL_STAGE", stage)

    with caplog.at_level(logging.WARNING, logger="facade"):
        settings = Settings()

    assert alias == settings.MODEL_ALIAS
    assert "MODEL_STAGE" in caplog.text
    assert "deprecated" in caplog.text


def test_explicit_model_alias_wins_over_model_stage(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MODEL_STAGE", "Production")
    monkeypatch.setenv("MODEL_ALIAS", "candidate")

    with caplog.at_level(logging.WARNING, logger="facade"):
        settings = Settings()

    assert settings.MODEL_ALIAS == "candidate"
    assert "deprecated" in caplog.text


def test_empty_model_stage_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_STAGE", "")

    assert Settings().MODEL_ALIAS == "champion"


@pytest.mark.parametrize(
    "bad",
    [
        {"MODEL_STAGE": "Archived"},
        {"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"},
        {"MLFLOW_TRACKING_URI": "databricks"},
        {"SCORING_URL": "127.0.0.1:5002"},
        {"MODEL_NAME": "credit' or name='other"},
        {"MAX_BATCH_SIZE": 0},
        {"UPSTREAM_READ_TIMEOUT": 0},
        {"UPSTREAM_READ_TIMEOUT": 60},
        {"UPSTREAM_CONNECT_TIMEOUT": 30},
        {"UPSTREAM_RETRY_ATTEMPTS": 0},
        {"BREAKER_FAILURE_THRESHOLD": 0},
        {"BREAKER_COOL_DOWN_SECONDS": 0},
        {"MAX_IN_FLIGHT": 0},
        {"MAX_BODY_BYTES": 10},
        {"SHUTDOWN_GRACE_SECONDS": 0},
        {"PORT": 70000},
        {"LOG_LEVEL": "LOUD"},
        {"MODEL_ALAIS": "champion"},
        {"DRIFT_WINDOW_SIZE": 0},
        {"DRIFT_MIN_SAMPLES": 0},
        {"DRIFT_MIN_SAMPLES": 1001},
    ],
    ids=lambda bad: next(iter(bad)),
)
def test_refuses_unsafe_configuration(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**bad)  # type: ignore[arg-type]


def test_urls_lose_their_trailing_slash() -> None:
    assert Settings(SCORING_URL="http://scoring:5002/").SCORING_URL == "http://scoring:5002"


def test_the_readme_configuration_table_names_every_setting() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("## Configuration (facade)", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]

    missing = [
        name for name in Settings.model_fields if not any(f"`{name}`" in row.split("|")[1] for row in rows)
    ]
    assert not missing, f"settings without a row in the README's configuration table: {missing}"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TLS_CERT_FILE": "{cert}"}, "TLS_CERT_FILE and TLS_KEY_FILE go together"),
        ({"TLS_CLIENT_CA_FILE": "{ca}"}, "needs TLS_CERT_FILE and TLS_KEY_FILE"),
        (
            {"TLS_CERT_FILE": "{cert}", "TLS_KEY_FILE": "{key}", "TLS_CLIENTS_FILE": "{clients}"},
            "TLS_CLIENTS_FILE needs mutual TLS",
        ),
        ({"TLS_CERT_FILE": "{cert}", "TLS_KEY_FILE": "{other_key}"}, "the TLS files cannot be loaded"),
        ({"TLS_CERT_FILE": "{cert}", "TLS_KEY_FILE": "/nonexistent.key"}, "the TLS files cannot be loaded"),
        (
            {"TLS_CERT_FILE": "{cert}", "TLS_KEY_FILE": "{key}", "TLS_CLIENT_CA_FILE": "{ca}",
             "TLS_CLIENTS_FILE": "{bad_clients}"},
            "TLS_CLIENTS_FILE line 1 must be common-name:scope,scope",
        ),
    ],
    ids=["cert-without-key", "ca-without-cert", "clients-without-ca", "key-of-another-cert", "missing-key",
         "bad-clients-line"],
)  # fmt: skip
def test_inconsistent_tls_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    ca = make_ca(tmp_path, "ca")
    server = issue(ca, tmp_path, "server", server=True)
    other = issue(ca, tmp_path, "other", server=True)
    (tmp_path / "clients").write_text("app:credit:predict\n")
    (tmp_path / "bad_clients").write_text("an app with spaces:credit:predict\n")
    files = {
        "cert": server.cert_file,
        "key": server.key_file,
        "other_key": other.key_file,
        "ca": ca.cert_file,
        "clients": tmp_path / "clients",
        "bad_clients": tmp_path / "bad_clients",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(**files))

    with pytest.raises(ValidationError, match=message) as caught:
        Settings()
    assert "PRIVATE KEY" not in str(caught.value)


def test_tls_settings_with_clients_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = make_ca(tmp_path, "ca")
    server = issue(ca, tmp_path, "server", server=True)
    (tmp_path / "clients").write_text(
        "# common-name:scope,scope\nloan-origination:credit:predict, credit:model:read\n"
    )
    monkeypatch.setenv("TLS_CERT_FILE", str(server.cert_file))
    monkeypatch.setenv("TLS_KEY_FILE", str(server.key_file))
    monkeypatch.setenv("TLS_CLIENT_CA_FILE", str(ca.cert_file))
    monkeypatch.setenv("TLS_CLIENTS_FILE", str(tmp_path / "clients"))

    settings = Settings()

    assert settings.tls_enabled
    assert settings.mutual_tls
    assert settings.auth_enabled
    assert settings.tls_clients == {"loan-origination": frozenset({"credit:predict", "credit:model:read"})}
