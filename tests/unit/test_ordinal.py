"""The ordinal (cumulative logit) classifier behind the `spline_ordinal` candidate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad
from scipy.special import expit

from vertiflow.tabular.ordinal import OrdinalLogisticRegression, penalised_nll

ORDER = ("REJECT", "STANDARD", "PREMIUM")


def graded(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A latent score (2 inputs) with logistic noise, cut at -1 and 1 into three grades."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    coef = np.array([1.5, -1.0, 0.0])
    score = x @ coef + rng.logistic(size=n)
    y = np.asarray(ORDER)[np.digitize(score, [-1.0, 1.0])]
    return x, y, coef


def test_the_gradient_and_hessian_are_exact():
    x, y, _ = graded(300)
    level = np.array([ORDER.index(v) for v in y])
    theta = np.r_[np.random.default_rng(1).normal(size=x.shape[1]), -0.8, 1.3]

    def value(t):
        return penalised_nll(t, x, level, 0.3)[0]

    def grad(t):
        return penalised_nll(t, x, level, 0.3)[1]

    assert check_grad(value, grad, theta) < 1e-5 * np.linalg.norm(grad(theta))
    hess = penalised_nll(theta, x, level, 0.3, hessian=True)[2]
    eps = 1e-6
    numeric = np.column_stack(
        [(grad(theta + eps * e) - grad(theta - eps * e)) / (2 * eps) for e in np.eye(len(theta))]
    )
    assert np.allclose(hess, numeric, rtol=1e-4, atol=1e-4)


def test_recovers_the_score_and_cut_points():
    x, y, coef = graded(20_000)
    model = OrdinalLogisticRegression(order=ORDER, C=1e6).fit(x, y)
    assert model.n_iter_ < 20  # Newton: a handful of steps
    assert np.allclose(model.coef_, coef, atol=0.06)
    assert np.allclose(model.cuts_, [-1.0, 1.0], atol=0.06)


def test_probabilities_follow_the_order_and_sklearns_column_convention():
    x, y, _ = graded(2_000)
    model = OrdinalLogisticRegression(order=ORDER).fit(x, y)
    assert list(model.classes_) == sorted(ORDER)  # predict_proba columns, as sklearn's
    proba = model.predict_proba(x)
    assert np.allclose(proba.sum(axis=1), 1.0) and (proba >= 0).all()
    premium = list(model.classes_).index("PREMIUM")
    high, low = np.array([[3.0, -3.0, 0.0]]), np.array([[-3.0, 3.0, 0.0]])
    assert model.predict_proba(high)[0, premium] > 0.9 > model.predict_proba(low)[0, premium]
    truth = expit(1.0 - x @ np.array([1.5, -1.0, 0.0]))  # P(not PREMIUM)
    assert np.corrcoef(1 - proba[:, premium], truth)[0, 1] > 0.99


def test_a_class_outside_the_order_is_refused():
    x, y, _ = graded(100)
    with pytest.raises(ValueError, match="not in the order"):
        OrdinalLogisticRegression(order=("REJECT", "PREMIUM")).fit(x, y)
