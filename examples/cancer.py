"""The model every example serves: a scikit-learn classifier trained on the breast-cancer data set that
scikit-learn ships (569 rows, 30 numeric features, target 1 = benign), plus its reference columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

MODEL = "cancer"
VERSION = "1"
TASK = "binary_classification"


@dataclass(frozen=True)
class Cancer:
    clf: Pipeline
    features: list[str]
    X_train: pd.DataFrame
    X_live: pd.DataFrame
    y_train: pd.Series
    y_live: pd.Series

    def scores(self, rows: Any) -> list[float]:
        """Positive-class probabilities for rows (a DataFrame, dict rows or lists of the 30 features)."""
        frame = rows if isinstance(rows, pd.DataFrame) else _frame(rows, self.features)
        return [float(p) for p in self.clf.predict_proba(frame)[:, 1]]

    def reference(self) -> dict[str, Any]:
        """The body of PUT /api/v1/models/cancer/reference: the training split, its outputs and labels."""
        score = np.asarray(self.scores(self.X_train))
        return {
            "inputs": {name: self.X_train[name].astype(float).tolist() for name in self.features},
            "outputs": {"score": score.tolist(), "label": (score >= 0.5).astype(int).tolist()},
            "actuals": self.y_train.astype(int).tolist(),
        }


def _frame(rows: list[Any], features: list[str]) -> pd.DataFrame:
    if rows and isinstance(rows[0], dict):
        return pd.DataFrame.from_records(rows, columns=features).astype(float)
    return pd.DataFrame(np.asarray(rows, dtype=float).reshape(len(rows), len(features)), columns=features)


def train(seed: int = 0) -> Cancer:
    data = load_breast_cancer(as_frame=True)
    X, y = data.data, data.target
    X_train, X_live, y_train, y_live = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X_train, y_train)
    return Cancer(clf, list(X.columns), X_train, X_live, y_train, y_live)
