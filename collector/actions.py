"""Automation: a rule's action (a retraining webhook, or a command) when its alert fires.

    runner = ActionRunner(store)                    # the alert store keeps the last run per (rule, model, version)
    runner.trigger(rule, alert_json, now)           # from the evaluator, on "firing"; never blocks
    runner.runs()                                   # the last run of each, for the API

- At most once per rule cooldown per (rule, model, version), whatever the feature: five drifting columns ask
  for one retraining. The run is recorded in the store *before* it starts, so a restart never runs it twice
  within the cooldown (at most once: a crash mid-run is not retried).
- `{webhook = url}`: one POST of the alert JSON; not retried, since a call that timed out may have started a
  retraining. A 2xx answer is success.
- `{command = "..."}`: argv from shlex.split, no shell; the alert JSON on stdin; PREDWATCH_RULE,
  PREDWATCH_MODEL and PREDWATCH_VERSION in the environment; stdout discarded, the last 4 KiB of stderr kept;
  killed after the action's timeout. Exit status 0 is success.
Runs happen on a small thread pool; outcomes (exit status, HTTP status, error) are logged and recorded.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from collector.alert_store import AlertStore
from collector.rules import Action, Rule

__all__ = ["ActionRunner"]

_log = logging.getLogger("predwatch.alerts")
_STDERR_TAIL = 4096


class ActionRunner:
    def __init__(
        self,
        store: AlertStore,
        *,
        clock: Callable[[], float] = time.time,
        max_workers: int = 2,
        max_pending: int = 100,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_pending = max_pending
        self.counts = {"started": 0, "succeeded": 0, "failed": 0, "skipped": 0, "dropped": 0}
        self._transport = transport
        self._lock = threading.Lock()
        self._marks: dict[str, dict[str, Any]] = store.get_marks("action")
        self._pending = 0
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="predwatch-action")

    def trigger(self, rule: Rule, alert: Mapping[str, Any], now: float | None = None) -> bool:
        """Start the rule's action unless it ran within the cooldown; True when started."""
        if rule.action is None:
            return False
        now = self.clock() if now is None else now
        model, version = str(alert.get("model")), str(alert.get("version"))
        key = json.dumps([rule.name, model, version])
        with self._lock:
            last = self._marks.get(key)
            if last is not None and now - last["started_at"] < rule.cooldown_s:
                self.counts["skipped"] += 1
                return False
            if self._pending >= self.max_pending:
                self.counts["dropped"] += 1
                _log.warning("action of rule %r: too many runs pending, dropped", rule.name)
                return False
            mark = {"rule": rule.name, "model": model, "version": version, "started_at": now, "state": "running"}
            try:
                self.store.put_marks("action", {key: mark})
            except Exception as exc:  # without the record the cooldown cannot survive a restart: do not run
                self.counts["dropped"] += 1
                _log.warning("action of rule %r: cannot record the run, not started: %r", rule.name, exc)
                return False
            self._marks[key] = mark
            self._pending += 1
            self.counts["started"] += 1
        self._pool.submit(self._run, key, rule.action, dict(alert))
        return True

    def runs(self) -> list[dict[str, Any]]:
        """The last run of each (rule, model, version): started_at, state, finished_at, ok, exit_status, ..."""
        with self._lock:
            return [dict(mark) for mark in self._marks.values()]

    def _run(self, key: str, action: Action, alert: dict[str, Any]) -> None:
        try:
            outcome = self._command(action, alert) if action.command else self._webhook(action, alert)
        except Exception as exc:  # never let a run kill the pool thread
            outcome = {"ok": False, "error": repr(exc)}
        with self._lock:
            self._pending -= 1
            mark = self._marks[key] = {**self._marks[key], **outcome, "state": "done", "finished_at": self.clock()}
            self.counts["succeeded" if outcome["ok"] else "failed"] += 1
        if not outcome["ok"]:
            _log.warning(
                "action of rule %r for %s v%s failed: %s",
                alert.get("rule"),
                alert.get("model"),
                alert.get("version"),
                outcome.get("error"),
            )
        try:
            self.store.put_marks("action", {key: mark})
        except Exception as exc:
            _log.warning("cannot record an action's outcome: %r", exc)

    def _command(self, action: Action, alert: Mapping[str, Any]) -> dict[str, Any]:
        argv = list(action.command or ())
        env = {
            **os.environ,
            "PREDWATCH_RULE": str(alert.get("rule")),
            "PREDWATCH_MODEL": str(alert.get("model")),
            "PREDWATCH_VERSION": str(alert.get("version")),
        }
        with tempfile.TemporaryFile() as stderr:
            try:
                done = subprocess.run(
                    argv,
                    input=json.dumps(alert).encode(),
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    timeout=action.timeout_s,
                    env=env,
                    check=False,
                )
                status: int | None = done.returncode
                error = None if status == 0 else f"exit status {status}"
            except subprocess.TimeoutExpired:
                status, error = None, f"timed out after {action.timeout_s:g} s (killed)"
            except OSError as exc:
                status, error = None, f"cannot run {argv[0]!r}: {exc.strerror or exc}"
            stderr.seek(max(0, stderr.seek(0, os.SEEK_END) - _STDERR_TAIL))
            tail = stderr.read().decode(errors="replace")
        return {"ok": status == 0, "exit_status": status, "error": error, "stderr": tail}

    def _webhook(self, action: Action, alert: Mapping[str, Any]) -> dict[str, Any]:
        try:
            with httpx.Client(timeout=action.timeout_s, transport=self._transport) as client:
                response = client.post(action.webhook or "", json=alert)
        except httpx.HTTPError as exc:
            return {"ok": False, "http_status": None, "error": f"{type(exc).__name__}: {exc}"}
        ok = response.is_success
        return {"ok": ok, "http_status": response.status_code, "error": None if ok else f"HTTP {response.status_code}"}

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until no run is pending; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                if self._pending == 0:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def close(self, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
