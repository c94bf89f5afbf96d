"""`predwatch report` against a real collector: the table, --json, --wait, and what it says when it cannot."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from collector.cli import main
from collector.report import fetch, parse_since, render
from tests.collector.test_app import Running, inference, serve


def upload_reference(running: Running, model: str = "m") -> None:
    with running.client() as http:
        body = {"inputs": {"x": [float(i) for i in range(100)]}}
        assert http.put(f"/api/v1/models/{model}/reference", params={"version": "1"}, json=body).status_code == 200


def test_report_prints_the_drift_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serve(tmp_path) as running:
        running.service._sink([inference("m", 50)])
        upload_reference(running)
        assert main(["report", "m", "--url", running.url, "--since", "2h"]) == 0
    out = capsys.readouterr().out
    assert "drift of m version 1:" in out and "50 recorded rows" in out
    line = next(line for line in out.splitlines() if line.startswith("x "))
    assert line.split()[:4] == ["x", "input", "numeric", "50"]
    assert "\033[" not in out  # not a terminal: no colours


def test_report_json_for_scripts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serve(tmp_path) as running:
        running.service._sink([inference("m", 20)])
        upload_reference(running)
        assert main(["report", "m", "--version", "1", "--json", "--url", running.url]) == 0
    answers = json.loads(capsys.readouterr().out)
    assert answers["models"][0]["model"] == "m" and answers["models"][0]["rows"] == 20
    assert answers["drift"]["rows"] == 20
    assert [f["name"] for f in answers["drift"]["features"]] == ["x"]


def test_report_without_a_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serve(tmp_path) as running:
        running.service._sink([inference("m", 5)])
        assert main(["report", "m", "--url", running.url]) == 1
        captured = capsys.readouterr()
        assert "model 'm' version '1' has no reference yet" in captured.err
        assert "predwatch reference set m FILE --version 1" in captured.err
        assert main(["report", "m", "--json", "--url", running.url]) == 1
        assert json.loads(capsys.readouterr().out)["drift"]["status"] == 409


def test_report_unknown_model_and_no_collector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serve(tmp_path) as running:
        running.service._sink([inference("m", 5)])
        assert main(["report", "nope", "--url", running.url]) == 1
        assert "has no predictions of model 'nope'; models it knows: m" in capsys.readouterr().err
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert main(["report", "m", "--url", f"http://127.0.0.1:{port}"]) == 1
    assert "cannot reach the collector at http://127.0.0.1:" in capsys.readouterr().err
    assert main(["report", "m", "--since", "soon"]) == 2


def test_report_with_a_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serve(tmp_path, api_tokens=("s3cret",)) as running:
        running.service._sink([inference("m", 5)])
        assert main(["report", "m", "--url", running.url, "--token", "wrong"]) == 1
        assert "refused the API token (401)" in capsys.readouterr().err
        assert main(["report", "m", "--url", running.url, "--token", "s3cret", "--json"]) == 1  # no reference
        assert json.loads(capsys.readouterr().out)["models"][0]["rows"] == 5


def test_report_waits_for_the_first_rows(tmp_path: Path) -> None:
    with serve(tmp_path) as running:
        upload_reference(running, "late")
        timer = threading.Timer(0.5, lambda: running.service._sink([inference("late", 7)]))
        timer.start()
        started = time.monotonic()
        answers = fetch(running.url, "late", "1", wait_s=10, spinner=None)
        timer.join()
    assert 0.4 < time.monotonic() - started < 10
    assert answers["drift"]["rows"] == 7


def test_render_colours_statuses() -> None:
    drift = {
        "model": "m", "version": "1", "status": "drift", "rows": 3, "start": "a", "end": "b",
        "features": [{"name": "x", "role": "input", "kind": "numeric", "count": 3, "psi": 0.5, "status": "drift"}],
    }  # fmt: skip
    operations = {"predictions": 3, "errors": 0, "latency_ms": {"p50": 1.5}, "memory_bytes": 2**20}
    performance = {"task": "binary_classification", "labeled": 3, "metrics": {"accuracy": 0.5}}
    answers = {"drift": drift, "performance": performance, "operations": operations}
    assert "\033[31;1mdrift\033[0m" in render(answers, colour=True)
    plain = render(answers)
    assert "\033[" not in plain and "accuracy          0.5" in plain and "p50 1.5" in plain and "1.0 MiB" in plain


def test_parse_since() -> None:
    assert [parse_since(t) for t in ("90", "90s", "15m", "1h", "2d", "1w")] == [90, 90, 900, 3600, 172800, 604800]
    with pytest.raises(ValueError, match="--since"):
        parse_since("0h")
