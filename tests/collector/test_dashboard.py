"""The dashboard's routes through a real server: the page, its assets, content types, caching, and no way out of
the static folder."""

from __future__ import annotations

import gzip
import json
import posixpath
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from collector.dashboard import STATIC_DIR, dashboard_routes, is_public, load_assets, page_config, render_index
from collector.drift import DriftThresholds
from collector.settings import Address, CollectorSettings
from tests.browser.server import serve

SETTINGS = CollectorSettings(
    http=Address("127.0.0.1", 0),
    grpc=None,
    window_s=30,
    api_tokens=("s3cret",),
    thresholds=DriftThresholds(psi_warning=0.2, psi_drift=0.3),
)
IMPORT = re.compile(r"""(?:import|from)\s*(?:[\w{}\s,*]+from\s*)?["'](\.{1,2}/[^"']+)["']""")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(Starlette(routes=dashboard_routes(SETTINGS)), lifespan="off") as base:
        yield base


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=10) as client:
        yield client


def static_prefix(page: str) -> str:
    match = re.search(r'href="(/static/[0-9a-f]{12}/)app\.css"', page)
    assert match, page
    return match.group(1)


def raw_status(url: str, path: str) -> int:
    """Send `path` byte for byte (HTTP clients normalise `..` and percent escapes before sending)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        head = conn.recv(4096).decode("latin-1")
    return int(head.split(" ", 2)[1])


def test_the_page_carries_its_settings_and_security_headers(http: httpx.Client) -> None:
    response = http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    config_text = re.search(r'<script id="predwatch-config" type="application/json">(.*?)</script>', response.text)
    assert config_text
    config = json.loads(config_text.group(1))
    assert config["window_s"] == 30 and config["auth"] is True
    assert (config["psi_warning"], config["psi_drift"]) == (0.2, 0.3)
    assert config["static"] == static_prefix(response.text)
    assert "s3cret" not in response.text  # the page tells that a token is needed, never the token
    assert not re.search(r"""(?:src|href)="(?:https?:)?//""", response.text), "the page must not load from elsewhere"


def test_the_page_revalidates_with_its_etag(http: httpx.Client) -> None:
    first = http.get("/")
    again = http.get("/", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert http.get("/", headers={"If-None-Match": '"other"'}).status_code == 200
    head = http.head("/")
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == first.headers["etag"]
    assert http.post("/").status_code == 405


def test_every_module_the_page_imports_is_served_as_javascript(http: httpx.Client) -> None:
    prefix = static_prefix(http.get("/").text)
    pending, seen = ["js/main.js"], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        response = http.get(prefix + name)
        assert response.status_code == 200, name
        assert response.headers["content-type"] == "text/javascript; charset=utf-8", name
        pending += [
            posixpath.normpath(posixpath.join(posixpath.dirname(name), t)) for t in IMPORT.findall(response.text)
        ]
    on_disk = {p.relative_to(STATIC_DIR).as_posix() for p in STATIC_DIR.rglob("*.js")}
    assert seen == on_disk, f"modules not reachable from main.js: {on_disk - seen}"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
        ("js/dom.js", "text/javascript; charset=utf-8"),
    ],
)
def test_assets_are_cached_for_a_year_with_their_type(http: httpx.Client, name: str, content_type: str) -> None:
    prefix = static_prefix(http.get("/").text)
    response = http.get(prefix + name, headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == (STATIC_DIR / name).read_bytes()
    again = http.get(prefix + name, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


def test_text_assets_are_gzipped_when_asked(http: httpx.Client) -> None:
    prefix = static_prefix(http.get("/").text)
    plain = (STATIC_DIR / "app.css").read_bytes()
    with http.stream("GET", prefix + "app.css", headers={"Accept-Encoding": "gzip"}) as response:
        body = b"".join(response.iter_raw())
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == plain and len(body) < len(plain)
    for refused in ("gzip;q=0", "br", "identity", "*;q=0"):
        response = http.get(prefix + "app.css", headers={"Accept-Encoding": refused})
        assert "content-encoding" not in response.headers, refused
        assert response.content == plain


def test_another_build_or_an_unknown_file_is_404(http: httpx.Client) -> None:
    prefix = static_prefix(http.get("/").text)
    for path in ("/static/000000000000/app.css", prefix + "nope.js", prefix + "index.html", prefix, "/static/app.css"):
        response = http.get(path, follow_redirects=True)  # "/static/app.css" -> "/static/app.css/" (Starlette)
        assert response.status_code == 404, path
        assert response.headers.get("cache-control") in ("no-store", None), path


@pytest.mark.parametrize(
    "tail",
    [
        "../../dashboard.py",
        "js/../../dashboard.py",
        "%2e%2e/%2e%2e/dashboard.py",
        "..%2f..%2fdashboard.py",
        "%2e%2e%2f%2e%2e%2fdashboard.py",
        "/etc/passwd",
        "//etc/passwd",
        "..\\..\\dashboard.py",
        "js/%00main.js",
        "js/./main.js",
    ],
)
def test_no_path_leaves_the_static_folder(url: str, http: httpx.Client, tail: str) -> None:
    prefix = static_prefix(http.get("/").text)
    assert raw_status(url, prefix + tail) == 404


def test_symlinks_and_hidden_files_are_not_assets(tmp_path: Path) -> None:
    root = tmp_path / "static"
    (root / "js").mkdir(parents=True)
    (root / "index.html").write_text("<p>__STATIC__ __CONFIG__</p>")
    (root / "app.css").write_text("body{}")
    (root / ".secret.js").write_text("x")
    (root / "notes.md").write_text("unknown type")
    outside = tmp_path / "outside.js"
    outside.write_text("secret")
    (root / "js" / "link.js").symlink_to(outside)
    (root / "linked").symlink_to(tmp_path, target_is_directory=True)
    build, assets = load_assets(root)
    assert sorted(assets) == ["app.css"] and len(build) == 12


def test_the_build_id_follows_the_content(tmp_path: Path) -> None:
    root = tmp_path / "static"
    root.mkdir()
    (root / "app.js").write_text("let a = 1;")
    first, _ = load_assets(root)
    assert load_assets(root)[0] == first
    (root / "app.js").write_text("let a = 2;")
    assert load_assets(root)[0] != first


def test_config_values_cannot_close_the_script_element() -> None:
    config = page_config(None, "abc") | {"evil": "</script><script>alert(1)</script>"}
    page = render_index('<script type="application/json">__CONFIG__</script>', config).decode()
    assert page.count("</script>") == 1
    assert json.loads(page.removeprefix('<script type="application/json">').removesuffix("</script>"))["evil"] == (
        "</script><script>alert(1)</script>"
    )
    assert page_config(None, "abc")["auth"] is False


def test_public_paths_are_the_page_and_its_assets() -> None:
    assert is_public("/") and is_public("/static/0123456789ab/js/main.js")
    for path in ("/api/v1/models", "/metrics", "/staticfile", "/index.html", "/static"):
        assert not is_public(path), path
