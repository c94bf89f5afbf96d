"""Notification channels: a JSON webhook, a Slack-compatible incoming webhook, and a log line.

    dispatcher = Dispatcher([NotifierSpec("ml-team", "webhook", url="http://alerts.internal/hook")])
    dispatcher.notify(event)                      # every channel; never blocks, never raises
    dispatcher.notify(event, names=["ml-team"])
    dispatcher.stats()["ml-team"].failed          # for /metrics and the API
    dispatcher.close()

`event` is the alert's JSON (`alerts.Alert.to_json()`) with an `"event"` key: "firing", "reminder" (still
firing after the rule's cooldown) or "resolved". A webhook receives exactly that object as its POST body;
Slack receives `{"text": ..., "blocks": [...]}`; the log channel writes one line to the "predwatch.alerts"
logger (info and resolutions at INFO, warning at WARNING, critical at ERROR). A channel named "log" always
exists.

Delivery: one background thread and one bounded queue per channel, so a dead or stalling channel delays only
itself; a full queue drops the event and counts it (as `close()` does with what it could not deliver in time).
Each event is tried up to `max_attempts` times on network errors, 408, 429 and 5xx, waiting base * 2^attempt
seconds (capped) with equal jitter (half fixed, half random) and at least Retry-After (capped too); other 4xx
are permanent. Failures are counted and the last error kept, never raised. Delivery is at most once across a
crash: events still queued at exit are lost.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

__all__ = ["ChannelStats", "Dispatcher", "NotifierSpec", "parse_notifier", "slack_payload", "summary"]

NotifierType = Literal["webhook", "slack", "log"]
_TYPES: tuple[NotifierType, ...] = ("webhook", "slack", "log")
_log = logging.getLogger("predwatch.alerts")
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}
_RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class NotifierSpec:
    name: str
    type: NotifierType
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 5.0
    max_attempts: int = 5


def parse_notifier(data: Mapping[str, Any]) -> NotifierSpec:
    """One `[[notifiers]]` table: name, type (webhook | slack | log), url, headers, timeout (s), max_attempts."""
    name = data.get("name") if isinstance(data, Mapping) else None
    if not isinstance(name, str) or not name:
        raise ValueError(f"notifier {name!r}: name: a non-empty string is required")
    unknown = sorted(set(data) - {"name", "type", "url", "headers", "timeout", "max_attempts"})
    if unknown:
        raise ValueError(f"notifier {name!r}: {unknown[0]}: unknown key")
    kind = data.get("type", "webhook")
    if kind not in _TYPES:
        raise ValueError(f"notifier {name!r}: type: expected one of {', '.join(_TYPES)}, got {kind!r}")
    url = data.get("url")
    if kind != "log" and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
        raise ValueError(f"notifier {name!r}: url: expected an http(s) URL, got {url!r}")
    headers = data.get("headers", {})
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise ValueError(f"notifier {name!r}: headers: expected a table of strings, got {headers!r}")
    timeout = data.get("timeout", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 300:
        raise ValueError(f"notifier {name!r}: timeout: expected seconds in (0, 300], got {timeout!r}")
    attempts = data.get("max_attempts", 5)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 20:
        raise ValueError(f"notifier {name!r}: max_attempts: expected an integer in [1, 20], got {attempts!r}")
    return NotifierSpec(name, kind, url if kind != "log" else None, dict(headers), float(timeout), attempts)


def summary(event: Mapping[str, Any]) -> str:
    """One line: "[FIRING] critical income drift: churn v3 income psi = 0.31 (> 0.25)"."""
    where = f"{event.get('model')} v{event.get('version')}"
    if event.get("feature"):
        where += f" {event['feature']}"
    value = event.get("value")
    shown = f"{value:.4g}" if isinstance(value, int | float) else "n/a"
    threshold = event.get("threshold")
    bound = f" ({event.get('op')} {threshold:.4g})" if isinstance(threshold, int | float) else ""
    if event.get("detector"):
        bound = f" (change detected by {event['detector']})"
    head = f"[{str(event.get('event', event.get('state', ''))).upper()}] {event.get('severity')} {event.get('rule')}"
    return f"{head}: {where} {event.get('metric')} = {shown}{bound}"


def slack_payload(event: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook body: `text` (the fallback line) and `blocks` (a section and a context)."""
    text = summary(event)
    context = [f"started {event.get('started_at')}"]
    window = event.get("window") or {}
    if window:
        context.append(f"window {window.get('start')} – {window.get('end')}")
    for label, url in (event.get("links") or {}).items():
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            context.append(f"<{url}|{label}>")
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]},
        ],
    }


@dataclass(slots=True)
class ChannelStats:
    sent: int = 0
    failed: int = 0  # events given up on after their attempts
    retries: int = 0
    dropped: int = 0  # queue full
    queued: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    last_sent_at: float | None = None


class _Permanent(Exception):
    pass


class _Retryable(Exception):
    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class _Channel:
    def __init__(self, spec: NotifierSpec, dispatcher: Dispatcher, transport: httpx.BaseTransport | None) -> None:
        self.spec = spec
        self.stats = ChannelStats()
        self._d = dispatcher
        self._queue: queue.Queue[Mapping[str, Any] | None] = queue.Queue(dispatcher.queue_size)
        self._busy = 0
        self._client = None
        if spec.type != "log":
            self._client = httpx.Client(timeout=spec.timeout_s, transport=transport, headers=dict(spec.headers))
        self.thread = threading.Thread(target=self._run, name=f"predwatch-notify-{spec.name}", daemon=True)

    def put(self, event: Mapping[str, Any]) -> None:
        with self._d.lock:
            try:
                self._queue.put_nowait(event)
                self._busy += 1
                self.stats.queued = self._busy
            except queue.Full:
                self.stats.dropped += 1
                _log.warning("notifier %s: queue full, dropped an alert notification", self.spec.name)

    def stop(self) -> None:
        while True:
            try:
                self._queue.put_nowait(None)
                return
            except queue.Full:  # make room for the sentinel: the oldest queued event is dropped
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    continue
                with self._d.lock:
                    self._busy -= 1
                    self.stats.queued = self._busy
                    self.stats.dropped += 1

    def idle(self) -> bool:
        with self._d.lock:
            return self._busy == 0

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                if self._d.stopping.is_set():  # closing, and out of time: drop what is left
                    with self._d.lock:
                        self.stats.dropped += 1
                else:
                    self._deliver(event)
            finally:
                with self._d.lock:
                    self._busy -= 1
                    self.stats.queued = self._busy
        if self._client is not None:
            self._client.close()

    def _deliver(self, event: Mapping[str, Any]) -> None:
        for attempt in range(self.spec.max_attempts):
            try:
                self._send(event)
            except _Retryable as exc:
                if attempt + 1 < self.spec.max_attempts and not self._d.stopping.is_set():
                    with self._d.lock:
                        self.stats.retries += 1
                    if not self._d.stopping.wait(self._d.backoff(attempt, exc.retry_after_s)):
                        continue
                self._fail(exc)
                return
            except _Permanent as exc:
                self._fail(exc)
                return
            with self._d.lock:
                self.stats.sent += 1
                self.stats.last_sent_at = self._d.clock()
            return

    def _fail(self, exc: Exception) -> None:
        with self._d.lock:
            self.stats.failed += 1
            self.stats.last_error = str(exc)[:500]
            self.stats.last_error_at = self._d.clock()
        _log.warning("notifier %s: gave up on an alert notification: %s", self.spec.name, exc)

    def _send(self, event: Mapping[str, Any]) -> None:
        if self._client is None:
            level = _LEVELS.get(str(event.get("severity")), logging.WARNING)
            _log.log(logging.INFO if event.get("event") == "resolved" else level, "%s", summary(event))
            return
        body = slack_payload(event) if self.spec.type == "slack" else dict(event)
        try:
            response = self._client.post(self.spec.url or "", json=body)
        except httpx.HTTPError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        if response.is_success:
            return
        message = f"HTTP {response.status_code} from {self.spec.url}"
        if response.status_code in _RETRYABLE:
            raise _Retryable(message, _retry_after(response.headers.get("retry-after")))
        raise _Permanent(message)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to the backoff


class Dispatcher:
    """Channels by name, each with its own thread and bounded queue (see the module docstring)."""

    def __init__(
        self,
        specs: Iterable[NotifierSpec] = (),
        *,
        queue_size: int = 1000,
        backoff_s: float = 0.5,
        max_backoff_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.queue_size = queue_size
        self.clock = clock
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._backoff = (backoff_s, max_backoff_s)
        self._rng = rng or random.Random()
        specs = list(specs)
        if not any(s.name == "log" for s in specs):
            specs.append(NotifierSpec("log", "log"))
        self._channels = {s.name: _Channel(s, self, transport) for s in specs}
        for channel in self._channels.values():
            channel.thread.start()

    @property
    def names(self) -> list[str]:
        return list(self._channels)

    def backoff(self, attempt: int, retry_after_s: float | None) -> float:
        base, cap = self._backoff
        delay = min(cap, base * 2.0**attempt)
        delay = delay / 2 + self._rng.uniform(0, delay / 2)
        return max(delay, min(cap, retry_after_s or 0.0))

    def notify(self, event: Mapping[str, Any], names: Sequence[str] | None = None) -> None:
        """Queue `event` for the named channels (None: all). Unknown names are logged; nothing ever blocks."""
        if self.stopping.is_set():
            return
        for name in self.names if names is None else names:
            channel = self._channels.get(name)
            if channel is None:
                _log.warning("alert for an unknown notifier %r", name)
            else:
                channel.put(event)

    def stats(self) -> dict[str, ChannelStats]:
        with self.lock:
            return {name: ChannelStats(**_fields(c.stats)) for name, c in self._channels.items()}

    def status(self) -> dict[str, dict[str, Any]]:
        """Per channel, for the API: its type and `ChannelStats` (times in Unix seconds)."""
        return {name: {"type": self._channels[name].spec.type, **_fields(s)} for name, s in self.stats().items()}

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued event was delivered or given up on; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while not all(c.idle() for c in self._channels.values()):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued for up to `timeout_s`, then stop: retries end, what is left is dropped (counted)
        and the threads exit (one stuck in a request ends with its timeout; they are daemon threads)."""
        deadline = time.monotonic() + timeout_s
        self.flush(timeout_s)
        self.stopping.set()
        for channel in self._channels.values():
            channel.stop()
        for channel in self._channels.values():
            channel.thread.join(max(0.0, deadline - time.monotonic()))


def _fields(stats: ChannelStats) -> dict[str, Any]:
    return {name: getattr(stats, name) for name in ChannelStats.__slots__}
