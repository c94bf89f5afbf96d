"""A small Chrome DevTools Protocol client: launch headless Chromium, load pages, run JavaScript, screenshot.

    with Browser.launch(chromium_binary(), tmp_path) as browser:
        page = browser.page
        page.goto(url + "/#/")
        page.wait_for("document.body.dataset.state === 'ready'")
        page.evaluate("document.querySelectorAll('[data-cell]').length")    # JSON-able values come back
        page.screenshot(Path("overview.png"))
        assert not page.errors()                                             # exceptions, console errors

Why CDP and not WebDriver: one websocket (websocket-client) and Chromium alone, no chromedriver to match,
and the protocol reports what a test wants to assert besides the DOM: uncaught exceptions, console errors,
failed loads, CSP violations and every URL the page requested (so "no CDN" is checked, not assumed).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

try:
    import websocket
except ImportError as exc:  # pragma: no cover - a development install has it
    raise ImportError("the browser tests drive Chromium with websocket-client: pip install -e '.[dev]'") from exc

FLAGS = (
    *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
    *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
    *("--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--remote-debugging-port=0"),
)
WIDTH, HEIGHT = 1440, 900


class CdpError(RuntimeError):
    pass


@dataclass
class Page:
    ws: websocket.WebSocket
    timeout_s: float = 15.0
    events: list[dict[str, Any]] = field(default_factory=list)
    _next: int = 0

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        ident = self._next
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise CdpError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self.events.append(message)
        raise CdpError(f"{method}: no answer in {self.timeout_s} s")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise CdpError(f"{expression[:80]!r} threw: {details.get('exception', {}).get('description', details)}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float | None = None) -> Any:
        """Poll `expression` until it is truthy; return its value."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                state = self.evaluate("document.body && document.body.dataset.state")
                raise CdpError(f"timed out waiting for {expression!r} (page state {state!r}); {self.errors()}")
            time.sleep(0.05)

    def goto(self, url: str) -> None:
        self.events.clear()
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")

    def ready(self, page: str | None = None, renders: int = 1) -> None:
        """Wait until the dashboard has rendered (`renders` times in this document) and is `ready`."""
        check = f"document.body.dataset.state === 'ready' && Number(document.body.dataset.renders) >= {renders}"
        if page is not None:
            check += f" && document.body.dataset.page === {json.dumps(page)}"
        self.wait_for(check)

    def screenshot(self, path: Path, full: bool = True) -> Path:
        """The whole page (`full`), or what a 1440 x 900 window shows."""
        height = self.evaluate("Math.ceil(document.documentElement.scrollHeight)") if full else HEIGHT
        clip = {"x": 0, "y": 0, "width": WIDTH, "height": max(int(height), HEIGHT), "scale": 1}
        shot = self.send("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def drain(self) -> None:
        """Collect the events that arrived since the last command."""
        self.ws.settimeout(0.05)
        try:
            while True:
                message = json.loads(self.ws.recv())
                if "method" in message:
                    self.events.append(message)
        except (websocket.WebSocketTimeoutException, TimeoutError):
            pass
        finally:
            self.ws.settimeout(self.timeout_s)

    def errors(self) -> list[str]:
        """Uncaught exceptions, console errors and error log entries (failed loads, CSP) since the last goto.

        An API answer with an error status is not one: the page shows those (409 no reference, 404 for an
        endpoint this collector lacks, 401) as states of its own."""
        self.drain()
        found = []
        for event in self.events:
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(f"exception: {details.get('exception', {}).get('description', details.get('text'))}")
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                if params["entry"].get("source") == "network" and "/api/v1/" in params["entry"].get("url", ""):
                    continue
                found.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")
        return found

    def requested(self) -> list[str]:
        """Every URL the page asked for since the last goto."""
        self.drain()
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]


@dataclass
class Browser:
    process: subprocess.Popen[bytes]
    page: Page

    @classmethod
    @contextmanager
    def launch(cls, binary: str, profile: Path) -> Iterator[Browser]:
        profile.mkdir(parents=True, exist_ok=True)
        args = [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", "about:blank"]
        log = (profile / "chromium.log").open("wb")
        # Its own process group, so that teardown ends the renderers and helpers with the browser.
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TZ": "UTC"}, start_new_session=True
        )
        try:
            port = _devtools_port(profile, process)
            targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
            target = next(t for t in targets if t["type"] == "page")
            ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=15, suppress_origin=True)
            page = Page(ws)
            for domain in ("Page", "Runtime", "Network", "Log"):
                page.send(f"{domain}.enable")
            page.send(
                "Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False
            )
            page.send("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "light"}])
            try:
                yield cls(process, page)
            finally:
                ws.close()
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # what is left of this browser's group
            log.close()


def _devtools_port(profile: Path, process: subprocess.Popen[bytes]) -> int:
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (profile / "chromium.log").read_text(errors="replace")[-2000:]
            raise CdpError(f"Chromium exited with {process.returncode} before it opened DevTools:\n{log}")
        if marker.exists():
            first = marker.read_text().split("\n", 1)[0].strip()
            if first.isdigit():
                return int(first)
        time.sleep(0.05)
    raise CdpError("Chromium did not open its DevTools port in 30 s")
