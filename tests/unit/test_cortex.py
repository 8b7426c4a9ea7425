"""Cortex: the optimiser, its bounds, its economics and the regret measure."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from vertiflow import cortex, params
from vertiflow.errors import VertiflowError
from vertiflow.farm import agronomy, simple_model
from vertiflow.farm.energy import EnergyModel, Tariff, energy_cost_per_m2_day

PRICES = {"basil": {"PREMIUM": 90, "STANDARD": 60, "REJECT": 0}}
BOX = [(18.0, 28.0), (50.0, 80.0), (400.0, 1400.0), (150.0, 550.0), (12.0, 20.0), (1.2, 2.5)]
DLI = (10.0, 20.0)
REPO = Path(__file__).resolve().parents[2]
FAST = {"seed": 3, "maxiter": 30, "popsize": 10, "tol": 1e-8, "smoothing_samples": 4}


def econ(peak: float = 1.2, offpeak: float = 0.8) -> cortex.Economics:
    return cortex.Economics(PRICES, {"basil": 60}, tariff=Tariff(peak, offpeak))


def test_regret_on_a_known_case():
    def margin(r: np.ndarray) -> dict[str, np.ndarray]:  # best: 10 at x0 = 22, others free
        return {"margin": 10.0 - (r[0] - 22.0) ** 2}

    best_x, best = cortex.true_optimum(margin, BOX, (0.0, 100.0))
    assert best == pytest.approx(10.0, abs=1e-6) and best_x[0] == pytest.approx(22.0, abs=1e-3)
    achieved = margin(np.array([[24.0], [60], [800], [300], [16], [1.6]]))["margin"][0]
    assert cortex.regret(best, achieved) == pytest.approx(0.4)  # (10 - 6) / 10
    with pytest.raises(VertiflowError, match="undefined"):
        cortex.regret(0.0, 1.0)


def test_the_judge_finds_a_true_optimum_that_sits_on_the_responses_kinks():
    """In the SIMPLE world, arugula's growth stops rising at EC 1.3 (nutrients saturate)
    and at 700 ppm CO2, while both keep costing: the best recipe sits on those kinks, and
    on the DLI bound. A grid with a gradient polish stopped 3 % short of it, understating
    every regret measured against it."""
    economics = cortex.Economics(
        {"arugula": {"PREMIUM": 60, "STANDARD": 40, "REJECT": 0}}, {"arugula": 60}
    )
    ctx = cortex.CropContext("arugula", cycle_days=28.0, optimum=None, ph=6.0)
    truth = cortex.truth("arugula", economics, "simple", ctx)
    x, best = cortex.true_optimum(truth, BOX, DLI)
    crop = simple_model.crop("arugula")
    assert x[5] == pytest.approx(crop.ec_sat, abs=0.01) and x[2] == pytest.approx(700, abs=5)
    assert agronomy.dli(x[3], x[4]) == pytest.approx(DLI[1], abs=0.05)
    assert best == pytest.approx(truth(x.reshape(-1, 1))["margin"][0], abs=1e-3)


def test_optimum_respects_bounds_and_is_deterministic():
    truth = cortex.truth("basil", econ())
    a = cortex.optimise(truth, BOX, DLI, **FAST)
    b = cortex.optimise(truth, BOX, DLI, **FAST)
    assert np.array_equal(a.recipe, b.recipe) and a.trace == b.trace
    for value, (lo, hi) in zip(a.recipe, BOX, strict=True):
        assert lo <= value <= hi
    light = agronomy.dli(a.recipe[3], a.recipe[4])
    assert DLI[0] - 0.05 <= light <= DLI[1] + 0.05
    assert a.trace == sorted(a.trace)  # the best so far never gets worse


def test_higher_energy_price_never_raises_the_light_level():
    chosen = []
    for price in (0.6, 1.2, 2.4, 4.8):
        truth = cortex.truth("basil", econ(peak=price * 1.5, offpeak=price))
        x, _ = cortex.true_optimum(truth, BOX, DLI)
        chosen.append(float(agronomy.dli(x[3], x[4])))
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(chosen)), chosen
    assert chosen[-1] < chosen[0]  # and at some point it really falls


def test_off_peak_lighting_is_cheaper():
    tariff = Tariff(peak_price=1.2, offpeak_price=0.8)
    assert tariff.lighting_price(np.array(8.0)) == pytest.approx(0.8)  # fits off-peak
    assert tariff.lighting_price(np.array(16.0)) == pytest.approx(1.0)  # 8 h each
    cost = energy_cost_per_m2_day(
        EnergyModel(),
        tariff,
        np.array([300.0, 300.0]),
        np.array([8.0, 16.0]),
        np.array([22.0, 22.0]),
    )
    assert cost[1] > 2 * cost[0]  # twice the light, partly at peak prices


def _train() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    n = 200
    return pl.DataFrame(
        {
            "crop": ["basil"] * n,
            "temp_mean": rng.uniform(19, 27, n),
            "humidity_mean": rng.uniform(50, 80, n),
            "co2_mean": rng.uniform(400, 1400, n),
            "ppfd_lit_mean": rng.uniform(150, 550, n),
            "photoperiod_h": rng.uniform(12, 20, n),
            "ec_mean": rng.uniform(1.0, 2.8, n),
        }
    )


def test_search_box_stays_inside_the_training_data():
    bounds = {
        "air_temp": [15, 30],
        "humidity": [50, 80],
        "co2": [400, 1400],
        "ppfd": [150, 550],
        "photoperiod": [12, 20],
        "ec": [1.2, 2.5],
    }
    box = cortex.search_bounds("basil", bounds, _train(), (0.0, 1.0))
    assert box[0][0] >= 19 and box[0][1] <= 27  # params allowed 15-30, data only 19-27


def test_empty_or_infeasible_bounds_are_clear_errors():
    bounds = {
        "air_temp": [30, 35],
        "humidity": [50, 80],
        "co2": [400, 1400],
        "ppfd": [150, 550],
        "photoperiod": [12, 20],
        "ec": [1.2, 2.5],
    }
    with pytest.raises(VertiflowError, match="no feasible air_temp for basil"):
        cortex.search_bounds("basil", bounds, _train(), (0.0, 1.0))
    with pytest.raises(VertiflowError, match=r"bounds.ec must be \[low, high\]"):
        cortex.search_bounds(
            "basil", {**bounds, "air_temp": [18, 28], "ec": [2.0]}, _train(), (0.0, 1.0)
        )
    with pytest.raises(VertiflowError, match="no training batches of crop 'lettuce'"):
        cortex.search_bounds("lettuce", bounds, _train(), (0.0, 1.0))


def test_dli_bounds_the_search_box_cannot_reach_are_a_clear_error():
    """DLI limits are only a penalty: unreachable ones gave recipes outside them, silently."""
    box = [(19, 27), (50, 80), (400, 1400), (150, 550), (12, 20), (1.2, 2.5)]
    cortex._check_dli_reachable("basil", box, (10, 20))  # reachable: no error
    with pytest.raises(VertiflowError, match=r"dli_bounds \[45, 50\] cannot be met for basil"):
        cortex._check_dli_reachable("basil", box, (45, 50))


def test_a_crop_priced_by_default_or_losing_money_is_said():
    """A farm's 'Red Oak Lettuce' was priced as the `default` crop and a kg export's best
    recipe lost money, both without a word."""
    section = params.load(REPO / "params.yaml")["optimise_cortex"]
    recipes = {
        "Lettuce": {"predicted": {"margin_per_m2_day": 3.2}},
        "Red Oak Lettuce": {"predicted": {"margin_per_m2_day": -1.53}},
    }
    said = cortex.notices(section, recipes)
    assert not [s for s in said if "'Lettuce'" in s]  # lettuce's own entries, any case
    assert [s for s in said if "'Red Oak Lettuce'" in s and "prices_mad_per_kg" in s]
    assert [s for s in said if "'Red Oak Lettuce'" in s and "plants_per_m2" in s]
    assert [s for s in said if "loses money" in s and "-1.53" in s]
    assert len(said) == 3


def test_a_recipe_predicted_heavier_than_any_harvest_is_said():
    """A four-crop farm's pak choi recipe was predicted at 199 g a plant where the heaviest
    harvest was 150 g (truth: 178), with an interval that did not hold the true margin."""
    section = params.load(REPO / "params.yaml")["optimise_cortex"]

    def said(grams):
        recipe = {"predicted": {"margin_per_m2_day": 3.0, "fresh_weight_g": grams}}
        return cortex.notices(section, {"lettuce": recipe | {"heaviest_harvest_g": 150.0}})

    assert said(140.0) == []
    (notice,) = said(199.0)
    assert "199 g per plant" in notice and "heaviest 150 g" in notice


def test_the_margin_interval_covers_a_new_draw_as_often_as_it_says():
    """Three members' z x s interval covered one more draw like them about 3 times in 4
    while saying 9 in 10; on the second world it held the true margin 2 times in 9."""
    rng = np.random.default_rng(0)
    draws = rng.normal(5.0, 1.0, (4000, 4))  # three members, and the truth
    inside = [
        lo <= truth <= hi
        for *members, truth in draws
        for lo, hi in [cortex.margin_interval(np.array(members), 0.9)]
    ]
    assert np.mean(inside) == pytest.approx(0.9, abs=0.015)
    assert cortex.margin_interval(np.array([2.0]), 0.9) == (2.0, 2.0)


def test_a_recipe_on_a_params_limit_inside_what_the_farm_grew_is_said():
    """A kale farm grew DLI up to 29; the recipe sat on dli_bounds' 20 (the brief's limit
    for basil) with `on_bound` empty and not a word."""
    recipe = np.array([[20.0], [60.0], [900.0], [463.0], [12.0], [1.2]])  # DLI 20.0
    box = [(18, 28), (50, 80), (400, 1400), (150, 550), (12, 20), (1.2, 2.5)]
    assert cortex.on_bounds(recipe[:, 0], box, (10, 20)) == ["photoperiod", "ec", "dli"]
    assert cortex.on_bounds(recipe[:, 0], box) == ["photoperiod", "ec"]
    section = params.load(REPO / "params.yaml")["optimise_cortex"]
    kale = {
        "predicted": {"margin_per_m2_day": 3.0},
        "on_bound": ["photoperiod", "ec", "dli"],
        **{n: float(v) for n, v in zip(cortex.RECIPE, recipe[:, 0], strict=True)},
        "dli": 20.0,
        "search_box": {**dict(zip(cortex.RECIPE, box, strict=True)), "dli": [10, 20]},
        "grown_range": {
            **dict(zip(cortex.RECIPE, box, strict=True)),
            "photoperiod": [11.98, 20],  # the farm's own edge, as measured: nothing to say
            "ec": [0.9, 2.8],  # params' 1.2 cut into what it grew
            "dli": [6.1, 29.0],
        },
    }
    said = [s for s in cortex.notices(section, {"Kale": kale}) if "sits on" in s]
    assert len(said) == 2, said
    assert "dli_bounds's limit 20" in said[1] and "6.1-29" in said[1]
    assert "bounds.ec's limit 1.2" in said[0]


@pytest.mark.parametrize(
    ("option", "value"),
    [("--peak-price", "-1"), ("--offpeak-price", "nan"), ("--premium-price", "inf")],
)
def test_a_price_on_the_command_line_is_checked_as_params_are(option, value, tmp_path):
    """params.yaml refuses a negative price; `vertiflow cortex --peak-price -1` planned with
    it (a negative energy cost), and nan or inf printed NaN and Infinity, which is not
    JSON, with exit code 0. Checked before any data or model is read."""
    from typer.testing import CliRunner

    from vertiflow.cli import app

    out = CliRunner().invoke(app, ["cortex", option, value, "--prepared", str(tmp_path)])
    assert out.exit_code == 1, out.output
    assert f"{option} {value}: expected a finite price, 0 or more" in " ".join(out.output.split())


def test_cortex_without_the_pipeline_s_outputs_says_which_and_what_to_run(tmp_path):
    """Outside a checkout, or before `dvc pull`: a FileNotFoundError traceback for
    train.parquet, and MLflow's "No such artifact: 'oracle'" for the models."""
    from typer.testing import CliRunner

    from vertiflow.cli import app

    args = ["--prepared", str(tmp_path / "prepared"), "--models", str(tmp_path / "models")]
    out = CliRunner().invoke(app, ["cortex", "--crop", "basil", *args])
    said = "".join(out.output.split())
    assert out.exit_code == 1 and "run`dvcrepro`(or`dvcpull`)first" in said, out.output
    for missing in ("prepared/train.parquet", "prepared/crops.json", "models/oracle"):
        assert f"{tmp_path}/{missing}".replace(" ", "") in said, out.output
