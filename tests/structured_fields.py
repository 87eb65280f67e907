"""The RateLimit draft's fields read as a client would: RFC 9651 lists parsed by ``http_sf``.

Shared by the rate-limit tests in one process and across replicas.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import http_sf

Items = dict[str, dict[str, Any]]


def items_by_name(value: str) -> Items:
    """A List of Items whose values are Strings (the policy names), parsed strictly: each item's
    parameters by its name. Raises ``http_sf.StructuredFieldError`` on a malformed field."""
    parsed = http_sf.parse(value.encode(), tltype="list")
    assert isinstance(parsed, list)
    items: Items = {}
    for member in parsed:
        assert isinstance(member, tuple), member
        name, parameters = member
        # NB: the draft wants String items; a Token (unquoted) would parse too, and is wrong.
        assert type(name) is str, f"{name!r} is not an sf-string"
        assert isinstance(parameters, dict)
        items[name] = dict(parameters)
    return items


def rate_limit_fields(
    headers: Mapping[str, str],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """RateLimit-Policy and RateLimit of an answer, each policy's parameters by its name."""
    return items_by_name(headers["ratelimit-policy"]), items_by_name(headers["ratelimit"])
