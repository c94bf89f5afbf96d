"""Notifiers against real local HTTP servers: payloads, retries with backoff, dead and stalling channels."""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from collector.notify import Dispatcher, NotifierSpec, parse_notifier, slack_payload, summary

EVENT = {
    "id": "abc",
    "event": "firing",
    "rule": "income drift",
    "model": "churn",
    "version": "3",
    "feature": "income",
    "metric": "psi",
    "state": "firing",
    "severity": "critical",
    "value": 0.3141,
    "op": ">",
    "threshold": 0.25,
    "window": {"start": "2026-01-01T00:00:00.000Z", "end": "2026-01-01T01:00:00.000Z"},
    "started_at": "2026-01-01T00:58:00.000Z",
    "links": {"drift": "http://predwatch:4318/api/v1/models/churn/drift?version=3", "alerts": "/api/v1/alerts"},
}


class WebhookServer:
    """A local HTTP server in a thread that records JSON bodies. `statuses` are answered in turn (then 200);
    `stall` makes every request wait until the server closes."""

    def __init__(self, statuses: list[int] | None = None, stall: bool = False, retry_after: str | None = None) -> None:
        self.bodies: list[Any] = []
        self.statuses = list(statuses or [])
        self.released = threading.Event()
        self.arrived = threading.Event()
        self.received = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                server.arrived.set()
                if stall:
                    server.released.wait(30)
                with server.received:
                    server.bodies.append(json.loads(body))
                    status = server.statuses.pop(0) if server.statuses else 200
                    server.received.notify_all()
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("retry-after", retry_after)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def wait_for(self, n: int, timeout_s: float = 10.0) -> list[Any]:
        with self.received:
            self.received.wait_for(lambda: len(self.bodies) >= n, timeout_s)
            return list(self.bodies)

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[WebhookServer]:
    s = WebhookServer()
    yield s
    s.close()


def eventually(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"  # nothing listens there now: connections are refused


def test_webhook_posts_the_alert_json(server: WebhookServer) -> None:
    d = Dispatcher([NotifierSpec("hook", "webhook", url=server.url)])
    d.notify(EVENT, ["hook"])
    assert d.flush()
    assert server.wait_for(1) == [EVENT]
    stats = d.stats()["hook"]
    assert (stats.sent, stats.failed, stats.retries, stats.queued) == (1, 0, 0, 0)
    d.close()


def test_slack_payload_shape(server: WebhookServer) -> None:
    payload = slack_payload(EVENT)
    assert set(payload) == {"text", "blocks"}
    assert payload["text"] == "[FIRING] critical income drift: churn v3 income psi = 0.3141 (> 0.25)"
    section, context = payload["blocks"]
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": payload["text"]}}
    assert context["type"] == "context" and context["elements"][0]["type"] == "mrkdwn"
    assert "<http://predwatch:4318/api/v1/models/churn/drift?version=3|drift>" in context["elements"][0]["text"]
    assert "/api/v1/alerts|" not in context["elements"][0]["text"]  # relative links mean nothing in Slack
    d = Dispatcher([NotifierSpec("chat", "slack", url=server.url)])
    d.notify(EVENT)
    assert d.flush() and server.wait_for(1) == [payload]
    d.close()


def test_summary_of_a_resolution_and_of_a_detector() -> None:
    resolved = {**EVENT, "event": "resolved", "value": 0.1, "feature": None}
    assert summary(resolved) == "[RESOLVED] critical income drift: churn v3 psi = 0.1 (> 0.25)"
    detected = {**EVENT, "detector": "adwin", "threshold": None}
    assert summary(detected).endswith("psi = 0.3141 (change detected by adwin)")


def test_log_channel_always_exists(caplog: pytest.LogCaptureFixture) -> None:
    d = Dispatcher()
    assert d.names == ["log"]
    with caplog.at_level(logging.INFO, logger="predwatch.alerts"):
        d.notify(EVENT)
        d.notify({**EVENT, "event": "resolved"})
        d.notify({**EVENT, "severity": "info"})
        assert d.flush()
    levels = [(r.levelno, r.getMessage()[:10]) for r in caplog.records]
    assert levels == [(logging.ERROR, "[FIRING] c"), (logging.INFO, "[RESOLVED]"), (logging.INFO, "[FIRING] i")]
    d.close()


def test_retries_with_backoff_then_succeeds() -> None:
    server = WebhookServer(statuses=[503, 502, 200])
    d = Dispatcher([NotifierSpec("hook", "webhook", url=server.url)], backoff_s=0.01)
    d.notify(EVENT, ["hook"])
    assert d.flush()
    stats = d.stats()["hook"]
    assert (stats.sent, stats.failed, stats.retries) == (1, 0, 2)
    assert len(server.wait_for(3)) == 3
    d.close()
    server.close()


def test_gives_up_after_max_attempts_and_keeps_the_error() -> None:
    server = WebhookServer(statuses=[500] * 10)
    d = Dispatcher([NotifierSpec("hook", "webhook", url=server.url, max_attempts=3)], backoff_s=0.01)
    d.notify(EVENT, ["hook"])
    assert d.flush()
    stats = d.stats()["hook"]
    assert (stats.sent, stats.failed, stats.retries) == (0, 1, 2)
    assert stats.last_error == f"HTTP 500 from {server.url}" and stats.last_error_at is not None
    d.close()
    server.close()


def test_client_errors_are_not_retried() -> None:
    server = WebhookServer(statuses=[400])
    d = Dispatcher([NotifierSpec("hook", "webhook", url=server.url)], backoff_s=0.01)
    d.notify(EVENT, ["hook"])
    assert d.flush()
    assert (d.stats()["hook"].failed, d.stats()["hook"].retries, len(server.bodies)) == (1, 0, 1)
    d.close()
    server.close()


def test_backoff_is_exponential_with_jitter_and_honours_retry_after() -> None:
    d = Dispatcher(backoff_s=1.0, max_backoff_s=30.0, rng=random.Random(7))
    for attempt, full in enumerate([1, 2, 4, 8, 16, 30, 30]):
        waits = [d.backoff(attempt, None) for _ in range(200)]
        assert all(full / 2 <= w <= full for w in waits)
        assert max(waits) - min(waits) > full / 4  # jitter spreads retries out
    assert d.backoff(0, 12.0) == 12.0  # Retry-After beats a shorter backoff
    assert d.backoff(0, 3600.0) == 30.0  # but is capped
    d.close()


def test_retry_after_header_is_read() -> None:
    server = WebhookServer(statuses=[429], retry_after="0.3")
    d = Dispatcher([NotifierSpec("hook", "webhook", url=server.url)], backoff_s=0.001)
    started = time.monotonic()
    d.notify(EVENT, ["hook"])
    assert d.flush()
    assert time.monotonic() - started >= 0.3 and d.stats()["hook"].sent == 1
    d.close()
    server.close()


def test_a_dead_webhook_is_reported_and_does_not_block(server: WebhookServer) -> None:
    d = Dispatcher(
        [
            NotifierSpec("dead", "webhook", url=dead_url(), max_attempts=2),
            NotifierSpec("ok", "webhook", url=server.url),
        ],
        backoff_s=0.01,
    )
    started = time.monotonic()
    for _ in range(20):
        d.notify(EVENT)
    assert time.monotonic() - started < 1.0  # queued, never sent inline
    assert len(server.wait_for(20)) == 20
    assert d.flush()
    dead = d.stats()["dead"]
    assert dead.failed == 20 and dead.sent == 0 and "ConnectError" in (dead.last_error or "")
    status = d.status()
    assert status["dead"]["type"] == "webhook" and status["dead"]["failed"] == 20 and status["ok"]["sent"] == 20
    assert status["dead"]["last_error"] == dead.last_error and status["log"]["sent"] == 20
    d.close()


def test_a_stalling_webhook_delays_only_itself(server: WebhookServer) -> None:
    staller = WebhookServer(stall=True)
    d = Dispatcher(
        [NotifierSpec("stall", "webhook", url=staller.url, timeout_s=30), NotifierSpec("ok", "webhook", url=server.url)]
    )
    started = time.monotonic()
    for _ in range(5):
        d.notify(EVENT)
    assert time.monotonic() - started < 1.0
    assert len(server.wait_for(5)) == 5  # delivered while the other channel hangs
    assert eventually(lambda: d.stats()["ok"].sent == 5)
    assert d.stats()["stall"].sent == 0 and d.stats()["stall"].queued == 5
    assert not d.flush(timeout_s=0.1)
    started = time.monotonic()
    d.close(timeout_s=0.5)  # bounded even with a request hanging
    assert time.monotonic() - started < 5.0
    staller.close()


def test_a_full_queue_drops_and_counts() -> None:
    staller = WebhookServer(stall=True)
    d = Dispatcher([NotifierSpec("stall", "webhook", url=staller.url, timeout_s=30)], queue_size=2)
    d.notify(EVENT, ["stall"])
    assert staller.arrived.wait(10)  # the first one is in flight
    for _ in range(4):
        d.notify(EVENT, ["stall"])
    stats = d.stats()["stall"]
    assert (stats.dropped, stats.queued) == (2, 3)  # two queued behind the one in flight, two dropped
    d.close(timeout_s=0.2)
    staller.close()


def test_unknown_names_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    d = Dispatcher()
    d.notify(EVENT, ["nobody"])
    assert "unknown notifier 'nobody'" in caplog.text
    d.close()
    d.notify(EVENT)  # after close: ignored
    assert d.stats()["log"].queued == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "log"}, "name"),
        ({"name": "a", "type": "email"}, "type: expected one of webhook, slack, log"),
        ({"name": "a", "url": "alerts.internal"}, r"url: expected an http\(s\) URL"),
        ({"name": "a", "url": "http://x", "timeout": 0}, "timeout"),
        ({"name": "a", "url": "http://x", "max_attempts": 0}, "max_attempts"),
        ({"name": "a", "url": "http://x", "headers": {"x": 1}}, "headers"),
        ({"name": "a", "url": "http://x", "retries": 3}, "retries: unknown key"),
    ],
)
def test_notifier_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_notifier(data)


def test_headers_are_sent() -> None:
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            seen.append(self.headers.get("authorization"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    spec = parse_notifier(
        {"name": "a", "url": f"http://127.0.0.1:{httpd.server_address[1]}/", "headers": {"Authorization": "Bearer t"}}
    )
    d = Dispatcher([spec])
    d.notify(EVENT, ["a"])
    assert d.flush() and seen == ["Bearer t"] and d.stats()["a"].sent == 1
    d.close()
    httpd.shutdown()
    httpd.server_close()
