"""Fit a regressor on a seeded random subset of at most `max_rows` training rows.

Why: a Gaussian process costs the cube of its rows, so the search skips it on a farm with
more than `max_rows` training batches, and there additive splines can win instead: on the
second world's one-crop farm the Oracle falls from 0.990-0.992 of the Bayes R2 at 800
batches to 0.976-0.981 at 1,600-3,200, and a GP on a 1,200-batch subset (the textbook
"subset of data" approximation, Rasmussen & Williams 2006, 8.3.1) reaches 0.993-0.994
(`benchmarks/learning_curve.py`). Opt-in (`hyperparams: {max_rows: N}` of the
gaussian_process estimator): on the default two-crop farm CV chose it as well, and
Cortex's regret rose several-fold (README, "Models are chosen on your data").
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted


class Subsample(RegressorMixin, BaseEstimator):
    def __init__(self, estimator: Any = None, max_rows: int = 1000, random_state: int = 0):
        self.estimator = estimator
        self.max_rows = max_rows
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> Subsample:
        n = len(X)
        rows = np.arange(n)
        if n > self.max_rows:
            rng = np.random.default_rng(self.random_state)
            rows = np.sort(rng.choice(n, self.max_rows, replace=False))
        take = (lambda a: a.iloc[rows]) if hasattr(X, "iloc") else (lambda a: a[rows])
        self.estimator_ = clone(self.estimator).fit(take(X), np.asarray(y)[rows])
        self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)
