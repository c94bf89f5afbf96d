"""Alerting inside the running collector: rules evaluated on a timer, notifications, actions, `/metrics`.

    alerting = Alerting.build(settings, service, store)   # rules from --config, state in the store's SQLite file
    routes = alerting.routes()                            # /api/v1/alerts, /api/v1/rules, /metrics
    alerting.start(); ...; alerting.stop()                # with the application's lifespan

The evaluator reads the same answers the API serves (drift, performance, operations) in-process, through
`ServiceSource`; alert state, rule changes made through the API and action runs persist in the collector's
database file, so a restart neither forgets an alert nor notifies twice.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.actions import ActionRunner
from collector.alert_store import MemoryAlertStore, SQLiteAlertStore
from collector.alerts import AlertManager
from collector.api import drift_answer
from collector.api_common import ApiError, endpoint, json_response
from collector.evaluator import Evaluator
from collector.notify import Dispatcher
from collector.prom import health_from_status, register_metrics
from collector.rule_config import RuleSet, parse_alerting
from collector.rules import RuleError, rule_from_json, rule_to_json
from collector.service import CollectorService
from collector.settings import CollectorSettings
from collector.store import Store

__all__ = ["Alerting", "ServiceSource"]

logger = logging.getLogger(__name__)
_ACTIVE_WINDOW_S = 24 * 3600.0


def _optional(module: str, name: str) -> Callable[..., Any] | None:
    try:
        found: Callable[..., Any] | None = getattr(importlib.import_module(module), name, None)
        return found
    except ImportError:
        return None


class ServiceSource:
    """The evaluator's and /metrics' view of the collector: the API's answers, computed in-process."""

    def __init__(self, service: CollectorService, clock: Callable[[], float]) -> None:
        self.service = service
        self.clock = clock
        self._performance = _optional("collector.api_performance", "performance_answer")
        self._operations = _optional("collector.api_operations", "operations_answer")
        self._reference_performance = _optional("collector.api_performance", "reference_performance")

    def models(self) -> Sequence[tuple[str, str]]:
        since = self.clock() - _ACTIVE_WINDOW_S
        return [(m.model, m.version) for m in self.service.models() if (m.last_seen or 0) >= since]

    def drift(self, model: str, version: str, start_s: float, end_s: float) -> Mapping[str, Any] | None:
        return drift_answer(self.service, model, version, start_s, end_s)

    def performance(self, model: str, version: str, start_s: float, end_s: float) -> Mapping[str, Any] | None:
        if self._performance is None:
            return None
        return self._performance(self.service, model, version, start_s, end_s)  # type: ignore[no-any-return]

    def operations(self, model: str, version: str, start_s: float, end_s: float) -> Mapping[str, Any] | None:
        if self._operations is None:
            return None
        return self._operations(self.service, model, version, start_s, end_s)  # type: ignore[no-any-return]

    def reference_performance(self, model: str, version: str) -> Mapping[str, Any] | None:
        if self._reference_performance is None:
            return None
        return self._reference_performance(self.service, model, version)  # type: ignore[no-any-return]

    def reference_series(self, model: str, version: str, metric: str, feature: str | None) -> Sequence[float]:
        return []


class Alerting:
    def __init__(
        self,
        rules: RuleSet,
        alerts: AlertManager,
        dispatcher: Dispatcher,
        actions: ActionRunner,
        evaluator: Evaluator,
        registry: CollectorRegistry,
        closers: Sequence[Callable[[], object]],
    ) -> None:
        self.rules = rules
        self.alerts = alerts
        self.dispatcher = dispatcher
        self.actions = actions
        self.evaluator = evaluator
        self.registry = registry
        self._closers = closers

    @classmethod
    def build(
        cls,
        settings: CollectorSettings,
        service: CollectorService,
        store: Store,
        *,
        clock: Callable[[], float] | None = None,
        base_url: str = "",
    ) -> Alerting:
        """Everything alerting needs; raises ValueError for a bad rule or notifier in the config."""
        clock = clock or time.time
        config = parse_alerting(settings.rules, settings.notifiers, settings.default_rules)
        path = getattr(store, "path", None)
        alert_store: SQLiteAlertStore | MemoryAlertStore = (
            SQLiteAlertStore(path) if isinstance(path, str) and path != ":memory:" else MemoryAlertStore()
        )
        rules = RuleSet(config.rules, store=alert_store)
        alerts = AlertManager(alert_store, clock=clock)
        dispatcher = Dispatcher(config.notifiers)
        actions = ActionRunner(alert_store)
        source = ServiceSource(service, clock)
        evaluator = Evaluator(
            rules, source, alerts, dispatcher, actions, clock, step_s=settings.window_s, base_url=base_url
        )
        registry = CollectorRegistry()
        register_metrics(
            registry,
            source,
            alerts=alerts,
            dispatcher=dispatcher,
            actions=actions,
            evaluator=evaluator,
            health=lambda: health_from_status(service.health()),
        )
        closers = [evaluator.stop, dispatcher.close, actions.close, alert_store.close]
        return cls(rules, alerts, dispatcher, actions, evaluator, registry, closers)

    def start(self) -> None:
        self.evaluator.start()

    def stop(self) -> None:
        for close in self._closers:
            try:
                close()
            except Exception:  # shutting down: report and go on with the rest
                logger.exception("error while stopping alerting")

    # -- HTTP ---------------------------------------------------------------------------------------------
    def routes(self, service: CollectorService) -> list[Route]:
        alerting = self

        def list_alerts(request: Request, _service: CollectorService) -> dict[str, Any]:
            query = request.query_params
            try:
                limit = int(query.get("limit", "100"))
            except ValueError:
                raise ApiError(400, "limit must be an integer") from None
            return alerting.alerts.answer(model=query.get("model"), state=query.get("state"), limit=limit)

        def list_rules(request: Request, _service: CollectorService) -> dict[str, Any]:
            rules = alerting.rules.rules()
            return {"rules": [{**rule_to_json(rule), "source": alerting.rules.source(rule.name)} for rule in rules]}

        async def post_rule(request: Request) -> Response:
            try:
                body = await request.json()
            except ValueError:
                return json_response({"error": "the body must be a JSON object describing a rule"}, 400)
            try:
                rule = rule_from_json(body)
            except (RuleError, ValueError, TypeError) as exc:
                return json_response({"error": str(exc)}, 400)
            await anyio.to_thread.run_sync(alerting.rules.put, rule)
            return json_response({**rule_to_json(rule), "source": alerting.rules.source(rule.name)}, 201)

        async def delete_rule(request: Request) -> Response:
            name = request.path_params["name"]
            try:
                removed = await anyio.to_thread.run_sync(alerting.rules.remove, name)
            except ValueError as exc:
                return json_response({"error": str(exc)}, 409)
            if not removed:
                return json_response({"error": f"no rule named {name!r}"}, 404)
            return json_response({"deleted": name})

        async def metrics(request: Request) -> Response:
            body = await anyio.to_thread.run_sync(generate_latest, alerting.registry)
            return Response(body, media_type=CONTENT_TYPE_LATEST)

        return [
            Route("/api/v1/alerts", endpoint(list_alerts)(service), methods=["GET"]),
            Route("/api/v1/rules", endpoint(list_rules)(service), methods=["GET"]),
            Route("/api/v1/rules", post_rule, methods=["POST"]),
            Route("/api/v1/rules/{name:path}", delete_rule, methods=["DELETE"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
