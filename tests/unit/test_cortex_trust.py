"""Cortex knows what it does not know: trust region, lower confidence bound, crops and
cycle lengths from the data."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from vertiflow import cortex
from vertiflow.errors import VertiflowError

BOX = [(18.0, 28.0), (50.0, 80.0), (400.0, 1400.0), (150.0, 550.0), (12.0, 20.0), (1.2, 2.5)]


def grown(n: int = 60, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lows, highs = np.array(BOX).T
    return lows + (highs - lows) * rng.uniform(0.0, 0.5, (n, 6))  # the lower half only


def test_trust_region_measures_distance_to_grown_recipes():
    points = grown()
    region = cortex.TrustRegion(points, BOX, 0.95)
    assert region.distance(points[:3].T) == pytest.approx(np.zeros(3))
    far = np.array([[28.0], [80.0], [1400.0], [550.0], [20.0], [2.5]])  # the unexplored corner
    assert region.distance(far)[0] > 0.5 > region.radius > 0

    def flat(recipe):
        return {"margin": np.full(recipe.shape[1], 10.0)}

    penalised = region.constrain(flat, weight=100.0)
    assert penalised(points[:1].T)["margin"][0] == 10.0
    assert (
        penalised(far)["margin"][0]
        < 10.0 - 100.0 * (region.distance(far)[0] - region.radius) + 1e-9
    )


def test_lower_bound_prefers_the_recipe_the_ensemble_agrees_on():
    def margins(recipe):  # two members: agree at x=0, disagree at x=1
        x = recipe[0]
        return {"margin": np.stack([5.0 + 2.0 * x, 5.0 + 0.0 * x])}

    lcb = cortex.lower_bound(margins, kappa=2.0)(np.array([[0.0, 1.0]]))["margin"]
    assert lcb[0] == pytest.approx(5.0) and lcb[1] < lcb[0]  # mean 6, but std 1.41


def test_revenue_is_spread_over_the_farms_own_cycle_length():
    econ = cortex.Economics(
        {"default": {"PREMIUM": 60, "STANDARD": 40, "REJECT": 0}}, {"default": 40}
    )
    recipe = np.array([[20.0], [65.0], [800.0], [300.0], [16.0], [1.6]])
    proba = np.array([[1.0, 0.0, 0.0]])
    short = cortex.breakdown("kale", recipe, np.array([100.0]), proba, econ, days=28.0)
    long = cortex.breakdown("kale", recipe, np.array([100.0]), proba, econ, days=42.0)
    assert short["revenue"][0] == pytest.approx(long["revenue"][0] * 42 / 28)
    with pytest.raises(VertiflowError, match="no entry for crop 'kale'"):
        cortex.Economics({"basil": {"PREMIUM": 1, "STANDARD": 1, "REJECT": 0}}, {}).grade_prices(
            "kale"
        )


def test_crop_contexts_come_from_the_data():
    train = pl.DataFrame(
        {"crop": ["kale"] * 3 + ["basil"] * 2, "cycle_days": [27.0, 28.0, 30.0, 35.0, 36.0]}
    ).with_columns(pl.lit(6.1).alias("ph_mean"))
    ctx = cortex.crop_contexts(train)
    assert set(ctx) == {"kale", "basil"}
    assert ctx["kale"].cycle_days == 28.0 and ctx["kale"].optimum is None
    assert ctx["kale"].ph == pytest.approx(6.1)  # no optimum: the farm's typical pH
    assert ctx["basil"].optimum is not None and ctx["basil"].ph == 6.0  # built-in optimum


def test_inputs_a_recipe_does_not_set_follow_the_recipe_as_the_data_says():
    rng = np.random.default_rng(1)
    n = 300
    temp = rng.uniform(18, 28, n)
    train = pl.DataFrame(
        {
            "crop": ["kale"] * n,
            "temp_mean": temp,
            "humidity_mean": rng.uniform(50, 80, n),
            "co2_mean": rng.uniform(400, 1400, n),
            "ppfd_lit_mean": rng.uniform(150, 550, n),
            "photoperiod_h": rng.uniform(12, 20, n),
            "ec_mean": rng.uniform(1.0, 2.5, n),
            "temp_out_of_band": np.clip((temp - 24) / 4, 0, 1),  # hotter: more time out of band
            "water_temp_mean": 19 + 0.4 * (temp - 20),
            "empty": [None] * n,
        },
        schema_overrides={"empty": pl.Float64},
    )
    others = cortex.Companions(train, "kale")
    recipes = np.array([[19.0, 27.5], [65, 65], [800, 800], [300, 300], [16, 16], [1.6, 1.6]])
    out = others(recipes)
    assert out["temp_out_of_band"][0] < 0.15 < 0.6 < out["temp_out_of_band"][1]
    assert out["water_temp_mean"] == pytest.approx([18.6, 22.0], abs=0.05)
    assert np.isnan(out["empty"]).all()
