"""Labels and predictions from the bundled Adult records, made without training a model.

Each "model" is a few lines of arithmetic on the records' own columns, fitted (where it
is fitted at all) on the first rows of ``adult.data`` and applied to ``adult.test``, so
the gates are judged on real data with real signal, and on the same data with the
labels shuffled.
"""

from __future__ import annotations

import csv
import functools
import gzip
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from tests._support.project import ADULT

if TYPE_CHECKING:
    import pandas as pd

Rows = list[dict[str, str]]
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def adult_rows(name: str = "adult.test.csv.gz", rows: int = 1500) -> Rows:
    """The first ``rows`` complete records of a bundled Adult file (no '?' anywhere)."""
    out: Rows = []
    with gzip.open(Path(ADULT) / name, "rt", newline="") as handle:
        for record in csv.DictReader(handle):
            if "?" in record.values():
                continue
            out.append(record)
            if len(out) == rows:
                break
    return out


def _number(rows: Rows, column: str) -> Floats:
    return np.array([float(r[column]) for r in rows], dtype=np.float64)


def _married(rows: Rows) -> Floats:
    return np.array([r["marital-status"].startswith("Married") for r in rows], dtype=np.float64)


def income_scores(rows: Rows) -> tuple[Ints, Floats]:
    """``class`` as 0/1 (>50K is 1) and a hand-made probability from five columns."""
    labels = np.array([r["class"].startswith(">50K") for r in rows], dtype=np.int64)
    z = (
        0.35 * (_number(rows, "education-num") - 10.0)
        + 1.8 * _married(rows)
        + 0.03 * (_number(rows, "age") - 38.0)
        + 0.03 * (_number(rows, "hours-per-week") - 40.0)
        + 2.0 * (_number(rows, "capital-gain") > 5000.0)
        - 1.5
    )
    return labels, 1.0 / (1.0 + np.exp(-z))


def _age_design(rows: Rows) -> Floats:
    return np.column_stack(
        [
            np.ones(len(rows)),
            _married(rows),
            _number(rows, "hours-per-week"),
            _number(rows, "education-num"),
            np.array([r["relationship"] == "Own-child" for r in rows], dtype=np.float64),
        ]
    )


def age_predictions(train: Rows, test: Rows) -> tuple[Floats, Floats]:
    """``age`` of the test rows and a least-squares fit on the train rows' other columns."""
    coef, *_ = np.linalg.lstsq(_age_design(train), _number(train, "age"), rcond=None)
    return _number(test, "age"), _age_design(test) @ coef


def marital_probabilities(train: Rows, test: Rows) -> tuple[Ints, Floats, list[str]]:
    """``marital-status`` (class index), P(status | relationship) from the train rows, classes."""
    classes = sorted({r["marital-status"] for r in train} | {r["marital-status"] for r in test})
    index = {c: i for i, c in enumerate(classes)}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in train:
        counts[r["relationship"]][r["marital-status"]] += 1
    proba = np.empty((len(test), len(classes)), dtype=np.float64)
    for i, r in enumerate(test):
        seen = counts[r["relationship"]]
        row = np.array([seen[c] + 1.0 for c in classes])  # Laplace smoothing
        proba[i] = row / row.sum()
    labels = np.array([index[r["marital-status"]] for r in test], dtype=np.int64)
    return labels, proba, classes


@functools.cache
def adult_model_scores() -> tuple[pd.DataFrame, Floats, Floats]:
    """adult.test, its labels (>50K is 1), and the scores of scikit-learn's gradient
    boosted trees trained on adult.data: a model this project did not train (once per
    process; read-only)."""
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    def table(name: str) -> tuple[pd.DataFrame, Floats]:
        frame = pd.read_csv(Path(ADULT) / name)
        labels = frame.pop("class").astype(str).str.startswith(">50K").to_numpy(np.float64)
        return frame, labels

    train, train_labels = table("adult.data.csv.gz")
    test, test_labels = table("adult.test.csv.gz")
    for column in train.columns:
        if not pd.api.types.is_numeric_dtype(train[column]):
            train[column] = train[column].astype("category")
            test[column] = pd.Categorical(test[column], categories=train[column].cat.categories)
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    model.fit(train, train_labels)
    return test, test_labels, model.predict_proba(test)[:, 1]
