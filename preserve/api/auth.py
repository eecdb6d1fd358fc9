"""Who is asking: bearer tokens (and, for reading in a browser, the login cookie) and roles.

A token is known by its SHA-256 in the settings (``auth.tokens``). Programs send
``Authorization: Bearer TOKEN``. A browser signs in once at ``/login``; the token
then rides in an HttpOnly, SameSite=Strict cookie, which is honoured for reading
only (GET and HEAD), so no other site can make a signed-in browser change
anything.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import UTC, datetime

from fastapi import Request

from preserve.catalog import Hidden
from preserve.config import Token
from preserve.retrieve import Embargoes

COOKIE = "preserve_token"
# Which roles may do what: each route names the least role it needs.
ALLOWED = {"researcher": {"researcher", "archivist", "auditor", "admin"},
           "archivist": {"archivist", "admin"},
           "auditor": {"auditor", "admin"},
           "admin": {"admin"}}
# Who sees captures still under embargo (access.embargo_days): their keepers.
SEES_EMBARGOED = {"archivist", "admin"}
_READING = {"GET", "HEAD"}


class Tokens:
    """The known tokens, looked up by the SHA-256 of what a client presents."""

    def __init__(self, tokens: Iterable[Token]) -> None:
        self._by_digest = {token.sha256: token for token in tokens}

    def find(self, secret: str) -> Token | None:
        digest = hashlib.sha256(secret.strip().encode()).hexdigest()
        return next((token for key, token in self._by_digest.items()
                     if hmac.compare_digest(key, digest)), None)


def presented(request: Request) -> str | None:
    """The token a request carries: its bearer token, or, when it only reads, the login
    cookie. None when it carries neither."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and secret.strip():
        return secret.strip()
    if request.method in _READING:
        return request.cookies.get(COOKIE) or None
    return None


def may(token: Token, least: str) -> bool:
    """Does the token's role reach ``least``?"""
    return token.role in ALLOWED[least]


def hidden_from(token: Token, embargoes: Embargoes) -> Hidden | None:
    """What the token's holder may not see yet: captures under embargo, unless they are
    an archivist's or an admin's."""
    return None if token.role in SEES_EMBARGOED else embargoes.hidden(datetime.now(UTC))
