"""Telemetry -> one feature row per batch, in one streaming pass.

Readings outside a sensor's physical bounds are glitches: set to null and counted.
Rows where every sensor is null are dropouts. Aggregates ignore nulls. Polars' streaming
engine keeps memory flat however long the telemetry is.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from vertiflow.agronomy import CROPS
from vertiflow.errors import DataError
from vertiflow.schemas import SENSOR_BOUNDS, SENSORS

LIT_PPFD = 1.0  # umol/m2/s: above this the lights count as on
SECONDS_PER_DAY_MOL = 86400 / 1e6  # mean PPFD (umol/m2/s) -> DLI (mol/m2/d)


@dataclass
class TelemetrySummary:
    features: pl.DataFrame  # one row per batch with telemetry
    rows: int
    dropout_rows: int
    glitches: dict[str, int]  # per sensor: readings outside physical bounds


def _crop_bands() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "crop": list(CROPS),
            "t_lo": [c.temp_band[0] for c in CROPS.values()],
            "t_hi": [c.temp_band[1] for c in CROPS.values()],
            "rh_lo": [c.rh_band[0] for c in CROPS.values()],
            "rh_hi": [c.rh_band[1] for c in CROPS.values()],
        }
    )


def crop_relative(table: pl.DataFrame) -> pl.DataFrame:
    """Climate relative to each crop's agronomic optimum, so crops share one response curve."""
    optima = pl.DataFrame(
        {
            "crop": list(CROPS),
            "_t": [c.t_opt for c in CROPS.values()],
            "_rh": [c.rh_opt for c in CROPS.values()],
            "_ec": [c.ec_opt for c in CROPS.values()],
            "_ph": [c.ph_opt for c in CROPS.values()],
        }
    )
    return (
        table.join(optima, on="crop", how="left")
        .with_columns(
            (pl.col("temp_mean") - pl.col("_t")).alias("temp_dev"),
            (pl.col("humidity_mean") - pl.col("_rh")).alias("humidity_dev"),
            (pl.col("ec_mean") - pl.col("_ec")).alias("ec_dev"),
            (pl.col("ph_mean") - pl.col("_ph")).alias("ph_dev"),
        )
        .drop("_t", "_rh", "_ec", "_ph")
    )


def _fraction_out(col: str, lo: str, hi: str) -> pl.Expr:
    x = pl.col(col)
    return ((x < pl.col(lo)) | (x > pl.col(hi))).sum() / x.is_not_null().sum()


def summarise_telemetry(
    telemetry: pl.LazyFrame, batches: pl.DataFrame, source: str
) -> TelemetrySummary:
    """Clean glitches and aggregate per batch; refuses telemetry for unknown batches."""
    bands = batches.select("batch_id", "crop").join(_crop_bands(), on="crop", how="left")
    glitch = {
        s: pl.col(s).is_not_null() & ~pl.col(s).is_between(*SENSOR_BOUNDS[s]) for s in SENSORS
    }
    cleaned = telemetry.with_columns(
        pl.all_horizontal(pl.col(s).is_null() for s in SENSORS).alias("_dropout"),
        *(glitch[s].alias(f"_glitch_{s}") for s in SENSORS),
        *(pl.when(glitch[s]).then(None).otherwise(pl.col(s)).alias(s) for s in SENSORS),
    ).join(bands.lazy(), on="batch_id", how="left")

    ppfd = pl.col("light_intensity_ppfd")
    aggregated = (
        cleaned.group_by("batch_id")
        .agg(
            pl.len().alias("n_readings"),
            pl.col("_dropout").sum().alias("dropout_rows"),
            *(pl.col(f"_glitch_{s}").sum().alias(f"_glitch_{s}") for s in SENSORS),
            pl.col("crop").first().alias("_crop"),
            pl.col("air_temp_internal").mean().alias("temp_mean"),
            pl.col("air_temp_internal").std().alias("temp_std"),
            pl.col("air_humidity").mean().alias("humidity_mean"),
            pl.col("air_humidity").std().alias("humidity_std"),
            pl.col("co2_level_ambient").mean().alias("co2_mean"),
            pl.col("vapor_pressure_deficit").mean().alias("vpd_mean"),
            ppfd.filter(ppfd > LIT_PPFD).mean().alias("ppfd_lit_mean"),
            ((ppfd > LIT_PPFD).sum() / ppfd.is_not_null().sum() * 24.0).alias("photoperiod_h"),
            (ppfd.mean() * SECONDS_PER_DAY_MOL).alias("dli_mean"),
            pl.col("nutrient_solution_ec").mean().alias("ec_mean"),
            pl.col("nutrient_solution_ec").std().alias("ec_std"),
            pl.col("water_ph").mean().alias("ph_mean"),
            pl.col("water_ph").std().alias("ph_std"),
            pl.col("water_temp").mean().alias("water_temp_mean"),
            pl.col("dissolved_oxygen").mean().alias("dissolved_oxygen_mean"),
            _fraction_out("air_temp_internal", "t_lo", "t_hi").alias("temp_out_of_band"),
            _fraction_out("air_humidity", "rh_lo", "rh_hi").alias("humidity_out_of_band"),
        )
        .collect(engine="streaming")
        .sort("batch_id")
    )

    unknown = aggregated.filter(pl.col("_crop").is_null())["batch_id"]
    if len(unknown):
        raise DataError(
            f"{source}: telemetry refers to {len(unknown)} batch id(s) not in batches "
            f"(e.g. {', '.join(unknown.head(3).to_list())}); every reading needs a known batch."
        )
    glitches = {s: int(aggregated[f"_glitch_{s}"].sum()) for s in SENSORS}
    features = aggregated.with_columns(
        (pl.col("dropout_rows") / pl.col("n_readings")).alias("dropout_fraction")
    ).drop("_crop", "dropout_rows", *(f"_glitch_{s}" for s in SENSORS))
    return TelemetrySummary(
        features=features,
        rows=int(aggregated["n_readings"].sum()),
        dropout_rows=int(aggregated["dropout_rows"].sum()),
        glitches=glitches,
    )
