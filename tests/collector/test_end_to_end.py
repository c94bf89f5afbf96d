"""The real SDK feeding the real collector, and every drift number of the API checked against scipy/numpy.

A model decorated with `@instrument.monitor` sends its predictions over OTLP/HTTP to a collector served by
uvicorn (SQLite in tmp_path); the reference goes up through `PUT .../reference`; `GET .../drift` is compared,
column by column, with exact computations on the same rows (definitions as in test_drift: PSI over
`np.quantile` decile edges with the 1e-4 floor, `scipy.stats.ks_2samp(method="asymp")`,
`scipy.spatial.distance.jensenshannon(base=2)`, `scipy.stats.wasserstein_distance / np.std(reference)`,
`scipy.stats.chi2_contingency(correction=False)`), on unshifted and shifted data:

- exact: a KLL of k=4096 keeps every one of the 3,000 current values and a 1,000-row reference keeps every row
  as a quantile atom, so the answers equal the exact numbers to float rounding;
- the default sketches (k=200) on 20,000 current rows against a 5,000-row reference: within the bounds the
  KLL's PMF/CDF rank error eps (1.65 % at 99 % confidence) implies, derived in test_drift's docstring.
Categorical columns have few categories, so their frequent-items counts, and their numbers, are exact in both.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import datasketches as ds
import grpc
import numpy as np
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from scipy import stats
from scipy.spatial.distance import jensenshannon

import instrument
from collector.distances import ks_p_value
from collector.reference import QUANTILE_ATOMS
from collector.sketches import SketchConfig
from instrument import _runtime
from instrument._encode import encode_logs
from tests.collector.test_app import Running, serve
from tests.collector.test_drift import _bins_interval, _categorical_exact, exact_bins, exact_psi

NUMERIC = ("age", "income", "score", "label")
DECILES = np.arange(1, 10) / 10


def population(rng: np.random.Generator, n: int, shifted: bool) -> dict[str, Any]:
    plans = ["basic", "pro", "team", "enterprise"]
    p = [0.3, 0.3, 0.2, 0.2] if shifted else [0.6, 0.3, 0.1, 0.0]
    plan: list[str | None] = rng.choice(plans, n, p=p).tolist()
    for i in range(0, n, 40):
        plan[i] = None  # missing
    return {
        "age": rng.normal(48 if shifted else 40, 10, n),
        "income": rng.lognormal(10.3 if shifted else 10, 0.5, n),
        "plan": plan,
    }


def score_of(rows: dict[str, Any]) -> np.ndarray:
    z = (rows["age"] - 40) / 10 + (np.log(rows["income"]) - 10)
    return np.asarray(1 / (1 + np.exp(-z)), dtype=np.float64)


def columns_of(rows: dict[str, Any]) -> dict[str, Any]:
    score = score_of(rows)
    return {**rows, "score": score, "label": (score >= 0.5).astype(np.int64)}


@contextmanager
def sdk_to(url: str) -> Iterator[None]:
    """The SDK configured for the collector at `url`; shut down while the collector still listens."""
    _runtime.reset_for_tests()
    instrument.configure(service_name="e2e", endpoint=url, resource_metrics=False)
    try:
        yield
    finally:
        instrument.shutdown(timeout_s=10)
        _runtime.reset_for_tests()


def send_with_sdk(version: str, rows: dict[str, Any], batch: int = 500) -> None:
    @instrument.monitor(model="churn", version=version, task="binary_classification")
    def predict(features: dict[str, Any]) -> np.ndarray:
        return score_of(features)

    n = len(rows["age"])
    for start in range(0, n, batch):
        predict({name: values[start : start + batch] for name, values in rows.items()})
    assert instrument.flush(timeout_s=30)


def upload_reference(running: Running, version: str, ref: dict[str, Any]) -> None:
    body = {
        "inputs": {"age": ref["age"].tolist(), "income": ref["income"].tolist(), "plan": list(ref["plan"])},
        "outputs": {"score": ref["score"].tolist(), "label": ref["label"].tolist()},
    }
    with running.client() as http:
        response = http.put("/api/v1/models/churn/reference", params={"version": version}, json=body)
        assert response.status_code == 200, response.text


def drift(running: Running, version: str) -> dict[str, Any]:
    with running.client() as http:
        answer: dict[str, Any] = http.get("/api/v1/models/churn/drift", params={"version": version}).json()
    return answer


def check_categorical(got: dict[str, Any], ref: list[Any], cur: list[Any]) -> None:
    ref_values = [v for v in ref if v is not None]
    cur_values = [v for v in cur if v is not None]
    exact = _categorical_exact(ref_values, cur_values)
    assert got["psi"] == pytest.approx(exact["psi"], rel=1e-9)
    assert got["js"] == pytest.approx(exact["js"], rel=1e-9, abs=1e-12)
    assert got["chi2"]["statistic"] == pytest.approx(exact["chi2"].statistic, rel=1e-9, abs=1e-9)
    assert got["chi2"]["p_value"] == pytest.approx(exact["chi2"].pvalue, rel=1e-9, abs=1e-300)
    assert got["new_categories"] == sorted(set(cur_values) - set(ref_values))
    assert got["missing_rate"] == pytest.approx(cur.count(None) / len(cur), rel=1e-12)
    assert (got["kind"], got["count"]) == ("categorical", len(cur))


def check_exact(got: dict[str, Any], ref: np.ndarray, cur: np.ndarray) -> None:
    e, a = exact_bins(ref, cur, np.unique(np.quantile(ref, DECILES)))
    ks = stats.ks_2samp(ref, cur, method="asymp")
    assert got["psi"] == pytest.approx(exact_psi(e, a), rel=1e-9, abs=1e-12)
    assert got["js"] == pytest.approx(float(jensenshannon(e, a, base=2)), rel=1e-9, abs=1e-12)
    assert got["ks"]["statistic"] == pytest.approx(ks.statistic, abs=1e-12)
    assert got["ks"]["p_value"] == pytest.approx(ks.pvalue, rel=1e-9, abs=1e-300)
    assert got["wasserstein"] == pytest.approx(stats.wasserstein_distance(ref, cur) / np.std(ref), rel=1e-9)
    assert got["out_of_range_rate"] == pytest.approx(np.mean((cur < ref.min()) | (cur > ref.max())), abs=1e-12)
    assert (got["count"], got["missing_rate"], got["type_mismatch_rate"]) == (cur.size, 0.0, 0.0)


def check_within_sketch_error(got: dict[str, Any], ref: np.ndarray, cur: np.ndarray, k: int) -> None:
    eps = ds.kll_doubles_sketch.get_normalized_rank_error(k, True)
    e, a = exact_bins(ref, cur, np.unique(np.quantile(ref, DECILES)))
    bounds = _bins_interval(e, a, 0.0, eps)
    assert bounds["psi"][0] <= got["psi"] <= bounds["psi"][1]
    assert bounds["js"][0] <= got["js"] <= bounds["js"][1]
    ks_tol = eps + 0.5 / QUANTILE_ATOMS
    exact = stats.ks_2samp(ref, cur, method="asymp")
    statistic = got["ks"]["statistic"]
    assert abs(statistic - exact.statistic) <= ks_tol
    assert got["ks"]["p_value"] == pytest.approx(ks_p_value(statistic, ref.size, cur.size), rel=1e-12, abs=1e-300)
    assert ks_p_value(statistic + ks_tol, ref.size, cur.size) <= exact.pvalue
    assert exact.pvalue <= ks_p_value(max(statistic - ks_tol, 0.0), ref.size, cur.size)
    w_tol = (eps * np.ptp(cur) + 0.5 / QUANTILE_ATOMS * np.ptp(ref)) / np.std(ref)
    assert abs(got["wasserstein"] - stats.wasserstein_distance(ref, cur) / np.std(ref)) <= w_tol
    assert abs(got["out_of_range_rate"] - np.mean((cur < ref.min()) | (cur > ref.max()))) <= 2 * eps
    assert got["count"] == cur.size


@pytest.mark.parametrize(
    ("k", "n_ref", "n_cur"),
    [pytest.param(4096, 1000, 3000, id="exact"), pytest.param(200, 5000, 20_000, id="default-sketches")],
)
def test_drift_through_sdk_and_collector_matches_scipy(tmp_path: Path, k: int, n_ref: int, n_cur: int) -> None:
    rng = np.random.default_rng(k)
    reference = columns_of(population(rng, n_ref, shifted=False))
    current = {
        version: columns_of(population(rng, n_cur, shifted=version == "shifted")) for version in ("same", "shifted")
    }
    with serve(tmp_path, sketch=SketchConfig(kll_k=k)) as running, sdk_to(running.url):
        for version, rows in current.items():
            send_with_sdk(version, {name: rows[name] for name in ("age", "income", "plan")})
            upload_reference(running, version, reference)
        running.wait_rows("churn", 2 * n_cur)
        for version, rows in current.items():
            answer = drift(running, version)
            assert (answer["model"], answer["version"], answer["rows"]) == ("churn", version, n_cur)
            features = {f["name"]: f for f in answer["features"]}
            assert [(f["name"], f["role"]) for f in answer["features"]] == [
                ("age", "input"),
                ("income", "input"),
                ("plan", "input"),
                ("score", "output"),
                ("label", "output"),
            ]
            check_categorical(features["plan"], reference["plan"], rows["plan"])
            for name in NUMERIC:
                ref, cur = np.asarray(reference[name], dtype=float), np.asarray(rows[name], dtype=float)
                if k >= n_cur:
                    check_exact(features[name], ref, cur)
                else:
                    check_within_sketch_error(features[name], ref, cur, k)
            statuses = {name: f["status"] for name, f in features.items()}
            if version == "same":
                assert set(statuses.values()) == {"ok"}, statuses
            else:
                assert statuses["age"] == statuses["plan"] == statuses["score"] == "drift", statuses
                assert answer["status"] == "drift"


def test_grpc_path_with_the_sdk_encoder(tmp_path: Path) -> None:
    """OTLP/gRPC: the SDK's own encoding of `ModelMonitor.log` payloads, sent by a generated gRPC stub."""
    _runtime.reset_for_tests()
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    logs = LoggerProvider(shutdown_on_exit=False)
    logs.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    instrument.configure(
        service_name="grpc",
        tracer_provider=TracerProvider(shutdown_on_exit=False),
        meter_provider=MeterProvider(shutdown_on_exit=False),
        logger_provider=logs,
        resource_metrics=False,
    )
    monitor = instrument.ModelMonitor(model="scorer", version="7", task="regression")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 2))
    monitor.log({"a": x[:, 0], "b": x[:, 1]}, x.sum(axis=1))
    assert instrument.flush()
    request = ExportLogsServiceRequest.FromString(encode_logs(exporter.get_finished_logs()))
    _runtime.reset_for_tests()
    with serve(tmp_path, grpc_on=True, ingest_tokens=("tok",)) as running:
        with grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
            stub = LogsServiceStub(channel)  # type: ignore[no-untyped-call]
            response = stub.Export(request, metadata=[("authorization", "Bearer tok")], timeout=10)
        assert not response.HasField("partial_success") or response.partial_success.rejected_log_records == 0
        running.wait_rows("scorer", 300)
        with running.client() as http:
            body = {
                "inputs": {"a": x[:, 0].tolist(), "b": x[:, 1].tolist()},
                "outputs": {"prediction": x.sum(axis=1).tolist()},
            }
            http.put("/api/v1/models/scorer/reference?version=7", json=body)
            features = {f["name"]: f for f in http.get("/api/v1/models/scorer/drift").json()["features"]}
    assert {name: f["count"] for name, f in features.items()} == {"a": 300, "b": 300, "prediction": 300}
    eps = ds.kll_doubles_sketch.get_normalized_rank_error(200, True)  # the same rows, sketched at k=200
    assert all(f["ks"]["statistic"] <= eps and f["status"] == "ok" for f in features.values()), features


def test_data_is_visible_as_soon_as_it_is_ingested(tmp_path: Path) -> None:
    with serve(tmp_path) as running, sdk_to(running.url):
        predict = instrument.monitor(model="live", version="1")(lambda features: [0.5] * len(features["x"]))
        began = time.monotonic()
        predict({"x": [1.0, 2.0, 3.0]})
        instrument.flush()
        running.wait_rows("live", 3)
        assert time.monotonic() - began < 10  # well inside the 60-s window: the open window is read
        assert running.store.models() == []


def test_above_the_rate_limit_every_call_is_counted_and_a_sample_recorded(tmp_path: Path) -> None:
    """The SDK's rate limit seen from the collector: operations count every prediction (from the SDK's metrics),
    drift profiles hold only the recorded ones: the burst (one second's worth) plus what accrued meanwhile."""
    rate, calls = 5, 60
    with serve(tmp_path) as running:
        _runtime.reset_for_tests()
        instrument.configure(service_name="limited", endpoint=running.url, resource_metrics=False, rate_limit=rate)
        predict = instrument.monitor(model="busy", version="1")(lambda features: [0.5] * len(features["x"]))
        began = time.monotonic()
        for i in range(calls):
            predict({"x": [float(i)]})
        elapsed = time.monotonic() - began
        assert instrument.flush(timeout_s=30)
        with running.client() as http:
            deadline = time.monotonic() + 15
            while True:
                answer = http.get("/api/v1/models/busy/operations").json()
                if answer.get("predictions") == calls:
                    break
                assert time.monotonic() < deadline, f"operations never counted {calls} predictions: {answer}"
                time.sleep(0.05)
            rows = sum(m["rows"] for m in http.get("/api/v1/models").json() if m["model"] == "busy")
        assert rate <= rows <= rate + rate * elapsed + 1, (rows, elapsed)
        instrument.shutdown(timeout_s=10)
        _runtime.reset_for_tests()


def test_the_sdk_sends_the_ingest_token(tmp_path: Path) -> None:
    with serve(tmp_path, ingest_tokens=("ingest-1",)) as running:
        _runtime.reset_for_tests()
        instrument.configure(service_name="nokey", endpoint=running.url, resource_metrics=False)
        instrument.monitor(model="guarded", version="1")(lambda features: [0.5])({"x": [1.0]})
        instrument.shutdown(timeout_s=10)
        with running.client() as http:
            assert http.get("/api/v1/models").json() == []
            assert http.get("/api/v1/status").json()["ingest"]["invalid"]["unauthenticated"] >= 1
        _runtime.reset_for_tests()
        headers = {"authorization": "Bearer ingest-1"}
        instrument.configure(service_name="key", endpoint=running.url, resource_metrics=False, headers=headers)
        instrument.monitor(model="guarded", version="1")(lambda features: [0.5])({"x": [1.0]})
        instrument.shutdown(timeout_s=10)
        _runtime.reset_for_tests()
        running.wait_rows("guarded", 1)
