"""The Oracle's predicted yield as an input of the Classifier (`train_classifier.oracle_input`).

Why: graders sort by size, and by how fast a crop grew (tipburn follows fast growth), so a
grade often follows the yield. A farm measures the yield of every batch as a number and its
grade as one of three: the Oracle learns the climate's effect from the richer target, and
the Classifier then has only to learn where the grades cut it. On the second world's
default farm (seeds 42, 1, 2) this took the gap to the Bayes accuracy from 0.83 / 2.45 /
1.87 points to 0.42 / 1.66 / 1.09 (README, Models).

Two inputs are added: the predicted log yield, and the same less its crop's 95th
percentile over the training batches (how far the batch is from the crop's best, which
additive models cannot form from the crop's one-hot). Training batches get out-of-fold
predictions, as scikit-learn's stacking does: for a batch it was fitted on, the Oracle's
prediction is closer to that batch's own yield than it will be for a new batch, and a
classifier taught on it would trust it too much.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

COLUMNS = ("oracle_log_yield", "oracle_log_yield_vs_crop")
YIELD = "fresh_weight_g"  # the Oracle's target
FOLDS = 5
BEST = 0.95  # the quantile of a crop's predicted log yields that stands for its best
LOWEST_G = 1e-3  # a yield model without a log target can predict zero or less


def log_yield(oracle: Any, x: pd.DataFrame) -> np.ndarray:
    return np.log(np.maximum(oracle.predict(x[list(oracle.feature_names_in_)]), LOWEST_G))


def out_of_fold(unfitted_oracle: Any, x: pd.DataFrame, y: pd.Series, seed: int) -> np.ndarray:
    """Each row's predicted log yield from the Oracle refitted without the row's fold."""
    predicted = np.empty(len(x))
    for fitted_rows, held_out in KFold(min(FOLDS, len(x)), shuffle=True, random_state=seed).split(
        x
    ):
        model = clone(unfitted_oracle).fit(x.iloc[fitted_rows], y.iloc[fitted_rows])
        predicted[held_out] = log_yield(model, x.iloc[held_out])
    return predicted


def crop_best(crops: pd.Series, predicted: np.ndarray) -> dict[str, float]:
    """Per crop, the BEST quantile of its training batches' predicted log yields."""
    frame = pd.DataFrame({"crop": crops.to_numpy(), "p": predicted})
    return {str(k): float(v) for k, v in frame.groupby("crop")["p"].quantile(BEST).items()}


def with_columns(x: pd.DataFrame, predicted: np.ndarray, best: dict[str, float]) -> pd.DataFrame:
    """`x` and the COLUMNS (a crop the training data did not have: no reference, NaN)."""
    reference = x["crop"].astype(str).map(best).astype(float).to_numpy()
    return x.assign(**{COLUMNS[0]: predicted, COLUMNS[1]: predicted - reference})


def training_table(
    table: pl.DataFrame, x: pd.DataFrame, unfitted_oracle: Any, seed: int
) -> tuple[pl.DataFrame, dict[str, float]]:
    """`table` with the COLUMNS out of fold (`x`: its Oracle inputs), and each crop's best."""
    predicted = out_of_fold(unfitted_oracle, x, table[YIELD].to_pandas(), seed)
    best = crop_best(table["crop"].to_pandas(), predicted)
    added = with_columns(table.select("crop").to_pandas(), predicted, best)
    return table.with_columns(pl.from_pandas(added[list(COLUMNS)])), best


class OracleInput(ClassifierMixin, BaseEstimator):
    """A classifier (a pipeline or a blend) fed the COLUMNS besides its own inputs.

    `fit` takes frames that already hold the COLUMNS (out of fold: `training_table`);
    prediction computes them with the fitted `oracle`, so callers pass the usual inputs
    (`feature_names_in_`: the classifier's and the Oracle's, without the COLUMNS).
    """

    def __init__(
        self,
        classifier: Any = None,
        oracle: Any = None,
        best: dict | None = None,
        seed: int = 0,  # of the out-of-fold split (`training_table`)
    ):
        self.classifier = classifier
        self.oracle = oracle
        self.best = best
        self.seed = seed

    def __sklearn_clone__(self) -> OracleInput:
        """A copy to refit keeps the fitted Oracle: it is part of the model's definition
        (fitted by train_oracle), not refitted with the classifier."""
        return OracleInput(clone(self.classifier), self.oracle, self.best, self.seed)

    def fit(self, X: pd.DataFrame, y):
        self.classifier_ = clone(self.classifier).fit(X, y)
        self.classes_ = self.classifier_.classes_
        own = [c for c in self.classifier_.feature_names_in_ if c not in COLUMNS]
        extra = [c for c in self.oracle.feature_names_in_ if c not in own]
        self.feature_names_in_ = np.array([*own, *extra], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def _inputs(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self)
        x = with_columns(X, log_yield(self.oracle, X), self.best or {})
        return x[list(self.classifier_.feature_names_in_)]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.classifier_.predict_proba(self._inputs(X))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classifier_.predict(self._inputs(X))
