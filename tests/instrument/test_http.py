"""What both middleware share: server address parsing and the x-prediction-id header value."""

from __future__ import annotations

import pytest

from instrument._guard import STATS
from instrument._http import _host_port, id_header_value


@pytest.mark.parametrize(
    ("host", "fallback", "expected"),
    [
        ("api.example.com", None, ("api.example.com", None)),
        ("api.example.com:8443", ("10.0.0.1", 80), ("api.example.com", 8443)),
        ("[::1]:8000", None, ("::1", 8000)),
        ("[::1]", None, ("::1", None)),
        ("::1", None, ("::1", None)),  # a bare IPv6 address has no port
        ("host:notaport", None, ("host", None)),
        (None, ("127.0.0.1", 8000), ("127.0.0.1", 8000)),
        (None, ("/tmp/app.sock", None), ("/tmp/app.sock", None)),  # a unix socket: no port
        (None, None, (None, None)),
    ],
)
def test_server_address_and_port(
    host: str | None, fallback: tuple[str, int] | None, expected: tuple[str | None, int | None]
) -> None:
    assert _host_port(host, fallback) == expected


def test_id_header_value() -> None:
    STATS.reset()
    assert id_header_value([], 100) is None
    assert id_header_value(["a1", "b2"], 100) == "a1,b2"
    assert (
        id_header_value(["a,1", "é", "x y", "z\r\nSet-Cookie: k=v"], 100)
        == "a%2C1,%C3%A9,x%20y,z%0D%0ASet-Cookie%3A%20k%3Dv"
    )
    assert id_header_value(["0123456789"] * 3, 32) == "0123456789,0123456789,0123456789"
    assert id_header_value(["0123456789"] * 3, 31) is None
    assert STATS.dropped["http_id_header_too_long"] == 1
    STATS.reset()
