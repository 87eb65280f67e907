"""The real facade serving HTTPS itself, with mutual TLS: certificates made in the test.

One CA signs the server's certificate and the clients'; another CA signs a rogue client. With
``TLS_CLIENT_AUTH=required`` a client without a certificate, or with the rogue one, never gets
past the handshake; a certificate's common name names the client, whose scopes come from
TLS_CLIENTS_FILE. With ``optional``, probes work without a certificate and API keys still count.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from model_code.schema import EXAMPLE_APPLICANTS
from scripts import commands
from scripts.processes import ManagedProcess, free_port
from tests.integration.stub_upstream import StubUpstream
from tests.pki import Issued, issue, make_ca

pytestmark = pytest.mark.integration

APPROVED = EXAMPLE_APPLICANTS["approved"]
API_KEY = "k3y-0f-the-scoring-app-2f9d1c"


class Pki:
    def __init__(self, folder: Path) -> None:
        self.ca = make_ca(folder, "test-ca")
        self.server = issue(self.ca, folder, "credit-score-api", server=True)
        self.clients = {
            name: issue(self.ca, folder, name) for name in ("scoring-app", "model-reader", "unlisted-app")
        }
        rogue_ca = make_ca(folder / "rogue", "rogue-ca")
        self.rogue = issue(rogue_ca, folder / "rogue", "scoring-app")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def stub() -> Iterator[StubUpstream]:
    upstream = StubUpstream().start()
    try:
        yield upstream
    finally:
        upstream.stop()


def start_facade(root: Path, stub: StubUpstream, pki: Pki, **env: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    settings = commands.child_env(
        HOST="127.0.0.1",
        PORT=str(port),
        SCORING_URL=stub.url,
        MLFLOW_TRACKING_URI=stub.url,
        MODEL_NAME="credit-score",
        TLS_CERT_FILE=str(pki.server.cert_file),
        TLS_KEY_FILE=str(pki.server.key_file),
        TLS_CLIENT_CA_FILE=str(pki.ca.cert_file),
        **env,
    )
    process = ManagedProcess("facade", commands.facade(), root / "facade.log", env=settings, cwd=root).start()
    url = f"https://127.0.0.1:{port}"
    client = https(pki, pki.clients["scoring-app"])

    def ready() -> bool:
        try:
            return client.get(f"{url}/api/v1/health").status_code == 200
        except httpx.HTTPError:
            return False

    process.wait_until(ready, timeout=60, what="HTTPS on /api/v1/health")
    client.close()
    return process, url


def https(pki: Pki, cert: Issued | None) -> httpx.Client:
    """A client that trusts the test CA and presents ``cert`` (or no certificate)."""
    context = ssl.create_default_context(cafile=pki.ca.cert_file)
    if cert is not None:
        context.load_cert_chain(cert.cert_file, cert.key_file)
    return httpx.Client(verify=context, timeout=10, trust_env=False)


@pytest.fixture(scope="module")
def mutual(
    tmp_path_factory: pytest.TempPathFactory, stub: StubUpstream, pki: Pki
) -> Iterator[tuple[str, Path]]:
    """A facade requiring client certificates; scopes by common name from TLS_CLIENTS_FILE."""
    root = tmp_path_factory.mktemp("mutual")
    clients = root / "tls_clients"
    clients.write_text("# common-name:scope,scope\nscoring-app:credit:predict,credit:model:read\n"
                       "model-reader:credit:model:read\n")  # fmt: skip
    process, url = start_facade(root, stub, pki, TLS_CLIENTS_FILE=str(clients))
    try:
        yield url, process.log_path
    finally:
        process.stop()


@pytest.fixture(scope="module")
def optional(tmp_path_factory: pytest.TempPathFactory, stub: StubUpstream, pki: Pki) -> Iterator[str]:
    """A facade where a certificate is optional and an API key is another way in."""
    root = tmp_path_factory.mktemp("optional")
    process, url = start_facade(root, stub, pki, TLS_CLIENT_AUTH="optional", API_KEYS=API_KEY)
    try:
        yield url
    finally:
        process.stop()


def access_lines(log: Path) -> list[dict[str, object]]:
    lines = []
    for line in log.read_text().splitlines():
        if line.startswith("{") and '"facade.access"' in line:
            lines.append(json.loads(line))
    return lines


def test_https_with_a_client_certificate_names_the_client(mutual: tuple[str, Path], pki: Pki) -> None:
    url, log = mutual
    with https(pki, pki.clients["scoring-app"]) as client:
        response = client.post(f"{url}/api/v1/predict", json=APPROVED)

    assert response.status_code == 200
    assert response.json()["prediction"] == "APPROVED"
    assert response.extensions["http_version"] == b"HTTP/1.1"
    # NB: the access line is written once the answer has been sent: on a busy machine it can land
    # a moment after the client has read the answer.
    deadline = time.monotonic() + 10
    while not (predict_lines := [line for line in access_lines(log) if line["route"] == "/api/v1/predict"]):
        assert time.monotonic() < deadline, "no access log line for the prediction"
        time.sleep(0.1)
    assert predict_lines[-1]["client"] == "scoring-app"


def test_certificate_clients_get_the_scopes_listed_for_them(mutual: tuple[str, Path], pki: Pki) -> None:
    url, _ = mutual
    with https(pki, pki.clients["model-reader"]) as reader:
        assert reader.get(f"{url}/api/v1/model/info").status_code == 200
        refused = reader.post(f"{url}/api/v1/predict", json=APPROVED)
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/insufficient-scope")
    with https(pki, pki.clients["unlisted-app"]) as unlisted:
        # NB: signed by the CA but not listed: authenticated, with no scope.
        assert unlisted.post(f"{url}/api/v1/predict", json=APPROVED).status_code == 403


@pytest.mark.parametrize("who", ["no-certificate", "another-ca"])
def test_a_client_without_a_trusted_certificate_is_refused_in_the_handshake(
    mutual: tuple[str, Path], pki: Pki, who: str
) -> None:
    url, _ = mutual
    cert = None if who == "no-certificate" else pki.rogue
    with https(pki, cert) as client, pytest.raises(httpx.TransportError):
        # NB: no HTTP answer at all, not even for the open probes.
        client.get(f"{url}/api/v1/health")


def test_plain_http_to_the_tls_port_fails_cleanly(mutual: tuple[str, Path], pki: Pki) -> None:
    url, log = mutual
    plain = url.replace("https://", "http://")
    with httpx.Client(timeout=5, trust_env=False) as client, pytest.raises(httpx.TransportError):
        client.get(f"{plain}/api/v1/health")

    # The server is unharmed and logged no traceback for it.
    with https(pki, pki.clients["scoring-app"]) as client:
        assert client.get(f"{url}/api/v1/health").status_code == 200
    assert "Traceback" not in log.read_text()


def _handshake(port: int, pki: Pki, newest: ssl.TLSVersion) -> str | None:
    """The TLS version negotiated by a client offering TLS 1.0 up to ``newest``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.create_default_context(cafile=pki.ca.cert_file)
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = newest
    context.load_cert_chain(pki.clients["scoring-app"].cert_file, pki.clients["scoring-app"].key_file)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.version()


def test_tls_older_than_1_2_is_refused_by_the_server(mutual: tuple[str, Path], pki: Pki) -> None:
    port = int(mutual[0].rsplit(":", 1)[1])

    # The same client, allowed to go up to 1.2, gets 1.2: only the server's minimum refuses 1.1.
    assert _handshake(port, pki, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    with pytest.raises(ssl.SSLError):
        _handshake(port, pki, ssl.TLSVersion.TLSv1_1)


def test_with_optional_certificates_probes_need_none_and_keys_still_work(optional: str, pki: Pki) -> None:
    with https(pki, None) as anonymous:
        assert anonymous.get(f"{optional}/api/v1/health").status_code == 200
        assert anonymous.get(f"{optional}/api/v1/health/ready").status_code == 200
        assert anonymous.get(f"{optional}/metrics").status_code == 200
        assert anonymous.post(f"{optional}/api/v1/predict", json=APPROVED).status_code == 401
        keyed = anonymous.post(f"{optional}/api/v1/predict", json=APPROVED, headers={"X-API-Key": API_KEY})
        assert keyed.status_code == 200
    with https(pki, pki.clients["unlisted-app"]) as certified:
        # NB: without TLS_CLIENTS_FILE every certificate the CA signed has every scope.
        assert certified.post(f"{optional}/api/v1/predict", json=APPROVED).status_code == 200
    with https(pki, pki.rogue) as rogue, pytest.raises(httpx.TransportError):
        # NB: optional is not "anything goes": a certificate presented must verify.
        rogue.get(f"{optional}/api/v1/health")
