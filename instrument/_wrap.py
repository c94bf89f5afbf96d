"""`@monitor` and `wrap_model`: put a `ModelMonitor` around functions, methods and existing objects.

One wrapper per kind of callable (wrapt passes `instance` separately, so methods and class/static methods
need nothing special); an `async def` gets an `async def` wrapper so that latency covers the awaited work.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from time import perf_counter_ns
from typing import Any, ParamSpec, TypeVar

import wrapt
from opentelemetry import trace

from instrument import _runtime
from instrument._monitor import MISSING, ModelMonitor

__all__ = ["monitor", "wrap", "wrap_model"]

P = ParamSpec("P")
R = TypeVar("R")
_get_current_span = trace.get_current_span


def _input_position(func: Callable[..., Any], input_arg: str | None) -> tuple[int | None, str | None]:
    """Where the model input sits among the arguments wrapt passes (self/cls already removed)."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return 0, None
    if params and params[0].name in ("self", "cls") and not inspect.ismethod(func):
        params = params[1:]
    if input_arg is not None:
        for index, param in enumerate(params):
            if param.name == input_arg:
                positional = param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD)
                return (index if positional else None), param.name
        raise ValueError(f"input_arg={input_arg!r} is not a parameter of {func.__qualname__}")
    for index, param in enumerate(params):
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            return index, param.name
        if param.kind is param.KEYWORD_ONLY:
            return None, param.name
        if param.kind is param.VAR_POSITIONAL:
            return index, None
    return None, None


def wrap(watcher: ModelMonitor, func: Callable[P, R], input_arg: str | None = None) -> Callable[P, R]:
    """Wrap a function, method, static/class method or `async def` so that each call is recorded."""
    target = func.__func__ if isinstance(func, staticmethod | classmethod) else func
    position, name = _input_position(target, input_arg)

    def argument(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if position is not None and len(args) > position:
            return args[position]
        if name is not None:
            return kwargs.get(name, MISSING)
        return MISSING

    if inspect.iscoroutinefunction(target):

        async def async_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            runtime = _runtime._RUNTIME or _runtime.current()
            if runtime is None:
                return await wrapped(*args, **kwargs)
            span = token = None
            if _get_current_span().is_recording():
                span, token = watcher.start_span(runtime)
            t0 = perf_counter_ns()
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                duration = perf_counter_ns() - t0
                watcher.finish(runtime, argument(args, kwargs), None, exc, t0, duration, span, token)
                raise
            duration = perf_counter_ns() - t0
            watcher.finish(runtime, argument(args, kwargs), result, None, t0, duration, span, token)
            return result

        return wrapt.FunctionWrapper(func, async_wrapper)  # type: ignore[arg-type]

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        runtime = _runtime._RUNTIME or _runtime.current()
        if runtime is None:
            return wrapped(*args, **kwargs)
        span = token = None
        if _get_current_span().is_recording():
            span, token = watcher.start_span(runtime)
        t0 = perf_counter_ns()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            duration = perf_counter_ns() - t0
            watcher.finish(runtime, argument(args, kwargs), None, exc, t0, duration, span, token)
            raise
        duration = perf_counter_ns() - t0
        watcher.finish(runtime, argument(args, kwargs), result, None, t0, duration, span, token)
        return result

    return wrapt.FunctionWrapper(func, wrapper)


def monitor(
    model: str,
    version: str = "",
    *,
    task: str | None = None,
    features: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
    classes: Sequence[Any] | None = None,
    id_column: str | None = None,
    sample_rate: float | None = None,
    exclude: Sequence[str] | None = None,
    threshold: float = 0.5,
    data_source: str | None = None,
    input_arg: str | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a predict function (or method, static/class method, `async def`) to record every call.

    The model input is the first argument after self/cls, or the argument named by `input_arg`; the return
    value is the output. Arguments are checked here, so a mistake raises at import time, not in production.

    >>> @instrument.monitor(model="churn", version="3", task="binary_classification")
    ... def predict(X): return clf.predict_proba(X)[:, 1]
    """
    watcher = ModelMonitor(
        model,
        version,
        task=task,
        features=features,
        outputs=outputs,
        classes=classes,
        id_column=id_column,
        sample_rate=sample_rate,
        exclude=exclude,
        threshold=threshold,
        data_source=data_source,
    )

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        return wrap(watcher, func, input_arg=input_arg)

    return decorate


class _MonitoredModel(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """A transparent proxy whose named methods are monitored; everything else is the original object."""

    def __init__(self, wrapped: Any, methods: dict[str, Any]) -> None:
        super().__init__(wrapped)
        self._self_methods = methods

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_self_"):
            raise AttributeError(name)
        method = self._self_methods.get(name)
        if method is not None:
            return method
        return getattr(self.__wrapped__, name)


def wrap_model(
    obj: R,
    *,
    model: str,
    version: str = "",
    methods: Sequence[str] = ("predict", "predict_proba"),
    **options: Any,
) -> R:
    """Monitor an existing object's predict methods without editing its class (e.g. a fitted estimator).

    Returns a proxy that behaves like `obj` (isinstance checks pass); each named method that exists is
    monitored. With `classes_` on the object (scikit-learn classifiers) the task defaults to binary or
    multiclass classification with those class names: `predict_proba` then yields score and label, `predict`
    the label. Each call is one set of predictions, so calling both methods on the same rows records them
    twice. The original object is not modified.
    """
    found = [name for name in methods if callable(getattr(obj, name, None))]
    if not found:
        raise ValueError(f"{type(obj).__qualname__} has none of the methods {list(methods)}")
    classes = options.pop("classes", None)
    if classes is None and hasattr(obj, "classes_"):
        classes = [c.item() if hasattr(c, "item") else c for c in obj.classes_]
    task = options.pop("task", None)
    if task is None and classes is not None:
        task = "binary_classification" if len(classes) == 2 else "multiclass_classification"
    input_arg = options.pop("input_arg", None)
    methods_wrapped: dict[str, Any] = {}
    for name in found:
        watcher = ModelMonitor(model, version, task=task, classes=classes, **options)
        methods_wrapped[name] = wrap(watcher, getattr(obj, name), input_arg=input_arg)
    return _MonitoredModel(obj, methods_wrapped)  # type: ignore[return-value]
