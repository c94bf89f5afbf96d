"""instrument._config: arguments > PREDWATCH_* > OTEL_* > defaults, and a ValueError naming what to fix.

Every call passes `env=` explicitly, so the real environment never matters.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from instrument._config import (
    DEFAULT_ENDPOINT,
    DEFAULT_RATE_LIMIT,
    Settings,
    load_settings,
    parse_headers,
    parse_rate_limit,
    parse_sample_rate,
)

# setting -> (argument, PREDWATCH_* variable, OTEL_* variable or None, argument value, PREDWATCH value, OTEL value,
#             expected from argument, from PREDWATCH, from OTEL)
PRECEDENCE: dict[str, tuple[Any, ...]] = {
    "endpoint": (
        "endpoint",
        "PREDWATCH_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "http://arg:1",
        "http://predwatch:2",
        "https://otel:3",
        "http://arg:1",
        "http://predwatch:2",
        "https://otel:3",
    ),
    "headers": (
        "headers",
        "PREDWATCH_HEADERS",
        "OTEL_EXPORTER_OTLP_HEADERS",
        {"X-Key": "arg"},
        "x-key=predwatch",
        "x-key=otel,x-other=1",
        {"x-key": "arg"},
        {"x-key": "predwatch"},
        {"x-key": "otel", "x-other": "1"},
    ),
    "sample_rate": ("sample_rate", "PREDWATCH_SAMPLE_RATE", None, 0.25, "0.5", None, 0.25, 0.5, None),
    "rate_limit": ("rate_limit", "PREDWATCH_RATE_LIMIT", None, 25, "50", None, 25.0, 50.0, None),
    "service_name": (
        "service_name",
        "PREDWATCH_SERVICE_NAME",
        "OTEL_SERVICE_NAME",
        "from-arg",
        "from-predwatch",
        "from-otel",
        "from-arg",
        "from-predwatch",
        "from-otel",
    ),
}


def _env(setting: str, *, predwatch: bool, otel: bool) -> dict[str, str]:
    _, pw_var, otel_var, _, pw_value, otel_value, *_ = PRECEDENCE[setting]
    env = {}
    if predwatch:
        env[pw_var] = pw_value
    if otel and otel_var is not None:
        env[otel_var] = otel_value
    return env


@pytest.mark.parametrize("setting", list(PRECEDENCE))
def test_argument_wins_over_both_variables(setting: str) -> None:
    argument, *_, arg_value, _, _, expected, _, _ = PRECEDENCE[setting]
    settings = load_settings(**{argument: arg_value}, env=_env(setting, predwatch=True, otel=True))
    assert getattr(settings, setting) == expected


@pytest.mark.parametrize("setting", list(PRECEDENCE))
def test_predwatch_variable_wins_over_otel_variable(setting: str) -> None:
    expected = PRECEDENCE[setting][7]
    settings = load_settings(env=_env(setting, predwatch=True, otel=True))
    assert getattr(settings, setting) == expected


@pytest.mark.parametrize("setting", [name for name, row in PRECEDENCE.items() if row[2] is not None])
def test_otel_variable_wins_over_default(setting: str) -> None:
    expected = PRECEDENCE[setting][8]
    settings = load_settings(env=_env(setting, predwatch=False, otel=True))
    assert getattr(settings, setting) == expected


@pytest.mark.parametrize("setting", [name for name, row in PRECEDENCE.items() if row[2] is not None])
def test_empty_predwatch_variable_counts_as_unset(setting: str) -> None:
    _, pw_var, *_ = PRECEDENCE[setting]
    env = {**_env(setting, predwatch=False, otel=True), pw_var: ""}
    assert getattr(load_settings(env=env), setting) == PRECEDENCE[setting][8]


def test_defaults() -> None:
    settings = load_settings(env={})
    assert isinstance(settings, Settings)
    assert settings.endpoint == DEFAULT_ENDPOINT == "http://127.0.0.1:4318"
    assert dict(settings.headers) == {}
    assert settings.sample_rate == 1.0
    assert settings.rate_limit == DEFAULT_RATE_LIMIT == 100.0
    assert settings.service_name.startswith("unknown_service:") and len(settings.service_name) > len("unknown_service:")
    assert settings.service_version is None and settings.environment is None
    assert settings.disabled is False
    assert settings.resource_metrics is True
    assert settings.metric_interval_s == 10.0


def test_the_real_environment_is_not_read_when_env_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDWATCH_ENDPOINT", "not a url")
    monkeypatch.setenv("PREDWATCH_SAMPLE_RATE", "abc")
    monkeypatch.setenv("PREDWATCH_DISABLED", "true")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-process-env")
    settings = load_settings(env={})
    assert settings.endpoint == DEFAULT_ENDPOINT
    assert settings.sample_rate == 1.0
    assert settings.disabled is False
    assert settings.service_name != "from-process-env"


# --- endpoint ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://collector:4318", "http://collector:4318"),
        ("http://collector:4318/", "http://collector:4318"),
        ("https://collector.example.com", "https://collector.example.com"),
        ("http://gateway/predwatch/", "http://gateway/predwatch"),
    ],
)
def test_endpoint_is_a_base_url_without_trailing_slash(given: str, expected: str) -> None:
    assert load_settings(endpoint=given, env={}).endpoint == expected
    assert load_settings(env={"PREDWATCH_ENDPOINT": given}).endpoint == expected


# --- headers and the ingest token --------------------------------------------------------------------------


def test_header_strings_are_parsed_lowercased_and_url_decoded() -> None:
    headers = parse_headers("Api-Key=abc%3D%3D , X-Team=ml%20ops,,x-eq=a=b", "SRC")
    assert headers == {"api-key": "abc==", "x-team": "ml ops", "x-eq": "a=b"}
    assert parse_headers("", "SRC") == {}
    assert parse_headers({"X-A": "1"}, "SRC") == {"x-a": "1"}


def test_ingest_token_adds_a_bearer_authorization_header() -> None:
    settings = load_settings(env={"PREDWATCH_INGEST_TOKEN": "s3cret", "PREDWATCH_HEADERS": "x-team=ml"})
    assert dict(settings.headers) == {"x-team": "ml", "authorization": "Bearer s3cret"}
    assert dict(load_settings(env={"PREDWATCH_INGEST_TOKEN": "t"}).headers) == {"authorization": "Bearer t"}
    assert dict(load_settings(env={"PREDWATCH_INGEST_TOKEN": ""}).headers) == {}


@pytest.mark.parametrize(
    ("kwargs", "env"),
    [
        ({"headers": {"Authorization": "Basic given"}}, {}),
        ({}, {"PREDWATCH_HEADERS": "authorization=Basic%20given"}),
        ({}, {"OTEL_EXPORTER_OTLP_HEADERS": "AUTHORIZATION=Basic%20given"}),
    ],
    ids=["argument", "PREDWATCH_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"],
)
def test_ingest_token_does_not_replace_an_explicit_authorization(kwargs: dict[str, Any], env: dict[str, str]) -> None:
    settings = load_settings(**kwargs, env={**env, "PREDWATCH_INGEST_TOKEN": "token"})
    assert dict(settings.headers) == {"authorization": "Basic given"}


def test_ingest_token_does_not_change_the_callers_mapping() -> None:
    given = {"x-a": "1"}
    settings = load_settings(headers=given, env={"PREDWATCH_INGEST_TOKEN": "t"})
    assert given == {"x-a": "1"}
    assert dict(settings.headers) == {"x-a": "1", "authorization": "Bearer t"}


# --- switches, interval, other settings --------------------------------------------------------------------


@pytest.mark.parametrize("var", ["PREDWATCH_DISABLED", "OTEL_SDK_DISABLED"])
@pytest.mark.parametrize("value", ["1", "true", "TRUE", " yes ", "On"])
def test_disabled_by_either_variable(var: str, value: str) -> None:
    assert load_settings(env={var: value}).disabled is True


@pytest.mark.parametrize("var", ["PREDWATCH_DISABLED", "OTEL_SDK_DISABLED"])
@pytest.mark.parametrize("value", ["0", "false", "False", "no", "off", ""])
def test_not_disabled_by_false_values(var: str, value: str) -> None:
    assert load_settings(env={var: value}).disabled is False


def test_resource_metrics_switch() -> None:
    assert load_settings(env={"PREDWATCH_RESOURCE_METRICS": "false"}).resource_metrics is False
    assert load_settings(env={"PREDWATCH_RESOURCE_METRICS": "yes"}).resource_metrics is True
    assert load_settings(resource_metrics=True, env={"PREDWATCH_RESOURCE_METRICS": "off"}).resource_metrics is True
    assert load_settings(resource_metrics=False, env={}).resource_metrics is False


def test_metric_interval_argument_seconds_and_otel_variable_milliseconds() -> None:
    assert load_settings(env={"OTEL_METRIC_EXPORT_INTERVAL": "5000"}).metric_interval_s == 5.0
    assert load_settings(env={"OTEL_METRIC_EXPORT_INTERVAL": "250"}).metric_interval_s == 0.25
    assert load_settings(metric_interval_s=2, env={"OTEL_METRIC_EXPORT_INTERVAL": "5000"}).metric_interval_s == 2.0


def test_service_version_and_environment() -> None:
    env = {"PREDWATCH_SERVICE_VERSION": "1.2", "PREDWATCH_ENVIRONMENT": "staging"}
    settings = load_settings(env=env)
    assert (settings.service_version, settings.environment) == ("1.2", "staging")
    settings = load_settings(service_version="2.0", environment="prod", env=env)
    assert (settings.service_version, settings.environment) == ("2.0", "prod")


@pytest.mark.parametrize(("value", "expected"), [(0, 0.0), ("0", 0.0), (1, 1.0), ("0.125", 0.125), (0.5, 0.5)])
def test_sample_rate_bounds_are_accepted(value: Any, expected: float) -> None:
    assert parse_sample_rate(value, "SRC") == expected
    assert load_settings(sample_rate=float(value), env={}).sample_rate == expected


# --- every bad value names the argument or variable at fault -----------------------------------------------

BAD: dict[str, tuple[dict[str, Any], dict[str, str], str]] = {
    "endpoint_no_scheme": ({"endpoint": "127.0.0.1:4318"}, {}, "endpoint="),
    "endpoint_host_port_only": ({"endpoint": "localhost:4318"}, {}, "endpoint="),
    "endpoint_other_scheme": ({"endpoint": "ftp://collector:21"}, {}, "endpoint="),
    "endpoint_no_host": ({"endpoint": "http://"}, {}, "endpoint="),
    "endpoint_traces_path": ({"endpoint": "http://c:4318/v1/traces"}, {}, "endpoint="),
    "endpoint_logs_path_slash": ({"endpoint": "http://c:4318/v1/logs/"}, {}, "endpoint="),
    "endpoint_metrics_path": ({"endpoint": "http://c:4318/v1/metrics"}, {}, "endpoint="),
    "PREDWATCH_ENDPOINT_no_scheme": ({}, {"PREDWATCH_ENDPOINT": "collector:4318"}, "PREDWATCH_ENDPOINT"),
    "PREDWATCH_ENDPOINT_traces": ({}, {"PREDWATCH_ENDPOINT": "http://c/v1/traces"}, "PREDWATCH_ENDPOINT"),
    "OTEL_ENDPOINT_traces": (
        {},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/v1/traces"},
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ),
    "OTEL_ENDPOINT_no_scheme": ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
    "sample_rate_above_one": ({"sample_rate": 1.5}, {}, "sample_rate="),
    "sample_rate_negative": ({"sample_rate": -0.1}, {}, "sample_rate="),
    "sample_rate_nan": ({"sample_rate": math.nan}, {}, "sample_rate="),
    "sample_rate_text": ({"sample_rate": "abc"}, {}, "sample_rate="),
    "PREDWATCH_SAMPLE_RATE_text": ({}, {"PREDWATCH_SAMPLE_RATE": "abc"}, "PREDWATCH_SAMPLE_RATE"),
    "PREDWATCH_SAMPLE_RATE_above_one": ({}, {"PREDWATCH_SAMPLE_RATE": "1.5"}, "PREDWATCH_SAMPLE_RATE"),
    "PREDWATCH_SAMPLE_RATE_percent": ({}, {"PREDWATCH_SAMPLE_RATE": "10%"}, "PREDWATCH_SAMPLE_RATE"),
    "rate_limit_zero": ({"rate_limit": 0}, {}, "rate_limit="),
    "rate_limit_negative": ({"rate_limit": -1}, {}, "rate_limit="),
    "rate_limit_nan": ({"rate_limit": math.nan}, {}, "rate_limit="),
    "rate_limit_text": ({"rate_limit": "fast"}, {}, "rate_limit="),
    "PREDWATCH_RATE_LIMIT_text": ({}, {"PREDWATCH_RATE_LIMIT": "100/s"}, "PREDWATCH_RATE_LIMIT"),
    "PREDWATCH_RATE_LIMIT_zero": ({}, {"PREDWATCH_RATE_LIMIT": "0"}, "PREDWATCH_RATE_LIMIT"),
    "headers_non_string_value": ({"headers": {"x-a": 1}}, {}, "headers="),
    "headers_non_string_name": ({"headers": {1: "a"}}, {}, "headers="),
    "PREDWATCH_HEADERS_no_equals": ({}, {"PREDWATCH_HEADERS": "token"}, "PREDWATCH_HEADERS"),
    "PREDWATCH_HEADERS_no_name": ({}, {"PREDWATCH_HEADERS": "=value"}, "PREDWATCH_HEADERS"),
    "OTEL_HEADERS_one_bad_item": ({}, {"OTEL_EXPORTER_OTLP_HEADERS": "a=1,broken"}, "OTEL_EXPORTER_OTLP_HEADERS"),
    "PREDWATCH_DISABLED": ({}, {"PREDWATCH_DISABLED": "maybe"}, "PREDWATCH_DISABLED"),
    "OTEL_SDK_DISABLED": ({}, {"OTEL_SDK_DISABLED": "2"}, "OTEL_SDK_DISABLED"),
    "PREDWATCH_RESOURCE_METRICS": ({}, {"PREDWATCH_RESOURCE_METRICS": "sometimes"}, "PREDWATCH_RESOURCE_METRICS"),
    "metric_interval_zero": ({"metric_interval_s": 0}, {}, "metric_interval_s="),
    "metric_interval_negative": ({"metric_interval_s": -5}, {}, "metric_interval_s="),
    "metric_interval_nan": ({"metric_interval_s": math.nan}, {}, "metric_interval_s="),
    "metric_interval_text": ({"metric_interval_s": "soon"}, {}, "metric_interval_s="),
    "OTEL_METRIC_EXPORT_INTERVAL_zero": ({}, {"OTEL_METRIC_EXPORT_INTERVAL": "0"}, "OTEL_METRIC_EXPORT_INTERVAL"),
    "OTEL_METRIC_EXPORT_INTERVAL_negative": (
        {},
        {"OTEL_METRIC_EXPORT_INTERVAL": "-100"},
        "OTEL_METRIC_EXPORT_INTERVAL",
    ),
    "OTEL_METRIC_EXPORT_INTERVAL_text": ({}, {"OTEL_METRIC_EXPORT_INTERVAL": "10s"}, "OTEL_METRIC_EXPORT_INTERVAL"),
    "service_name_blank": ({"service_name": "   "}, {}, "service_name"),
    "PREDWATCH_SERVICE_NAME_blank": ({}, {"PREDWATCH_SERVICE_NAME": "   "}, "PREDWATCH_SERVICE_NAME"),
    "OTEL_SERVICE_NAME_blank": ({}, {"OTEL_SERVICE_NAME": " \t"}, "OTEL_SERVICE_NAME"),
}


@pytest.mark.parametrize(("kwargs", "env", "culprit"), list(BAD.values()), ids=list(BAD))
def test_bad_values_raise_value_error_naming_the_culprit(
    kwargs: dict[str, Any], env: dict[str, str], culprit: str
) -> None:
    with pytest.raises(ValueError) as info:
        load_settings(**kwargs, env=env)
    message = str(info.value)
    assert culprit in message, message
    # and blames nothing else
    if culprit.startswith("PREDWATCH_"):
        assert "OTEL_" not in message, message
    elif culprit.startswith("OTEL_"):
        assert "PREDWATCH_" not in message, message
    else:
        assert "PREDWATCH_" not in message and "OTEL_" not in message, message


def test_bad_endpoint_message_says_what_to_write() -> None:
    with pytest.raises(ValueError, match=r"http://127\.0\.0\.1:4318") as info:
        load_settings(endpoint="collector:4318", env={})
    assert "'collector:4318'" in str(info.value)
    with pytest.raises(ValueError, match=r"drop '/v1/traces'"):
        load_settings(endpoint="http://c:4318/v1/traces", env={})


@pytest.mark.parametrize("value", [None, "x", 1.0001, -1, math.inf, [0.5]])
def test_parse_sample_rate_names_its_source(value: Any) -> None:
    with pytest.raises(ValueError, match="the_source"):
        parse_sample_rate(value, "the_source")


@pytest.mark.parametrize("value", ["off", "OFF", " none ", "inf", math.inf, "Infinity", "unlimited"])
def test_the_rate_limit_can_be_turned_off(value: Any) -> None:
    assert load_settings(rate_limit=value, env={}).rate_limit is None
    if isinstance(value, str):
        assert load_settings(env={"PREDWATCH_RATE_LIMIT": value}).rate_limit is None


@pytest.mark.parametrize(("value", "expected"), [(0.5, 0.5), ("2.5", 2.5), (1000, 1000.0)])
def test_a_rate_limit_is_a_positive_number_of_calls_a_second(value: Any, expected: float) -> None:
    assert parse_rate_limit(value, "x") == expected


@pytest.mark.parametrize("value", ["novalue", "a=1,,=2", " = x", {"a": None}, {"a": b"bytes"}])
def test_parse_headers_names_its_source(value: Any) -> None:
    with pytest.raises(ValueError, match="the_source"):
        parse_headers(value, "the_source")
