"""Credentials: who a caller is (a ``Principal``), and the named API keys that can say so.

Keys come from API_KEYS and API_KEYS_FILE (see ``facade.core.config``); with none configured,
checking keys is off. A presented key is compared with every configured key in constant time.
Bearer tokens are ``facade.core.tokens``; client certificates ``facade.core.tls``; which scopes
exist, and which routes need them, is the service's business (``facade.security``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

# NB: a key travels in a header, so printable ASCII without spaces or commas; 16 characters at least
# so that a placeholder such as "changeme" is refused rather than deployed.
API_KEY_PATTERN = re.compile(r"[\x21-\x2b\x2d-\x7e]{16,}")
# NB: a client's name goes into the access log, a metric label, a rate-limit key and decision
# records: short, printable and without separators that the key file or a label would need.
CLIENT_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
SCOPE_PATTERN = re.compile(r"[a-z][a-z0-9._-]*(?::[a-z0-9._-]+)*")
# What a name looks like, in words, for error messages.
CLIENT_NAME_RULE = "1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"

PrincipalKind = Literal["api_key", "token", "certificate", "anonymous"]


@dataclass(frozen=True)
class Principal:
    """The caller a request was authenticated as, and the scopes it holds."""

    name: str
    kind: PrincipalKind
    scopes: frozenset[str]


@dataclass(frozen=True)
class ApiKey:
    """One configured key: the client's name, its scopes (None: every scope) and the secret itself."""

    name: str
    scopes: frozenset[str] | None
    secret: str = field(repr=False)


def unnamed_key(secret: str) -> ApiKey:
    """A key of the one-key-a-line form: every scope, named by a fingerprint of the key.

    NB: the name must be stable across replicas and restarts (it keys rate limits and labels
    metrics) and must not be the key: 8 hex digits of its SHA-256 identify it without revealing it.
    """
    return ApiKey(name=f"key-{hashlib.sha256(secret.encode()).hexdigest()[:8]}", scopes=None, secret=secret)


def parse_api_key_line(line: str) -> ApiKey:
    """``name:scope,scope:key``, or a bare ``key`` (every scope).

    Scopes themselves contain colons (``credit:predict``): the name ends at the first colon, the
    key starts after the last one, and the scopes are what lies between. Raises ValueError with a
    message that never quotes the key.
    """
    if ":" not in line:
        return unnamed_key(line)
    name, rest = line.split(":", 1)
    scopes_text, _, secret = rest.rpartition(":")
    if not CLIENT_NAME_PATTERN.fullmatch(name):
        raise ValueError(f"a key's name must be {CLIENT_NAME_RULE}")
    scopes = [scope.strip() for scope in scopes_text.split(",") if scope.strip()]
    if not scopes:
        raise ValueError(f"key {name!r} names no scope (name:scope,scope:key)")
    if bad := [scope for scope in scopes if not SCOPE_PATTERN.fullmatch(scope)]:
        raise ValueError(f"key {name!r} has a malformed scope {bad[0]!r}")
    return ApiKey(name=name, scopes=frozenset(scopes), secret=secret)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeys:
    """The configured keys, kept only as SHA-256 digests beside their names and scopes."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._keys = tuple((_digest(key.secret), key.name, key.scopes) for key in keys)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for _, name, _ in self._keys)

    def match(self, presented: str) -> ApiKey | None:
        """The configured key equal to ``presented`` (its secret left out), or None.

        NB: the digests have one length whatever was presented, and every key is compared without
        stopping at a match, so the time taken tells neither the length nor which key matched.
        """
        candidate = _digest(presented)
        found: ApiKey | None = None
        for digest, name, scopes in self._keys:
            if hmac.compare_digest(candidate, digest):
                found = ApiKey(name=name, scopes=scopes, secret="")
        return found

    def accepts(self, presented: str) -> bool:
        """True when ``presented`` is one of the keys."""
        return self.match(presented) is not None
