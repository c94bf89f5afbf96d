"""Rule actions: a real command (a small Python script) and a real local webhook, once per cooldown, restart-safe."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from collector.actions import ActionRunner
from collector.alert_store import MemoryAlertStore, SQLiteAlertStore
from collector.rules import Rule, rule_from_json
from tests.collector.test_notify import WebhookServer, dead_url

T0 = 1_767_225_600.0
ALERT = {
    "id": "a1",
    "event": "firing",
    "rule": "retrain on drift",
    "model": "churn",
    "version": "3",
    "feature": "income",
    "metric": "psi",
    "value": 0.4,
    "threshold": 0.25,
}

RECORDER = """
import json, os, pathlib, sys, time
out = pathlib.Path(sys.argv[1])
body = sys.stdin.read()
# A name of its own: runs of two versions go at the same time (counting the files here would race).
record = {"stdin": json.loads(body), "rule": os.environ["PREDWATCH_RULE"], "model": os.environ["PREDWATCH_MODEL"],
          "argv": sys.argv[2:]}
(out / f"run-{time.time_ns()}-{os.getpid()}.json").write_text(json.dumps(record))
print("noise on stdout")
print("the end of stderr", file=sys.stderr)
sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
"""


def command_rule(tmp_path: Path, extra: str = "", **options: Any) -> Rule:
    script = tmp_path / "retrain.py"
    script.write_text(RECORDER)
    (tmp_path / "out").mkdir(exist_ok=True)
    command = f"'{sys.executable}' '{script}' '{tmp_path / 'out'}' {extra}"
    return rule_from_json(
        {
            "name": "retrain on drift",
            "metric": "psi",
            "threshold": 0.25,
            "cooldown": "1h",
            "action": {"command": command, **options},
        }
    )


def runs(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "out").glob("run-*.json"))]


def test_command_runs_once_per_cooldown_with_the_alert_on_stdin(tmp_path: Path) -> None:
    runner = ActionRunner(store := SQLiteAlertStore(str(tmp_path / "p.db")))
    rule = command_rule(tmp_path)
    assert runner.trigger(rule, ALERT, T0)
    assert not runner.trigger(rule, {**ALERT, "feature": "age"}, T0 + 60)  # same (rule, model, version)
    assert not runner.trigger(rule, ALERT, T0 + 3599)
    assert runner.flush()
    assert runs(tmp_path) == [{"stdin": ALERT, "rule": "retrain on drift", "model": "churn", "argv": []}]
    [run] = runner.runs()
    assert run["ok"] and run["exit_status"] == 0 and run["state"] == "done" and run["started_at"] == T0
    assert run["stderr"].strip() == "the end of stderr"
    assert runner.trigger(rule, ALERT, T0 + 3600)  # the cooldown is over
    assert runner.trigger(rule, {**ALERT, "version": "4"}, T0 + 3600)  # another version has its own
    assert runner.flush() and len(runs(tmp_path)) == 3
    assert runner.counts == {"started": 3, "succeeded": 3, "failed": 0, "skipped": 2, "dropped": 0}
    runner.close()
    store.close()


def test_the_cooldown_survives_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    rule = command_rule(tmp_path)
    first = ActionRunner(store := SQLiteAlertStore(db))
    assert first.trigger(rule, ALERT, T0) and first.flush()
    first.close()
    store.close()
    second = ActionRunner(store := SQLiteAlertStore(db))
    assert not second.trigger(rule, ALERT, T0 + 1800)
    assert second.runs()[0]["ok"] is True
    assert second.trigger(rule, ALERT, T0 + 3601) and second.flush()
    assert len(runs(tmp_path)) == 2
    second.close()
    store.close()


def test_exit_status_and_failures_are_recorded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runner = ActionRunner(MemoryAlertStore())
    assert runner.trigger(command_rule(tmp_path, "3"), ALERT, T0) and runner.flush()
    [run] = runner.runs()
    assert (run["ok"], run["exit_status"], run["error"]) == (False, 3, "exit status 3")
    assert runner.counts["failed"] == 1 and "failed: exit status 3" in caplog.text
    missing = rule_from_json(
        {"name": "m", "metric": "psi", "threshold": 1, "action": {"command": "/nonexistent/retrain"}}
    )
    assert runner.trigger(missing, ALERT, T0) and runner.flush()
    assert "cannot run '/nonexistent/retrain'" in next(r["error"] for r in runner.runs() if r["rule"] == "m")
    runner.close()


def test_a_slow_command_is_killed_at_its_timeout_and_never_blocks(tmp_path: Path) -> None:
    runner = ActionRunner(MemoryAlertStore())
    slow = rule_from_json(
        {
            "name": "slow",
            "metric": "psi",
            "threshold": 1,
            "action": {"command": f"'{sys.executable}' -c 'import time; time.sleep(60)'", "timeout": 0.5},
        }
    )
    started = time.monotonic()
    assert runner.trigger(slow, ALERT, T0)
    assert time.monotonic() - started < 0.5  # trigger only queues
    assert runner.flush(timeout_s=30)
    assert time.monotonic() - started < 20
    [run] = runner.runs()
    assert run["ok"] is False and run["exit_status"] is None and "timed out after 0.5 s" in run["error"]
    runner.close()


def test_webhook_action(tmp_path: Path) -> None:
    server = WebhookServer(statuses=[200, 500])
    runner = ActionRunner(MemoryAlertStore())
    rule = rule_from_json(
        {"name": "w", "metric": "psi", "threshold": 1, "cooldown": 0, "action": {"webhook": server.url}}
    )
    assert runner.trigger(rule, ALERT, T0) and runner.flush()
    assert server.wait_for(1) == [ALERT]
    assert runner.runs()[0]["ok"] and runner.runs()[0]["http_status"] == 200
    assert runner.trigger(rule, ALERT, T0 + 1) and runner.flush()  # cooldown 0: every firing
    assert runner.runs()[0]["http_status"] == 500 and runner.runs()[0]["error"] == "HTTP 500"
    assert len(server.wait_for(2)) == 2  # not retried
    dead = rule_from_json({"name": "d", "metric": "psi", "threshold": 1, "action": {"webhook": dead_url()}})
    assert runner.trigger(dead, ALERT, T0) and runner.flush()
    assert "ConnectError" in next(r["error"] for r in runner.runs() if r["rule"] == "d")
    runner.close()
    server.close()


def test_no_action_and_too_many_pending(tmp_path: Path) -> None:
    runner = ActionRunner(MemoryAlertStore(), max_workers=1, max_pending=1)
    assert not runner.trigger(rule_from_json({"name": "n", "metric": "psi", "threshold": 1}), ALERT, T0)
    slow = rule_from_json(
        {
            "name": "slow",
            "metric": "psi",
            "threshold": 1,
            "action": {"command": f"'{sys.executable}' -c 'import time; time.sleep(60)'", "timeout": 1},
        }
    )
    assert runner.trigger(slow, ALERT, T0)
    assert not runner.trigger(slow, {**ALERT, "model": "other"}, T0)
    assert runner.counts["dropped"] == 1
    assert runner.flush(timeout_s=30)
    runner.close()


class FailingStore(MemoryAlertStore):
    def put_marks(self, kind: str, marks: Any) -> None:
        raise OSError("disk full")


def test_an_unrecordable_run_does_not_start(tmp_path: Path) -> None:
    runner = ActionRunner(FailingStore())
    assert not runner.trigger(command_rule(tmp_path), ALERT, T0)
    assert runner.counts["dropped"] == 1 and runs(tmp_path) == []
    runner.close()
