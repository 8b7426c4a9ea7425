"""The Oracle's predicted yield as an input of the Classifier (`train_classifier.oracle_input`).

Why: graders sort by size, and by how fast a crop grew (tipburn follows fast growth), so a
grade often follows the yield. A farm measures the yield of every batch as a number and its
grade as one of three: the Oracle learns the climate's effect from the richer target, and
the Classifier then has only to learn where the grades cut it. On the second world's
default farm (seeds 42, 1, 2) this took the gap to the Bayes accuracy from 0.83 / 2.45 /
1.87 points to 0.36 / 1.35 / 1.20 (README, Models).

Two inputs are added: the predicted log yield, and the same less its crop's 95th
percentile over the training batches (how far the batch is from the crop's best, which
additive models cannot form from the crop's one-hot). Batches the classifier is fitted on
get out-of-fold predictions, as scikit-learn's stacking does: for a batch it was fitted
on, the Oracle's prediction is closer to that batch's own yield than it will be for a new
batch, and a classifier taught on it would trust it too much. The Oracle is refitted with
its hyperparameters frozen (`modeling._frozen`), as Cortex's bootstrap refits are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.utils.validation import check_is_fitted

COLUMNS = ("oracle_log_yield", "oracle_log_yield_vs_crop")
YIELD = "fresh_weight_g"  # the Oracle's target
FOLDS = 5
BEST = 0.95  # the quantile of a crop's predicted log yields that stands for its best
LOWEST_G = 1e-3  # g per plant


def as_log(yield_g: np.ndarray) -> np.ndarray:
    """A predicted yield in logs, where climate factors add (as the Oracle's log target); a
    yield model without a log target can predict zero or less, read as LOWEST_G."""
    return np.log(np.maximum(np.asarray(yield_g, float), LOWEST_G))


def log_yield(oracle: Any, x: pd.DataFrame) -> np.ndarray:
    return as_log(oracle.predict(x[list(oracle.feature_names_in_)]))


def predicted(
    unfitted_oracle: Any,
    x: pd.DataFrame,
    y: pd.Series,
    crops: pd.Series,
    fitted_rows: np.ndarray,
    new_rows: np.ndarray,
    seed: int,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The COLUMNS for `fitted_rows` (out of fold among them) and `new_rows` (the Oracle
    fitted on every fitted row), other rows NaN; and each crop's best among the fitted."""
    values = np.full(len(x), np.nan)
    fitted_x, fitted_y = x.iloc[fitted_rows], y.iloc[fitted_rows]
    folds = KFold(min(FOLDS, len(fitted_rows)), shuffle=True, random_state=seed)
    oof = cross_val_predict(clone(unfitted_oracle), fitted_x, fitted_y, cv=folds)
    values[fitted_rows] = as_log(oof)
    if len(new_rows):
        model = clone(unfitted_oracle).fit(fitted_x, fitted_y)
        values[new_rows] = log_yield(model, x.iloc[new_rows])
    best = crop_best(crops.iloc[fitted_rows], values[fitted_rows])
    added = with_columns(pd.DataFrame({"crop": crops.to_numpy()}), values, best)
    return added[list(COLUMNS)], best


def crop_best(crops: pd.Series, values: np.ndarray) -> dict[str, float]:
    """Per crop, the BEST quantile of its training batches' predicted log yields."""
    frame = pd.DataFrame({"crop": crops.to_numpy(), "p": values})
    return {str(k): float(v) for k, v in frame.groupby("crop")["p"].quantile(BEST).items()}


def with_columns(x: pd.DataFrame, values: np.ndarray, best: dict[str, float]) -> pd.DataFrame:
    """`x` and the COLUMNS (a crop the training data did not have: no reference, NaN)."""
    reference = x["crop"].astype(str).map(best).astype(float).to_numpy()
    return x.assign(**{COLUMNS[0]: values, COLUMNS[1]: values - reference})


class OracleInput(ClassifierMixin, BaseEstimator):
    """A classifier (a pipeline or a blend) fed the COLUMNS besides its own inputs.

    `fit` takes frames that already hold the COLUMNS (out of fold: `predicted`); prediction
    computes them with the fitted `oracle`, so callers pass the usual inputs
    (`feature_names_in_`: the classifier's and the Oracle's, without the COLUMNS). The
    Oracle is shared with every copy (`clone` keeps it fitted): do not change it through
    `set_params`. `seed`: of the out-of-fold split, for refits (`modeling.bootstrap_refits`).
    """

    def __init__(
        self,
        classifier: Any = None,
        oracle: Any = None,
        best: dict | None = None,
        seed: int = 0,
    ):
        self.classifier = classifier
        self.oracle = oracle
        self.best = best
        self.seed = seed

    def __sklearn_clone__(self) -> OracleInput:
        """A copy to refit keeps the fitted Oracle: it is part of the model's definition
        (fitted by train_oracle), not refitted with the classifier."""
        classifier = None if self.classifier is None else clone(self.classifier)
        return OracleInput(classifier, self.oracle, self.best, self.seed)

    def fit(self, X: pd.DataFrame, y):
        self.classifier_ = clone(self.classifier).fit(X, y)
        self.classes_ = self.classifier_.classes_
        own = [c for c in self.classifier_.feature_names_in_ if c not in COLUMNS]
        extra = [c for c in self.oracle.feature_names_in_ if c not in own]
        self.feature_names_in_ = np.array([*own, *extra], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def _inputs(self, X: pd.DataFrame, yield_g: np.ndarray | None) -> pd.DataFrame:
        check_is_fitted(self)
        values = log_yield(self.oracle, X) if yield_g is None else as_log(yield_g)
        x = with_columns(X, values, self.best or {})
        return x[list(self.classifier_.feature_names_in_)]

    def predict_proba(self, X: pd.DataFrame, yield_g: np.ndarray | None = None) -> np.ndarray:
        """`yield_g`: a predicted yield to use instead of the Oracle's (Cortex gives each
        ensemble member's classifier that member's own Oracle refit)."""
        return self.classifier_.predict_proba(self._inputs(X, yield_g))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classifier_.predict(self._inputs(X, None))
