"""Per-request state that follows the caller: the ids of the last prediction, and an optional id sink.

Both are ContextVars, so concurrent requests (threads or asyncio tasks) never see each other's ids. A sink is
a list a server middleware installs before calling the application: a monitored call appends its ids to it,
which works even when predict runs in a thread pool whose context changes do not flow back. It also carries
the request's rate-limit decision (`admitted`), which the monitored calls inside the request follow.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["ID_SINK", "LAST_IDS", "IdSink", "RefusedIdSink", "last_prediction_ids"]


class IdSink(list[str]):
    """The ids of the monitored calls inside one request; `admitted`: whether they may be recorded."""

    __slots__ = ()
    admitted = True


class RefusedIdSink(IdSink):
    """The sink of a request the rate limit turned away."""

    __slots__ = ()
    admitted = False


LAST_IDS: ContextVar[list[str] | None] = ContextVar("predwatch_last_ids", default=None)
ID_SINK: ContextVar[IdSink | None] = ContextVar("predwatch_id_sink", default=None)


def last_prediction_ids() -> list[str]:
    """The prediction ids (one per row) of the most recent monitored call in the current context."""
    ids = LAST_IDS.get()
    return list(ids) if ids is not None else []
