"""Where Cortex's regret on the second world comes from, and what did not remove it
(issue 13's regret target, 3 %; README "Status").

On one draw of each farm (`second_world.py`'s farms, seed 42), with the default params:

- `decomposition`: per crop, the regret left after setting one variable of Cortex's
  recipe to the true best's (the rest unchanged);
- `partial_dependence`: the Oracle's mean log yield over a crop's training batches with
  EC set to each value, against the world's own (a rounded knee shows as a rise where the
  truth is flat), and the in-sample residual per EC bin;
- `profiles`: along one variable through Cortex's recipe, the members' mean predicted
  margin, raw and as the search smooths it, and the true margin;
- `oracle_variants`: other Oracles in Cortex's place (R2 of Bayes on the farm's test, and
  the regret per crop): boosting settings, trees restricted to pairwise or no
  interactions between inputs (each may interact with the crop), one Oracle per crop;
- `broken_stick`: each costly input (CO2, EC) cut back to the knee of a broken-stick fit
  to the members' predicted revenue along it.

Writes benchmarks/results/regret_anatomy.json. Usage: python benchmarks/regret_anatomy.py
"""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import polars as pl
from second_world import FARMS

from common import REPO, WORK, write
from vertiflow import cortex, params
from vertiflow.data import dataset, features, rawdata
from vertiflow.farm import simple_model, worlds
from vertiflow.farm.simulator import SimConfig, write_farm
from vertiflow.tabular import evaluation, modeling

SEED = 42
EC_GRID = [1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.8, 2.0]
BOOSTING = {  # other settings of the Oracle's boosted trees (the default first)
    "default": {"max_iter": 500, "learning_rate": 0.2, "max_depth": 3, "min_samples_leaf": 10},
    "slower": {"max_iter": 1500, "learning_rate": 0.05, "max_depth": 3, "min_samples_leaf": 10},
    "deeper": {"max_iter": 1000, "learning_rate": 0.1, "max_depth": 4, "min_samples_leaf": 20},
    "shallower": {"max_iter": 2000, "learning_rate": 0.05, "max_depth": 2, "min_samples_leaf": 10},
    "l2": {
        "max_iter": 500,
        "learning_rate": 0.2,
        "max_depth": 3,
        "min_samples_leaf": 10,
        "l2_regularization": 5.0,
    },
    "slowest": {"max_iter": 3000, "learning_rate": 0.03, "max_depth": 3, "min_samples_leaf": 30},
}


class Farm:
    """One prepared draw of a second-world farm, with the default models trained on it."""

    def __init__(self, name: str, p: dict):
        sim = {**p["simulate"], "crops": simple_model.DEFAULT_CROPS, "seed": SEED}
        sim |= {"yield_noise": simple_model.YIELD_NOISE, **FARMS[name]}
        raw = WORK / "regret_anatomy" / name
        shutil.rmtree(raw, ignore_errors=True)
        write_farm(raw, SimConfig(**sim, world=simple_model.NAME))
        optima = features.optima_from_params(p["prepare"]["crop_optima"])
        data = rawdata.load(raw)
        prepared = dataset.build(data, p["prepare"]["test_fraction"], optima)
        self.p, self.world, self.crops = p, data.world, prepared.crops
        self.train, self.test, self.truth = prepared.train, prepared.test, prepared.truth
        self.section = p["optimise_cortex"]
        self.econ = cortex.Economics.from_params(self.section)
        self.oracle = self.fit_oracle(self.train, p["train_oracle"])
        self.stacked = self.classifier(self.train, self.oracle)  # the default classifier

    def fit_oracle(self, train: pl.DataFrame, section: dict):
        return modeling.select("regression", train, "fresh_weight_g", section, None)[0]

    def classifier(self, train: pl.DataFrame, oracle):
        return modeling.select(
            "classification", train, "quality_grade", self.p["train_classifier"], oracle
        )[0]

    def r2_of_limit(self, predicted: np.ndarray, test: pl.DataFrame) -> float:
        return round(evaluation.oracle_report(test, predicted, self.truth)["r2_of_limit"], 4)

    def cortex(self, oracle, train: pl.DataFrame | None = None) -> dict:
        """Cortex's recipes with this Oracle (and a classifier stacked on it), judged."""
        train = self.train if train is None else train
        crops = {c: self.crops[c] for c in train["crop"].unique()}
        default = oracle is self.oracle and train is self.train
        classifier = self.stacked if default else self.classifier(train, oracle)
        return cortex.recommend_all(self.section, train, oracle, classifier, crops, self.world)


def fixed(hyperparams: dict, section: dict) -> dict:
    return {**section, "estimator": "hist_gradient_boosting", "hyperparams": hyperparams}


def true_margin(farm: Farm, crop: str):
    ctx = cortex.crop_contexts(farm.train, farm.crops)[crop]
    margin = cortex.truth(crop, farm.econ, farm.world, ctx)
    return lambda x: float(margin(np.asarray(x, float).reshape(-1, 1))["margin"][0])


def decomposition(farm: Farm, results: dict) -> dict:
    out = {}
    for crop, recipe in results["recipes"].items():
        f = true_margin(farm, crop)
        chosen = np.array([recipe[k] for k in cortex.RECIPE])
        best = np.array([recipe["true_best"][k] for k in cortex.RECIPE])
        top = f(best)
        row = {"regret": round((top - f(chosen)) / top, 4)}
        for i, name in enumerate(cortex.RECIPE):
            x = chosen.copy()
            x[i] = best[i]
            row[f"{name}_to_true_best"] = {
                "from": round(float(chosen[i]), 3),
                "to": round(float(best[i]), 3),
                "regret": round((top - f(x)) / top, 4),
            }
        out[crop] = row
    return out


def partial_dependence(farm: Farm, crop: str) -> dict:
    rows = farm.train.filter(pl.col("crop") == crop)
    x = modeling.frame(rows, list(farm.oracle.feature_names_in_))
    climate = np.vstack(
        [
            rows[c].to_numpy()
            for c in (
                "temp_mean",
                "humidity_mean",
                "co2_mean",
                "ppfd_lit_mean",
                "photoperiod_h",
                "ec_mean",
            )
        ]
    )
    days = farm.crops[crop]["cycle_days"]
    out = {"ec": EC_GRID, "model_mean_log_yield": [], "true_mean_log_yield": []}
    for ec in EC_GRID:
        z = x.copy()
        z["ec_mean"] = ec
        if "ec_dev" in z:  # no optimum in params: the absolute EC
            z["ec_dev"] = ec
        out["model_mean_log_yield"].append(round(float(np.log(farm.oracle.predict(z)).mean()), 4))
        recipe = climate.copy()
        recipe[5] = ec
        ph = rows["ph_mean"].to_numpy()
        expected, _ = worlds.expected_outcome(farm.world, crop, recipe, ph, days)
        out["true_mean_log_yield"].append(round(float(np.log(expected).mean()), 4))
    observed, fitted = rows["fresh_weight_g"].to_numpy(), farm.oracle.predict(x)
    measured = rows["ec_mean"].to_numpy()
    out["in_sample_log_residual_per_ec_bin"] = {
        f"{lo:.1f}": round(float(np.mean(np.log(observed / fitted)[inside])), 4)
        for lo in np.arange(1.0, 2.2, 0.1)
        if (inside := (measured >= lo) & (measured < lo + 0.1)).any()
    }
    return out


def members_of(farm: Farm, crop: str):
    trust = farm.section["trust"]
    ctx = cortex.crop_contexts(farm.train, farm.crops)[crop]
    classifier = farm.stacked
    members = cortex.ensemble(farm.oracle, classifier, farm.train, trust["ensemble"], SEED)
    model = cortex.surrogate(ctx, members, cortex.Companions(farm.train, crop), farm.econ)
    _, opt, box = cortex.recommend(
        crop, farm.section, farm.train, farm.oracle, classifier, farm.econ, ctx, members
    )
    return model, opt.recipe, box


def profile(farm: Farm, crop: str, variable: str, points: int = 13) -> dict:
    model, chosen, box = members_of(farm, crop)
    i = list(cortex.RECIPE).index(variable)
    grid = np.linspace(*box[i], points)
    recipes = np.repeat(chosen.reshape(-1, 1), points, axis=1)
    recipes[i] = grid
    o = farm.section["optimiser"]
    lows, highs = np.array([b[0] for b in box]), np.array([b[1] for b in box])
    rng = np.random.default_rng(SEED)  # the search's own neighbours (`cortex.optimise`)
    offsets = rng.normal(0.0, o["smoothing_scale"], (o["smoothing_samples"], len(box)))
    offsets = np.vstack([np.zeros(len(box)), offsets * (highs - lows)])
    smoothed = [
        float(model(np.clip(recipes[:, j] + offsets, lows, highs).T)["margin"].mean())
        for j in range(points)
    ]
    ctx = cortex.crop_contexts(farm.train, farm.crops)[crop]
    truth = cortex.truth(crop, farm.econ, farm.world, ctx)
    return {
        "chosen": round(float(chosen[i]), 3),
        variable: [round(float(v), 3) for v in grid],
        "predicted": [round(float(v), 4) for v in model(recipes)["margin"].mean(axis=0)],
        "smoothed": [round(v, 4) for v in smoothed],
        "true": [round(float(v), 4) for v in truth(recipes)["margin"]],
    }


def regrets(results: dict) -> dict:
    return {c: m["regret"] for c, m in results["metrics"].items() if c != "max_regret"}


def oracle_variants(farm: Farm) -> dict:
    section = farm.p["train_oracle"]
    # interaction_cst counts the encoded columns: the crop's one-hot columns, then numeric
    # ones (a column with no values is dropped by the encoder)
    names = list(farm.oracle.feature_names_in_)
    width = farm.oracle.named_steps["encode"].transform(modeling.frame(farm.train, names))
    crops = farm.train["crop"].n_unique()
    numeric = range(crops, width.shape[1])
    crop_columns = list(range(crops))
    variants = {f"boosting_{k}": fixed(h, section) for k, h in BOOSTING.items()}
    default = BOOSTING["default"]
    pairs = [[*crop_columns, i, j] for i, j in itertools.combinations(numeric, 2)]
    variants["pairwise_interactions"] = fixed({**default, "interaction_cst": pairs}, section)
    variants["no_interactions"] = fixed(
        {**default, "interaction_cst": [[*crop_columns, i] for i in numeric]}, section
    )
    out = {}
    x_test = modeling.frame(farm.test, list(farm.oracle.feature_names_in_))
    for name, variant in variants.items():
        oracle = farm.fit_oracle(farm.train, variant)
        out[name] = {
            "r2_of_limit": farm.r2_of_limit(oracle.predict(x_test), farm.test),
            "regret": regrets(farm.cortex(oracle)),
        }
        print(name, out[name])
    per_crop, predictions = {}, []
    for crop in sorted(farm.train["crop"].unique()):
        train = farm.train.filter(pl.col("crop") == crop)
        test = farm.test.filter(pl.col("crop") == crop)
        oracle = farm.fit_oracle(train, section)
        x = modeling.frame(test, list(oracle.feature_names_in_))
        predictions.append(test.with_columns(pl.Series("_predicted", oracle.predict(x))))
        per_crop[crop] = regrets(farm.cortex(oracle, train))[crop]
    joined = pl.concat(predictions)
    out["one_oracle_per_crop"] = {
        "r2_of_limit": farm.r2_of_limit(joined["_predicted"].to_numpy(), joined),
        "regret": per_crop,
    }
    return out


def broken_stick(farm: Farm, results: dict, points: int = 25) -> dict:
    """Each costly input cut back to the knee of `revenue ~ a + b min(x, knee)` fitted
    from the box's low edge to Cortex's value."""
    out = {}
    for crop in results["recipes"]:
        model, chosen, box = members_of(farm, crop)
        f = true_margin(farm, crop)
        best = np.array([results["recipes"][crop]["true_best"][k] for k in cortex.RECIPE])
        top, x, cuts = f(best), chosen.copy(), {}
        for name in ("co2", "ec"):
            i = list(cortex.RECIPE).index(name)
            grid = np.linspace(box[i][0], x[i], points)
            recipes = np.repeat(x.reshape(-1, 1), points, axis=1)
            recipes[i] = grid
            revenue = model(recipes)["revenue"].mean(axis=0)
            fits = []
            for knee in grid[1:-1]:
                design = np.column_stack([np.ones(points), np.minimum(grid, knee)])
                coef, *_ = np.linalg.lstsq(design, revenue, rcond=None)
                fits.append((float(np.sum((design @ coef - revenue) ** 2)), knee, coef[1]))
            _, knee, slope = min(fits)
            if slope > 0 and knee < x[i]:
                cuts[name] = {"from": round(float(x[i]), 3), "to": round(float(knee), 3)}
                x[i] = knee
        out[crop] = {
            "regret_before": round((top - f(chosen)) / top, 4),
            "regret_after": round((top - f(x)) / top, 4),
            "cuts": cuts,
        }
    return out


def main() -> None:
    p = params.load(REPO / "params.yaml")
    figures: dict = {"seed": SEED}
    default = Farm("default", p)
    results = default.cortex(default.oracle)
    figures["default"] = {
        "regret": regrets(results),
        "decomposition": decomposition(default, results),
        "partial_dependence_arugula": partial_dependence(default, "arugula"),
        "profiles_arugula": {v: profile(default, "arugula", v) for v in ("ec", "air_temp")},
        "broken_stick": broken_stick(default, results),
        "oracle_variants": oracle_variants(default),
    }
    small = Farm("small", p)
    results = small.cortex(small.oracle)
    figures["small"] = {
        "regret": regrets(results),
        "decomposition": decomposition(small, results),
        "profiles_spinach": {v: profile(small, "spinach", v) for v in ("co2", "ec")},
        "broken_stick": broken_stick(small, results),
    }
    print(write("regret_anatomy", figures))


if __name__ == "__main__":
    main()
