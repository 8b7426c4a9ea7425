"""The gate before training: prepared tables against their schema, plus glitch budgets.

Isolated glitches and dropouts are normal for sensors and were cleaned by `prepare`;
here they are counted against budgets from params, because when they are widespread the
features are no longer trustworthy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandera.errors
import polars as pl

from vertiflow.data.schemas import OPTIONAL_FEATURES, PREPARED, SENSORS
from vertiflow.errors import describe_schema_errors
from vertiflow.farm.agronomy import GRADES
from vertiflow.params import by_crop


@dataclass(frozen=True)
class Budgets:
    max_glitch_fraction: float  # per sensor: share of readings outside physical bounds
    max_dropout_fraction: float  # share of readings with no sensor value at all
    min_train_rows: int
    min_test_rows: int
    max_batches_without_telemetry: float  # share of harvested batches left out
    # below it a crop's weights are most likely kilograms, not grams per plant; per crop
    # (with a `default`) for a farm of crops of very different weights
    min_median_fresh_weight_g: float | dict[str, float]

    def least_weight(self, crop: str) -> float:
        bar = self.min_median_fresh_weight_g
        if not isinstance(bar, dict):
            return bar
        return by_crop(bar, crop, bar.get("default", 0.0))


def absent_features(*frames: pl.DataFrame) -> list[str]:
    """Optional features with no value in any batch: a probe the farm does not have."""
    return [
        c
        for c in OPTIONAL_FEATURES
        if all(c in f.columns and f[c].null_count() == f.height for f in frames)
    ]


def partial_features(*frames: pl.DataFrame) -> dict[str, float]:
    """Optional features measured in some batches only (a probe installed partway
    through the history): the share of batches with a value."""
    shares = {}
    for c in OPTIONAL_FEATURES:
        parts = [f[c] for f in frames if c in f.columns]
        column = pl.concat(parts) if parts else pl.Series(c, [], pl.Float64)
        if 0 < column.null_count() < len(column):
            shares[c] = round(1 - column.null_count() / len(column), 4)
    return shares


def untrained_crops(train: pl.DataFrame, test: pl.DataFrame) -> dict[str, int]:
    """Test batches per crop that no training batch has (a crop the farm just began):
    their metrics measure a guess. Not a failure: the farm's history is what it is."""
    if "crop" not in test.columns or "crop" not in train.columns:
        return {}
    new = test.filter(~pl.col("crop").is_in(train["crop"].unique().implode()))
    return dict(new.group_by("crop").len().sort("crop").iter_rows())


GAP_SHARE = 0.9  # a batch with fewer readings a day than this share of the farm's usual


def telemetry_gaps(*frames: pl.DataFrame) -> dict[str, Any]:
    """Batches logged for less than GAP_SHARE of the farm's usual readings per cycle day
    (a logger down for days). Reported, with no budget: their features average what was
    logged, which the models take for the whole cycle. Dropouts are rows with no value,
    so they do not show here; a gap is rows that never came."""
    columns = ("batch_id", "n_readings", "cycle_days")
    tables = [f.select(columns) for f in frames if set(columns) <= set(f.columns)]
    rows = pl.concat(tables) if tables else pl.DataFrame()
    if rows.is_empty():
        return {"usual_readings_per_day": None, "batches_with_gaps": 0, "gap_examples": []}
    rate = rows["n_readings"] / rows["cycle_days"].clip(lower_bound=1e-9)
    usual = float(rate.median())
    short = rows.filter(rate < GAP_SHARE * usual).sort("batch_id")
    return {
        "usual_readings_per_day": round(usual, 2),
        "batches_with_gaps": short.height,
        "gap_examples": short["batch_id"].head(5).to_list(),
    }


def _schema_problems(name: str, frame: pl.DataFrame, absent: list[str]) -> list[str]:
    missing = [c for c in PREPARED.columns if c not in frame.columns]
    if missing:
        return [f"{name}: missing column(s) {', '.join(missing)}; re-run prepare."]
    try:
        (PREPARED.remove_columns(absent) if absent else PREPARED).validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as err:
        return [str(describe_schema_errors(name, err))]
    return []


def _weight_problems(train: pl.DataFrame, test: pl.DataFrame, budgets: Budgets) -> list[str]:
    """Weights exported in kg pass every range check (a lettuce of 0.15) and every metric
    that ignores scale (R2), then make Cortex optimise for a crop that weighs nothing.
    Each split on its own: an export that turned to kg lately has its test split in kg."""
    problems = []
    for name, split in (("training", train), ("test", test)):
        if not {"crop", "fresh_weight_g"} <= set(split.columns):
            continue  # a schema problem, reported as such
        medians = split.group_by("crop").agg(pl.col("fresh_weight_g").median()).sort("crop")
        problems += [
            f"harvests: column 'fresh_weight_g' of crop '{crop}' has a median of {median:.4g} "
            f"in the {name} batches, below validate.min_median_fresh_weight_g "
            f"({budgets.least_weight(crop):g}): it holds grams per plant (README, Data "
            "schema); are these kilograms? For a crop this light, give it its own bar: "
            f"min_median_fresh_weight_g: {{default: 1.0, {crop}: {median / 2:.2g}}}."
            for crop, median in medians.iter_rows()
            if median is not None and median < budgets.least_weight(crop)
        ]
    return problems


def validate(train: pl.DataFrame, test: pl.DataFrame, checks: dict, budgets: Budgets) -> dict:
    """Return the validation report; `report["problems"]` is empty when the data passes."""
    absent = absent_features(train, test)
    problems = _schema_problems("data/prepared/train.parquet", train, absent)
    problems += _schema_problems("data/prepared/test.parquet", test, absent)
    untracked, harvested = checks["batches_without_telemetry"], checks["harvested_batches"]
    unread = checks.get("batches_without_valid_readings") or {"count": 0}
    left_out = untracked + unread["count"]
    if left_out > budgets.max_batches_without_telemetry * max(harvested, 1):
        why = []
        if untracked:
            stray = checks.get("unknown_batch_ids") or {"count": 0}
            seen = (
                f"; telemetry tags {stray['count']} batch id(s) not in batches, e.g. "
                f"{', '.join(stray['examples'])}"
                + (f". {stray['leading_zeros'].rstrip('.')}" if stray.get("leading_zeros") else "")
                if stray["count"]
                else ""
            )
            why.append(
                f"{untracked} have no telemetry at all (do the telemetry's batch ids match the "
                f"batches table's?{seen})"
            )
        if unread["count"]:
            sensors = ", ".join(f"'{s}' in {n}" for s, n in unread["by_sensor"].items())
            why.append(
                f"{unread['count']} have no valid reading of a sensor a recipe sets ({sensors}; "
                f"e.g. {', '.join(unread['examples'])}): every reading empty or outside the "
                "sensor's physical bounds, a probe down or logging in another unit"
            )
        problems.append(
            f"{left_out} of {harvested} harvested batches ({left_out / max(harvested, 1):.2%}) "
            "are left out of the models, more than validate.max_batches_without_telemetry "
            f"({budgets.max_batches_without_telemetry:.1%}): {'; '.join(why)}."
        )
    if train.height < budgets.min_train_rows or test.height < budgets.min_test_rows:
        problems.append(
            f"the time split left {train.height} training and {test.height} test batches; "
            f"need at least {budgets.min_train_rows} and {budgets.min_test_rows} "
            "(params: validate.min_train_rows, validate.min_test_rows)."
        )
    overlap = train.join(test, on="batch_id", how="semi").height
    if overlap or (
        train.height and test.height and train["harvest_date"].max() >= test["start_date"].min()
    ):
        problems.append("train and test overlap in time or in batch ids (leakage).")
    seen = [g for g in GRADES if g in set(train["quality_grade"].unique().to_list())]
    if train.height and len(seen) < 2:
        problems.append(
            f"data/prepared/train.parquet: column 'quality_grade' holds only {seen}; the "
            f"classifier needs batches of at least two of {', '.join(GRADES)}."
        )

    problems += _weight_problems(train, test, budgets)

    rows = max(checks["telemetry_rows"], 1)
    glitch_fraction = {s: checks["glitches"][s] / rows for s in SENSORS}
    dropout_fraction = checks["dropout_rows"] / rows
    for sensor, fraction in glitch_fraction.items():
        if fraction > budgets.max_glitch_fraction:
            problems.append(
                f"telemetry column '{sensor}': {fraction:.2%} of readings are outside its "
                f"physical bounds, above the budget of {budgets.max_glitch_fraction:.2%} "
                "(params: validate.max_glitch_fraction)."
            )
    if dropout_fraction > budgets.max_dropout_fraction:
        problems.append(
            f"telemetry: {dropout_fraction:.2%} of readings are dropouts (no value from any "
            f"sensor), above the budget of {budgets.max_dropout_fraction:.2%} "
            "(params: validate.max_dropout_fraction)."
        )
    return {
        "passed": not problems,
        "batches": {
            **{
                k: checks[k]
                for k in (
                    "batches",
                    "harvested_batches",
                    "unharvested_batches",
                    "batches_without_telemetry",  # harvested, left out
                )
            },
            # harvests rows with every harvest cell empty: batches still growing
            "harvest_rows_still_growing": checks.get("harvest_rows_still_growing", 0),
            # cycle_days off the dates by more than 2 days: the days grown used
            "cycle_days_from_dates": checks.get("cycle_days_from_dates", {"count": 0}),
            # harvested, left out: no valid reading of a sensor a recipe sets
            "batches_without_valid_readings": checks.get("batches_without_valid_readings", {}),
        },
        "split": {k: checks[k] for k in ("train_rows", "test_rows", "purged_rows")},
        "telemetry": {
            "rows": checks["telemetry_rows"],
            # dated outside their batch's days (a logger tagging the last batch while the
            # module is cleaned): left out of the features
            "rows_outside_batch_days": checks.get("telemetry_rows_outside_batch_days", 0),
            # tagged with a batch id not in batches (a deleted batch, one not entered yet):
            # left out, as they join to no harvest
            "rows_of_unknown_batches": checks.get("telemetry_rows_of_unknown_batches", 0),
            "unknown_batch_ids": checks.get("unknown_batch_ids", {"count": 0, "examples": []}),
            # the same batch and timestamp twice: exact copies dropped; with other values,
            # the first in the file kept and the others dropped
            "repeated_rows_dropped": checks.get("telemetry_repeated_rows", 0),
            "conflicting_rows_dropped": checks.get("telemetry_conflicting_rows", 0),
            "conflict_examples": checks.get("telemetry_conflict_examples", []),
            # CSV rows with fewer fields than the header: last cells read as empty
            "short_rows": checks.get("telemetry_short_rows", {"count": 0}),
            "dropout_fraction": round(dropout_fraction, 6),
            "glitches_cleaned": sum(checks["glitches"].values()),
            "glitch_fraction": {s: round(f, 6) for s, f in glitch_fraction.items()},
            # per sensor, readings it left empty while another sensor had a value (a probe
            # down, installed late, or not logged): no budget, the models take what there is
            "missing_fraction": {s: round(checks["missing"][s] / rows, 6) for s in SENSORS},
            **telemetry_gaps(train, test),
        },
        "grades_absent_from_training": [g for g in GRADES if g not in seen],  # predicted 0
        "features_absent": absent,  # no probe on the farm: left out of the models
        "features_partial": partial_features(train, test),  # share of batches measured
        "test_batches_of_untrained_crops": untrained_crops(train, test),
        # crop -> its spellings in the export (case, spaces, accents), read as one crop
        "crop_spellings_merged": checks.get("crop_spellings_merged", {}),
        "problems": problems,
    }


def summary_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The report's numbers for MLflow: did it pass, how many problems, how dirty the data."""
    return {
        "passed": int(report["passed"]),
        "problems": len(report["problems"]),
        "dropout_fraction": report["telemetry"]["dropout_fraction"],
        "glitches_cleaned": report["telemetry"]["glitches_cleaned"],
        "batches_without_telemetry": report["batches"]["batches_without_telemetry"],
    }
