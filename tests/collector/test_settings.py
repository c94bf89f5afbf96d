from __future__ import annotations

import re
from pathlib import Path

import pytest

from collector.settings import (
    Address,
    CollectorSettings,
    load_settings,
    parse_address,
    parse_duration,
    parse_retention,
    read_config,
    unprotected_binds,
)


@pytest.mark.parametrize(
    ("text", "host", "port", "loopback"),
    [
        ("127.0.0.1:4318", "127.0.0.1", 4318, True),
        ("localhost:80", "localhost", 80, True),
        ("[::1]:4317", "::1", 4317, True),
        ("0.0.0.0:4318", "0.0.0.0", 4318, False),
        ("[::]:4318", "::", 4318, False),
        ("10.1.2.3:0", "10.1.2.3", 0, False),
        ("collector.internal:4318", "collector.internal", 4318, False),
        ("4318", "127.0.0.1", 4318, True),
    ],
)
def test_addresses(text: str, host: str, port: int, loopback: bool) -> None:
    address = parse_address(text, "http")
    assert (address.host, address.port, address.loopback) == (host, port, loopback)
    assert parse_address(str(address), "http") == address


@pytest.mark.parametrize("text", ["", ":4318", "host", "host:port", "1.2.3.4:70000", "[::1]", "::1:4318"])
def test_bad_addresses_say_what_to_write(text: str) -> None:
    with pytest.raises(ValueError, match="http"):
        parse_address(text, "http")


def test_defaults_bind_loopback() -> None:
    settings = load_settings()
    assert (str(settings.http), str(settings.grpc)) == ("127.0.0.1:4318", "127.0.0.1:4317")
    assert (settings.store, settings.window_s, settings.api_tokens, settings.ingest_tokens) == (
        "sqlite:///predwatch.db",
        60,
        (),
        (),
    )
    assert unprotected_binds(settings) == []


def test_non_loopback_without_tokens_is_refused_unless_allowed() -> None:
    with pytest.raises(ValueError, match=r"0\.0\.0\.0:4318 \(HTTP\) without an API or ingest token.*--allow-unauth"):
        load_settings(http="0.0.0.0:4318")
    with pytest.raises(ValueError, match=r"\(gRPC\) without an ingest token"):
        load_settings(grpc="0.0.0.0:4317", api_token="a")
    with pytest.raises(ValueError, match="without an API token"):
        load_settings(http="0.0.0.0:4318", ingest_token="i")
    allowed = load_settings(http="0.0.0.0:4318", allow_unauthenticated=True)
    assert unprotected_binds(allowed) == ["0.0.0.0:4318 (HTTP) without an API or ingest token"]
    guarded = load_settings(http="0.0.0.0:4318", grpc="[::]:4317", api_token="a", ingest_token="i")
    assert unprotected_binds(guarded) == []


def test_flags_then_environment_then_file(tmp_path: Path) -> None:
    config = tmp_path / "predwatch.toml"
    config.write_text(
        """
http = "127.0.0.1:9000"
grpc = "off"
store = "sqlite:///from-file.db"
window = 30
api_token = "file-token"
collector_id = "c7"
flush_interval = 2.5

[thresholds]
psi_warning = 0.2
psi_drift = 0.4
min_count = 10

[sketches]
kll_k = 400

[limits]
max_reference_bytes = 1000

[[rules]]
name = "income drift"
metric = "psi"

[[notifiers]]
name = "ml-team"
type = "log"
"""
    )
    settings = load_settings(config_path=config, window_s=120, env={"PREDWATCH_API_TOKEN": "env-token"})
    assert (str(settings.http), settings.grpc, settings.store) == ("127.0.0.1:9000", None, "sqlite:///from-file.db")
    assert settings.window_s == 120  # the flag wins over the file
    assert settings.api_tokens == ("env-token",)  # the environment wins over the file
    assert (settings.collector_id, settings.flush_interval_s) == ("c7", 2.5)
    assert (settings.thresholds.psi_warning, settings.thresholds.psi_drift, settings.thresholds.min_count) == (
        0.2,
        0.4,
        10,
    )
    assert settings.sketch.kll_k == 400 and settings.sketch.items_lg_max_k == 10
    assert settings.max_reference_bytes == 1000
    assert settings.rules == ({"name": "income drift", "metric": "psi"},)
    assert settings.notifiers == ({"name": "ml-team", "type": "log"},)
    assert load_settings(config_path=config, api_token="flag").api_tokens == ("flag",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("windw = 60", "unknown setting 'windw'"),
        ("window = '60'", "window must be int"),
        ("window = true", "window must be int"),
        ("[thresholds]\npsi = 0.1", "unknown setting 'thresholds.psi'"),
        ("thresholds = 3", r"\[thresholds\] must be a table"),
        ("rules = 'x'", r"rules must be written as \[\[rules\]\]"),
        ("window = ", "not valid TOML"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_config(config)


def test_values_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read config file"):
        load_settings(config_path="/nonexistent/predwatch.toml")
    with pytest.raises(ValueError, match="window must be between 1 and 86400"):
        load_settings(window_s=0)
    bands = tmp_path / "bands.toml"
    bands.write_text("[thresholds]\npsi_warning = 0.5\npsi_drift = 0.2\n")
    with pytest.raises(ValueError, match="psi_warning <= psi_drift"):
        load_settings(config_path=bands)
    sizes = tmp_path / "sizes.toml"
    sizes.write_text("[sketches]\nkll_k = 4\n")
    with pytest.raises(ValueError, match="kll_k"):
        load_settings(config_path=sizes)
    with pytest.raises(ValueError, match="API token must be non-empty"):
        load_settings(api_token="two words")
    with pytest.raises(ValueError, match="max_body_bytes must be positive"):
        CollectorSettings(max_body_bytes=0)
    assert Address("::1", 1).family.name == "AF_INET6"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), (90, 90.0), ("30s", 30.0), ("10m", 600.0), ("12h", 43_200.0), (" 7d ", 604_800.0)],
)
def test_label_ttl_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text, "label_ttl") == seconds


def test_label_ttl_from_the_flag_or_the_file(tmp_path: Path) -> None:
    assert load_settings().label_ttl_s == 7 * 86_400
    config = tmp_path / "predwatch.toml"
    config.write_text('label_ttl = "2d"\n')
    assert load_settings(config_path=config).label_ttl_s == 2 * 86_400
    assert load_settings(config_path=config, label_ttl="36h").label_ttl_s == 36 * 3600  # the flag wins
    config.write_text("label_ttl = 600\n")
    assert load_settings(config_path=config).label_ttl_s == 600
    for bad in ("0", "-1d", "soon", "inf", "nan", ""):
        with pytest.raises(ValueError, match="label_ttl"):
            load_settings(label_ttl=bad)
    with pytest.raises(ValueError, match="label_ttl must be a positive number of seconds"):
        CollectorSettings(label_ttl_s=0)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("90d", 7_776_000.0), ("12h", 43_200.0), (3600, 3600.0), (1.5, 1.5), ("0", 0.0), (0, 0.0), ("0d", 0.0)]
    + [(" off ", 0.0), ("OFF", 0.0), ("none", 0.0), ("-0", 0.0)],
)
def test_retention_durations(value: str | float, seconds: float) -> None:
    assert parse_retention(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1d", "retention must be a duration such as 90d, or 0 / off to keep everything, got '-1d'"),
        (-5, "retention must be a duration such as 90d"),
        ("inf", "retention must be a duration"),
        ("nan", "retention must be a duration"),
        ("soon", "retention: expected seconds or a duration such as 30m, 12h, 7d, got 'soon'"),
        ("90 days", "retention: expected seconds"),
        ("", "retention: expected seconds"),
    ],
)
def test_bad_retention_says_what_to_write(value: str | float, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_retention(value)


def test_retention_from_the_flag_or_the_file(tmp_path: Path) -> None:
    assert load_settings().retention_s == 90 * 86_400  # the default
    config = tmp_path / "predwatch.toml"
    config.write_text('retention = "30d"\n')
    assert load_settings(config_path=config).retention_s == 30 * 86_400
    assert load_settings(config_path=config, retention="12h").retention_s == 43_200  # the flag wins
    assert load_settings(config_path=config, retention="off").retention_s == 0
    for text, seconds in (("retention = 0", 0.0), ("retention = 7200", 7200.0), ('retention = "off"', 0.0)):
        config.write_text(text + "\n")
        assert load_settings(config_path=config).retention_s == seconds
    config.write_text('retention = "-2d"\n')
    with pytest.raises(ValueError, match="retention must be a duration"):
        load_settings(config_path=config)
    for bad in ("retention = true", "retention = [90]"):
        config.write_text(bad + "\n")
        with pytest.raises(ValueError, match="retention must be int or float or str"):
            load_settings(config_path=config)
    with pytest.raises(ValueError, match="retention must be >= 0 seconds"):
        CollectorSettings(retention_s=-1)
    with pytest.raises(ValueError, match="retention must be >= 0 seconds"):
        CollectorSettings(retention_s=float("inf"))
