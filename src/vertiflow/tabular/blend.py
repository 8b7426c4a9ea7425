"""A weighted mean of two fitted model pipelines: the model search's `blend` candidate.

Why: on a small farm the best two candidates err in different places (a Gaussian process
between grown recipes, additive splines along each input's trend), and their mean is
closer to the truth than either (second world, 400 cycles, judged on 1,925 more batches:
0.980-0.983 of the Bayes R2 alone, 0.980-0.986 blended). The weight is chosen on the same
time-ordered folds as the candidates (`modeling.select`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted


def mix(first: np.ndarray, second: np.ndarray, weight: float, log: bool) -> np.ndarray:
    """`weight` x first + (1 - weight) x second; on the log scale (a geometric mean) for a
    yield model fitted to log(yield), where its errors are additive."""
    if log:
        return np.exp(weight * np.log(first) + (1.0 - weight) * np.log(second))
    return weight * first + (1.0 - weight) * second


class Blend(BaseEstimator):
    """`weight` x the first pipeline + (1 - weight) x the second, each fed its own `columns`
    of the input frame. Regression averages predictions (a geometric mean with `log`),
    classification averages probabilities."""

    def __init__(
        self,
        members: Sequence = (),
        columns: Sequence[Sequence[str]] = (),
        weight: float = 0.5,
        log: bool = False,
    ):
        self.members = members
        self.columns = columns
        self.weight = weight
        self.log = log

    def fit(self, X: pd.DataFrame, y):
        if len(self.members) != 2 or len(self.columns) != 2:
            raise ValueError("a blend has two members, each with its list of columns")
        self.members_ = [
            clone(m).fit(X[list(c)], y) for m, c in zip(self.members, self.columns, strict=True)
        ]
        wanted = {c for own in self.columns for c in own}
        self.feature_names_in_ = np.array([c for c in X.columns if c in wanted], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        classes = [getattr(m, "classes_", None) for m in self.members_]
        if classes[0] is not None:  # a classifier blend
            if not np.array_equal(classes[0], classes[1]):
                raise ValueError(f"the members' classes differ: {classes[0]} and {classes[1]}")
            self.classes_ = classes[0]
        return self

    def _mean(self, method: str, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self)
        first, second = (
            getattr(m, method)(X[list(c)]) for m, c in zip(self.members_, self.columns, strict=True)
        )
        return mix(first, second, self.weight, self.log and method == "predict")

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if hasattr(self, "classes_"):
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        return self._mean("predict", X)

    # Only a classifier blend has it: `hasattr(model, "predict_proba")` tells the tasks apart.
    @available_if(lambda self: hasattr(self, "classes_"))
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self._mean("predict_proba", X)
