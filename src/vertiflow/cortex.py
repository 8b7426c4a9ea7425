"""Cortex (A11): the growing recipe that earns the most, per crop.

Objective: margin per m2 per *cycle day*. A module's time is what the farm sells, and
crops occupy it for different lengths (basil 35 d, lettuce 42 d); margin per cycle would
favour long cycles for their own sake.

margin = yield (Oracle) x expected price over grades (Classifier probabilities)
         - electricity (LEDs and the HVAC that removes their heat, at peak/off-peak tariffs)
         - CO2 enrichment - nutrients

The search space is each recipe variable's bounds from params, narrowed to what the
Oracle saw in training for that crop: tree models extrapolate flat, so an optimum outside
the data would be an artefact. Cortex is judged by the simulator's own agronomy (the
truth), not by its surrogate: regret = (true best margin - true margin of Cortex's
recipe) / true best margin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from scipy.optimize import differential_evolution, minimize

from vertiflow.data.features import crop_relative
from vertiflow.errors import VertiflowError
from vertiflow.farm import agronomy
from vertiflow.farm.energy import EnergyModel, Tariff, energy_cost_per_m2_day

# Decision variables, in this order everywhere, with the prepared column that measures each.
RECIPE = {
    "air_temp": "temp_mean",
    "humidity": "humidity_mean",
    "co2": "co2_mean",
    "ppfd": "ppfd_lit_mean",
    "photoperiod": "photoperiod_h",
    "ec": "ec_mean",
}
BOUND_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Economics:
    prices: dict[str, dict[str, float]]  # crop -> grade -> MAD/kg
    plants_per_m2: dict[str, float]
    tariff: Tariff = field(default_factory=Tariff)
    energy: EnergyModel = field(default_factory=EnergyModel)
    co2_price_per_kg: float = 2.5
    co2_kg_per_m2_day_per_100ppm: float = 0.01  # injection to hold 100 ppm over ambient
    nutrient_cost_per_m2_day_per_ec: float = 0.15

    @classmethod
    def from_params(cls, section: dict[str, Any]) -> Economics:
        e = section["energy"]
        return cls(
            prices=section["prices_mad_per_kg"],
            plants_per_m2=section["plants_per_m2"],
            tariff=Tariff(e["peak_price"], e["offpeak_price"], e["peak_start"], e["peak_end"]),
            energy=EnergyModel(
                e["led_efficacy_umol_per_j"],
                e["hvac_cop"],
                e["envelope_w_per_m2_k"],
                e["ambient_temp_c"],
            ),
            co2_price_per_kg=section["co2_price_mad_per_kg"],
            co2_kg_per_m2_day_per_100ppm=section["co2_kg_per_m2_day_per_100ppm"],
            nutrient_cost_per_m2_day_per_ec=section["nutrient_cost_mad_per_m2_day_per_ec"],
        )


def breakdown(
    crop: str, recipe: np.ndarray, yield_g: np.ndarray, grade_proba: np.ndarray, econ: Economics
) -> dict[str, np.ndarray]:
    """Per m2 per cycle day (MAD), for recipes as columns of `recipe` (6 x n)."""
    temp, _, co2, ppfd, photoperiod, ec = recipe
    days = agronomy.crop(crop).cycle_days
    price = grade_proba @ np.array([econ.prices[crop][g] for g in agronomy.GRADES])
    kg_per_m2 = yield_g / 1000.0 * econ.plants_per_m2[crop]
    revenue = kg_per_m2 * price / days
    energy = energy_cost_per_m2_day(econ.energy, econ.tariff, ppfd, photoperiod, temp)
    co2_cost = np.maximum(co2 - 400.0, 0.0) / 100.0 * econ.co2_kg_per_m2_day_per_100ppm
    co2_cost = co2_cost * econ.co2_price_per_kg
    nutrients = ec * econ.nutrient_cost_per_m2_day_per_ec
    return {
        "revenue": revenue,
        "energy": energy,
        "co2": co2_cost,
        "nutrients": nutrients,
        "margin": revenue - energy - co2_cost - nutrients,
        "kg_per_m2_cycle": kg_per_m2,
    }


def prepared_columns(crop: str, recipe: np.ndarray, typical: dict[str, float]) -> pd.DataFrame:
    """The prepared-table columns a recipe implies, for the models to score.

    Columns a recipe does not set (variability, say) take the crop's training median.
    """
    c = agronomy.crop(crop)
    temp, humidity, co2, ppfd, photoperiod, ec = recipe
    n = recipe.shape[1]
    columns = {name: np.full(n, value) for name, value in typical.items()}
    columns.update(
        crop=np.full(n, crop),
        cycle_days=np.full(n, float(c.cycle_days)),
        temp_mean=temp,
        humidity_mean=humidity,
        co2_mean=co2,
        ppfd_lit_mean=ppfd,
        photoperiod_h=photoperiod,
        dli_mean=agronomy.dli(ppfd, photoperiod),
        ec_mean=ec,
        ph_mean=np.full(n, c.ph_opt),  # pH is held at the crop's optimum: cheap to control
        vpd_mean=agronomy.vpd_kpa(temp, humidity),
    )
    # The *_dev inputs come from prepare's own definition, so the models see what they saw.
    return crop_relative(pl.DataFrame(columns)).to_pandas()


def surrogate(crop: str, oracle, classifier, typical: dict[str, float], econ: Economics):
    """Margin per m2 per day as the trained models predict it (vectorised over recipes)."""
    from vertiflow.tabular.evaluation import proba_in_grade_order

    def margin(recipe: np.ndarray) -> dict[str, np.ndarray]:
        frame = prepared_columns(crop, recipe, typical)
        yield_g = oracle.predict(frame[list(oracle.feature_names_in_)])
        proba = proba_in_grade_order(classifier, frame[list(classifier.feature_names_in_)])
        return breakdown(crop, recipe, yield_g, proba, econ)

    return margin


def truth(crop: str, econ: Economics):
    """Margin per m2 per day as the simulator's agronomy says (the climate = the setpoints)."""
    c = agronomy.crop(crop)

    def margin(recipe: np.ndarray) -> dict[str, np.ndarray]:
        temp, humidity, co2, ppfd, photoperiod, ec = recipe
        light = agronomy.dli(ppfd, photoperiod)
        ph = np.full_like(temp, c.ph_opt)
        yield_g = agronomy.expected_yield_g(c, temp, humidity, co2, light, ec, ph, c.cycle_days)
        quality = agronomy.quality_score_mean(c, temp, humidity, light, ec, ph)
        return breakdown(crop, recipe, yield_g, agronomy.grade_probabilities(quality), econ)

    return margin


def search_bounds(
    crop: str, bounds: dict[str, list[float]], train: pl.DataFrame, quantiles: tuple[float, float]
) -> list[tuple[float, float]]:
    """Params bounds narrowed to the crop's training range; refuses an empty box."""
    rows = train.filter(pl.col("crop") == crop)
    if rows.height == 0:
        raise VertiflowError(f"optimise_cortex: no training batches of crop '{crop}'.")
    box = []
    for name, column in RECIPE.items():
        if name not in bounds or len(bounds[name]) != 2:
            raise VertiflowError(f"params.yaml: optimise_cortex.bounds.{name} must be [low, high].")
        lo, hi = (float(b) for b in bounds[name])
        seen_lo, seen_hi = (float(rows[column].quantile(q)) for q in quantiles)
        low, high = max(lo, seen_lo), min(hi, seen_hi)
        if not low < high:
            raise VertiflowError(
                f"optimise_cortex: no feasible {name} for {crop}: params allow [{lo}, {hi}] but "
                f"the Oracle saw {column} only in [{seen_lo:.3g}, {seen_hi:.3g}] "
                "(params: optimise_cortex.bounds)."
            )
        box.append((low, high))
    return box


@dataclass
class Optimum:
    recipe: np.ndarray  # in RECIPE order
    margin: float
    iterations: int
    evaluations: int
    trace: list[float]  # best margin after each generation
    on_bound: list[str]
    success: bool = False  # scipy's OptimizeResult: converged (tol met) before maxiter
    message: str = ""


def _dli_penalty(recipe: np.ndarray, dli_bounds: tuple[float, float]) -> np.ndarray:
    light = agronomy.dli(recipe[3], recipe[4])
    return np.maximum(dli_bounds[0] - light, 0.0) + np.maximum(light - dli_bounds[1], 0.0)


def on_bounds(recipe: np.ndarray, box: list[tuple[float, float]]) -> list[str]:
    """Variables whose optimum sits at an edge of the search box (1 % of its width)."""
    names = []
    for name, value, (lo, hi) in zip(RECIPE, recipe, box, strict=True):
        if min(value - lo, hi - value) <= 0.01 * (hi - lo):
            names.append(name)
    return names


def optimise(
    margin: Callable[[np.ndarray], dict[str, np.ndarray]],
    box: list[tuple[float, float]],
    dli_bounds: tuple[float, float],
    seed: int,
    maxiter: int,
    popsize: int,
    tol: float,
    smoothing_samples: int = 0,
    smoothing_scale: float = 0.05,
) -> Optimum:
    """Differential evolution on the margin, smoothed; DLI limits as a penalty.

    A tree surrogate is piecewise constant with spurious bumps, and an optimiser pushed
    hard finds them (the optimiser's curse: its predicted margin rises while the true one
    falls). Each candidate is therefore scored by the mean margin over itself and
    `smoothing_samples` fixed neighbours (Gaussian, `smoothing_scale` of each variable's
    range), all predicted in one vectorised call.
    """
    lows, highs = (np.array([b[i] for b in box])[:, None] for i in (0, 1))
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0.0, smoothing_scale, (smoothing_samples, len(box))) * (highs - lows).T
    offsets = np.vstack([np.zeros(len(box)), offsets]).T  # (variables, 1 + samples)
    evaluations = 0

    def loss(recipes: np.ndarray) -> np.ndarray:
        nonlocal evaluations
        recipes = np.atleast_2d(recipes.T).T
        n = recipes.shape[1]
        cloud = np.clip(
            (recipes[:, None, :] + offsets[:, :, None]).reshape(len(box), -1), lows, highs
        )
        evaluations += cloud.shape[1]
        smoothed = margin(cloud)["margin"].reshape(offsets.shape[1], n).mean(axis=0)
        return -smoothed + 100.0 * _dli_penalty(recipes, dli_bounds)

    trace: list[float] = []

    def record(intermediate_result) -> None:
        trace.append(float(-intermediate_result.fun))

    result = differential_evolution(
        loss,
        box,
        seed=seed,
        maxiter=maxiter,
        popsize=popsize,
        tol=tol,
        polish=False,  # the surrogate is piecewise constant: gradients say nothing
        vectorized=True,
        updating="deferred",
        callback=record,
    )
    recipe = np.clip(result.x, [b[0] for b in box], [b[1] for b in box])
    return Optimum(
        recipe=recipe,
        margin=float(-result.fun),
        iterations=int(result.nit),
        evaluations=evaluations,
        trace=trace,
        on_bound=on_bounds(recipe, box),
        success=bool(result.success),
        message=str(result.message),
    )


def true_optimum(
    margin: Callable[[np.ndarray], dict[str, np.ndarray]],
    box: list[tuple[float, float]],
    dli_bounds: tuple[float, float],
    points_per_axis: int = 9,
) -> tuple[np.ndarray, float]:
    """Dense grid over the box, then a local polish of the best point (smooth truth)."""
    axes = [np.linspace(lo, hi, points_per_axis) for lo, hi in box]
    grid = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")])
    score = margin(grid)["margin"] - 100.0 * _dli_penalty(grid, dli_bounds)
    start = grid[:, int(np.argmax(score))]

    def loss(x: np.ndarray) -> float:
        r = x.reshape(-1, 1)
        return float(-margin(r)["margin"][0] + 100.0 * _dli_penalty(r, dli_bounds)[0])

    polished = minimize(loss, start, method="L-BFGS-B", bounds=box)
    best = polished.x if polished.fun <= loss(start) else start
    return best, -loss(best)


def regret(true_best: float, achieved: float) -> float:
    """Share of the best achievable margin that a recipe leaves on the table."""
    if true_best <= 0:
        raise VertiflowError(f"the true best margin is {true_best:.3g} MAD: regret is undefined.")
    return (true_best - achieved) / true_best


def typical_conditions(train: pl.DataFrame, crop: str) -> dict[str, float]:
    rows = train.filter(pl.col("crop") == crop)
    numeric = [c for c, t in rows.schema.items() if t.is_numeric()]
    return {c: float(rows[c].median()) for c in numeric}


def _summary(crop: str, recipe: np.ndarray, parts: dict[str, np.ndarray]) -> dict[str, float]:
    row = {k: float(v[0]) for k, v in parts.items()}
    days = agronomy.crop(crop).cycle_days
    cost = row["energy"] + row["co2"] + row["nutrients"]
    return {
        "margin_per_m2_day": round(row["margin"], 4),
        "revenue_per_m2_day": round(row["revenue"], 4),
        "energy_cost_per_m2_day": round(row["energy"], 4),
        "co2_cost_per_m2_day": round(row["co2"], 4),
        "nutrient_cost_per_m2_day": round(row["nutrients"], 4),
        "kg_per_m2_cycle": round(row["kg_per_m2_cycle"], 4),
        "cost_per_kg": round(cost * days / max(row["kg_per_m2_cycle"], 1e-9), 4),
    }


def recommend(
    crop: str, section: dict[str, Any], train: pl.DataFrame, oracle, classifier, econ: Economics
) -> tuple[dict[str, Any], Optimum, list[tuple[float, float]]]:
    """Cortex's recipe for one crop: the recipe, its predicted economics, the optimiser run."""
    box = search_bounds(crop, section["bounds"], train, tuple(section["training_quantiles"]))
    dli_bounds = tuple(section["dli_bounds"])
    model = surrogate(crop, oracle, classifier, typical_conditions(train, crop), econ)
    opt = optimise(model, box, dli_bounds, section["seed"], **section["optimiser"])
    recipe = {name: round(float(v), 3) for name, v in zip(RECIPE, opt.recipe, strict=True)}
    recipe["ph"] = agronomy.crop(crop).ph_opt
    recipe["dli"] = round(float(agronomy.dli(opt.recipe[3], opt.recipe[4])), 3)
    recipe["on_bound"] = opt.on_bound
    recipe["search_box"] = {
        n: [round(lo, 3), round(hi, 3)] for n, (lo, hi) in zip(RECIPE, box, strict=True)
    }
    recipe["predicted"] = _summary(crop, opt.recipe, model(opt.recipe.reshape(-1, 1)))
    return recipe, opt, box


def recommend_all(
    section: dict[str, Any], train: pl.DataFrame, oracle, classifier, with_truth: bool
) -> dict[str, Any]:
    """Every crop's recipe; with the simulator's truth, also the regret of each."""
    econ = Economics.from_params(section)
    recipes, metrics, traces, convergence = {}, {}, {}, {}
    for crop in section["crops"]:
        recipe, opt, box = recommend(crop, section, train, oracle, classifier, econ)
        recipes[crop], traces[crop] = recipe, opt.trace
        m = {
            "predicted_margin_per_m2_day": recipe["predicted"]["margin_per_m2_day"],
            "cost_per_kg": recipe["predicted"]["cost_per_kg"],
            "iterations": opt.iterations,
            "evaluations": opt.evaluations,
            "variables_on_bound": len(opt.on_bound),
            "converged": int(opt.success),
        }
        convergence[crop] = {"success": opt.success, "message": opt.message}
        if with_truth:
            true_margin = truth(crop, econ)
            best_recipe, best = true_optimum(
                true_margin, box, tuple(section["dli_bounds"]), section["truth_grid_points"]
            )
            achieved = float(true_margin(opt.recipe.reshape(-1, 1))["margin"][0])
            m.update(
                true_margin_per_m2_day=round(achieved, 4),
                true_best_margin_per_m2_day=round(best, 4),
                regret=round(regret(best, achieved), 5),
            )
            recipe["true_best"] = {
                name: round(float(v), 3) for name, v in zip(RECIPE, best_recipe, strict=True)
            }
        metrics[crop] = m
    if with_truth:
        metrics["max_regret"] = max(metrics[c]["regret"] for c in section["crops"])
    return {"recipes": recipes, "metrics": metrics, "traces": traces, "convergence": convergence}
