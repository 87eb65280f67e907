"""API keys: the optional shared secrets that protect the prediction and model routes.

Keys come from API_KEYS and API_KEYS_FILE (see ``facade.core.config``); with none configured,
checking is off. A presented key is compared with every configured key in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

# NB: the schemes a 401 names: the X-API-Key header, or the same key as a bearer token.
WWW_AUTHENTICATE = 'ApiKey realm="credit-score", header="X-API-Key", Bearer realm="credit-score"'


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeys:
    """The configured keys, kept only as SHA-256 digests."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = tuple(_digest(key) for key in keys)

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def accepts(self, presented: str) -> bool:
        """True when ``presented`` is one of the keys.

        NB: the digests have one length whatever was presented, and every key is compared without
        stopping at a match, so the time taken tells neither the length nor which key matched.
        """
        candidate = _digest(presented)
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(candidate, digest)
        return matched
