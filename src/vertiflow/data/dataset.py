"""Raw tables -> the prepared train/test tables, split by time without leakage.

Test batches are the latest `test_fraction` by start date; training batches are those
harvested before the first test batch started. Batches that straddle the cut-off are
left out of both (a purge gap), so nothing the model trains on happened after a test
batch began.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import NamedTuple

import polars as pl

from vertiflow.data.csvfiles import read_error
from vertiflow.data.features import (
    CropOptimum,
    TelemetrySummary,
    builtin_optima,
    check_units,
    derived,
    optima_from_params,
    summarise_telemetry,
)
from vertiflow.data.rawdata import CYCLE_SLACK_DAYS, RawData, zeros_hint
from vertiflow.errors import DataError
from vertiflow.params import by_crop

TRUTH_COLUMNS = ["batch_id", "yield_expected_g", "p_premium", "p_standard", "p_reject"]


@dataclass
class Prepared:
    train: pl.DataFrame
    test: pl.DataFrame
    truth: pl.DataFrame  # empty (with columns) when the data has no known truth
    checks: dict  # counts for the validation report
    crops: dict  # per crop: batches, typical cycle length, the optimum used (None: absolute)


def time_split(table: pl.DataFrame, test_fraction: float) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    if not 0.0 < test_fraction < 1.0:
        raise DataError(
            f"params.yaml: prepare.test_fraction is {test_fraction}; expected 0 < x < 1."
        )
    if table.is_empty():  # nothing to split: the gate names why (min_train_rows, ...)
        return table, table, 0
    cutoff = table["start_date"].quantile(1.0 - test_fraction, interpolation="lower")
    test = table.filter(pl.col("start_date") >= cutoff)
    train = table.filter(pl.col("harvest_date") < cutoff)
    return train, test, table.height - train.height - test.height


def crop_table(train: pl.DataFrame, optima: Mapping[str, CropOptimum] | None) -> dict:
    """What later stages need to know of each crop, from the training batches.

    Cortex optimises every crop listed here, over the crop's own typical cycle length.
    """
    out = {}
    for (crop,), rows in train.group_by("crop", maintain_order=True):
        optimum = (optima or {}).get(crop)
        out[crop] = {
            "training_batches": rows.height,
            "cycle_days": float(rows["cycle_days"].median()),
            "optimum": None if optimum is None else asdict(optimum),
        }
    return dict(sorted(out.items()))


# A reading counts for its batch from the day before it starts to the day after its
# harvest: exports date a harvest by its day, and loggers run on local time.
WINDOW_SLACK = dt.timedelta(days=1)


def optima_notice(listed: Iterable[str], crops: Mapping[str, dict]) -> str | None:
    """Crops trained without a climate optimum, with the crop_optima entries that matched
    no crop: a misspelt key (`basill`) silently turned basil's features absolute."""
    bare = [crop for crop, entry in crops.items() if entry["optimum"] is None]
    if not bare:
        return None
    unused = sorted(name for name in listed if all(by_crop({name: 1}, c) is None for c in crops))
    return (
        f"crop(s) {', '.join(bare)} have no entry in prepare.crop_optima: their *_dev "
        "features hold absolute climate values (add an optimum for relative ones)"
        + (f"; its entries {', '.join(unused)} match no crop in the data." if unused else ".")
    )


def build_with_params(raw: RawData, section: Mapping) -> Prepared:
    """`build` as params' `prepare` section says."""
    return build(raw, section["test_fraction"], optima_from_params(section["crop_optima"]))


def features_with_params(raw: RawData, section: Mapping) -> pl.DataFrame:
    """Every harvested batch's features, as `prepare` makes them, without the split: what
    the monitor checks in a farm's new export."""
    return _features(raw, optima_from_params(section["crop_optima"])).table


def build(
    raw: RawData, test_fraction: float, optima: Mapping[str, CropOptimum] | None = None
) -> Prepared:
    """`optima`: crop -> its climate optimum (params: prepare.crop_optima); None = built-in."""
    table, summary, harvested, untracked, unread, optima = _features(raw, optima)
    train, test, purged = time_split(table, test_fraction)
    truth = (
        raw.truth.join(table.select("batch_id"), on="batch_id", how="semi").sort("batch_id")
        if raw.truth is not None
        else pl.DataFrame(
            schema={c: pl.String if c == "batch_id" else pl.Float64 for c in TRUTH_COLUMNS}
        )
    )
    checks = {
        "batches": raw.batches.height,
        "harvested_batches": harvested,
        "unharvested_batches": raw.batches.height - harvested,
        "harvest_rows_still_growing": raw.growing_rows,  # every harvest cell empty
        # cycle_days more than 2 days off harvest_date - start_date: the days grown used
        "cycle_days_from_dates": {
            "count": raw.cycle_days_from_dates,
            "examples": raw.cycle_days_examples,
        },
        "batches_without_telemetry": untracked,  # harvested, left out
        "batches_without_valid_readings": unread,  # of a recipe's sensor: left out
        "telemetry_rows": summary.rows,
        # CSV rows with fewer fields than the header: last cells read as empty (see notices)
        "telemetry_short_rows": raw.telemetry_short_rows,
        "telemetry_rows_outside_batch_days": summary.outside_window_rows,
        # tagged with a batch id not in batches (deleted, or not entered yet): left out
        "telemetry_rows_of_unknown_batches": summary.unknown.rows,
        "unknown_batch_ids": _unknown_ids(raw, summary),
        # a batch and timestamp met twice: exact copies dropped; other values, first kept
        "telemetry_repeated_rows": summary.repeats.exact_rows,
        "telemetry_conflicting_rows": summary.repeats.conflicting_rows,
        "telemetry_conflict_examples": summary.repeats.examples,
        "dropout_rows": summary.dropout_rows,
        "glitches": summary.glitches,
        "missing": summary.missing,
        "train_rows": train.height,
        "test_rows": test.height,
        "purged_rows": purged,
        "has_truth": raw.truth is not None,
        "crop_spellings_merged": raw.crop_spellings,  # crop -> spellings read as it
    }
    crops = crop_table(train, optima)
    return Prepared(train=train, test=test, truth=truth, checks=checks, crops=crops)


def _unknown_ids(raw: RawData, summary: TelemetrySummary) -> dict:
    """Telemetry's batch ids not in batches: how many, a few, and, when they differ from
    batch ids only in leading zeros (`001017` for `1017`), a pair (the key is absent
    otherwise). Those batches then have no telemetry, which the gate names."""
    unknown = summary.unknown
    report: dict = {"count": unknown.batches, "examples": unknown.examples}
    batches = raw.batches_path.name if raw.batches_path else "batches"
    ids = pl.Series(unknown.ids, dtype=pl.String)
    zeros = zeros_hint(ids, raw.batches["batch_id"], raw.telemetry_path.name, batches)
    if zeros:
        report["leading_zeros"] = zeros.strip()
    return report


class _Features(NamedTuple):
    table: pl.DataFrame  # one row per harvested batch with telemetry
    summary: TelemetrySummary
    harvested: int
    untracked: int  # harvested, no telemetry: left out
    unread: dict  # harvested, no valid reading of a sensor a recipe sets: left out
    optima: Mapping[str, CropOptimum]  # as the data spells its crops


def _features(raw: RawData, optima: Mapping[str, CropOptimum] | None) -> _Features:
    optima = builtin_optima() if optima is None else optima
    spelt = {c: by_crop(optima, c) for c in raw.batches["crop"].unique() if c not in optima}
    optima = {**optima, **{c: o for c, o in spelt.items() if o is not None}}  # `Basil`
    windows = raw.batches.join(raw.harvests, on="batch_id", how="left").select(
        "batch_id",
        (pl.col("start_date") - WINDOW_SLACK).alias("_from"),
        (pl.col("harvest_date") + WINDOW_SLACK).alias("_to"),  # none yet: open-ended
    )
    try:  # a bad row past the file's first rows shows only here, while streaming it
        summary: TelemetrySummary = summarise_telemetry(raw.telemetry, raw.batches, optima, windows)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise read_error(raw.telemetry_path, exc) from None
    check_units(summary.features, raw.batches, str(raw.telemetry_path))
    harvested = raw.batches.join(raw.harvests, on="batch_id", how="inner")
    table = (
        harvested.select(
            "batch_id",
            "crop",
            "start_date",
            "harvest_date",
            "cycle_days",
            "fresh_weight_g",
            "quality_grade",
            "energy_kwh",
        )
        .with_columns(pl.col("cycle_days").cast(pl.Float64))
        .join(summary.features, on="batch_id", how="left")
        .pipe(derived, optima)
        .sort("start_date", "batch_id")
    )
    # A batch whose logger recorded nothing has no climate features: left out, counted,
    # and judged against validate.max_batches_without_telemetry.
    untracked = int(table["n_readings"].is_null().sum())
    table = table.filter(pl.col("n_readings").is_not_null())
    table, unread = _without_recipe_readings(table)
    return _Features(table, summary, harvested.height, untracked, unread, optima)


# The features Cortex sets from a recipe, and the sensor that measures each.
RECIPE_FEATURES = {
    "temp_mean": "air_temp_internal",
    "humidity_mean": "air_humidity",
    "co2_mean": "co2_level_ambient",
    "ppfd_lit_mean": "light_intensity_ppfd",
    "ec_mean": "nutrient_solution_ec",
    "ph_mean": "water_ph",
}


def _without_recipe_readings(table: pl.DataFrame) -> tuple[pl.DataFrame, dict]:
    """Batches with no valid reading of a sensor a recipe sets (a probe stuck at 150 %
    all cycle: every reading a glitch) have no value for the models or Cortex: left out
    like a batch with no telemetry, and counted with a few ids (the gate judges them
    against validate.max_batches_without_telemetry)."""
    unread = pl.any_horizontal(pl.col(list(RECIPE_FEATURES)).is_null())
    missing = table.filter(unread)
    by_sensor = {
        sensor: int(missing[feature].null_count())
        for feature, sensor in RECIPE_FEATURES.items()
        if missing[feature].null_count()
    }
    report = {
        "count": missing.height,
        "by_sensor": by_sensor,
        "examples": missing["batch_id"].sort().head(5).to_list(),
    }
    return table.filter(~unread), report


def notices(checks: Mapping) -> list[str]:
    """What prepare left out or merged without failing, one line each, for the stage to
    say (the counts are in checks.json and the validation report)."""
    out = []
    stray = checks.get("unknown_batch_ids") or {"count": 0}
    if stray["count"]:
        out.append(
            f"{checks['telemetry_rows_of_unknown_batches']} telemetry row(s) of "
            f"{stray['count']} batch id(s) not in batches left out (e.g. "
            f"{', '.join(stray['examples'])}): they join to no batch or harvest."
            + (f" {stray['leading_zeros']}" if stray.get("leading_zeros") else "")
        )
    if checks.get("telemetry_repeated_rows"):
        out.append(
            f"{checks['telemetry_repeated_rows']} telemetry row(s) repeated exactly (same "
            "batch, timestamp and readings) dropped."
        )
    if checks.get("telemetry_conflicting_rows"):
        out.append(
            f"{checks['telemetry_conflicting_rows']} telemetry row(s) share a batch and "
            "timestamp with another row but not its readings (e.g. "
            f"{', '.join(checks['telemetry_conflict_examples'])}): the first in the file "
            "kept, the others dropped."
        )
    regrown = checks.get("cycle_days_from_dates") or {"count": 0}
    if regrown["count"]:
        out.append(
            f"{regrown['count']} harvested batch(es) with a cycle_days more than "
            f"{CYCLE_SLACK_DAYS} days off the days from start_date to harvest_date "
            f"(e.g. {'; '.join(regrown['examples'])}): read as the days grown (a planned "
            "length there would teach the models the plan). Check the dates if they are wrong."
        )
    short = checks.get("telemetry_short_rows") or {"count": 0}
    if short["count"]:
        out.append(
            f"{short['count']} telemetry row(s) have fewer fields than the header's "
            f"{short['fields']} (first: data row {short['first_row']}, {short['first']!r}): "
            "read with their last cells empty. Right if the export leaves out trailing empty "
            "cells; if a value is missing mid-row, that row's values sit one column early, and "
            "a last row cut short is a file cut off: fix the export."
        )
    if checks.get("harvest_rows_still_growing"):
        out.append(
            f"{checks['harvest_rows_still_growing']} harvests row(s) with every harvest cell "
            "empty read as batches still growing."
        )
    return out
