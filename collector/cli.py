"""`predwatch`: run the collector, and talk to a running one.

    predwatch collector [--http 127.0.0.1:4318] [--grpc 127.0.0.1:4317|off] [--store sqlite:///predwatch.db]
                        [--window 60] [--config predwatch.toml] [--api-token T] [--ingest-token T]
                        [--label-ttl 7d] [--retention 90d|off] [--allow-unauthenticated] [--log-level info]
    predwatch reference set MODEL FILE [--version V] [--target COL] [--outputs COL,...] [--exclude COL,...]
                        [--format csv|parquet|json] [--url URL] [--token T]
    predwatch report MODEL [--version V] [--since 1h] [--wait S] [--json] [--url URL] [--token T]

Exit status: 0 done (the collector: stopped by SIGTERM/SIGINT with every window written), 1 failed (a
message on stderr says why), 2 bad usage or configuration. Client commands find the collector through `--url`,
else PREDWATCH_URL, else http://127.0.0.1:4318, and send `--token` or PREDWATCH_API_TOKEN as a bearer token.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from collector import __version__
from collector.settings import Address, CollectorSettings, load_settings, unprotected_binds
from collector.store import Store, StoreError

__all__ = ["DEFAULT_URL", "collector_settings", "main", "open_store"]

DEFAULT_URL = "http://127.0.0.1:4318"
logger = logging.getLogger("collector")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    return int(args.run(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="predwatch", description="Monitor machine-learning models in production.")
    parser.add_argument("--version", action="version", version=f"predwatch {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = commands.add_parser("collector", help="run the collector (OTLP receiver, store, JSON API)")
    run.add_argument("--http", help="host:port for OTLP/HTTP, the API and the dashboard (default 127.0.0.1:4318)")
    run.add_argument("--grpc", help="host:port for OTLP/gRPC, or 'off' (default 127.0.0.1:4317)")
    run.add_argument("--store", help="sqlite:///path/to/file.db (default sqlite:///predwatch.db)")
    run.add_argument("--window", type=int, help="window width in seconds (default 60)")
    run.add_argument("--config", help="a TOML file with these settings, [thresholds], [sketches], [limits]")
    run.add_argument("--api-token", help="bearer token for the API and dashboard (or PREDWATCH_API_TOKEN)")
    run.add_argument("--ingest-token", help="bearer token for OTLP (or PREDWATCH_INGEST_TOKEN)")
    run.add_argument(
        "--label-ttl", help="how long predictions and actuals wait for each other: seconds, 30m, 12h, 7d (default 7d)"
    )
    run.add_argument(
        "--retention",
        help="delete per-window data (windows, rollups, states, label counts) that ended longer ago than this:"
        " 30d, 12h ...; 0 or off keeps everything (default 90d)",
    )
    run.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="listen on a non-loopback address without tokens (refused otherwise)",
    )
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.set_defaults(run=_run_collector)

    reference = commands.add_parser("reference", help="manage reference (training) data")
    ref_commands = reference.add_subparsers(title="commands", metavar="COMMAND")
    reference.set_defaults(run=lambda args: _usage(reference))
    ref_set = ref_commands.add_parser("set", help="upload a CSV, Parquet or JSON file as a model's reference")
    ref_set.add_argument("model")
    ref_set.add_argument("file")
    ref_set.add_argument("--version", dest="model_version", help="model version (default: the newest seen)")
    ref_set.add_argument("--target", help="the column holding the true labels (actuals)")
    ref_set.add_argument("--outputs", help="comma-separated columns holding the model's outputs (score, label...)")
    ref_set.add_argument("--exclude", help="comma-separated columns to leave out (ids, timestamps)")
    ref_set.add_argument("--format", choices=["csv", "parquet", "json"], help="default: from the file name")
    ref_set.add_argument("--url", help=f"the collector (default PREDWATCH_URL, else {DEFAULT_URL})")
    ref_set.add_argument("--token", help="API token (default PREDWATCH_API_TOKEN)")
    ref_set.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the collector")
    ref_set.set_defaults(run=_run_reference_set)

    from collector.report import add_report_command

    add_report_command(commands)
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _fail(command: str, message: str, status: int = 1) -> int:
    print(f"predwatch {command}: {message}", file=sys.stderr)
    return status


# -- predwatch collector ----------------------------------------------------------------------------------------
def open_store(url: str) -> Store:
    """sqlite:///relative.db, sqlite:////absolute.db, or a plain file path. Raises ValueError or StoreError."""
    if url.startswith("sqlite://"):
        path = url[len("sqlite://") :]
        path = path[1:] if path.startswith("/") else path
    elif "://" in url:
        scheme = url.partition("://")[0]
        raise ValueError(f"store {scheme}:// is not available in this version; use sqlite:///path/to/file.db")
    else:
        path = url
    if not path:
        raise ValueError(f"store {url!r} names no file: use sqlite:///predwatch.db")
    from collector.store_sqlite import SQLiteStore

    try:
        return SQLiteStore(os.path.expanduser(path))
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from exc


def _bind(address: Address) -> socket.socket:
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and without it every
    # response waits ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(address.family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address.host, address.port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _ignore_signal(signum: int, frame: object) -> None:
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; by then there is nothing left to do."""


def collector_settings(args: argparse.Namespace, env: Mapping[str, str]) -> CollectorSettings:
    """The settings of `predwatch collector ARGS`: its flags, then `env`, then the config file. Raises ValueError."""
    return load_settings(
        http=args.http,
        grpc=args.grpc,
        store=args.store,
        window_s=args.window,
        config_path=args.config,
        api_token=args.api_token,
        ingest_token=args.ingest_token,
        allow_unauthenticated=args.allow_unauthenticated,
        env=env,
        label_ttl=args.label_ttl,
        retention=args.retention,
    )


def _run_collector(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        settings = collector_settings(args, os.environ)
    except ValueError as exc:
        return _fail("collector", str(exc), 2)
    for what in unprotected_binds(settings):
        logger.warning("!!! UNAUTHENTICATED: listening on %s; anyone who can reach it can read and write !!!", what)
    try:
        sock = _bind(settings.http)
    except OSError as exc:
        return _fail("collector", f"cannot listen on {settings.http}: {exc.strerror or exc}")
    try:
        store = open_store(settings.store)
    except (ValueError, StoreError) as exc:
        sock.close()
        return _fail("collector", str(exc))
    try:
        return _serve(settings, store, sock)
    finally:
        store.close()


def _serve(settings: CollectorSettings, store: Store, sock: socket.socket) -> int:
    import uvicorn

    from collector.app import create_app

    app = create_app(settings, store)
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        ws="none",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    host, port = sock.getsockname()[:2]
    url_host = f"[{host}]" if ":" in host else host
    logger.info(
        "predwatch collector %s listening on http://%s:%d (OTLP/HTTP, API); store %s; %d-s windows",
        __version__,
        url_host,
        port,
        settings.store,
        settings.window_s,
    )
    previous = {sig: signal.signal(sig, _ignore_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        clean = app.state.service.stop()  # idempotent; covers a second Ctrl-C that skipped lifespan shutdown
        sock.close()
    if not server.started:
        return _fail("collector", "could not start (see the log above)")
    return 0 if clean else 1


# -- predwatch reference set ------------------------------------------------------------------------------------
def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def _run_reference_set(args: argparse.Namespace) -> int:
    import httpx

    from collector.reference_io import ReferenceFileError, read_table

    command = "reference set"
    try:
        table = read_table(args.file, args.format)
    except ReferenceFileError as exc:
        return _fail(command, str(exc))
    outputs = _names(args.outputs) or table.outputs
    target = args.target or table.target
    exclude = _names(args.exclude)
    unknown = [name for name in (*outputs, *([target] if target else []), *exclude) if name not in table.columns]
    if unknown:
        available = ", ".join(list(table.columns)[:30]) + (" ..." if len(table.columns) > 30 else "")
        return _fail(command, f"{args.file} has no column {', '.join(map(repr, unknown))}; its columns: {available}")
    skip = {*outputs, *exclude, *([target] if target else [])}
    body: dict[str, Any] = {
        "inputs": {name: values for name, values in table.columns.items() if name not in skip},
        "outputs": {name: table.columns[name] for name in outputs},
    }
    if target:
        body["actuals"] = table.columns[target]
        body["target"] = target
    url = (args.url or os.environ.get("PREDWATCH_URL") or DEFAULT_URL).rstrip("/")
    token = args.token or os.environ.get("PREDWATCH_API_TOKEN")
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    endpoint = f"{url}/api/v1/models/{quote(args.model, safe='')}/reference"
    content = gzip.compress(json.dumps(body).encode("utf-8"), compresslevel=1)
    params = {"version": args.model_version} if args.model_version else {}
    try:
        response = httpx.put(endpoint, params=params, content=content, headers=headers, timeout=args.timeout)
    except httpx.ConnectError:
        return _fail(
            command, f"cannot reach the collector at {url}: is `predwatch collector` running? (--url, PREDWATCH_URL)"
        )
    except httpx.HTTPError as exc:
        return _fail(command, f"talking to the collector at {url} failed: {exc}")
    if response.status_code == 401:
        return _fail(command, "the collector wants an API token: pass --token or set PREDWATCH_API_TOKEN")
    if response.status_code >= 400:
        return _fail(command, f"the collector refused the reference ({response.status_code}): {_error_text(response)}")
    answer = response.json()
    roles = [column["role"] for column in answer["columns"]]
    actuals = f", actuals from {answer['actuals']['name']!r}" if answer.get("actuals") else ""
    print(
        f"reference set for {answer['model']} version {answer['version']}: {answer['rows']} rows, "
        f"{roles.count('input')} inputs, {roles.count('output')} outputs{actuals}"
    )
    return 0


def _error_text(response: Any) -> str:
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return str(response.text[:500])


if __name__ == "__main__":
    sys.exit(main())
