"""Every example runs with one command."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.collector.test_app import serve

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sdk_tour_prints_what_the_sdk_records() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "examples.sdk_tour"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "predict cancer" in out
    assert "predwatch.inference" in out and "predwatch.actuals" in out
    assert "predwatch.predictions" in out and "process.memory.usage" in out


# -- the served model, the batch job, the traffic generator and the demo against a real collector ---------------------
def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    """`python -m args...`; returns the process and the URL its first line announces."""
    proc = subprocess.Popen(
        [sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"on (http://\S+)", line)
    if not found:
        proc.kill()
        proc.wait(10)
        raise AssertionError(f"{args} did not start: {line!r}")
    return proc, found.group(1)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
    assert proc.wait(20) is not None
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.mark.parametrize("server", ["examples.fastapi_app", "examples.flask_app"])
def test_served_model_and_traffic_reach_the_collector(tmp_path: Path, server: str) -> None:
    with serve(tmp_path) as collector:
        proc, url = _start(server, "--port", "0", "--collector", collector.url)
        try:
            traffic = subprocess.run(
                [sys.executable, "-m", "examples.traffic", "--server", url, "--collector", collector.url,
                 "--requests", "12", "--rate", "0", "--drift-after", "6", "--label-delay", "0.1"],
                cwd=ROOT, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert traffic.returncode == 0, traffic.stderr
            found = re.search(r"12 requests \(0 failed\), (\d+) rows, (\d+) drifted; (\d+) labels sent", traffic.stdout)
            assert found, traffic.stdout
            rows, drifted, labels = map(int, found.groups())
            assert 12 <= rows <= 60 and 0 < drifted < rows and labels == rows
            collector.wait_rows("cancer", rows)  # every row exactly once
        finally:
            _stop(proc)
        with collector.client() as http:
            models = http.get("/api/v1/models").json()
    assert [(m["model"], m["version"], m["rows"]) for m in models] == [("cancer", "1", rows)]


def test_batch_job_logs_every_row(tmp_path: Path) -> None:
    with serve(tmp_path) as collector:
        result = subprocess.run(
            [sys.executable, "-m", "examples.batch_job", "--collector", collector.url, "--batch", "40"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "scored 171 rows in batches of 40; sent 171 labels" in result.stdout
        collector.wait_rows("cancer", 171)


def test_demo_once_prints_the_report(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "examples.demo", "--duration", "2", "--port", "0", "--once"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "reference set: 398 training rows" in out
    assert "drift of cancer version 1:" in out and "mean radius" in out
    assert re.search(r"dashboard  http://127\.0\.0\.1:\d+/", out)


def test_demo_stops_its_children_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.demo", "--duration", "1", "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    pids: list[int] = []
    try:
        for line in proc.stdout:
            found = re.search(r"\(pids ([\d ]+)\)", line)
            if found:
                pids = [int(p) for p in found.group(1).split()]
            if "Ctrl-C stops everything" in line:
                break
        assert len(pids) == 2
        assert all(_alive(pid) for pid in pids)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert not any(_alive(pid) for pid in pids)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
