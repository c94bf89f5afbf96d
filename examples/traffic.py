"""Replay the breast-cancer data set against a model server, inject drift after a while, post labels late.

    .venv/bin/python -m examples.traffic --server http://127.0.0.1:8000 [--collector http://127.0.0.1:4318]
        [--duration 60 | --requests 500] [--rate 20] [--drift-after 200] [--label-delay 5]

Each request POSTs 1-5 rows of the held-out split (drawn with replacement, as dicts of the 30 features) to
/predict and reads the prediction ids from the `x-prediction-id` header. After `--drift-after` requests,
a few features are shifted by +1.5 standard deviations and a share of the true labels is flipped (the world
changed, the model did not). True labels go to the collector's POST /api/v1/actuals `--label-delay` seconds
after their prediction, shuffled; a collector without that endpoint (404/405) gets them through
`instrument.log_actuals` from this process instead.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
import numpy as np
import pandas as pd

import instrument
from examples.cancer import MODEL, VERSION, Cancer, train

DRIFTED = ["mean radius", "mean texture", "worst concavity"]  # shifted by SHIFT_STD standard deviations
SHIFT_STD = 1.5
FLIP_RATE = 0.3


@dataclass
class Stats:
    requests: int = 0
    rows: int = 0
    errors: int = 0
    drifted_rows: int = 0
    labels_sent: int = 0
    labels_via: str = "api"  # "api" (POST /api/v1/actuals) or "sdk" (instrument.log_actuals)
    ids: list[str] = field(default_factory=list)


class Labeller:
    """True labels held back until they are due, then sent shuffled, in one call per flush."""

    def __init__(self, collector: str, delay_s: float, rng: random.Random, headers: dict[str, str]) -> None:
        self.collector = collector.rstrip("/")
        self.delay_s = delay_s
        self.rng = rng
        self.headers = headers
        self.pending: list[tuple[float, str, int]] = []
        self.use_sdk = False
        self.sent = 0

    def add(self, ids: list[str], labels: list[int]) -> None:
        due = time.monotonic() + self.delay_s
        self.pending.extend((due, i, label) for i, label in zip(ids, labels, strict=True))

    def flush(self, client: httpx.Client, everything: bool = False) -> None:
        now = time.monotonic()
        due = [p for p in self.pending if everything or p[0] <= now]
        if not due:
            return
        self.pending = [p for p in self.pending if not (everything or p[0] <= now)]
        self.rng.shuffle(due)
        ids, labels = [i for _, i, _ in due], [label for _, _, label in due]
        if not self.use_sdk:
            body = {"model": MODEL, "version": VERSION, "ids": ids, "actuals": labels}
            try:
                response = client.post(f"{self.collector}/api/v1/actuals", json=body, headers=self.headers)
            except httpx.HTTPError:
                self.pending.extend(due)  # the collector is away for a moment: try again later
                return
            if response.status_code < 300:
                self.sent += len(ids)
                return
            if response.status_code == 404 and "no data seen" in response.text:
                # the first predictions are still on their way to the collector: try again in a second
                self.pending.extend((now + 1.0, i, label) for _, i, label in due)
                return
            if not _missing_route(response):
                return  # refused (unknown ids, bad token): nothing to retry
            self.use_sdk = True
            instrument.configure(service_name="cancer-traffic", endpoint=self.collector, resource_metrics=False)
        self.sent += instrument.log_actuals(model=MODEL, ids=ids, actuals=labels, version=VERSION)


def _missing_route(response: httpx.Response) -> bool:
    """404/405 from a collector that has no /api/v1/actuals (an API 404 carries {"error": ...})."""
    if response.status_code == 405:
        return True
    if response.status_code != 404:
        return False
    try:
        return "error" not in response.json()
    except ValueError:
        return True


def replay(
    server: str,
    collector: str,
    *,
    requests: int | None = None,
    duration_s: float | None = None,
    rate: float = 20.0,
    drift_after: int = 200,
    label_delay_s: float = 5.0,
    seed: int = 0,
    token: str | None = None,
    cancer: Cancer | None = None,
) -> Stats:
    """Send traffic until `requests` are sent or `duration_s` has passed; every label is sent before returning."""
    if requests is None and duration_s is None:
        raise ValueError("give requests or duration_s")
    cancer = cancer or train()
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    shift = {name: SHIFT_STD * float(cancer.X_train[name].std()) for name in DRIFTED}
    headers = {"authorization": f"Bearer {token}"} if token else {}
    labeller = Labeller(collector, label_delay_s, rng, headers)
    stats = Stats()
    end = time.monotonic() + duration_s if duration_s is not None else float("inf")
    with httpx.Client(timeout=10) as client:
        while (requests is None or stats.requests < requests) and time.monotonic() < end:
            started = time.monotonic()
            drifting = stats.requests >= drift_after
            rows, labels = _draw(cancer, np_rng, rng.randint(1, 5), shift if drifting else None)
            try:
                response = client.post(f"{server.rstrip('/')}/predict", json={"instances": rows})
            except httpx.HTTPError:
                response = None
            stats.requests += 1
            if response is None or response.status_code != 200:
                stats.errors += 1
            else:
                ids = [unquote(i) for i in response.headers.get("x-prediction-id", "").split(",") if i]
                stats.rows += len(rows)
                stats.drifted_rows += len(rows) if drifting else 0
                stats.ids.extend(ids)
                if len(ids) == len(labels):
                    labeller.add(ids, labels)
            labeller.flush(client)
            if rate > 0:
                time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - started)))
        deadline = time.monotonic() + 15  # the last labels may wait for their predictions to reach the collector
        labeller.flush(client, everything=True)
        while labeller.pending and time.monotonic() < deadline:
            time.sleep(0.5)
            labeller.flush(client, everything=True)
    if labeller.use_sdk:
        instrument.flush()
        stats.labels_via = "sdk"
    stats.labels_sent = labeller.sent
    return stats


def _draw(
    cancer: Cancer, rng: np.random.Generator, n: int, shift: dict[str, float] | None
) -> tuple[list[dict[str, float]], list[int]]:
    picks = rng.integers(0, len(cancer.X_live), n)
    frame: pd.DataFrame = cancer.X_live.iloc[picks].copy()
    labels = cancer.y_live.iloc[picks].to_numpy().astype(int)
    if shift:
        for name, by in shift.items():
            frame[name] = frame[name] + by
        flip = rng.random(n) < FLIP_RATE
        labels = np.where(flip, 1 - labels, labels)
    rows: list[dict[str, Any]] = frame.to_dict(orient="records")
    return rows, [int(label) for label in labels]


def main() -> None:
    parser = argparse.ArgumentParser(description="Replay the cancer data set against a model server.")
    parser.add_argument("--server", default="http://127.0.0.1:8000")
    parser.add_argument("--collector", default="http://127.0.0.1:4318")
    parser.add_argument("--token", help="API token for POST /api/v1/actuals")
    parser.add_argument("--duration", type=float, help="seconds to run (default 60 without --requests)")
    parser.add_argument("--requests", type=int, help="requests to send")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second (0: as fast as possible)")
    parser.add_argument("--drift-after", type=int, default=200, help="requests before drift is injected")
    parser.add_argument("--label-delay", type=float, default=5.0, help="seconds before a label is posted")
    args = parser.parse_args()
    duration = args.duration if args.duration is not None or args.requests is not None else 60.0
    stats = replay(
        args.server,
        args.collector,
        requests=args.requests,
        duration_s=duration,
        rate=args.rate,
        drift_after=args.drift_after,
        label_delay_s=args.label_delay,
        token=args.token,
    )
    print(
        f"{stats.requests} requests ({stats.errors} failed), {stats.rows} rows, {stats.drifted_rows} drifted; "
        f"{stats.labels_sent} labels sent via {stats.labels_via}"
    )


if __name__ == "__main__":
    main()
