"""The collector's configuration: command-line flags, then environment (tokens), then `--config`, then defaults.

    settings = load_settings(http="0.0.0.0:4318", config_path="predwatch.toml", env=os.environ)
    settings.http.host, settings.http.port, settings.window_s, settings.thresholds.psi_drift

The config file (TOML) holds the same names as the flags, plus tables for what has no flag::

    http = "127.0.0.1:4318"
    grpc = "127.0.0.1:4317"          # "off" disables OTLP/gRPC
    store = "sqlite:///predwatch.db"
    window = 60                      # seconds
    collector_id = "collector-a"     # names this process's partial windows in a shared store (default: host name)
    flush_interval = 5               # seconds between looks for closed windows
    label_ttl = "7d"                 # how long predictions wait for their actuals (and actuals for their
                                     # predictions): seconds, or 30m / 12h / 7d
    retention = "90d"                # per-window data (sketch windows and rollups, performance and operations
                                     # states, label counts) is deleted once it ended longer ago; 0 or "off"
                                     # keeps everything. References and model metadata are always kept.

    [thresholds]                     # PSI bands and the smallest sample that may raise a status
    psi_warning = 0.1
    psi_drift = 0.25
    min_count = 100

    [sketches]                       # see collector/sketches.py for the error bounds of each size
    kll_k = 200
    items_lg_max_k = 10
    hll_lg_k = 12
    max_string_len = 128
    max_columns = 1000

    [limits]
    max_body_bytes = 67108864        # one OTLP request, decompressed
    max_reference_bytes = 268435456  # one reference upload, decompressed
    queue_records = 100000           # ingest queue bounds (503 + Retry-After past them): the collector's
    queue_bytes = 67108864           # memory follows this, not the number of rows

`[[rules]]`, `[[notifiers]]` and `defaults` are kept as given for the alerting rules (validated there).
Unknown keys are an error, so a typo never silently falls back to a default.

Access: binding a non-loopback address without the tokens that guard it is refused (ValueError) unless
`allow_unauthenticated` is set: the HTTP port needs an API and an ingest token, the gRPC port an ingest token.
Listening on a network without a token is a decision to take on purpose, not a default to stumble into.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from collector.auth import BearerAuth
from collector.drift import DriftThresholds
from collector.otlp_decode import DEFAULT_MAX_BYTES
from collector.sketches import SketchConfig

__all__ = [
    "Address",
    "CollectorSettings",
    "load_settings",
    "parse_address",
    "parse_duration",
    "parse_retention",
    "unprotected_binds",
]

ENV_API_TOKEN = "PREDWATCH_API_TOKEN"
ENV_INGEST_TOKEN = "PREDWATCH_INGEST_TOKEN"
DEFAULT_HTTP = "127.0.0.1:4318"
DEFAULT_GRPC = "127.0.0.1:4317"
DEFAULT_STORE = "sqlite:///predwatch.db"
DEFAULT_LABEL_TTL_S = 7 * 86_400.0
DEFAULT_RETENTION_S = 90 * 86_400.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_OFF = ("off", "none", "")


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name other than localhost: it may resolve to anything
            return False

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, what: str) -> Address:
    """`host:port`, `[v6]:port`, or a bare port (loopback). Port 0 picks a free port."""
    value = text.strip()
    if value.isdigit():
        host, port_text = "127.0.0.1", value
    elif value.startswith("["):
        host, sep, port_text = value[1:].partition("]:")
        if not sep:
            raise ValueError(f"{what}: expected [ipv6]:port, got {text!r}")
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or not host or ":" in host:
            raise ValueError(f"{what}: expected host:port such as 127.0.0.1:4318, got {text!r}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{what}: port must be a number from 0 to 65535, got {port_text!r}")
    return Address(host, int(port_text))


def parse_duration(value: str | float, what: str) -> float:
    """Seconds from a number or a text such as `90`, `30s`, `10m`, `12h`, `7d`; ValueError unless positive."""
    seconds = _seconds(value, what)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{what} must be a positive duration, got {value!r}")
    return seconds


def parse_retention(value: str | float) -> float:
    """Seconds of per-window data to keep: a duration as `parse_duration` reads it, or 0 (also `0d`), `off` or
    `none` for "keep everything" (0.0). ValueError naming `retention` otherwise, negatives included."""
    if str(value).strip().lower() in ("off", "none"):
        return 0.0
    seconds = _seconds(value, "retention")
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"retention must be a duration such as 90d, or 0 / off to keep everything, got {value!r}")
    return seconds or 0.0  # -0.0 too


def _seconds(value: str | float, what: str) -> float:
    text = str(value).strip().lower()
    unit = _UNITS.get(text[-1:], 0)
    try:
        return float(text[:-1] if unit else text) * (unit or 1)
    except ValueError:
        raise ValueError(f"{what}: expected seconds or a duration such as 30m, 12h, 7d, got {value!r}") from None


@dataclass(frozen=True, slots=True)
class CollectorSettings:
    http: Address = field(default_factory=lambda: parse_address(DEFAULT_HTTP, "http"))
    grpc: Address | None = field(default_factory=lambda: parse_address(DEFAULT_GRPC, "grpc"))
    store: str = DEFAULT_STORE
    window_s: int = 60
    api_tokens: tuple[str, ...] = ()
    ingest_tokens: tuple[str, ...] = ()
    allow_unauthenticated: bool = False
    collector_id: str = field(default_factory=socket.gethostname)
    flush_interval_s: float = 5.0
    grace_s: float = 5.0  # a window is written this long after it ends, so stragglers still make it
    label_ttl_s: float = DEFAULT_LABEL_TTL_S  # predictions and actuals wait this long for each other
    retention_s: float = DEFAULT_RETENTION_S  # per-window rows older than this are deleted; 0: kept forever
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    sketch: SketchConfig = field(default_factory=SketchConfig)
    max_body_bytes: int = DEFAULT_MAX_BYTES
    max_reference_bytes: int = 256 * 1024 * 1024
    queue_records: int = 100_000
    # 64 MiB of decompressed OTLP is ~500 requests of 512 x 20 waiting, a few seconds of ingest; past it producers get
    # 503 + Retry-After and retry. Peak RSS follows it (~180 MB at 32 MiB, ~300 MB at 256 MiB under a flood).
    queue_bytes: int = 64 * 1024 * 1024
    rules: tuple[dict[str, Any], ...] = ()  # [[rules]] of the config file, for the alerting rules
    notifiers: tuple[dict[str, Any], ...] = ()
    default_rules: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.window_s <= 86_400:
            raise ValueError(f"window must be between 1 and 86400 seconds, got {self.window_s}")
        if not (math.isfinite(self.flush_interval_s) and self.flush_interval_s > 0):
            raise ValueError(f"flush_interval must be a positive number of seconds, got {self.flush_interval_s}")
        if not (math.isfinite(self.grace_s) and self.grace_s >= 0):
            raise ValueError(f"grace must be >= 0 seconds, got {self.grace_s}")
        if not (math.isfinite(self.label_ttl_s) and self.label_ttl_s > 0):
            raise ValueError(f"label_ttl must be a positive number of seconds, got {self.label_ttl_s}")
        if not (math.isfinite(self.retention_s) and self.retention_s >= 0):
            raise ValueError(f"retention must be >= 0 seconds (0: keep everything), got {self.retention_s}")
        for name in ("max_body_bytes", "max_reference_bytes", "queue_records", "queue_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for what, tokens in (("API", self.api_tokens), ("ingest", self.ingest_tokens)):
            try:
                BearerAuth(tokens)
            except ValueError:
                raise ValueError(f"an {what} token must be non-empty, without spaces or control characters") from None
        unprotected = unprotected_binds(self)
        if unprotected and not self.allow_unauthenticated:
            raise ValueError(
                "refusing to listen on "
                + "; ".join(unprotected)
                + ". Set the missing tokens (--api-token/--ingest-token or PREDWATCH_API_TOKEN/PREDWATCH_INGEST_TOKEN),"
                " bind 127.0.0.1, or pass --allow-unauthenticated to accept open access"
            )


def unprotected_binds(settings: CollectorSettings) -> list[str]:
    """The non-loopback listeners that lack a token, in words ('' when everything is guarded or local)."""
    out = []
    if not settings.http.loopback:
        missing = [
            name for name, tokens in (("API", settings.api_tokens), ("ingest", settings.ingest_tokens)) if not tokens
        ]
        if missing:
            out.append(f"{settings.http} (HTTP) without an {' or '.join(missing)} token")
    if settings.grpc is not None and not settings.grpc.loopback and not settings.ingest_tokens:
        out.append(f"{settings.grpc} (gRPC) without an ingest token")
    return out


_TOP: dict[str, Any] = {
    "http": str,
    "grpc": str,
    "store": str,
    "window": int,
    "api_token": str,
    "ingest_token": str,
    "allow_unauthenticated": bool,
    "collector_id": str,
    "flush_interval": (int, float),
    "grace": (int, float),
    "label_ttl": (int, float, str),
    "retention": (int, float, str),
    "defaults": bool,
}
_TABLES: dict[str, dict[str, Any]] = {
    "thresholds": {"psi_warning": (int, float), "psi_drift": (int, float), "min_count": int},
    "sketches": {f.name: int for f in fields(SketchConfig)},
    "limits": {"max_body_bytes": int, "max_reference_bytes": int, "queue_records": int, "queue_bytes": int},
}
_LISTS = ("rules", "notifiers")


def read_config(path: str | Path) -> dict[str, Any]:
    """The parsed, type-checked config file. Raises ValueError naming the file and the key."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ValueError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {path} is not valid TOML: {exc}") from exc
    for key, value in data.items():
        if key in _TABLES:
            if not isinstance(value, dict):
                raise ValueError(f"{path}: [{key}] must be a table")
            for sub, sub_value in value.items():
                _check_type(path, f"{key}.{sub}", sub_value, _TABLES[key].get(sub))
        elif key in _LISTS:
            if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
                raise ValueError(f"{path}: {key} must be written as [[{key}]] tables")
        else:
            _check_type(path, key, value, _TOP.get(key))
    return data


def _check_type(path: str | Path, key: str, value: Any, expected: Any) -> None:
    if expected is None:
        raise ValueError(f"{path}: unknown setting {key!r}")
    types = expected if isinstance(expected, tuple) else (expected,)
    if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
        names = " or ".join(t.__name__ for t in types)
        raise ValueError(f"{path}: {key} must be {names}, got {value!r}")


def load_settings(
    *,
    http: str | None = None,
    grpc: str | None = None,
    store: str | None = None,
    window_s: int | None = None,
    config_path: str | Path | None = None,
    api_token: str | None = None,
    ingest_token: str | None = None,
    allow_unauthenticated: bool = False,
    env: Mapping[str, str] | None = None,
    label_ttl: str | None = None,
    retention: str | None = None,
) -> CollectorSettings:
    """Settings from flags (None: not given), the environment's tokens and the config file. Raises ValueError."""
    env = env or {}
    conf = read_config(config_path) if config_path is not None else {}
    limits = conf.get("limits", {})
    grpc_text = grpc if grpc is not None else conf.get("grpc", DEFAULT_GRPC)
    api = api_token or env.get(ENV_API_TOKEN) or conf.get("api_token")
    ingest = ingest_token or env.get(ENV_INGEST_TOKEN) or conf.get("ingest_token")
    options: dict[str, Any] = {
        "http": parse_address(http or conf.get("http", DEFAULT_HTTP), "http"),
        "grpc": None if grpc_text.strip().lower() in _OFF else parse_address(grpc_text, "grpc"),
        "store": store or conf.get("store", DEFAULT_STORE),
        "window_s": window_s if window_s is not None else conf.get("window", 60),
        "api_tokens": (api,) if api else (),
        "ingest_tokens": (ingest,) if ingest else (),
        "allow_unauthenticated": allow_unauthenticated or conf.get("allow_unauthenticated", False),
        "thresholds": DriftThresholds(**conf.get("thresholds", {})),
        "sketch": SketchConfig(**conf.get("sketches", {})),
        "rules": tuple(conf.get("rules", ())),
        "notifiers": tuple(conf.get("notifiers", ())),
        "default_rules": conf.get("defaults", True),
        **limits,
    }
    for key, name in (("collector_id", "collector_id"), ("flush_interval", "flush_interval_s"), ("grace", "grace_s")):
        if key in conf:
            options[name] = conf[key]
    ttl = label_ttl if label_ttl is not None else conf.get("label_ttl")
    if ttl is not None:
        options["label_ttl_s"] = parse_duration(ttl, "label_ttl")
    kept = retention if retention is not None else conf.get("retention")
    if kept is not None:
        options["retention_s"] = parse_retention(kept)
    return CollectorSettings(**options)
