"""`predwatch report MODEL`: drift, performance and operations of one model, as a table in the terminal.

    predwatch report MODEL [--version V] [--since 1h] [--wait S] [--json] [--url URL] [--token T]

Reads GET /api/v1/models/{model}/drift, and /performance and /operations where the collector has them (a
section whose endpoint answers 404 without an API error is left out). Statuses are coloured only when stdout
is a terminal and NO_COLOR is unset; while `--wait` polls for the model's first rows a spinner turns on
stderr (a terminal only). `--json` prints {"models": [...], "drift": ..., "performance": ..., "operations":
...} with the answers as the collector gave them (an error answer as {"status": code, "error": ...}).
Exit status: 0 shown, 1 failed (collector away, bad token, unknown model, no reference), 2 bad usage.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO
from urllib.parse import quote

import httpx

__all__ = ["ReportError", "add_report_command", "fetch", "parse_since", "render"]

SECTIONS = ("drift", "performance", "operations")
_COLOURS = {"ok": "32", "warning": "33", "drift": "31;1", "error": "31"}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ReportError(Exception):
    """What went wrong, said for the person at the terminal."""


def add_report_command(commands: Any) -> None:
    """Register `report` on the `predwatch` parser's subcommands."""
    from collector.cli import DEFAULT_URL

    report = commands.add_parser("report", help="drift, performance and operations of a model in the terminal")
    report.add_argument("model")
    report.add_argument("--version", dest="model_version", help="model version (default: the newest seen)")
    report.add_argument("--since", default="1h", help="how far back: 90s, 15m, 1h, 7d (default 1h)")
    report.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the model's first rows")
    report.add_argument("--json", action="store_true", help="print the collector's answers as one JSON object")
    report.add_argument("--url", help=f"the collector (default PREDWATCH_URL, else {DEFAULT_URL})")
    report.add_argument("--token", help="API token (default PREDWATCH_API_TOKEN)")
    report.set_defaults(run=_run)


def parse_since(text: str) -> float:
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not found or float(found.group(1)) <= 0:
        raise ValueError(f"--since {text!r}: use a duration such as 90s, 15m, 1h or 7d")
    return float(found.group(1)) * _UNITS[found.group(2) or "s"]


def _run(args: argparse.Namespace) -> int:
    from collector.cli import DEFAULT_URL

    try:
        since_s = parse_since(args.since)
    except ValueError as exc:
        print(f"predwatch report: {exc}", file=sys.stderr)
        return 2
    url = (args.url or os.environ.get("PREDWATCH_URL") or DEFAULT_URL).rstrip("/")
    token = args.token or os.environ.get("PREDWATCH_API_TOKEN")
    try:
        answers = fetch(url, args.model, args.model_version, since_s, token=token, wait_s=args.wait)
    except ReportError as exc:
        print(f"predwatch report: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answers, indent=2))
    else:
        print(render(answers, colour=use_colour(sys.stdout)), end="")
    drift = answers.get("drift") or {}
    if drift.get("status") == 409:
        print(f"predwatch report: {drift['error']}; set one with: {drift.get('cli', 'predwatch reference set')}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def use_colour(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR")


# -- talking to the collector --------------------------------------------------------------------------------------
def fetch(
    url: str,
    model: str,
    version: str | None = None,
    since_s: float = 3600.0,
    *,
    token: str | None = None,
    wait_s: float = 0.0,
    spinner: TextIO | None = sys.stderr,
) -> dict[str, Any]:
    """The collector's answers for a report; raises ReportError with what to do when there is none."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30) as http:
        models = _wait_for_rows(http, url, model, version, wait_s, spinner)
        end = time.time()
        params = {"start": f"{end - since_s:.3f}", "end": f"{end:.3f}", **({"version": version} if version else {})}
        answers: dict[str, Any] = {"models": models}
        for section in SECTIONS:
            response = _get(http, url, f"/api/v1/models/{quote(model, safe='')}/{section}", params)
            if response.status_code == 200:
                answers[section] = response.json()
            elif response.status_code == 404 and _error(response) is None:
                continue  # a collector without this endpoint
            elif response.status_code in (404, 409, 400):
                answers[section] = {"status": response.status_code, **_body(response)}
                if response.status_code != 409:
                    raise ReportError(f"the collector refused {section} ({response.status_code}): {_error(response)}")
            else:
                raise ReportError(f"{section} failed at {url} ({response.status_code}): {response.text[:300]}")
    return answers


def _wait_for_rows(
    http: httpx.Client, url: str, model: str, version: str | None, wait_s: float, spinner: TextIO | None
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + wait_s
    frames = itertools.cycle("|/-\\")
    shown = spinner is not None and spinner.isatty() and wait_s > 0
    try:
        while True:
            listed = _get(http, url, "/api/v1/models", {}).json()
            mine = [m for m in listed if m["model"] == model and (version is None or m["version"] == version)]
            if sum(m["rows"] for m in mine) > 0:
                return list(mine)
            if time.monotonic() >= deadline:
                break
            if shown and spinner is not None:
                spinner.write(f"\r{next(frames)} waiting for predictions of {model} at {url} ...")
                spinner.flush()
            time.sleep(0.2)
    finally:
        if shown and spinner is not None:
            spinner.write("\r\033[K")
            spinner.flush()
    known = sorted({f"{m['model']}" + (f" {m['version']}" if version else "") for m in listed})
    what = f"model {model!r}" + (f" version {version!r}" if version else "")
    waited = f" after waiting {wait_s:g} s" if wait_s > 0 else ""
    raise ReportError(
        f"the collector at {url} has no predictions of {what}{waited}; "
        + (f"models it knows: {', '.join(known)}" if known else "it has seen no model yet")
        + " (--wait S waits for the first rows)"
    )


def _get(http: httpx.Client, url: str, path: str, params: Mapping[str, str]) -> httpx.Response:
    try:
        response = http.get(path, params=params)
    except httpx.ConnectError:
        raise ReportError(
            f"cannot reach the collector at {url}: is `predwatch collector` running? (--url, PREDWATCH_URL)"
        ) from None
    except httpx.HTTPError as exc:
        raise ReportError(f"talking to the collector at {url} failed: {exc}") from None
    if response.status_code in (401, 403):
        raise ReportError(
            f"the collector at {url} refused the API token ({response.status_code}): "
            "pass --token or set PREDWATCH_API_TOKEN to its --api-token"
        )
    return response


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"error": response.text[:300]}
    return body if isinstance(body, dict) else {"error": str(body)[:300]}


def _error(response: httpx.Response) -> str | None:
    error = _body(response).get("error") if "json" in response.headers.get("content-type", "") else None
    return None if error is None else str(error)


# -- the tables --------------------------------------------------------------------------------------------------
def render(answers: Mapping[str, Any], colour: bool = False) -> str:
    paint = _painter(colour)
    out: list[str] = []
    drift = answers.get("drift")
    if drift is not None:
        out += _drift(drift, paint)
    if answers.get("performance") is not None:
        out += _performance(answers["performance"])
    if answers.get("operations") is not None:
        out += _operations(answers["operations"])
    return "\n".join(out) + "\n"


def _painter(colour: bool) -> Any:
    def paint(status: str, text: str | None = None) -> str:
        shown = status if text is None else text
        code = _COLOURS.get(status)
        return f"\033[{code}m{shown}\033[0m" if colour and code else shown

    return paint


def _drift(drift: Mapping[str, Any], paint: Any) -> list[str]:
    if "error" in drift:
        return [f"drift: {drift['error']}", f"  set a reference: {drift.get('cli', 'predwatch reference set')}", ""]
    head = (
        f"drift of {drift['model']} version {drift['version']}: {paint(drift['status'])}  "
        f"{drift['rows']} recorded rows from {drift['start']} to {drift['end']}"
    )
    header = ("feature", "role", "kind", "count", "missing", "psi", "ks p", "js", "status")
    rows = [
        (
            str(f["name"]),
            str(f["role"]),
            str(f["kind"]),
            str(f.get("count", "")),
            _num(f.get("missing_rate")),
            _num(f.get("psi")),
            _num((f.get("ks") or f.get("chi2") or {}).get("p_value")),
            _num(f.get("js")),
            str(f["status"]),
        )
        for f in drift.get("features", [])
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = [head, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    for row in rows:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, paint(row[-1])]))
    return [*lines, ""]


def _performance(perf: Mapping[str, Any]) -> list[str]:
    if "error" in perf:
        return [f"performance: {perf['error']}", ""]
    metrics = perf.get("metrics") or {}
    lines = [f"performance ({perf.get('task') or 'task unknown'}): {perf.get('labeled', 0)} labelled predictions"]
    for name, value in metrics.items():
        if name == "confusion_matrix" and isinstance(value, dict):
            lines.append(f"  confusion_matrix  labels {value.get('labels')}  {value.get('matrix')}")
        elif not isinstance(value, dict | list):
            lines.append(f"  {name:<16}  {_num(value)}")
    return [*lines, ""]


def _operations(ops: Mapping[str, Any]) -> list[str]:
    if "error" in ops:
        return [f"operations: {ops['error']}", ""]
    latency = ops.get("latency_ms") or {}
    memory = ops.get("memory_bytes")
    return [
        "operations:",
        f"  predictions {ops.get('predictions', 0)}  errors {ops.get('errors', 0)}  "
        f"throughput {_num(ops.get('throughput_per_s'))}/s",
        "  latency ms  " + "  ".join(f"{k} {_num(latency.get(k))}" for k in ("p50", "p90", "p95", "p99")),
        f"  cpu {_num(ops.get('cpu_percent'))} %  memory "
        + (f"{memory / 2**20:.1f} MiB" if isinstance(memory, int | float) else "-"),
        "",
    ]


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"
