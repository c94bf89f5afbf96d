"""What the example servers share: command-line options, the SDK's setup, and the startup line."""

from __future__ import annotations

import argparse
import os
import socket

import instrument


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed at startup)")
    parser.add_argument(
        "--collector", help="collector base URL (default PREDWATCH_ENDPOINT, else http://127.0.0.1:4318)"
    )
    return parser.parse_args()


def setup(service_name: str, collector: str | None) -> None:
    instrument.configure(service_name=os.environ.get("PREDWATCH_SERVICE_NAME", service_name), endpoint=collector)


def listen(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP so that servers set TCP_NODELAY (without it small responses wait for delayed ACKs).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def announce(name: str, sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"
    print(f"{name} serving model cancer on {url} (POST {url}/predict)", flush=True)
    return url
