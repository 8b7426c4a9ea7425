"""Crop names are data: any crop is accepted, its optimum comes from params or is absent."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from vertiflow import params
from vertiflow.data import dataset, features, rawdata
from vertiflow.farm import simple_model as sm
from vertiflow.farm.simulator import SimConfig, write_farm

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def arugula_farm(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("arugula")
    cfg = SimConfig(world=sm.NAME, crops={"arugula": 1.0}, racks=1, modules_per_rack=3)
    write_farm(folder, SimConfig(**{**cfg.__dict__, "cycles_per_module": 10}))
    return folder


def test_a_crop_the_agronomy_does_not_know_is_prepared(arugula_farm):
    p = params.load(REPO / "params.yaml")["prepare"]
    optima = features.optima_from_params(p["crop_optima"])
    prepared = dataset.build(rawdata.load(arugula_farm), 0.2, optima)
    train = prepared.train
    assert set(train["crop"]) == {"arugula"}
    # no optimum in params: *_dev hold the absolute climate, out-of-band shares are empty
    assert train["temp_dev"].equals(train["temp_mean"], check_names=False)
    assert train["temp_out_of_band"].null_count() == train.height
    info = prepared.crops["arugula"]
    assert info["optimum"] is None
    assert info["cycle_days"] == float(train["cycle_days"].median())  # the farm's own: ~28
    assert 25 <= info["cycle_days"] <= 31


def test_a_crop_without_optimum_passes_validate_at_any_physical_ph(arugula_farm, tmp_path):
    """Its ph_dev is the absolute pH: 7.2 is a pH, not a deviation out of range."""
    from vertiflow.data import validation

    p = params.load(REPO / "params.yaml")
    for f in arugula_farm.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    telemetry = pl.read_parquet(arugula_farm / "telemetry.parquet")
    telemetry.with_columns(water_ph=pl.col("water_ph") + 1.2).write_parquet(
        tmp_path / "telemetry.parquet"
    )
    prepared = dataset.build(rawdata.load(tmp_path), 0.2, {})
    assert prepared.train["ph_dev"].max() > 7
    budgets = validation.Budgets(
        **{k: v for k, v in p["validate"].items() if k in validation.Budgets.__dataclass_fields__}
    )
    report = validation.validate(prepared.train, prepared.test, prepared.checks, budgets)
    assert not any("ph_dev" in problem for problem in report["problems"]), report["problems"]


def test_params_optima_are_the_built_in_agronomy():
    p = params.load(REPO / "params.yaml")["prepare"]["crop_optima"]
    assert features.optima_from_params(p) == features.builtin_optima()


def test_optimum_from_params_sets_the_reference_of_dev_features():
    table = pl.DataFrame(
        {
            "crop": ["kale", "kale"],
            "temp_mean": [20.0, 22.0],
            "humidity_mean": [60.0, 70.0],
            "ec_mean": [1.5, 2.0],
            "ph_mean": [6.0, 6.2],
        }
    )
    kale = features.CropOptimum(18.0, 65.0, 1.8, 6.0, (15.0, 21.0), (55.0, 75.0))
    out = features.crop_relative(table, {"kale": kale})
    assert out["temp_dev"].to_list() == [2.0, 4.0]
    assert out["ec_dev"].to_list() == pytest.approx([-0.3, 0.2])


def test_a_crop_grown_a_handful_of_times_gets_no_recipe_unless_named():
    """A trial crop (5 batches among 300 of spinach) got spinach's recipe: the models'
    guess from the other crop. With `crops: all` it is left out and says why; named in a
    list it is an error that says how to optimise it anyway."""
    from vertiflow import cortex
    from vertiflow.errors import VertiflowError

    section = params.load(REPO / "params.yaml")["optimise_cortex"]
    train = pl.DataFrame({"crop": ["spinach"] * 300 + ["kale"] * 5})
    names, skipped = cortex.crops_to_optimise(section, train, ["kale", "spinach"])
    assert names == ["spinach"] and "5 training batches" in skipped["kale"]
    with pytest.raises(VertiflowError, match=r"'kale' has 5 training batches.*Lower the minimum"):
        cortex.crops_to_optimise({**section, "crops": ["kale"]}, train, ["kale", "spinach"])
    everything = {**section, "min_training_batches": 5}
    assert cortex.crops_to_optimise(everything, train, ["kale", "spinach"]) == (
        ["kale", "spinach"],
        {},
    )
    with pytest.raises(VertiflowError, match=r"no crop has .*kale: 5, spinach: 300"):
        cortex.crops_to_optimise(
            {**section, "min_training_batches": 400}, train, ["kale", "spinach"]
        )


def test_two_crop_names_that_share_one_mlflow_key_are_refused():
    from vertiflow import cortex
    from vertiflow.errors import VertiflowError

    section = params.load(REPO / "params.yaml")["optimise_cortex"]
    crops = ["Roquette (E)", "Roquette [E]"]
    train = pl.DataFrame({"crop": [c for c in crops for _ in range(30)]})
    with pytest.raises(VertiflowError, match=r"share the name 'Roquette _E_'"):
        cortex.crops_to_optimise(section, train, crops)
    with pytest.raises(VertiflowError, match=r"share the name 'Roquette _E_'"):  # named too
        cortex.crops_to_optimise({**section, "crops": crops}, train, crops)


def test_held_out_figures_are_given_per_crop_too():
    """Pooled over a 300 g crop and a 1 g one, R2 is carried by the big crop's spread: a
    four-crop farm's trial read 0.986 while its microgreens were at 0.683."""
    import numpy as np

    from vertiflow.tabular import evaluation

    rng = np.random.default_rng(0)
    big, small = rng.uniform(100, 300, 40), rng.uniform(0.5, 2.0, 40)
    test = pl.DataFrame(
        {
            "batch_id": [f"b{i}" for i in range(80)],
            "crop": ["strawberry"] * 40 + ["microgreens"] * 40,
            "fresh_weight_g": np.r_[big, small],
            "quality_grade": ["PREMIUM", "STANDARD"] * 40,
        }
    )
    predicted = np.r_[big * 1.02, rng.uniform(0.5, 2.0, 40)]  # the small crop: noise
    report = evaluation.oracle_report(test, predicted, pl.DataFrame())
    assert report["r2"] > 0.99 and report["per_crop"]["microgreens"]["r2"] < 0
    assert report["per_crop"]["strawberry"]["n_test"] == 40
    proba = np.tile([0.9, 0.1, 0.0], (80, 1))
    graded = evaluation.classifier_report(test, proba, pl.DataFrame())
    assert graded["per_crop"]["microgreens"]["accuracy"] == 0.5
    one_crop = evaluation.oracle_report(test.head(40), predicted[:40], pl.DataFrame())
    assert "per_crop" not in one_crop  # a farm of one crop: the pooled figures are its own


def test_a_crop_without_an_optimum_and_an_entry_matching_no_crop_are_said():
    """`basill:` for `basil:` turned basil's *_dev features absolute without a word."""
    crops = {"basil": {"optimum": None}, "lettuce": {"optimum": {"ec": 1.3}}}
    notice = dataset.optima_notice(["basill", "Lettuce"], crops)
    assert notice.startswith("crop(s) basil have no entry in prepare.crop_optima")
    assert notice.endswith("its entries basill match no crop in the data.")
    assert dataset.optima_notice(["basil", "lettuce"], {"lettuce": {"optimum": {}}}) is None


def test_the_arugula_farm_is_told_its_features_are_absolute(arugula_farm):
    p = params.load(REPO / "params.yaml")["prepare"]
    prepared = dataset.build_with_params(rawdata.load(arugula_farm), p)
    notice = dataset.optima_notice(p["crop_optima"], prepared.crops)
    assert "crop(s) arugula have no entry" in notice and "basil, lettuce match no crop" in notice
