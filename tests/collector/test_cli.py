"""`predwatch`: the collector as a real process (SIGTERM loses nothing), and `reference set` against a server."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import instrument
from collector.cli import _bind, _parser, collector_settings, main
from collector.settings import Address
from instrument import _runtime
from tests.collector.test_app import Running, inference, serve

CSV = "id,age,plan,score,churned\n" + "".join(
    f"{i},{20 + i % 50},{['basic', 'pro'][i % 2]},{(i % 10) / 10},{i % 3 == 0}\n" for i in range(200)
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Running]:
    with serve(tmp_path) as running:
        yield running


def run_cli(*args: str) -> int:
    return main(list(args))


# -- reference set ----------------------------------------------------------------------------------------------------
def test_reference_set_from_csv(server: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "train.csv"
    path.write_text(CSV)
    status = run_cli(
        "reference", "set", "churn", str(path), "--version", "3", "--outputs", "score", "--target", "churned",
        "--exclude", "id", "--url", server.url,
    )  # fmt: skip
    assert status == 0, capsys.readouterr().err
    assert capsys.readouterr().out == (
        "reference set for churn version 3: 200 rows, 2 inputs, 1 outputs, actuals from 'churned'\n"
    )
    with server.client() as http:
        stored = http.get("/api/v1/models/churn/reference", params={"version": "3"}).json()
    assert [(c["name"], c["role"], c["kind"]) for c in stored["columns"]] == [
        ("age", "input", "numeric"),
        ("plan", "input", "categorical"),
        ("score", "output", "numeric"),
    ]
    assert stored["actuals"] == {"name": "churned", "count": 200}
    actuals = stored["profile"]["actuals"]["column"]["categorical"]
    assert dict(zip(actuals["categories"], actuals["counts"], strict=True)) == {"false": 133, "true": 67}


def test_reference_set_parquet_and_json_with_environment(
    server: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server.service._sink([inference("fraud", 5, version="9")])  # the newest version is meant without --version
    parquet = tmp_path / "ref.parquet"
    pq.write_table(pa.table({"x": np.arange(50.0), "y": ["a"] * 50}), parquet)
    monkeypatch.setenv("PREDWATCH_URL", server.url)
    assert run_cli("reference", "set", "fraud", str(parquet)) == 0
    assert "fraud version 9: 50 rows, 2 inputs, 0 outputs" in capsys.readouterr().out
    data = tmp_path / "ref.data"
    data.write_text('[{"x": 1.5, "y": "b"}, {"x": 2.5, "y": null}]')
    assert run_cli("reference", "set", "fraud", str(data), "--format", "json", "--version", "10") == 0
    assert "fraud version 10: 2 rows" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--outputs", "score,nope"], "has no column 'nope'; its columns: id, age, plan, score, churned"),
        (["--target", "label"], "has no column 'label'"),
        (["--version", "v" * 300], "the collector refused the reference (400): version must have at most 256"),
    ],
)
def test_reference_set_errors(
    server: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    path = tmp_path / "train.csv"
    path.write_text(CSV)
    assert run_cli("reference", "set", "churn", str(path), "--url", server.url, *extra) == 1
    assert message in capsys.readouterr().err


def test_reference_set_without_data_or_file_or_collector(
    server: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "train.csv"
    path.write_text(CSV)
    assert run_cli("reference", "set", "unseen", str(path), "--url", server.url) == 1
    assert "pass ?version= (predwatch reference set ... --version V)" in capsys.readouterr().err
    assert run_cli("reference", "set", "m", str(tmp_path / "absent.csv"), "--url", server.url) == 1
    assert "no such file" in capsys.readouterr().err
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert run_cli("reference", "set", "m", str(path), "--version", "1", "--url", f"http://127.0.0.1:{port}") == 1
    assert "cannot reach the collector at http://127.0.0.1:" in capsys.readouterr().err


def test_reference_set_with_a_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "train.csv"
    path.write_text(CSV)
    with serve(tmp_path, api_tokens=("s3cret",)) as running:
        args = ("reference", "set", "m", str(path), "--version", "1", "--url", running.url)
        assert run_cli(*args) == 1
        assert "wants an API token: pass --token or set PREDWATCH_API_TOKEN" in capsys.readouterr().err
        assert run_cli(*args, "--token", "s3cret") == 0


# -- collector: refusals before it starts ----------------------------------------------------------------------------
def test_collector_refuses_bad_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ["--store", f"sqlite:///{tmp_path / 'x.db'}"]
    assert run_cli("collector", "--http", "0.0.0.0:0", "--grpc", "off", *store) == 2
    assert "refusing to listen on 0.0.0.0:0 (HTTP) without an API or ingest token" in capsys.readouterr().err
    assert run_cli("collector", "--config", str(tmp_path / "none.toml"), *store) == 2
    assert "cannot read config file" in capsys.readouterr().err
    assert run_cli("collector", "--window", "0", *store) == 2
    assert "window must be between 1 and 86400" in capsys.readouterr().err
    assert run_cli("collector", "--retention=-3d", *store) == 2
    assert "retention must be a duration such as 90d, or 0 / off" in capsys.readouterr().err
    assert run_cli("collector", "--label-ttl", "soon", *store) == 2
    assert "label_ttl: expected seconds or a duration" in capsys.readouterr().err
    assert run_cli("collector", "--http", "127.0.0.1:0", "--store", "postgresql://db/predwatch") == 1
    assert "postgresql:// is not available in this version" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert run_cli("collector", "--http", f"127.0.0.1:{port}", "--grpc", "off", *store) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert run_cli() == 2
    assert run_cli("reference") == 2 and "predwatch reference" in capsys.readouterr().err


def test_retention_and_label_ttl_flags_reach_the_settings(tmp_path: Path) -> None:
    def settings(*flags: str) -> tuple[float, float]:
        found = collector_settings(_parser().parse_args(["collector", *flags]), {})
        return found.retention_s, found.label_ttl_s

    assert settings() == (90 * 86_400, 7 * 86_400)
    assert settings("--retention", "30d", "--label-ttl", "36h") == (30 * 86_400, 36 * 3600)
    assert settings("--retention", "off") == settings("--retention", "0") == (0, 7 * 86_400)
    config = tmp_path / "predwatch.toml"
    config.write_text('retention = "10d"\nlabel_ttl = "1d"\n')
    assert settings("--config", str(config)) == (10 * 86_400, 86_400)
    assert settings("--config", str(config), "--retention", "2d") == (2 * 86_400, 86_400)  # the flag wins


def test_the_listening_socket_says_it_is_tcp() -> None:
    """asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto is IPPROTO_TCP; with proto 0 every answer
    waited ~40 ms for the client's delayed ACK."""
    sock = _bind(Address("127.0.0.1", 0))
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


# -- collector: a real process, SIGTERM, restart ---------------------------------------------------------------------
@contextlib.contextmanager
def collector_process(store: Path, *extra: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    command = [sys.executable, "-m", "collector.cli", "collector", "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0"]
    proc = subprocess.Popen(
        [*command, "--store", f"sqlite:///{store}", *extra],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stderr is not None
    log: list[str] = []
    reader: threading.Thread | None = None
    try:
        url = None
        for line in proc.stderr:
            log.append(line)
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "".join(log)
        reader = threading.Thread(target=lambda: log.extend(proc.stderr or ()), daemon=True)
        reader.start()
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            assert time.monotonic() < deadline and proc.poll() is None, "".join(log)
            time.sleep(0.05)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if reader is not None:
            reader.join(10)
        proc.stderr.close()


def drift_answer(url: str, window: dict[str, str]) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{url}/api/v1/models/churn/drift", params=window).json()
    return answer


def test_sigterm_writes_everything_and_a_restart_answers_the_same(tmp_path: Path) -> None:
    store = tmp_path / "predwatch.db"
    reference = tmp_path / "train.csv"
    reference.write_text(CSV)
    now = time.time()
    window = {"start": str(now - 3600), "end": str(now + 3600)}
    with collector_process(store) as (proc, url):
        _runtime.reset_for_tests()
        instrument.configure(service_name="restart", endpoint=url, resource_metrics=False)
        predict = instrument.monitor(model="churn", version="3")(lambda rows: [0.25] * len(rows["age"]))
        rng = np.random.default_rng(5)
        for _ in range(3):  # 150 rows: the KLL sketches stay exact, so answers can be compared exactly
            predict({"age": rng.normal(45, 10, 50).tolist(), "plan": rng.choice(["basic", "pro", "team"], 50).tolist()})
        instrument.shutdown(timeout_s=10)
        _runtime.reset_for_tests()
        assert main(["reference", "set", "churn", str(reference), "--outputs", "score", "--url", url]) == 0
        before = drift_answer(url, window)
        models = httpx.get(url + "/api/v1/models").json()
        assert before["rows"] == 150 and models[0]["rows"] == 150
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    with collector_process(store) as (proc, url):
        assert drift_answer(url, window) == before
        assert httpx.get(url + "/api/v1/models").json() == models
        proc.send_signal(signal.SIGINT)  # Ctrl-C stops it just as cleanly
        assert proc.wait(30) == 0
