"""How many batches a farm needs: the default model search's figures against training size.

Why: issue 13's small farm (about 400 cycles, 310 training batches) misses the targets
(Oracle >= 0.985 of the Bayes R2, classifier within 1.5 points of Bayes accuracy) that
the default farm (7,600 training batches) meets or nearly meets. This measures where
between the two the figures come within target, so that a farm knows what to expect from
its own history, and so that a miss on a small farm is read as a data size, not a bug.

Method: one spinach farm of the SIMPLE world (`second_world.py`; 10 racks x 8 modules x
50 cycles, 4,000 batches over 4.8 years) per seed. Each training size N takes N of its
batches at random (nested: each size holds the smaller ones), as a farm with fewer modules
over the same years would have grown them, runs the pipeline's model search
with the default params (`modeling.select`, as train_oracle and train_classifier do), and
judges both models on a separate ~1,925-batch draw of the same world and crop (another
seed), against that draw's Bayes limits, and Cortex's recipe by the world's truth
(regret). Writes benchmarks/results/learning_curve.json;
`--gp-subset N` fits the Gaussian process on N batches at random instead of skipping it
above its max_rows (`tabular/subsample.py`), into learning_curve_gp_subset.json.
Usage: python benchmarks/learning_curve.py [--seed N ...] [--sizes N ...] [--gp-subset N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from second_world import draw, judge, large_test_config

from common import REPO, write
from vertiflow import cortex, params
from vertiflow.data import features
from vertiflow.farm import simple_model
from vertiflow.tabular import modeling

SIZES = (100, 200, 400, 800, 1600, 3200)
SEEDS = (42, 1)
FARM = {"racks": 10, "modules_per_rack": 8, "cycles_per_module": 50, "crops": {"spinach": 1.0}}


def curve(seed: int, sizes: list[int], p: dict) -> dict:
    sim = {**p["simulate"], "seed": seed, "yield_noise": simple_model.YIELD_NOISE, **FARM}
    optima = features.optima_from_params(p["prepare"]["crop_optima"])
    history, _, crops = draw(f"learning_curve_{seed}", sim, optima)
    test, truth, _ = draw(f"learning_curve_test_{seed}", large_test_config(sim, seed), optima)
    shuffled = np.random.default_rng(seed).permutation(history.height)
    out = {}
    for n in sizes:
        train = history[np.sort(shuffled[:n])]  # still in start-date order
        start = time.perf_counter()
        oracle, o = modeling.select("regression", train, "fresh_weight_g", p["train_oracle"])
        stacked = oracle if p["train_classifier"]["oracle_input"] else None
        classifier, c = modeling.select(
            "classification", train, "quality_grade", p["train_classifier"], stacked
        )
        figures = judge(test, truth, oracle, classifier)
        seconds = round(time.perf_counter() - start, 1)
        recipe = cortex.recommend_all(
            p["optimise_cortex"], train, oracle, classifier, crops, simple_model.NAME
        )
        out[str(n)] = figures | {
            "regret": recipe["metrics"]["max_regret"],
            "oracle_chosen": o.chosen,
            "classifier_chosen": c.chosen,
            "search_seconds": seconds,
        }
        print(seed, n, out[str(n)], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, action="append")
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--gp-subset", type=int)
    args = parser.parse_args()
    p = params.load(REPO / "params.yaml")
    name = "learning_curve"
    if args.gp_subset:
        gp = p["train_oracle"]["selection"]["candidates"]["gaussian_process"]
        gp["max_rows"], gp["hyperparams"] = None, {"max_rows": args.gp_subset}
        name = "learning_curve_gp_subset"
    seeds = args.seed or list(SEEDS)
    runs = {f"seed{s}": curve(s, args.sizes, p) for s in seeds}
    summary = {}
    for n in map(str, args.sizes):
        oracle = [runs[f"seed{s}"][n]["oracle_r2_of_limit"] for s in seeds]
        gap = [runs[f"seed{s}"][n]["classifier_gap_points"] for s in seeds]
        regret = [runs[f"seed{s}"][n]["regret"] for s in seeds]
        summary[n] = {
            "oracle_r2_of_limit": oracle,
            "classifier_gap_points": gap,
            "regret": regret,
            "oracle_target_met": all(v >= 0.985 for v in oracle),
            "classifier_target_met": all(v <= 1.5 for v in gap),
            "regret_target_met": all(v <= 0.03 for v in regret),
        }
    print(write(name, {"summary": summary, "seeds": runs}))


if __name__ == "__main__":
    main()
