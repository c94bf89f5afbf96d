"""Bearer-token check for ingest (OTLP/HTTP and OTLP/gRPC) and, with other tokens, the API.

    auth = BearerAuth(["s3cret"])                  # BearerAuth([]) accepts everything
    auth.check(request.headers.get("authorization"))          # "Bearer s3cret" -> True
    auth.check_metadata(context.invocation_metadata())        # gRPC: the "authorization" key

Producers send `authorization: Bearer <token>` (OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer <token>").
Tokens are compared with hmac.compare_digest against every configured token, so the time taken does not
depend on how much of a token matched, nor on which token it was.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

__all__ = ["BearerAuth", "challenge"]

REALM = "predwatch"


def challenge(invalid_token: bool) -> str:
    """The WWW-Authenticate value of a 401 (RFC 6750): `invalid_token` when a token was sent but is wrong."""
    if invalid_token:
        return f'Bearer realm="{REALM}", error="invalid_token"'
    return f'Bearer realm="{REALM}"'


class BearerAuth:
    def __init__(self, tokens: Iterable[str] = ()) -> None:
        self._tokens = tuple(token.encode("utf-8") for token in tokens)
        for token in self._tokens:
            if not token or any(byte <= 0x20 or byte == 0x7F for byte in token):
                raise ValueError("an ingest token must be non-empty and hold no spaces or control characters")

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def check(self, authorization: str | bytes | None) -> bool:
        """True when no token is configured, or `authorization` is `Bearer <one of the tokens>`."""
        if not self._tokens:
            return True
        token = _bearer_token(authorization)
        if token is None:
            return False
        matched = False
        for expected in self._tokens:  # no early exit: every token costs the same
            matched |= hmac.compare_digest(token, expected)
        return matched

    def check_metadata(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> bool:
        """gRPC invocation metadata (keys are lowercase there)."""
        if not self._tokens:
            return True
        for key, value in metadata or ():
            if key == "authorization":
                return self.check(value)
        return False


def _bearer_token(authorization: str | bytes | None) -> bytes | None:
    if authorization is None:
        return None
    raw = authorization if isinstance(authorization, bytes) else _header_bytes(authorization)
    scheme, _, token = raw.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    token = token.strip()
    return token or None


def _header_bytes(value: str) -> bytes:
    # Starlette decodes header bytes as latin-1; encoding back gives the bytes that were sent.
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")
