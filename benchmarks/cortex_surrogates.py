"""Cortex's regret with other surrogates than the Oracle and its bootstrap refits (issue 13's
last open target: regret <= 3 % per crop on the second world; README "Status").

On `second_world.py`'s farms (default and small, seeds 42, 1, 2) and on the built-in
simulator (default params' farm, seed 42), the default models are trained as the stages
train them, then Cortex is run with each surrogate below and judged by the world's own
truth (`cortex.recommend_all`, as the stage judges it):

- `default`: the Oracle + 2 bootstrap refits (params' `optimise_cortex.trust.ensemble`).
- `diverse_equal` / `diverse_cv`: one member per model family of the Oracle's search
  (gradient boosting, additive splines, a Gaussian process on a <= 1,200-batch subset, a
  random forest), each fitted on every training batch, the members' margins averaged with
  equal weights, or weighted by 1 / (1 - CV R2) from the same time-ordered CV the search
  runs. Each member gets the stage's classifier fed its own yield.
- `gaussian_process` / `splines`: that family alone as the Oracle (the classifier stacked
  on it, as train_classifier would), with the default ensemble of refits.
- `splines_cortex`: additive splines (+ 2 bootstrap refits) as Cortex's own yield
  surrogate, the stage's Oracle and classifier unchanged (each member's yield fed to it).
- `per_crop`: Cortex's yield surrogate fitted per crop (the Oracle's boosted trees on that
  crop's batches only, + 2 bootstrap refits), the stage's classifier (and its refits) fed
  its yields: pooled trees share splits between crops, so one crop's knee (spinach's EC
  1.5) blurs another's (arugula's 1.3). Also records each crop's EC response
  (`ec_response`: the mean log yield over the crop's training batches with EC set to each
  value, pooled and per-crop trees against the world's own).
- `parsimony`: the default surrogate, then the cheapest recipe (energy + CO2 + nutrients,
  which are known, where revenue is predicted) whose smoothed predicted margin is within
  one standard deviation of the members' margins of the best one found: of recipes the
  models cannot tell apart, spend least.
- `diverse_parsimony`: both.

`seconds`: what the stage would spend on it: building the members (fits and refits)
plus the searches (the judge's true-optimum search excluded; the Oracle's own fit, for
`gaussian_process` and `splines`, is train_oracle's and not counted).

Where the pipeline's search already chose a family, that variant is the default itself:
the small farm's Oracle is the Gaussian process, the built-in farm's the splines (so
`splines_cortex` there is `default`, and `per_crop`'s boosted trees are not the built-in's
choice). Result (benchmarks/RESULTS.md): no surrogate is <= 3 % on all six draws.
Writes benchmarks/results/cortex_surrogates.json (runs accumulate in it); each farm and
its models are cached in benchmarks/.work/cortex_surrogates/ (delete it after a change
of params or models). Timings share 2 cores with other work: compare within a farm.
Usage: python benchmarks/cortex_surrogates.py [default|small|builtin ...] [--seed N ...]
[--variant NAME ...]
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
import time
from contextlib import contextmanager

import numpy as np
import polars as pl
from scipy.optimize import differential_evolution
from second_world import EXTRA_SEEDS, FARMS

from common import REPO, RESULTS, WORK, write
from vertiflow import cortex, params
from vertiflow.data import dataset, features, rawdata
from vertiflow.farm import simple_model, worlds
from vertiflow.farm.simulator import SimConfig, write_farm
from vertiflow.tabular import modeling

FAMILIES = {  # the Oracle's search candidates, none skipped for its size
    "gradient_boosting": {},
    "splines": {},
    "gaussian_process": {"hyperparams": {"max_rows": 1200}},
    "random_forest": {},
}
VARIANTS = (
    "default",
    "diverse_equal",
    "diverse_cv",
    "gaussian_process",
    "splines",
    "splines_cortex",
    "parsimony",
    "diverse_parsimony",
    "per_crop",
)
BUILTIN = "builtin"


def family_section(section: dict, names: list[str]) -> dict:
    """The Oracle's params with only `names` as candidates, without size limits."""
    candidates = {}
    for name in names:
        c = {k: v for k, v in section["selection"]["candidates"][name].items() if k != "max_rows"}
        extra = FAMILIES[name].get("hyperparams", {})
        candidates[name] = {**c, "hyperparams": {**(c.get("hyperparams") or {}), **extra}}
    return {**section, "selection": {**section["selection"], "candidates": candidates}}


class Farm:
    """One prepared farm with the stage's models and one Oracle per family (cached)."""

    def __init__(self, name: str, seed: int, p: dict):
        self.name, self.seed, self.p = name, seed, p
        if name == BUILTIN:
            sim = {**p["simulate"], "seed": seed}
            config = SimConfig(**sim)
        else:
            sim = {**p["simulate"], "crops": simple_model.DEFAULT_CROPS, "seed": seed}
            sim |= {"yield_noise": simple_model.YIELD_NOISE, **FARMS[name]}
            config = SimConfig(**sim, world=simple_model.NAME)
        raw = WORK / "cortex_surrogates" / f"{name}_{seed}"
        cache = raw.with_suffix(".pkl")
        if cache.exists():
            self.__dict__.update(pickle.loads(cache.read_bytes()))
            return
        shutil.rmtree(raw, ignore_errors=True)
        write_farm(raw, config)
        optima = features.optima_from_params(p["prepare"]["crop_optima"])
        data = rawdata.load(raw)
        prepared = dataset.build(data, p["prepare"]["test_fraction"], optima)
        self.train, self.crops, self.world = prepared.train, prepared.crops, data.world
        section = p["train_oracle"]
        self.oracle, chosen = modeling.select("regression", self.train, "fresh_weight_g", section)
        self.chosen = chosen.chosen
        self.classifier = self.stacked(self.oracle)
        start = time.perf_counter()
        _, search = modeling.select(
            "regression", self.train, "fresh_weight_g", family_section(section, list(FAMILIES))
        )
        self.cv = search.scores
        self.cv_seconds = time.perf_counter() - start
        self.families, self.fit_seconds = {}, {}
        for family in FAMILIES:
            start = time.perf_counter()
            one = family_section(section, [family])
            self.families[family] = modeling.select(
                "regression", self.train, "fresh_weight_g", one
            )[0]
            self.fit_seconds[family] = time.perf_counter() - start
        self.own_classifier = {
            f: self.stacked(self.families[f]) for f in ("gaussian_process", "splines")
        }
        cache.write_bytes(pickle.dumps({k: v for k, v in self.__dict__.items()}))

    def stacked(self, oracle):
        return modeling.select(
            "classification", self.train, "quality_grade", self.p["train_classifier"], oracle
        )[0]


class ByCrop:
    """One fitted yield model per crop, answering for the rows of its crop."""

    def __init__(self, models: dict):
        self.models = models
        self.feature_names_in_ = next(iter(models.values())).feature_names_in_

    def predict(self, x):
        out = np.empty(len(x))
        for crop, model in self.models.items():
            rows = (x["crop"] == crop).to_numpy()
            if rows.any():
                out[rows] = model.predict(x[rows])
        return out


def per_crop_members(farm: Farm, n: int, seed: int) -> list:
    """n members: each crop's own boosted trees and n - 1 bootstrap refits of them, with
    the classifier's members of the default ensemble."""
    section = farm.p["train_oracle"]
    one = family_section(section, ["gradient_boosting"])
    fits = {}
    for crop in sorted(farm.train["crop"].unique()):
        rows = farm.train.filter(pl.col("crop") == crop)
        model = modeling.select("regression", rows, "fresh_weight_g", one)[0]
        refits = modeling.bootstrap_refits(model, rows, "fresh_weight_g", n - 1, seed)
        fits[crop] = [model, *refits]
    default = cortex.ensemble(farm.oracle, farm.classifier, farm.train, n, seed)
    oracles = [ByCrop({c: f[k] for c, f in fits.items()}) for k in range(n)]
    return list(zip(oracles, [c for _, c in default], strict=True))


# ---- the surrogates, put in Cortex's place for one run ----------------------------------

_state: dict = {}


@contextmanager
def patched(members=None, weights=None, parsimony: bool = False):
    """Cortex with the given members (instead of its refits), a weighted mean of their
    margins, and/or the parsimony step after its search; records the seconds spent."""
    saved = {k: getattr(cortex, k) for k in ("ensemble", "lower_bound", "optimise", "surrogate")}
    _state.update(seconds=0.0, spread=None, model=None)

    def ensemble(*args, **kw):
        start = time.perf_counter()
        out = members if members is not None else saved["ensemble"](*args, **kw)
        _state["seconds"] += time.perf_counter() - start
        return out

    def surrogate(*args, **kw):
        model = saved["surrogate"](*args, **kw)
        _state["model"] = model
        return model

    def lower_bound(margins, kappa):
        if weights is None:
            return saved["lower_bound"](margins, kappa)
        w = np.asarray(weights, float) / np.sum(weights)

        def margin(recipe):
            return {"margin": w @ margins(recipe)["margin"]}

        return margin

    def optimise(objective, box, dli_bounds, seed, **o):
        start = time.perf_counter()
        opt = saved["optimise"](objective, box, dli_bounds, seed, **o)
        if parsimony:
            opt = cheapest_within_noise(objective, _state["model"], opt, box, dli_bounds, seed, o)
        _state["seconds"] += time.perf_counter() - start
        return opt

    cortex.ensemble, cortex.surrogate = ensemble, surrogate
    cortex.lower_bound, cortex.optimise = lower_bound, optimise
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(cortex, k, v)


def cheapest_within_noise(objective, model, opt, box, dli_bounds, seed, o) -> cortex.Optimum:
    """The cheapest recipe whose smoothed objective is within one standard deviation of the
    members' margins (at the search's recipe) of the search's best."""
    parts = model(opt.recipe.reshape(-1, 1))
    spread = float(parts["margin"][:, 0].std(ddof=1))
    target = opt.margin - spread
    lows, highs = (np.array([b[i] for b in box])[:, None] for i in (0, 1))
    rng = np.random.default_rng(seed)
    k = o["smoothing_samples"]
    offsets = rng.normal(0.0, o["smoothing_scale"], (k, len(box))) * (highs - lows).T
    offsets = np.vstack([np.zeros(len(box)), offsets]).T

    def loss(recipes):
        recipes = np.atleast_2d(recipes.T).T
        n = recipes.shape[1]
        cloud = np.clip(
            (recipes[:, None, :] + offsets[:, :, None]).reshape(len(box), -1), lows, highs
        )
        smoothed = objective(cloud)["margin"].reshape(offsets.shape[1], n).mean(axis=0)
        p = model(recipes)
        cost = (p["energy"] + p["co2"] + p["nutrients"])[0]
        short = np.maximum(target - smoothed, 0.0)
        return cost + 100.0 * short + 100.0 * cortex._dli_penalty(recipes, dli_bounds)

    found = differential_evolution(
        loss,
        box,
        seed=seed,
        maxiter=o["maxiter"],
        popsize=o["popsize"],
        tol=o["tol"],
        polish=False,
        vectorized=True,
        updating="deferred",
        x0=opt.recipe,
    )
    recipe = np.clip(found.x, lows[:, 0], highs[:, 0])
    opt.recipe, opt.on_bound = recipe, cortex.on_bounds(recipe, box, dli_bounds)
    return opt


EC_GRID = [1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.8, 2.0]


def ec_response(farm: Farm, oracles: dict) -> dict:
    """Per crop, each model's mean log yield over the crop's training batches with EC set to
    each value, and the world's own (`regret_anatomy.partial_dependence`'s measure): where
    the truth is flat past its knee, a rise is the model rounding the knee."""
    out = {}
    for crop in sorted(farm.train["crop"].unique()):
        rows = farm.train.filter(pl.col("crop") == crop)
        climate = rows.select(list(cortex.RECIPE.values())).to_numpy().T
        ph, days = rows["ph_mean"].to_numpy(), farm.crops[crop]["cycle_days"]
        curves: dict = {"ec": EC_GRID, "true": []}
        for ec in EC_GRID:
            recipe = climate.copy()
            recipe[5] = ec
            expected, _ = worlds.expected_outcome(farm.world, crop, recipe, ph, days)
            curves["true"].append(round(float(np.log(expected).mean()), 4))
        for name, oracle in oracles.items():
            x = modeling.frame(rows, list(oracle.feature_names_in_))
            curves[name] = []
            for ec in EC_GRID:
                z = x.copy()
                z["ec_mean"] = ec
                if "ec_dev" in z:
                    z["ec_dev"] = ec
                curves[name].append(round(float(np.log(oracle.predict(z)).mean()), 4))
        out[crop] = curves
    return out


def run_variant(farm: Farm, variant: str) -> dict:
    section = farm.p["optimise_cortex"]
    oracle, classifier, members, weights = farm.oracle, farm.classifier, None, None
    if variant.startswith("diverse"):
        fitted = {f: (farm.oracle if f == farm.chosen else m) for f, m in farm.families.items()}
        members = [(m, farm.classifier) for m in fitted.values()]
        if variant == "diverse_cv":
            weights = [1.0 / max(1.0 - farm.cv[f], 1e-6) for f in fitted]
    elif variant in ("gaussian_process", "splines"):
        oracle, classifier = farm.families[variant], farm.own_classifier[variant]
    elif variant == "per_crop":
        start = time.perf_counter()
        trust = farm.p["optimise_cortex"]["trust"]
        members = per_crop_members(farm, trust["ensemble"], section["seed"])
        build_seconds = time.perf_counter() - start
        pooled_and_own = {"pooled": farm.oracle, "per_crop": members[0][0]}
    elif variant == "splines_cortex":  # Cortex's own surrogate; the stage's classifier
        oracle = farm.families["splines"]
    parsimony = variant.endswith("parsimony")
    with patched(members, weights, parsimony):
        results = cortex.recommend_all(
            section, farm.train, oracle, classifier, farm.crops, farm.world
        )
        seconds = _state["seconds"]
    if variant == "per_crop":
        seconds += build_seconds
    elif members is not None:  # the family fits the stage would add (one is the Oracle)
        seconds += sum(s for f, s in farm.fit_seconds.items() if f != farm.chosen)
    elif variant == "splines_cortex":  # the stage would fit it
        seconds += farm.fit_seconds["splines"]
    crops = {c: m for c, m in results["metrics"].items() if c != "max_regret"}
    extra = {"ec_response": ec_response(farm, pooled_and_own)} if variant == "per_crop" else {}
    return {
        **extra,
        "regret": {c: m["regret"] for c, m in crops.items()},
        "max_regret": results["metrics"]["max_regret"],
        "best_grown_regret": {c: m["best_grown_regret"] for c, m in crops.items()},
        "recipes": {
            c: {k: r[k] for k in (*cortex.RECIPE, "true_best")}
            for c, r in results["recipes"].items()
        },
        "seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("farms", nargs="*", default=[*FARMS, BUILTIN])
    parser.add_argument("--seed", type=int, action="append")
    parser.add_argument("--variant", action="append")
    args = parser.parse_args()
    p = params.load(REPO / "params.yaml")
    path = RESULTS / "cortex_surrogates.json"
    kept = json.loads(path.read_text())["farms"] if path.exists() else {}
    for name in args.farms:
        seeds = args.seed or ([42] if name == BUILTIN else [p["simulate"]["seed"], *EXTRA_SEEDS])
        for seed in seeds:
            farm = Farm(name, seed, p)
            key = f"{name}_seed{seed}"
            entry = kept.setdefault(key, {"variants": {}})
            entry |= {
                "oracle_chosen": farm.chosen,
                "cv_r2": {k: round(v, 5) for k, v in farm.cv.items()},
                "family_fit_seconds": {k: round(v, 2) for k, v in farm.fit_seconds.items()},
            }
            for variant in args.variant or VARIANTS:
                entry["variants"][variant] = run_variant(farm, variant)
                r = entry["variants"][variant]
                print(key, variant, r["regret"], r["seconds"], flush=True)
            print(write("cortex_surrogates", {"summary": summary(kept), "farms": kept}))


def summary(farms: dict) -> dict:
    """Per variant: max regret of each farm draw, and the worst of them per farm size."""
    out: dict = {}
    for key, entry in farms.items():
        name = key.split("_seed")[0]
        for variant, r in entry["variants"].items():
            row = out.setdefault(variant, {}).setdefault(name, {})
            row[key.split("_seed")[1]] = r["max_regret"]
    for sizes in out.values():
        for seeds in sizes.values():
            seeds["worst"] = max(v for k, v in seeds.items() if k != "worst")
        everything = [
            v for n, s in sizes.items() if n != BUILTIN for k, v in s.items() if k != "worst"
        ]
        sizes["second_world_all_le_3pct"] = bool(everything) and max(everything) <= 0.03
    return out


if __name__ == "__main__":
    main()
