from __future__ import annotations

import pytest

from collector.auth import BearerAuth, challenge


def test_no_tokens_accepts_everything() -> None:
    auth = BearerAuth()
    assert not auth.enabled
    assert auth.check(None) and auth.check("Bearer whatever") and auth.check_metadata(None)


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer s3cret", True),
        ("bearer s3cret", True),
        ("BEARER   s3cret  ", True),
        (b"Bearer s3cret", True),
        ("Bearer other-token", True),
        ("Bearer s3cre", False),
        ("Bearer s3cretX", False),
        ("Bearer ", False),
        ("Bearer", False),
        ("s3cret", False),
        ("Basic czNjcmV0", False),
        ("Token s3cret", False),
        (None, False),
        ("", False),
        ("Bearer s3cret\u20ac", False),
    ],
)
def test_bearer_header(header: str | bytes | None, ok: bool) -> None:
    assert BearerAuth(["s3cret", "other-token"]).check(header) is ok


def test_non_ascii_token_sent_as_raw_header_bytes() -> None:
    auth = BearerAuth(["clé"])
    sent = "Bearer clé".encode().decode("latin-1")  # what Starlette hands over
    assert auth.check(sent)
    assert not auth.check("Bearer cle")


def test_grpc_metadata() -> None:
    auth = BearerAuth(["s3cret"])
    assert auth.enabled
    assert auth.check_metadata([("user-agent", "x"), ("authorization", "Bearer s3cret")])
    assert not auth.check_metadata([("authorization", "Bearer nope")])
    assert not auth.check_metadata([("user-agent", "x")])
    assert not auth.check_metadata(None)


@pytest.mark.parametrize("token", ["", "two words", "tab\tinside", "new\nline"])
def test_tokens_that_cannot_travel_in_a_header_are_configuration_errors(token: str) -> None:
    with pytest.raises(ValueError):
        BearerAuth([token])


def test_challenge() -> None:
    assert challenge(invalid_token=False) == 'Bearer realm="predwatch"'
    assert challenge(invalid_token=True) == 'Bearer realm="predwatch", error="invalid_token"'
