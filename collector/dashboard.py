"""The dashboard: one HTML page at `/` and its static assets, a single-page app that reads the JSON API.

    routes = [..., *api_routes(service), *distribution_routes(service), *dashboard_routes(settings)]
    # and in the API token guard: let `is_public(scope["path"])` through, like /healthz

    predwatch collector --api-token s3cret    # then open http://127.0.0.1:4318/#token=s3cret once

- `GET /` answers `static/index.html` with the page's settings filled in (window width, PSI bands, whether an
  API token is needed, the asset URL prefix). `Cache-Control: no-cache` with an ETag: a browser revalidates
  it on every load and gets 304 while the collector runs the same build.
- `GET /static/{build}/{path}` answers the files under `collector/static/`. `build` is a hash of every file,
  so asset URLs change with their content and are cached for a year (`immutable`); ES modules import each
  other by relative URL and so stay within one build. Another build, or any path that is not one of the
  files read at startup, is a 404: nothing is looked up on disk per request, so no path (`..`, `%2e%2e`,
  absolute, symlinks) can reach outside the folder. Text files are gzip-compressed once, at startup.

The page and its assets hold no data, so they are public (`PUBLIC_PATHS`, `is_public`): a browser cannot
send a bearer token with a navigation. Everything the page shows comes from /api/v1/*, which it calls with
`Authorization: Bearer <token>`; the page asks for the token (at once when the settings have API tokens, else
when the API answers 401) and keeps it in the browser's localStorage, or takes it from a link ending in
`#token=...` and drops it from the address (a fragment never reaches the server or its logs). Pass the
collector's settings: the charts choose their bucket widths from its window width.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from collector import __version__
from collector.settings import CollectorSettings

__all__ = ["CONTENT_TYPES", "PUBLIC_PATHS", "STATIC_DIR", "Asset", "dashboard_routes", "is_public", "load_assets"]

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/static/"
PUBLIC_PATHS = frozenset({"/"})
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}
_COMPRESSIBLE = frozenset({".html", ".js", ".css", ".svg", ".json", ".txt"})
_MIN_GZIP_BYTES = 1024
_IMMUTABLE = "public, max-age=31536000, immutable"
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_SECURITY = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def is_public(path: str) -> bool:
    """True for the page and its assets: the paths the API token guard lets through."""
    return path in PUBLIC_PATHS or path.startswith(STATIC_PREFIX)


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str
    gzipped: bytes | None = None


def load_assets(root: Path = STATIC_DIR) -> tuple[str, dict[str, Asset]]:
    """(build id, {relative POSIX path: asset}) for every file of a known type under `root`. Not assets:
    index.html (the page template), hidden files, and links or anything else that resolves outside `root`."""
    assets: dict[str, Asset] = {}
    build = hashlib.sha256()
    base = root.resolve()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        suffix = path.suffix.lower()
        name = path.relative_to(root).as_posix()
        hidden = any(part.startswith(".") for part in name.split("/"))
        if suffix not in CONTENT_TYPES or name == "index.html" or hidden or path.is_symlink():
            continue
        if not path.resolve().is_relative_to(base):  # a symlinked folder on the way
            continue
        body = path.read_bytes()
        digest = hashlib.sha256(body).hexdigest()
        build.update(f"{name}\0{digest}\0".encode())
        squeezed = None
        if suffix in _COMPRESSIBLE and len(body) >= _MIN_GZIP_BYTES:
            squeezed = gzip.compress(body, compresslevel=9, mtime=0)
        assets[name] = Asset(body, CONTENT_TYPES[suffix], f'"{digest[:20]}"', squeezed)
    return build.hexdigest()[:12], assets


def page_config(settings: CollectorSettings | None, build: str) -> dict[str, object]:
    settings = settings or CollectorSettings()
    return {
        "version": __version__,
        "build": build,
        "static": f"{STATIC_PREFIX}{build}/",
        "window_s": settings.window_s,
        "psi_warning": settings.thresholds.psi_warning,
        "psi_drift": settings.thresholds.psi_drift,
        "min_count": settings.thresholds.min_count,
        "auth": bool(settings.api_tokens),
    }


def render_index(template: str, config: dict[str, object]) -> bytes:
    # JSON inside <script type="application/json">: escape "<" so no value can close the element.
    data = json.dumps(config, separators=(",", ":")).replace("<", "\\u003c")
    page = template.replace("__STATIC__", html.escape(str(config["static"]))).replace("__CONFIG__", data)
    return page.encode("utf-8")


def dashboard_routes(settings: CollectorSettings | None = None, static_dir: Path = STATIC_DIR) -> list[BaseRoute]:
    """`GET /` and `GET /static/{build}/{path}`; the files are read once, here."""
    build, assets = load_assets(static_dir)
    page = render_index((static_dir / "index.html").read_text("utf-8"), page_config(settings, build))
    page_etag = f'"{hashlib.sha256(page).hexdigest()[:20]}"'

    async def index(request: Request) -> Response:
        headers = {"Cache-Control": "no-cache", "ETag": page_etag, "Content-Security-Policy": _CSP, **_SECURITY}
        if _matches(request, page_etag):
            return Response(status_code=304, headers=headers)
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    async def asset(request: Request) -> Response:
        found = assets.get(request.path_params["path"]) if request.path_params["build"] == build else None
        if found is None:
            return Response(
                "not found",
                status_code=404,
                media_type="text/plain; charset=utf-8",
                headers={"Cache-Control": "no-store", **_SECURITY},
            )
        headers = {"Cache-Control": _IMMUTABLE, "ETag": found.etag, **_SECURITY}
        if found.gzipped is not None:
            headers["Vary"] = "Accept-Encoding"
        if _matches(request, found.etag):
            return Response(status_code=304, headers=headers)
        body = found.body
        if found.gzipped is not None and _accepts_gzip(request):
            body, headers["Content-Encoding"] = found.gzipped, "gzip"
        return Response(body, headers={"Content-Type": found.content_type, **headers})

    return [
        Route("/", index, methods=["GET"], name="dashboard"),
        Route(STATIC_PREFIX + "{build}/{path:path}", asset, methods=["GET"], name="dashboard-static"),
    ]


def _matches(request: Request, etag: str) -> bool:
    wanted = request.headers.get("if-none-match")
    if wanted is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in wanted.split(",")}
    return etag in tags or "*" in tags


def _accepts_gzip(request: Request) -> bool:
    """Accept-Encoding allows gzip (explicitly, else through `*`) with a quality above 0."""
    qualities: dict[str, float] = {}
    for part in request.headers.get("accept-encoding", "").lower().split(","):
        coding, *params = (piece.strip() for piece in part.split(";"))
        quality = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            qualities[coding] = float(quality)
        except ValueError:
            qualities[coding] = 0.0
    for coding in ("gzip", "x-gzip", "*"):
        if coding in qualities:
            return qualities[coding] > 0
    return False
