"""Alerting in the running collector: drift sent through the real SDK fires a rule, one notification reaches a
local webhook, the retraining command runs once, the alert resolves when the drift goes away, a dead webhook
slows nothing, and /metrics parses as Prometheus text."""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import instrument
from instrument import _runtime
from tests.collector.test_app import serve
from tests.collector.test_notify import WebhookServer


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/hook"


def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def sdk_reset() -> Any:
    _runtime.reset_for_tests()
    yield
    _runtime.reset_for_tests()


def test_drift_fires_notifies_once_runs_the_action_and_resolves(tmp_path: Path) -> None:
    ran = tmp_path / "retrain.jsonl"
    script = tmp_path / "retrain.py"
    script.write_text(f"import sys\nopen({str(ran)!r}, 'a').write(sys.stdin.read().replace('\\n', ' ') + '\\n')\n")
    rule = {
        "name": "age drift",
        "model": "churn",
        "metric": "psi",
        "feature": "age",
        "op": ">",
        "threshold": 0.25,
        "for": 1,
        "window": "4s",
        "cooldown": "1h",
        "notify": ["team", "dead"],
        "action": {"command": f"{sys.executable} {script}"},
    }
    rng = np.random.default_rng(5)
    hook = WebhookServer()
    try:
        notifiers = (
            {"name": "team", "type": "webhook", "url": hook.url},
            {"name": "dead", "type": "webhook", "url": closed_port_url()},
        )
        with serve(tmp_path, window_s=1, grace_s=0.5, rules=(rule,), notifiers=notifiers, default_rules=False) as c:
            with c.client() as http:
                reference = {"inputs": {"age": rng.normal(40, 10, 2000).tolist()}}
                assert http.put("/api/v1/models/churn/reference?version=1", json=reference).status_code in (200, 201)
                instrument.configure(service_name="alerting", endpoint=c.url, resource_metrics=False)
                predict = instrument.monitor(model="churn", version="1", task="regression")(
                    lambda x: np.zeros(len(x["age"]))
                )

                started = time.monotonic()
                for _ in range(5):  # drifted traffic: ages 20 years older
                    predict({"age": rng.normal(60, 10, 200)})
                    instrument.flush()
                ingest_s = time.monotonic() - started
                assert ingest_s < 5, ingest_s  # the dead webhook never slows ingest down

                wait_for(lambda: any(b.get("event") == "firing" for b in hook.bodies), 30, "the firing notice")
                firing = [b for b in hook.bodies if b.get("event") == "firing"]
                assert len(firing) == 1
                assert firing[0]["rule"] == "age drift" and firing[0]["feature"] == "age"
                assert firing[0]["value"] > 0.25
                wait_for(lambda: ran.exists(), 15, "the retraining command")
                (line,) = ran.read_text().splitlines()
                assert json.loads(line)["rule"] == "age drift"

                alerts = http.get("/api/v1/alerts?state=active").json()["alerts"]
                assert [a["state"] for a in alerts] == ["firing"]
                families = {f.name: f for f in text_string_to_metric_families(http.get("/metrics").text)}
                states = [s for s in families["predwatch_alerts"].samples if s.labels.get("state") == "firing"]
                assert states and states[0].labels["rule"] == "age drift"
                assert "predwatch_drift_psi" in families

                deadline = time.monotonic() + 40  # back to normal: the alert resolves, with one notice
                while not any(b.get("event") == "resolved" for b in hook.bodies):
                    assert time.monotonic() < deadline, f"no resolution; got {[b.get('event') for b in hook.bodies]}"
                    predict({"age": rng.normal(40, 10, 200)})
                    instrument.flush()
                    time.sleep(0.5)
                assert [b.get("event") for b in hook.bodies] == ["firing", "resolved"]
                assert len(ran.read_text().splitlines()) == 1  # once per cooldown
                assert [a["state"] for a in http.get("/api/v1/alerts").json()["alerts"]] == ["resolved"]
    finally:
        hook.close()
