"""Cortex (A11): the growing recipe that earns the most, per crop.

Objective: margin per m2 per *cycle day*. A module's time is what the farm sells, and
crops occupy it for different lengths; margin per cycle would favour long cycles for their
own sake. Each crop's cycle length is the median of its training batches (the farm's own),
and the crops optimised are those in the data (`crops: all`) unless params list some.

margin = yield (Oracle) x expected price over grades (Classifier probabilities)
         - electricity (LEDs and the HVAC that removes their heat, at peak/off-peak tariffs)
         - CO2 enrichment - nutrients

The search space is each recipe variable's bounds from params, narrowed to what the
Oracle saw in training for that crop: tree models extrapolate flat, so an optimum outside
the data would be an artefact. Cortex is judged by the truth of the world that made the
data (the built-in agronomy or the second world, `farm.worlds`), not by its surrogate:
regret = (true best margin - true margin of Cortex's recipe) / true best margin.

Knowing what it does not know: the surrogate is an ensemble (the trained models plus
bootstrap refits of them with their hyperparameters frozen), and Cortex maximises a lower
confidence bound, mean - kappa x std of the members' margins, inside a trust region: no
farther from a recipe the farm has grown (in units of each variable's search range) than
most grown recipes are from their nearest neighbour. The recipe's predicted margin comes
with the ensemble's interval and its distance to the nearest grown recipe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from scipy import stats
from scipy.optimize import differential_evolution, minimize
from scipy.spatial import KDTree

from vertiflow.data.dataset import crop_table
from vertiflow.data.features import CropOptimum, builtin_optima, derived
from vertiflow.errors import VertiflowError
from vertiflow.farm import agronomy, worlds
from vertiflow.farm.energy import EnergyModel, Tariff, energy_cost_per_m2_day
from vertiflow.params import by_crop, key_part

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
DEFAULT = "default"  # prices and plant density for crops params do not list


@dataclass(frozen=True)
class Economics:
    prices: dict[str, dict[str, float]]  # crop -> grade -> MAD/kg
    plants_per_m2: dict[str, float]
    tariff: Tariff = field(default_factory=Tariff)
    energy: EnergyModel = field(default_factory=EnergyModel)
    co2_price_per_kg: float = 2.5
    co2_kg_per_m2_day_per_100ppm: float = 0.01  # injection to hold 100 ppm over ambient
    nutrient_cost_per_m2_day_per_ec: float = 0.15

    def grade_prices(self, crop: str) -> np.ndarray:
        prices = by_crop(self.prices, crop, self.prices.get(DEFAULT))
        if prices is None:
            raise VertiflowError(
                f"params.yaml: optimise_cortex.prices_mad_per_kg has no entry for crop '{crop}' "
                f"and no '{DEFAULT}' entry; add one of them."
            )
        return np.array([prices[g] for g in agronomy.GRADES], dtype=float)

    def plants(self, crop: str) -> float:
        plants = by_crop(self.plants_per_m2, crop, self.plants_per_m2.get(DEFAULT))
        if plants is None:
            raise VertiflowError(
                f"params.yaml: optimise_cortex.plants_per_m2 has no entry for crop '{crop}' "
                f"and no '{DEFAULT}' entry; add one of them."
            )
        return float(plants)

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
    crop: str,
    recipe: np.ndarray,
    yield_g: np.ndarray,
    grade_proba: np.ndarray,
    econ: Economics,
    days: float | None = None,
) -> dict[str, np.ndarray]:
    """Per m2 per cycle day (MAD), for recipes as columns of `recipe` (6 x n).

    `days`: the crop's cycle length (the farm's own; the built-in crop's when not given)."""
    temp, _, co2, ppfd, photoperiod, ec = recipe
    days = agronomy.crop(crop).cycle_days if days is None else days
    price = grade_proba @ econ.grade_prices(crop)
    kg_per_m2 = yield_g / 1000.0 * econ.plants(crop)
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
        "fresh_weight_g": np.asarray(yield_g, float),
    }


@dataclass(frozen=True)
class CropContext:
    """What Cortex knows of a crop from the prepared data (data/prepared/crops.json)."""

    name: str
    cycle_days: float
    optimum: CropOptimum | None  # None: the *_dev features hold absolute values
    ph: float  # pH is held here: the optimum, else the farm's typical pH

    @classmethod
    def from_table(cls, name: str, entry: dict[str, Any], train: pl.DataFrame) -> CropContext:
        optimum = entry.get("optimum")
        opt = None if optimum is None else CropOptimum(**optimum)
        rows = train.filter(pl.col("crop") == name)
        ph = (
            opt.ph if opt else float(rows["ph_mean"].median()) if "ph_mean" in rows.columns else 6.0
        )
        return cls(name, float(entry["cycle_days"]), opt, ph)


def crop_contexts(
    train: pl.DataFrame, crops: dict[str, Any] | None = None
) -> dict[str, CropContext]:
    """Every crop's context; without prepare's crops.json, derived from the training table."""
    crops = crop_table(train, builtin_optima()) if crops is None else crops
    return {name: CropContext.from_table(name, entry, train) for name, entry in crops.items()}


def prepared_columns(ctx: CropContext, recipe: np.ndarray, others) -> pd.DataFrame:
    """The prepared-table columns a recipe implies, for the models to score.

    Columns a recipe does not set come from `others` (`Companions`: what the farm's data
    says goes with the recipe; or a dict of fixed values).
    """
    temp, humidity, co2, ppfd, photoperiod, ec = recipe
    n = recipe.shape[1]
    if callable(others):
        columns = dict(others(recipe))
    else:
        columns = {name: np.full(n, value) for name, value in others.items()}
    columns.update(
        crop=np.full(n, ctx.name),
        cycle_days=np.full(n, ctx.cycle_days),
        temp_mean=temp,
        humidity_mean=humidity,
        co2_mean=co2,
        ppfd_lit_mean=ppfd,
        photoperiod_h=photoperiod,
        dli_mean=agronomy.dli(ppfd, photoperiod),
        ec_mean=ec,
        ph_mean=np.full(n, ctx.ph),  # pH is held at the crop's optimum: cheap to control
        vpd_mean=agronomy.vpd_kpa(temp, humidity),
    )
    # The derived inputs (*_dev, cycle totals) come from prepare's own definition, so the
    # models see what they saw.
    optima = {ctx.name: ctx.optimum} if ctx.optimum else {}
    return derived(pl.DataFrame(columns), optima).to_pandas()


def member_breakdown(
    ctx: CropContext, oracle, classifier, frame: pd.DataFrame, recipe: np.ndarray, econ: Economics
) -> dict[str, np.ndarray]:
    """One ensemble member's margin parts for the rows of `frame` (recipe columns set).

    A classifier that takes the predicted yield (`tabular.stacking`) takes its member's:
    the grade then moves with that member's yield, and no Oracle predicts twice."""
    from vertiflow.tabular.evaluation import proba_in_grade_order
    from vertiflow.tabular.stacking import OracleInput

    yield_g = oracle.predict(frame[list(oracle.feature_names_in_)])
    own = {"yield_g": yield_g} if isinstance(classifier, OracleInput) else {}
    proba = proba_in_grade_order(classifier, frame[list(classifier.feature_names_in_)], **own)
    return breakdown(ctx.name, recipe, yield_g, proba, econ, ctx.cycle_days)


def surrogate(ctx: CropContext, members: list[tuple[Any, Any]], others, econ: Economics):
    """Margin per m2 per day as each ensemble member predicts it: (members, n) arrays."""

    def margins(recipe: np.ndarray) -> dict[str, np.ndarray]:
        frame = prepared_columns(ctx, recipe, others)
        parts = [member_breakdown(ctx, *m, frame, recipe, econ) for m in members]
        return {k: np.stack([p[k] for p in parts]) for k in parts[0]}

    return margins


def margin_interval(members: np.ndarray, level: float) -> tuple[float, float]:
    """Where the true margin lies with probability `level`, if it is one more draw like
    the members' margins: Student's t prediction interval, t(n-1) x s x sqrt(1 + 1/n).
    With three members a normal z x s covered a new draw 3 times in 4, not 9 in 10. It
    measures the models' disagreement, not an error they share."""
    n = len(members)
    if n < 2:
        return float(members[0]), float(members[0])
    centre, spread = float(np.mean(members)), float(np.std(members, ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * spread * np.sqrt(1 + 1 / n))
    return centre - half, centre + half


def lower_bound(margins, kappa: float):
    """The members' mean margin less kappa standard deviations (one row per recipe)."""

    def margin(recipe: np.ndarray) -> dict[str, np.ndarray]:
        m = margins(recipe)["margin"]
        spread = m.std(axis=0, ddof=1) if len(m) > 1 else np.zeros(m.shape[1])
        return {"margin": m.mean(axis=0) - kappa * spread}

    return margin


def truth(crop: str, econ: Economics, world: str = "agronomy", ctx: CropContext | None = None):
    """Margin per m2 per day as the data's own world says (the climate = the setpoints)."""
    days = ctx.cycle_days if ctx else agronomy.crop(crop).cycle_days
    ph = ctx.ph if ctx else agronomy.crop(crop).ph_opt

    def margin(recipe: np.ndarray) -> dict[str, np.ndarray]:
        ph_row = np.full(recipe.shape[1], ph)
        yield_g, proba = worlds.expected_outcome(world, crop, recipe, ph_row, days)
        return breakdown(crop, recipe, yield_g, proba, econ, days)

    return margin


class TrustRegion:
    """Distance to the nearest grown recipe, in units of each variable's search range.

    The radius is the `quantile` of grown recipes' distances to their own nearest
    neighbour: as far from the data as the data's own gaps, and no farther.
    """

    def __init__(self, grown: np.ndarray, box: list[tuple[float, float]], quantile: float):
        lows = np.array([b[0] for b in box])
        self.scale = np.array([b[1] - b[0] for b in box])
        self.lows = lows
        self.points = (grown - lows) / self.scale  # (n, variables)
        # A k-d tree: the optimiser asks for the distances of ~1,500 recipes per generation
        # (brute force over every grown recipe was a third of the stage's time).
        self.tree = KDTree(self.points)
        # The nearest neighbour other than itself (a repeated recipe's is at distance 0).
        own = self.tree.query(self.points, k=2)[0][:, 1] if len(self.points) > 1 else []
        self.radius = float(np.quantile(own, quantile)) if len(own) else np.inf

    def distance(self, recipe: np.ndarray) -> np.ndarray:
        """Distance of recipes (variables x n) to the nearest grown recipe."""
        return self.tree.query((recipe.T - self.lows) / self.scale)[0]

    def constrain(self, margin, weight: float):
        """`margin` less a penalty growing with the distance beyond the radius."""

        def penalised(recipe: np.ndarray) -> dict[str, np.ndarray]:
            excess = np.maximum(self.distance(recipe) - self.radius, 0.0)
            return {"margin": margin(recipe)["margin"] - weight * excess}

        return penalised


def grown_recipes(train: pl.DataFrame, crop: str) -> np.ndarray:
    rows = train.filter(pl.col("crop") == crop)
    return rows.select(list(RECIPE.values())).to_numpy()


def grown_range(
    crop: str, train: pl.DataFrame, quantiles: tuple[float, float]
) -> dict[str, tuple[float, float]]:
    """What the farm grew of each recipe variable (and DLI): the training quantiles."""
    rows = train.filter(pl.col("crop") == crop)
    if rows.height == 0:
        raise VertiflowError(f"optimise_cortex: no training batches of crop '{crop}'.")
    values = {name: rows[column] for name, column in RECIPE.items()}
    # the DLI a recipe implies, as Cortex computes it for its own recipes
    values["dli"] = pl.Series(
        agronomy.dli(values["ppfd"].to_numpy(), values["photoperiod"].to_numpy())
    )
    return {name: tuple(float(v.quantile(q)) for q in quantiles) for name, v in values.items()}


def search_bounds(
    crop: str, bounds: dict[str, list[float]], train: pl.DataFrame, quantiles: tuple[float, float]
) -> list[tuple[float, float]]:
    """Params bounds narrowed to the crop's training range; refuses an empty box."""
    grown = grown_range(crop, train, quantiles)
    box = []
    for name, column in RECIPE.items():
        if name not in bounds or len(bounds[name]) != 2:
            raise VertiflowError(f"params.yaml: optimise_cortex.bounds.{name} must be [low, high].")
        lo, hi = (float(b) for b in bounds[name])
        seen_lo, seen_hi = grown[name]
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


def _check_dli_reachable(
    crop: str, box: list[tuple[float, float]], dli_bounds: tuple[float, float]
) -> None:
    """DLI limits are a penalty, so limits the box cannot reach would pass unnoticed."""
    (ppfd_lo, ppfd_hi), (hours_lo, hours_hi) = box[3], box[4]
    lowest, highest = agronomy.dli(ppfd_lo, hours_lo), agronomy.dli(ppfd_hi, hours_hi)
    if highest < dli_bounds[0] or lowest > dli_bounds[1]:
        raise VertiflowError(
            f"params.yaml: optimise_cortex.dli_bounds {list(dli_bounds)} cannot be met for "
            f"{crop}: its search box (PPFD {ppfd_lo:.0f}-{ppfd_hi:.0f}, photoperiod "
            f"{hours_lo:.1f}-{hours_hi:.1f} h, narrowed to what the farm grew) gives a DLI of "
            f"{lowest:.1f}-{highest:.1f} mol/m2/d."
        )


def on_bounds(
    recipe: np.ndarray,
    box: list[tuple[float, float]],
    dli_bounds: tuple[float, float] | None = None,
) -> list[str]:
    """Variables whose optimum sits at an edge of the search box (1 % of its width), and
    `dli` when the recipe's DLI sits at a limit of `dli_bounds`."""
    names = []
    for name, value, (lo, hi) in zip(RECIPE, recipe, box, strict=True):
        if min(value - lo, hi - value) <= 0.01 * (hi - lo):
            names.append(name)
    if dli_bounds is not None:
        light, (lo, hi) = float(agronomy.dli(recipe[3], recipe[4])), dli_bounds
        if min(abs(light - lo), abs(hi - light)) <= 0.01 * (hi - lo):
            names.append("dli")
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
        on_bound=on_bounds(recipe, box, dli_bounds),
        success=bool(result.success),
        message=str(result.message),
    )


def true_optimum(
    margin: Callable[[np.ndarray], dict[str, np.ndarray]],
    box: list[tuple[float, float]],
    dli_bounds: tuple[float, float],
    popsize: int = 30,
    maxiter: int = 300,
    seed: int = 0,
    starts: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, float]:
    """The world's own best recipe in the box: differential evolution on the true margin
    (vectorised, so thousands of recipes per generation are cheap), then a local polish
    from its result and from any given `starts` (Cortex's own recipe), so the true best is
    never below a recipe judged. A true optimum sits on the kinks of the crop's responses
    (a saturating CO2 or EC response, the DLI bound), where a grid and a gradient polish
    stop short of it."""

    def losses(x: np.ndarray) -> np.ndarray:
        return -margin(x)["margin"] + 100.0 * _dli_penalty(x, dli_bounds)

    def loss(x: np.ndarray) -> float:
        return float(losses(np.asarray(x, float).reshape(-1, 1))[0])

    found = differential_evolution(
        losses,
        box,
        popsize=popsize,
        maxiter=maxiter,
        tol=1e-10,
        seed=seed,
        polish=False,
        vectorized=True,
        updating="deferred",
    )
    best, best_loss = None, np.inf
    for start in [found.x, *(starts or [])]:
        polished = minimize(loss, start, method="L-BFGS-B", bounds=box)
        for x in (polished.x, start):
            if loss(x) < best_loss:
                best, best_loss = np.asarray(x, float), loss(x)
    return best, -best_loss


def regret(true_best: float, achieved: float) -> float:
    """Share of the best achievable margin that a recipe leaves on the table."""
    if true_best <= 0:
        raise VertiflowError(f"the true best margin is {true_best:.3g} MAD: regret is undefined.")
    return (true_best - achieved) / true_best


class Companions:
    """Inputs a recipe does not set (variability, water temperature, out-of-band shares,
    ...), as the farm's own data says they go with a recipe: per crop, a quadratic ridge
    fit of each such column on the recipe, clipped to the column's observed range.

    Holding them at a median while the recipe moves would show the models combinations the
    farm never produced (28 C with the out-of-band share of 24 C), and an optimiser finds
    exactly such artefacts."""

    def __init__(self, train: pl.DataFrame, crop: str):
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import PolynomialFeatures, StandardScaler

        rows = train.filter(pl.col("crop") == crop)
        inputs = list(RECIPE.values())
        numeric = [c for c, t in rows.schema.items() if t.is_numeric() and c not in inputs]
        self.constant: dict[str, float] = {}
        fitted = []
        for c in numeric:
            column = rows[c]
            if column.null_count() or column.n_unique() < 2:
                median = column.median()
                self.constant[c] = float("nan") if median is None else float(median)
            else:
                fitted.append(c)
        self.columns = fitted
        self.ranges = {c: (float(rows[c].min()), float(rows[c].max())) for c in fitted}
        self.model = None
        if fitted:
            self.model = make_pipeline(
                StandardScaler(), PolynomialFeatures(2), Ridge(alpha=1.0)
            ).fit(rows.select(inputs).to_numpy(), rows.select(fitted).to_numpy())

    def __call__(self, recipe: np.ndarray) -> dict[str, np.ndarray]:
        n = recipe.shape[1]
        out = {c: np.full(n, v) for c, v in self.constant.items()}
        if self.model is not None:
            predicted = self.model.predict(recipe.T)
            for i, c in enumerate(self.columns):
                out[c] = np.clip(predicted[:, i], *self.ranges[c])
        return out


def _summary(days: float, parts: dict[str, np.ndarray]) -> dict[str, float]:
    row = {k: float(v[0]) for k, v in parts.items()}
    cost = row["energy"] + row["co2"] + row["nutrients"]
    return {
        "margin_per_m2_day": round(row["margin"], 4),
        "revenue_per_m2_day": round(row["revenue"], 4),
        "energy_cost_per_m2_day": round(row["energy"], 4),
        "co2_cost_per_m2_day": round(row["co2"], 4),
        "nutrient_cost_per_m2_day": round(row["nutrients"], 4),
        "kg_per_m2_cycle": round(row["kg_per_m2_cycle"], 4),
        "fresh_weight_g": round(row["fresh_weight_g"], 3),
        "cost_per_kg": round(cost * days / max(row["kg_per_m2_cycle"], 1e-9), 4),
    }


def ensemble(
    oracle, classifier, train: pl.DataFrame, members: int, seed: int
) -> list[tuple[Any, Any]]:
    """The trained models and `members - 1` bootstrap refits of each (same hyperparameters)."""
    from vertiflow.tabular.modeling import bootstrap_refits

    oracles = bootstrap_refits(oracle, train, "fresh_weight_g", members - 1, seed)
    classifiers = bootstrap_refits(classifier, train, "quality_grade", members - 1, seed + 1)
    return list(zip([oracle, *oracles], [classifier, *classifiers], strict=True))


def recommend(
    crop: str,
    section: dict[str, Any],
    train: pl.DataFrame,
    oracle,
    classifier,
    econ: Economics,
    ctx: CropContext | None = None,
    members: list[tuple[Any, Any]] | None = None,
) -> tuple[dict[str, Any], Optimum, list[tuple[float, float]]]:
    """Cortex's recipe for one crop: the recipe, its predicted economics, the optimiser run."""
    trust = section["trust"]
    ctx = ctx or crop_contexts(train)[crop]
    if members is None:
        members = ensemble(oracle, classifier, train, trust["ensemble"], section["seed"])
    box = search_bounds(crop, section["bounds"], train, tuple(section["training_quantiles"]))
    dli_bounds = tuple(section["dli_bounds"])
    _check_dli_reachable(crop, box, dli_bounds)
    model = surrogate(ctx, members, Companions(train, crop), econ)
    region = TrustRegion(grown_recipes(train, crop), box, trust["radius_quantile"])
    objective = region.constrain(lower_bound(model, trust["kappa"]), trust["penalty"])
    opt = optimise(objective, box, dli_bounds, section["seed"], **section["optimiser"])
    recipe = {name: round(float(v), 3) for name, v in zip(RECIPE, opt.recipe, strict=True)}
    recipe["ph"] = round(ctx.ph, 3)
    recipe["dli"] = round(float(agronomy.dli(opt.recipe[3], opt.recipe[4])), 3)
    recipe["cycle_days"] = ctx.cycle_days
    recipe["on_bound"] = opt.on_bound
    recipe["search_box"] = {
        n: [round(lo, 3), round(hi, 3)] for n, (lo, hi) in zip(RECIPE, box, strict=True)
    }
    recipe["search_box"]["dli"] = [float(b) for b in dli_bounds]
    grown = grown_range(crop, train, tuple(section["training_quantiles"]))
    recipe["grown_range"] = {n: [round(lo, 3), round(hi, 3)] for n, (lo, hi) in grown.items()}
    parts = model(opt.recipe.reshape(-1, 1))
    mean_parts = {k: v.mean(axis=0) for k, v in parts.items()}
    recipe["predicted"] = _summary(ctx.cycle_days, mean_parts)
    spread = float(parts["margin"][:, 0].std(ddof=1)) if len(members) > 1 else 0.0
    centre = float(mean_parts["margin"][0])
    low, high = margin_interval(parts["margin"][:, 0], trust["interval"])
    recipe["predicted"]["margin_interval"] = [round(low, 4), round(high, 4)]
    recipe["predicted"]["margin_lower_bound"] = round(centre - trust["kappa"] * spread, 4)
    heaviest = train.filter(pl.col("crop") == crop)["fresh_weight_g"].max()
    recipe["heaviest_harvest_g"] = round(float(heaviest), 3)
    distance = float(region.distance(opt.recipe.reshape(-1, 1))[0])
    recipe["distance_to_grown"] = round(distance, 4)
    recipe["trust_radius"] = round(region.radius, 4)
    return recipe, opt, box


def trace_table(trace: list[float]) -> pd.DataFrame:
    """The search's best predicted margin per generation: the convergence plot's table."""
    return pd.DataFrame({"generation": range(1, len(trace) + 1), "best_margin": trace})


def notices(section: dict[str, Any], recipes: dict[str, dict]) -> list[str]:
    """What a farm should know about its recipes before trusting their margins: a crop
    priced by the `default` entries, a limit of params that binds, a predicted yield above
    any harvest, and a best recipe that still loses money (prices or costs not the farm's,
    or weights that are not grams per plant)."""
    said = []
    for crop, recipe in recipes.items():
        for key in ("prices_mad_per_kg", "plants_per_m2"):
            if by_crop(section[key], crop) is None:
                said.append(
                    f"crop '{crop}' has no entry in optimise_cortex.{key}: its '{DEFAULT}' "
                    "entry is used; add the crop's own figures for a margin you can use"
                )
        said += _binding_params_bounds(crop, recipe)
        grams, heaviest = (
            recipe["predicted"].get("fresh_weight_g"),
            recipe.get("heaviest_harvest_g"),
        )
        if grams is not None and heaviest is not None and grams > heaviest:
            said.append(
                f"crop '{crop}': its recipe's predicted yield, {grams:.4g} g per plant, is above "
                f"every harvest the farm recorded (heaviest {heaviest:.4g} g): the models "
                "extrapolate there, and the margin's interval (their disagreement) does not "
                "measure that; grow it on a few modules before the whole farm"
            )
        margin = recipe["predicted"]["margin_per_m2_day"]
        if margin < 0:
            said.append(
                f"crop '{crop}': the best recipe found loses money (predicted margin "
                f"{margin:.3g} per m2 per day): check optimise_cortex's prices and costs, and "
                "that harvests' fresh_weight_g is grams per plant"
            )
    return said


def attach_notices(section: dict[str, Any], recipes: dict[str, dict]) -> list[str]:
    """Each recipe's notices, kept in the recipe itself (an app reading recipes.json, or
    `vertiflow cortex --json`, gets the caveats with the numbers), and all of them."""
    said = []
    for crop, recipe in recipes.items():
        recipe["notices"] = notices(section, {crop: recipe})
        said += recipe["notices"]
    return said


def _binding_params_bounds(crop: str, recipe: dict[str, Any]) -> list[str]:
    """Edges of the search that params set inside what the farm grew and the recipe sits
    on: the params' limits (the brief's, for basil and lettuce), not the farm's evidence,
    chose that part of the recipe."""
    said = []
    for name in recipe.get("on_bound", []):
        (lo, hi), (grown_lo, grown_hi) = recipe["search_box"][name], recipe["grown_range"][name]
        value = recipe[name]
        edge = lo if abs(value - lo) <= abs(hi - value) else hi
        slack = 0.01 * (hi - lo)  # as `on_bounds`: a measured 11.99 h is the farm's 12 h
        if grown_lo < edge - slack and edge + slack < grown_hi:  # the farm grew past it
            key = "dli_bounds" if name == "dli" else f"bounds.{name}"
            said.append(
                f"crop '{crop}': its recipe sits on optimise_cortex.{key}'s limit {edge:g}, "
                f"inside what the farm grew ({grown_lo:.3g}-{grown_hi:.3g}): widen the limit "
                "if the farm may go past it"
            )
    return said


def recommend_all(
    section: dict[str, Any],
    train: pl.DataFrame,
    oracle,
    classifier,
    crops: dict[str, Any] | None = None,
    world: str | None = "agronomy",
) -> dict[str, Any]:
    """Every crop's recipe; with the data's truth, also the regret of each.

    `crops`: prepare's crops.json (per crop: cycle days, optimum); `world`: the world that
    made the data (world.json), whose truth judges the recipes; None for data with no truth
    (a farm's own export)."""
    with_truth = world is not None
    econ = Economics.from_params(section)
    contexts = crop_contexts(train, crops)
    names, skipped = crops_to_optimise(section, train, sorted(contexts))
    members = ensemble(oracle, classifier, train, section["trust"]["ensemble"], section["seed"])
    recipes, metrics, traces, convergence = {}, {}, {}, {}
    for crop in names:
        ctx = contexts[crop]
        recipe, opt, box = recommend(crop, section, train, oracle, classifier, econ, ctx, members)
        recipes[crop], traces[crop] = recipe, opt.trace
        predicted = recipe["predicted"]
        m = {
            "predicted_margin_per_m2_day": predicted["margin_per_m2_day"],
            "predicted_margin_low": predicted["margin_interval"][0],
            "predicted_margin_high": predicted["margin_interval"][1],
            "cost_per_kg": predicted["cost_per_kg"],
            "cycle_days": ctx.cycle_days,
            "distance_to_grown": recipe["distance_to_grown"],
            "trust_radius": recipe["trust_radius"],
            "iterations": opt.iterations,
            "evaluations": opt.evaluations,
            "variables_on_bound": len(opt.on_bound),
            "converged": int(opt.success),
        }
        convergence[crop] = {"success": opt.success, "message": opt.message}
        if with_truth:
            true_margin = truth(crop, econ, world, ctx)
            best_recipe, best = true_optimum(
                true_margin,
                box,
                tuple(section["dli_bounds"]),
                **section["truth_search"],
                seed=section["seed"],
                starts=[opt.recipe],
            )
            achieved = float(true_margin(opt.recipe.reshape(-1, 1))["margin"][0])
            grown = grown_recipes(train, crop).T  # judged like Cortex: inside its box
            inside = np.all(
                [(lo <= v) & (v <= hi) for v, (lo, hi) in zip(grown, box, strict=True)], axis=0
            )
            inside &= _dli_penalty(grown, tuple(section["dli_bounds"])) == 0
            grown_true = true_margin(grown[:, inside])["margin"] if inside.any() else [-np.inf]
            m.update(
                true_margin_per_m2_day=round(achieved, 4),
                true_best_margin_per_m2_day=round(best, 4),
                regret=round(regret(best, achieved), 5),
                best_grown_regret=round(regret(best, float(np.max(grown_true))), 5),
            )
            recipe["true_best"] = {
                name: round(float(v), 3) for name, v in zip(RECIPE, best_recipe, strict=True)
            }
        metrics[crop] = m
    if with_truth:
        metrics["max_regret"] = max(metrics[c]["regret"] for c in names)
    return {
        "recipes": recipes,
        "metrics": metrics,
        "traces": traces,
        "convergence": convergence,
        "skipped": skipped,
    }


def crops_to_optimise(
    section: dict[str, Any], train: pl.DataFrame, in_data: list[str]
) -> tuple[list[str], dict[str, str]]:
    """The crops to optimise, and why any in the data is left out.

    A crop grown a handful of times (a trial) gets no recipe with `crops: all`: the models
    would answer for it with what they learnt from the other crops. Named in a list, it
    is an error instead, which says how to optimise it anyway.
    """
    least = section["min_training_batches"]
    counts = dict(train.group_by("crop").len().iter_rows())
    if section["crops"] != "all":
        for crop in section["crops"]:
            if crop not in counts:
                raise VertiflowError(
                    f"optimise_cortex: no training batches of crop '{crop}' (params: "
                    f"optimise_cortex.crops; the data has {', '.join(in_data)}). Use "
                    "crops: all to optimise every crop in the data."
                )
            if counts[crop] < least:
                raise VertiflowError(
                    f"optimise_cortex: crop '{crop}' has {counts[crop]} training batches, fewer "
                    f"than optimise_cortex.min_training_batches ({least}): its recipe would be "
                    "the models' guess, not the farm's evidence. Lower the minimum to "
                    "optimise it anyway."
                )
        _check_key_names(list(section["crops"]))
        return list(section["crops"]), {}
    skipped = {
        crop: f"{counts[crop]} training batches (its test-split batches are not counted); "
        f"optimise_cortex.min_training_batches is {least}: lower it to optimise the crop anyway"
        for crop in in_data
        if counts[crop] < least
    }
    names = [c for c in in_data if c not in skipped]
    if not names:
        raise VertiflowError(
            f"optimise_cortex: no crop has optimise_cortex.min_training_batches ({least}) "
            f"training batches ({', '.join(f'{c}: {counts[c]}' for c in in_data)})."
        )
    _check_key_names(names)
    return names, skipped


def _check_key_names(crops: list[str]) -> None:
    """Two crop names that become one MLflow key and one trace file would overwrite each
    other's figures (`Roquette (E)` and `Roquette [E]`)."""
    by_key: dict[str, list[str]] = {}
    for crop in crops:
        by_key.setdefault(key_part(crop), []).append(crop)
    for key, same in by_key.items():
        if len(same) > 1:
            raise VertiflowError(
                f"optimise_cortex: crops {', '.join(repr(c) for c in same)} share the name "
                f"{key!r} in MLflow keys and file names (characters MLflow refuses become "
                "'_'); rename one of them in the data."
            )
