"""The label join's rules against a real SQLite store: both directions, versions, dedupe (first wins), attribution
to the prediction's window, TTL expiry, buffering, failures that leave nothing half done, and a restart."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collector import label_store_sqlite
from collector.label_store import ANY_VERSION
from collector.labels import LabelJoin
from collector.performance import PerformanceState, merge_states, performance_metrics
from collector.performance_classification import ClassificationState
from collector.performance_regression import RegressionState
from collector.records import ActualsBatch, InferenceBatch
from collector.store_sqlite import SQLiteStore

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86_400.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class States:
    """The on_state sink: every state handed on, by (model, version, window)."""

    def __init__(self) -> None:
        self.got: dict[tuple[str, str, int], list[PerformanceState]] = {}

    def __call__(self, model: str, version: str, window_s: int, state: PerformanceState) -> None:
        self.got.setdefault((model, version, window_s), []).append(state)

    def merged(self, model: str = "m", version: str | None = None) -> Any:
        found = [s for (m, v, _), states in self.got.items() for s in states if m == model and version in (None, v)]
        return merge_states(found)

    def windows(self) -> dict[tuple[str, str, int], int]:
        return {key: sum(s.count for s in states) for key, states in self.got.items()}


class Fixture:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = Clock()
        self.states = States()
        self.store = SQLiteStore(str(path))
        self.join = self.make()

    def make(self, **options: Any) -> LabelJoin:
        return LabelJoin(
            self.store.labels(),
            self.states,
            ttl_s=options.pop("ttl_s", DAY),
            window_start=lambda t: int(t // 60) * 60,
            clock=self.clock,
            **options,
        )

    def reopen(self) -> None:
        self.join.flush(final=True)
        self.store.close()
        self.store = SQLiteStore(str(self.path))
        self.join = self.make()

    def predict(
        self,
        ids: Sequence[str],
        labels: Sequence[Any] | None = None,
        scores: Sequence[Any] | None = None,
        version: str = "1",
        t: float = T0,
        task: str | None = "binary_classification",
        predictions: Sequence[Any] | None = None,
    ) -> None:
        outputs: dict[str, Any] = {}
        if labels is not None:
            outputs["label"] = list(labels)
        if scores is not None:
            outputs["score"] = list(scores)
        if predictions is not None:
            outputs["prediction"] = np.asarray(predictions, dtype=np.float64)  # as the receivers hand doubles over
        self.join.add_predictions([InferenceBatch("m", version, t, list(ids), {}, outputs, task=task)])

    def actuals(self, ids: Sequence[str], values: Sequence[Any], version: str | None = None) -> dict[str, int]:
        batch = ActualsBatch("m", version, self.clock(), list(ids), list(values))
        assert self.join.problem(batch) is None
        outcome = self.join.add_actuals(batch).as_dict()
        self.join.emit_states()
        return outcome


@pytest.fixture
def f(tmp_path: Path) -> Iterator[Fixture]:
    fixture = Fixture(tmp_path / "labels.db")
    yield fixture
    fixture.store.close()


def outcome(
    matched: int = 0, pending: int = 0, duplicates: int = 0, conflicts: int = 0, pairs: int | None = None
) -> dict[str, int]:
    accepted = matched + pending + duplicates + conflicts
    pairs = matched if pairs is None else pairs
    return dict(
        accepted=accepted, matched=matched, pending=pending, duplicates=duplicates, conflicts=conflicts, pairs=pairs
    )


def test_predictions_first_then_actuals_go_to_the_prediction_window(f: Fixture) -> None:
    f.predict(["a", "b", "c"], labels=[1, 0, 1], scores=[0.9, 0.2, 0.6], t=T0 + 5)
    f.predict(["d"], labels=[0], scores=[0.4], t=T0 + 70)
    f.clock.now = T0 + 3 * DAY / 4  # labels come hours later
    assert f.actuals(["a", "b", "d", "x"], [1, 1, 0, 1]) == outcome(matched=3, pending=1)
    assert f.states.windows() == {("m", "1", int(T0)): 2, ("m", "1", int(T0) + 60): 1}
    metrics = performance_metrics(f.states.merged())
    assert metrics["confusion_matrix"] == {"labels": [0, 1], "matrix": [[1, 0], [1, 1]]}
    counts = f.store.labels().window_counts("m", "1", T0, T0 + 120, 60)
    assert [(c.window_s - T0, c.predictions, c.matched, c.expired) for c in counts] == [(0, 3, 2, 0), (60, 1, 1, 0)]


def test_actuals_first_wait_for_their_predictions(f: Fixture) -> None:
    assert f.actuals(["a", "b"], [1, 0]) == outcome(pending=2)
    assert f.states.got == {}
    f.predict(["a", "c"], labels=[1, 1], scores=[0.8, 0.7])
    assert f.states.got == {}  # buffered until the flush
    f.join.flush()
    assert f.states.windows() == {("m", "1", int(T0)): 1}
    counts = f.store.labels().actual_counts("m")[None]
    assert (counts["received"], counts["matched"], counts["pending"]) == (2, 1, 1)
    assert f.store.labels().held() == (2, 1)  # the labeled actual leaves the pending table


def test_repeated_actuals_count_once_and_the_first_value_wins(f: Fixture) -> None:
    f.predict(["a", "b"], labels=[1, 1], scores=[0.9, 0.9])
    assert f.actuals(["a", "a", "a"], [1, 1.0, 0]) == outcome(matched=1, duplicates=1, conflicts=1)
    assert f.actuals(["a", "b"], [True, 0]) == outcome(matched=1, duplicates=1)  # True is 1
    assert f.actuals(["b"], [1]) == outcome(conflicts=1)
    assert f.actuals(["x", "x"], [1, 1]) == outcome(pending=1, duplicates=1)
    assert f.actuals(["x"], [0]) == outcome(conflicts=1)  # repeats of a pending actual too
    f.predict(["x"], labels=[1], scores=[0.5])
    f.join.flush()
    metrics = performance_metrics(f.states.merged())
    assert metrics["count"] == 3 and metrics["confusion_matrix"]["matrix"] == [[0, 1], [0, 2]]  # a:1 b:0 x:1


def test_a_prediction_delivered_twice_is_held_and_labeled_once(f: Fixture) -> None:
    f.predict(["a", "b"], labels=[1, 0], scores=[0.9, 0.1])
    f.predict(["a"], labels=[1], scores=[0.9])  # an OTLP retry
    f.join.flush()
    assert f.actuals(["a", "b"], [1, 0]) == outcome(matched=2)
    f.predict(["a"], labels=[1], scores=[0.9])  # a late retry of an already labeled prediction
    f.join.flush()
    assert f.states.merged().count == 2
    assert f.join.counters["duplicate_predictions"] == 2
    assert f.store.labels().window_counts("m", "1", T0, T0 + 60, 60)[0].predictions == 2


def test_versions_shadow_deployment_and_version_specific_actuals(f: Fixture) -> None:
    f.predict(["a", "b"], labels=[1, 0], scores=[0.9, 0.2], version="champion")
    f.predict(["a", "b"], labels=[0, 0], scores=[0.3, 0.1], version="challenger")
    assert f.actuals(["a"], [1]) == outcome(matched=1, pairs=2)  # no version: both versions' predictions
    assert f.actuals(["b"], [0], version="challenger") == outcome(matched=1)
    assert f.actuals(["b"], [1], version="champion") == outcome(matched=1)
    assert f.actuals(["a"], [1], version="challenger") == outcome(duplicates=1)  # labeled already
    assert f.actuals(["a"], [0]) == outcome(conflicts=1)
    assert performance_metrics(f.states.merged(version="champion"))["accuracy"] == 0.5
    assert performance_metrics(f.states.merged(version="challenger"))["accuracy"] == 0.5
    # a version whose prediction comes after the actual labeled another one still gets it
    f.predict(["a"], labels=[1], scores=[0.7], version="canary")
    f.join.flush()
    assert f.states.merged(version="canary").count == 1


def test_a_prediction_prefers_the_actual_for_its_own_version(f: Fixture) -> None:
    assert f.actuals(["a"], [0]) == outcome(pending=1)
    assert f.actuals(["a"], [1], version="2") == outcome(pending=1)
    f.predict(["a"], labels=[1], scores=[0.9], version="2")
    f.predict(["a"], labels=[1], scores=[0.9], version="1")
    f.join.flush()
    assert f.states.merged(version="2").pairs == {(1, 1): 1}
    assert f.states.merged(version="1").pairs == {(0, 1): 1}
    counts = f.store.labels().actual_counts("m")
    assert counts[None]["pending"] == counts["2"]["pending"] == 0


def test_regression_and_tasks_inferred_from_outputs(f: Fixture) -> None:
    f.predict(["r1", "r2", "r3"], task=None, predictions=[2.5, 0.0, 4.0], version="reg")
    f.predict(["c1", "c2"], task=None, labels=["cat", "dog"], version="cls")
    f.predict(["n1"], task=None, version="none")  # nothing to score: not held
    f.join.flush()
    assert f.join.tasks("m") == {"reg": "regression", "cls": "multiclass_classification"}
    f.actuals(["r1", "r2", "r3"], [3, 0.5, 4], version="reg")
    f.actuals(["c1", "c2", "n1"], ["cat", "cat", 1], version="cls")
    reg = f.states.merged(version="reg")
    assert isinstance(reg, RegressionState)
    assert performance_metrics(reg)["mae"] == pytest.approx((0.5 + 0.5 + 0.0) / 3)
    cls = f.states.merged(version="cls")
    assert isinstance(cls, ClassificationState) and cls.task == "multiclass_classification"
    assert f.join.counters["predictions_without_outputs"] == 1


@pytest.mark.parametrize(
    ("version", "ids", "values", "problem"),
    [
        ("reg", ["r1"], ["high"], "actuals[0] is 'high' (a string), but a regression model's actuals are numbers"),
        ("reg", ["r1"], [True], "a regression model's actuals are numbers"),
        ("cls", ["c1"], [0.5], "a classifier's actuals are class labels"),
        ("cls", ["c1"], [None], "actuals[0] is null: send only known outcomes"),
        ("cls", ["c1"], [float("nan")], "no null, NaN or infinity"),
        ("cls", ["c1"], [[1]], "an actual is a number, a string or a boolean"),
        ("cls", [""], [1], "ids[0] is '' (a string): ids are strings of 1 to 256 characters"),
        ("cls", ["c1", "c2"], [1], "2 ids but 1 actuals"),
        (None, ["c1"], ["x"], "(model 'm' is regression)"),  # any version: every task must accept them
    ],
)
def test_problems(f: Fixture, version: str | None, ids: list[str], values: list[Any], problem: str) -> None:
    f.predict(["r1"], task="regression", predictions=[1.0], version="reg")
    f.predict(["c1"], labels=[1], version="cls")
    batch = ActualsBatch("m", version, T0, ids, values)
    found = f.join.problem(batch)
    assert found is not None and problem in found
    f.join.add_actuals_batches([batch, ActualsBatch("m", "cls", T0, ["c1"], [1.0])])  # the OTLP path
    assert f.join.counters["actuals_rejected"] == len(ids)
    assert f.join.counters["actuals_matched"] == 1  # the good batch still went in


def test_ttl_expires_what_never_joined(f: Fixture) -> None:
    f.predict(["a", "b"], labels=[1, 1], t=T0)
    f.join.flush()
    f.actuals(["a", "z"], [1, 1])
    f.clock.now = T0 + DAY / 2
    f.predict(["c"], labels=[1], t=f.clock.now)
    f.join.flush()  # nothing is old enough yet
    assert f.store.labels().held() == (3, 1)
    f.clock.now = T0 + DAY + 1
    f.join.flush()
    assert f.store.labels().held() == (1, 0)
    counts = f.store.labels().window_counts("m", "1", T0, T0 + 60, 60)
    assert [(c.predictions, c.matched, c.expired) for c in counts] == [(2, 1, 1)]  # b expired, a was labeled
    assert f.store.labels().actual_counts("m")[None]["expired"] == 1  # z
    assert f.actuals(["b"], [1]) == outcome(pending=1)  # too late: b is gone


def test_buffering_and_the_order_of_writes(f: Fixture) -> None:
    join = f.make(max_buffer_rows=3)
    join.add_predictions(
        [InferenceBatch("m", "1", T0, ["a", "b"], {}, {"label": [1, 0]}, task="binary_classification")]
    )
    assert f.store.labels().held() == (0, 0) and join.health()["buffered_predictions"] == 2
    assert join.tasks("m") == {"1": "binary_classification"}  # buffered predictions count already
    outcome_ = join.add_actuals(ActualsBatch("m", None, T0, ["a"], [1]))  # the buffer is written first
    assert (outcome_.matched, f.store.labels().held()) == (1, (2, 0))
    join.add_predictions([InferenceBatch("m", "1", T0, ["c", "d", "e"], {}, {"label": [1] * 3}, task="regression")])
    assert f.store.labels().held() == (5, 0)  # a full buffer is written at once


def test_failures_leave_nothing_half_done(f: Fixture, monkeypatch: pytest.MonkeyPatch) -> None:
    f.predict(["a", "b"], labels=[1, 1], scores=[0.9, 0.8])
    labels = f.store.labels()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(label_store_sqlite.SQLiteLabelTx, "add_window_counts", broken)
    with pytest.raises(OSError):
        f.join.flush()
    assert labels.held() == (0, 0) and f.join.health()["buffered_predictions"] == 2  # back in the buffer
    monkeypatch.undo()
    f.join.flush()
    monkeypatch.setattr(label_store_sqlite.SQLiteLabelTx, "add_actual_counts", broken)
    with pytest.raises(OSError):
        f.join.add_actuals(ActualsBatch("m", None, T0, ["a", "x"], [1, 1]))
    monkeypatch.undo()
    assert labels.held() == (2, 0) and f.states.got == {}
    assert f.actuals(["a", "x"], [1, 1]) == outcome(matched=1, pending=1)  # as if the failed call never happened


def test_restart_keeps_pending_predictions_and_actuals(f: Fixture) -> None:
    f.predict(["a", "b"], labels=[1, 0], scores=[0.9, 0.3])  # buffered: the stop writes them
    f.actuals(["z"], [1])
    f.reopen()
    assert f.actuals(["a"], [1]) == outcome(matched=1)
    f.predict(["z"], labels=[1], scores=[0.6])
    f.reopen()
    assert performance_metrics(f.states.merged())["count"] == 2
    assert f.actuals(["z", "a"], [1, 1]) == outcome(duplicates=2)
    assert f.store.labels().actual_counts("m")[None]["pending"] == 0


def test_many_ids_across_chunks(f: Fixture) -> None:
    rng = np.random.default_rng(3)
    n = 2345
    ids = [f"{i:032x}" for i in rng.integers(0, 2**62, size=n)]
    scores = rng.uniform(size=n)
    f.predict(ids, labels=(scores >= 0.5).astype(int).tolist(), scores=scores.tolist())
    truth = (rng.uniform(size=n) < scores).astype(int).tolist()
    order = rng.permutation(n)
    half = n // 2
    assert f.actuals([ids[i] for i in order[:half]], [truth[i] for i in order[:half]])["matched"] == half
    assert f.actuals([ids[i] for i in order[half:]], [truth[i] for i in order[half:]])["matched"] == n - half
    state = f.states.merged()
    assert state.count == n and ANY_VERSION == 0


def test_values_kept_of_outputs() -> None:
    from collector.label_values import floats, infer_task, storable

    assert floats(np.array([1.0, np.nan, np.inf]), 4) == [1.0, None, None, None]
    assert floats([1, True, "x", None, 2.5], 5) == [1.0, None, None, None, 2.5]
    assert floats(None, 3) is None
    assert storable(10**20, 1e20) == 1e20 and storable(3, 3) == 3 and storable("a", "a") == "a"
    assert infer_task("regression", ["label"]) == "regression"
    assert infer_task(None, ["prediction"]) == "regression"
    assert infer_task("other", ["score"]) is None


def test_the_benchmark_runs() -> None:
    from benchmarks import label_join

    results = label_join.run(pending=3000, labels=1000, batch=250)
    assert results["pending"] == 3000 and results["labels"] == 1000 and results["labels_per_s"] > 0
    assert "labels joined per second" in label_join.report(results)


def test_a_large_expiry_backlog_is_worked_off_over_ticks(f: Fixture) -> None:
    join = f.make(expire_limit=2, expire_every_s=60)
    join.add_predictions(
        [InferenceBatch("m", "1", T0, [f"p{i}" for i in range(25)], {}, {"label": [1] * 25}, task="regression")]
    )
    join.flush()  # the first tick expires (nothing old yet) and schedules the next one a minute on
    f.clock.now = T0 + DAY + 1
    join.flush()
    assert f.store.labels().held() == (5, 0)  # ten rounds of two
    join.flush()  # due at once: the backlog goes on
    assert f.store.labels().held() == (0, 0)
    f.clock.now += 1
    join.flush()  # nothing left: the next expiry waits expire_every_s
    assert join._next_expiry == f.clock.now - 1 + 60
