"""HTTPS served by the facade itself: the server's TLS context and the client certificate of mutual TLS.

``server_context`` builds the context uvicorn serves with (TLS 1.2 or later, the client CA when
mutual TLS is on). uvicorn does not pass the peer certificate to the app, so ``TlsHttpToolsProtocol``
adds the ASGI TLS extension (``scope["extensions"]["tls"]``, as the ASGI spec defines it) to every
request of a TLS connection; ``client_common_name`` reads the client's name from it.
"""

from __future__ import annotations

import asyncio
import ssl
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, cast

from cryptography import x509
from cryptography.x509.oid import NameOID
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

ClientAuth = Literal["required", "optional"]


def server_context(
    cert_file: Path, key_file: Path, client_ca_file: Path | None = None, client_auth: ClientAuth = "required"
) -> ssl.SSLContext:
    """The server side of TLS; with ``client_ca_file``, clients present a certificate that CA signed.

    ``client_auth="optional"`` lets a client without a certificate finish the handshake (probes,
    Prometheus); a certificate it does present must still verify.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # NB: TLS 1.0 and 1.1 are deprecated (RFC 8996); set explicitly rather than trust the
    # system's OpenSSL configuration.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=cert_file, keyfile=key_file)
    if client_ca_file is not None:
        context.load_verify_locations(cafile=client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED if client_auth == "required" else ssl.CERT_OPTIONAL
    return context


def tls_extension(ssl_object: ssl.SSLObject | None) -> dict[str, Any] | None:
    """The ASGI TLS extension of one connection (None when it is not TLS)."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": x509.load_der_x509_certificate(der).subject.rfc4514_string() if der else None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None if cipher is None else cipher[0],
    }


_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


class TlsHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, adding the ASGI TLS extension to each request's scope."""

    _tls: dict[object, object] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # NB: once per connection: the handshake is over when the protocol gets the transport.
        self._tls = cast("dict[object, object] | None", tls_extension(transport.get_extra_info("ssl_object")))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": self._tls}


@lru_cache(maxsize=1024)
def _common_name(pem: str) -> str | None:
    names = x509.load_pem_x509_certificate(pem.encode()).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def client_common_name(scope: dict[str, Any] | Any) -> str | None:
    """The common name (CN) of the verified client certificate of this request, if it has one.

    NB: only a verified certificate reaches here: the TLS context refuses the handshake of one the
    client CA did not sign. Parsed once per certificate (cached), not once per request.
    """
    tls = scope.get("extensions", {}).get("tls") if isinstance(scope, dict) else None
    chain = tls.get("client_cert_chain") if isinstance(tls, dict) else None
    return _common_name(chain[0]) if chain else None
