"""Telemetry -> one feature row per batch, in one streaming pass.

Readings outside a sensor's physical bounds are glitches: set to null and counted.
Rows where every sensor is null are dropouts. Aggregates ignore nulls. Polars' streaming
engine keeps memory flat however long the telemetry is.

Every reading is first turned into integers (thousandths), squares and flags, so the
group-by only sums: that keeps polars on its streaming engine (flat memory), and integer
sums are exact whatever order parallel workers add them in, so the prepared data hashes
the same on every run (float sums do not).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from vertiflow.data.schemas import SENSOR_BOUNDS, SENSOR_UNITS, SENSORS
from vertiflow.errors import DataError
from vertiflow.farm.agronomy import CROPS

LIT_PPFD = 1.0  # umol/m2/s: above this the lights count as on
SECONDS_PER_DAY_MOL = 86400 / 1e6  # mean PPFD (umol/m2/s) -> DLI (mol/m2/d)
RESOLUTION = 1000  # readings are summed as integers in thousandths

# feature prefix -> sensor; (sum, count) feed a mean, a sum of squares adds a std.
MEANS = {
    "temp": "air_temp_internal",
    "humidity": "air_humidity",
    "co2": "co2_level_ambient",
    "vpd": "vapor_pressure_deficit",
    "ppfd": "light_intensity_ppfd",
    "ec": "nutrient_solution_ec",
    "ph": "water_ph",
    "water_temp": "water_temp",
    "dissolved_oxygen": "dissolved_oxygen",
}
STDS = ("temp", "humidity", "ec", "ph")


@dataclass(frozen=True)
class CropOptimum:
    """A crop's climate optimum and comfort bands: the reference of the *_dev features."""

    air_temp: float
    humidity: float
    ec: float
    ph: float
    temp_band: tuple[float, float]
    humidity_band: tuple[float, float]


def builtin_optima() -> dict[str, CropOptimum]:
    """The built-in crops' optima (the simulator's agronomy): params' defaults."""
    return {
        name: CropOptimum(c.t_opt, c.rh_opt, c.ec_opt, c.ph_opt, c.temp_band, c.rh_band)
        for name, c in CROPS.items()
    }


def optima_from_params(section: Mapping[str, Mapping]) -> dict[str, CropOptimum]:
    """`prepare.crop_optima` from params: crop -> its optimum."""
    return {
        crop: CropOptimum(
            v["air_temp"],
            v["humidity"],
            v["ec"],
            v["ph"],
            tuple(v["temp_band"]),
            tuple(v["humidity_band"]),
        )
        for crop, v in section.items()
    }


EMPTY_ID = "(empty)"  # how a reading without a batch_id is named in the reports


@dataclass(frozen=True)
class UnknownBatches:
    """Readings tagged with a batch id the batches table lacks (a logger still tagging a
    deleted batch, or one not entered yet): left out, as they join to no harvest."""

    rows: int
    batches: int
    examples: list[str]  # a few of the ids, sorted
    ids: list[str] = field(default_factory=list, repr=False)  # all of them, sorted


@dataclass(frozen=True)
class Repeats:
    """Readings met twice (same batch_id and timestamp), as logger re-sends and
    concatenated exports make them: one kept per batch and timestamp."""

    exact_rows: int  # copies identical in every column read: dropped
    conflicting_rows: int  # same batch and timestamp, other values: dropped, the first kept
    examples: list[str]  # a few conflicting keys, "<batch_id> <timestamp>"


@dataclass
class TelemetrySummary:
    features: pl.DataFrame  # one row per batch with telemetry
    rows: int
    dropout_rows: int
    glitches: dict[str, int]  # per sensor: readings outside physical bounds
    missing: dict[str, int]  # per sensor: empty while another sensor had a value
    outside_window_rows: int = 0  # readings dated outside their batch's days: left out
    unknown: UnknownBatches = field(default_factory=lambda: UnknownBatches(0, 0, []))
    repeats: Repeats = field(default_factory=lambda: Repeats(0, 0, []))


def _crop_bands(optima: Mapping[str, CropOptimum]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "crop": list(optima),
            "t_lo": [float(c.temp_band[0]) for c in optima.values()],
            "t_hi": [float(c.temp_band[1]) for c in optima.values()],
            "rh_lo": [float(c.humidity_band[0]) for c in optima.values()],
            "rh_hi": [float(c.humidity_band[1]) for c in optima.values()],
        },
        schema={"crop": pl.String, **{k: pl.Float64 for k in ("t_lo", "t_hi", "rh_lo", "rh_hi")}},
    )


def _row_terms(
    bands: pl.DataFrame, telemetry: pl.LazyFrame, windows: pl.DataFrame | None
) -> pl.LazyFrame:
    """Per reading: integer values (null when missing or a glitch), squares and flags.
    A reading outside its batch's days (`windows`) counts only as `_outside`."""
    glitch = {
        s: pl.col(s).is_not_null() & ~pl.col(s).is_between(*SENSOR_BOUNDS[s]) for s in SENSORS
    }
    valid = {s: pl.when(glitch[s]).then(None).otherwise(pl.col(s)) for s in SENSORS}
    dropout = pl.all_horizontal(pl.col(s).is_null() for s in SENSORS)
    fixed = {k: (valid[s] * RESOLUTION).round().cast(pl.Int64) for k, s in MEANS.items()}
    lit = valid["light_intensity_ppfd"] > LIT_PPFD
    temp, rh = valid["air_temp_internal"], valid["air_humidity"]
    lazy = telemetry.join(bands.lazy(), on="batch_id", how="left")
    outside = pl.lit(False)
    if windows is not None:
        lazy = lazy.join(windows.lazy(), on="batch_id", how="left")
        ts = pl.col("timestamp")
        outside = ((ts < pl.col("_from")) | (ts > pl.col("_to"))).fill_null(False)
    terms = [
        pl.col("crop").is_null().cast(pl.Int64).alias("_unknown"),
        pl.col("t_lo").is_not_null().cast(pl.Int64).alias("_has_band"),
        dropout.cast(pl.Int64).alias("_dropout"),
        *(glitch[s].cast(pl.Int64).alias(f"_glitch_{s}") for s in SENSORS),
        # a sensor's own gaps (empty while another sensor has a value), for the sensors
        # whose valid readings are not counted already (`missing_readings`)
        *(
            (pl.col(s).is_null() & ~dropout).cast(pl.Int64).alias(f"_missing_{s}")
            for s in SENSORS
            if s not in MEANS.values()
        ),
        *(fixed[k].alias(f"_{k}_sum") for k in MEANS),
        *(fixed[k].is_not_null().cast(pl.Int64).alias(f"_{k}_n") for k in MEANS),
        *((fixed[k] * fixed[k]).alias(f"_{k}_sq") for k in STDS),
        lit.cast(pl.Int64).alias("_lit_n"),
        pl.when(lit).then(fixed["ppfd"]).alias("_lit_sum"),
        ((temp < pl.col("t_lo")) | (temp > pl.col("t_hi"))).cast(pl.Int64).alias("_temp_oob"),
        ((rh < pl.col("rh_lo")) | (rh > pl.col("rh_hi"))).cast(pl.Int64).alias("_humidity_oob"),
        (~outside).cast(pl.Int64).alias("_inside"),
    ]
    return lazy.select(
        "batch_id",
        *(pl.when(~outside).then(t) for t in terms),  # an outside reading adds nothing
        outside.cast(pl.Int64).alias("_outside"),
    )


def _from_sums(sums: pl.DataFrame) -> pl.DataFrame:
    """Means, stds and fractions from the exact per-batch integer sums."""

    def mean(k: str, total: str | None = None, n: str | None = None) -> pl.Expr:
        return pl.col(total or f"_{k}_sum") / pl.col(n or f"_{k}_n") / RESOLUTION

    def std(k: str) -> pl.Expr:
        n, total = pl.col(f"_{k}_n").cast(pl.Float64), pl.col(f"_{k}_sum").cast(pl.Float64)
        var = (pl.col(f"_{k}_sq").cast(pl.Float64) - total * total / n) / (n - 1)
        # one reading has no spread to measure: 0, not 0 / 0
        return pl.when(n == 1).then(0.0).otherwise(var.clip(lower_bound=0).sqrt() / RESOLUTION)

    return sums.select(
        "batch_id",
        "n_readings",
        *(mean(k).alias(f"{k}_mean") for k in MEANS if k != "ppfd"),
        *(std(k).alias(f"{k}_std") for k in STDS),
        mean("ppfd", "_lit_sum", "_lit_n").alias("ppfd_lit_mean"),
        (pl.col("_lit_n") / pl.col("_ppfd_n") * 24.0).alias("photoperiod_h"),
        (mean("ppfd") * SECONDS_PER_DAY_MOL).alias("dli_mean"),
        # a crop without optima in params has no band: its out-of-band shares are empty
        *(
            pl.when(pl.col("_has_band") > 0)
            .then(pl.col(f"_{k}_oob") / pl.col(f"_{k}_n"))
            .alias(f"{k}_out_of_band")
            for k in ("temp", "humidity")
        ),
        (pl.col("_dropout") / pl.col("n_readings")).alias("dropout_fraction"),
    ).with_columns(pl.col(pl.Float64).fill_nan(None))  # 0 / 0: a sensor with no reading


def summarise_telemetry(
    telemetry: pl.LazyFrame,
    batches: pl.DataFrame,
    optima: Mapping[str, CropOptimum] | None = None,
    windows: pl.DataFrame | None = None,
) -> TelemetrySummary:
    """Clean glitches and aggregate per batch.

    Repeated readings are dropped first (`drop_repeats`). Readings of batch ids the
    batches table lacks are left out and counted (`UnknownBatches`). `windows` (batch_id,
    _from, _to): each batch's days; readings outside them (a logger still tagging the
    last batch while the module is cleaned) are left out and counted."""
    bands = _crop_bands(builtin_optima() if optima is None else optima)
    bands = batches.select("batch_id", "crop").join(bands, on="crop", how="left")
    telemetry, repeats = drop_repeats(telemetry)
    terms = _row_terms(bands, telemetry, windows)
    sums = (  # streams the file: a bad row deep in it raises here, for the caller to name
        terms.group_by("batch_id")
        .agg(pl.exclude("batch_id").sum())
        .rename({"_inside": "n_readings"})
        # Every column is read, also those no feature uses (module_id): polars checks a CSV
        # row's field count only then. A row one field too long (an unquoted decimal comma,
        # `21,7`) had its values moved one column along, silently.
        .collect(engine="streaming", optimizations=pl.QueryOptFlags(projection_pushdown=False))
        .sort("batch_id")
    )
    # An empty batch_id (a module between cycles, its logger still on) is one more id the
    # batches table lacks: left out and counted with them, shown as "(empty)".
    stray = sums.filter(pl.col("_unknown") > 0)
    unknown = UnknownBatches(
        rows=int(stray["n_readings"].sum()),
        batches=stray.height,
        examples=stray["batch_id"].fill_null(EMPTY_ID).head(5).to_list(),
        ids=stray["batch_id"].drop_nulls().to_list(),
    )
    outside = int(sums["_outside"].sum())
    sums = sums.filter((pl.col("_unknown") == 0) & (pl.col("n_readings") > 0))
    return TelemetrySummary(  # every reading outside its batch's days: no telemetry
        features=_from_sums(sums),
        rows=int(sums["n_readings"].sum()),
        dropout_rows=int(sums["_dropout"].sum()),
        glitches={s: int(sums[f"_glitch_{s}"].sum()) for s in SENSORS},
        missing=missing_readings(sums),
        outside_window_rows=outside,
        unknown=unknown,
        repeats=repeats,
    )


KEY = ("batch_id", "timestamp")


def _key_hash() -> pl.Expr:
    """A reading's (batch_id, timestamp) as one 64-bit hash; null without a timestamp."""
    return pl.when(pl.col("timestamp").is_not_null()).then(pl.struct(*KEY).hash(seed=0))


def drop_repeats(telemetry: pl.LazyFrame) -> tuple[pl.LazyFrame, Repeats]:
    """Telemetry with one reading per batch and timestamp, and what was dropped.

    A re-sent reading weighs twice in its batch's means (2 % of rows repeated moved a
    cycle's DLI by up to 0.2 mol/m2/d). Exact copies are dropped. Two readings of one
    batch and time with other values (two loggers on one module, a corrected re-send, a
    local-time clock repeating an hour at a DST change) cannot both be right: the first
    in the file is kept and the others counted. Memory stays flat: one streamed pass
    holds only a 64-bit hash per reading (8 bytes a row: 80 MB for 10M rows), to find
    the keys met twice; only their rows are then loaded, and the rest streams as before.
    """
    if "timestamp" not in telemetry.collect_schema():  # no time: nothing tells a repeat
        return telemetry, Repeats(0, 0, [])
    hashes = telemetry.select(_key_hash().alias("h")).drop_nulls().collect(engine="streaming")
    hashes = hashes["h"].sort()
    repeated = hashes.filter(hashes == hashes.shift(1)).unique()
    del hashes
    if repeated.is_empty():
        return telemetry, Repeats(0, 0, [])
    suspect = _key_hash().is_in(repeated.implode())
    rows = (  # rows whose key hash is repeated: few, unless the file is mostly repeats
        telemetry.with_row_index("_row").filter(suspect).collect(engine="streaming").sort("_row")
    )
    columns = [c for c in rows.columns if c != "_row"]
    distinct = rows.unique(subset=columns, keep="first", maintain_order=True)
    kept = distinct.unique(subset=list(KEY), keep="first", maintain_order=True)
    clashes = (
        distinct.group_by(KEY)
        .len()
        .filter(pl.col("len") > 1)
        .sort(KEY)
        .head(3)
        .select(pl.format("{} {}", "batch_id", pl.col("timestamp").dt.to_string("%Y-%m-%d %H:%M")))
        .to_series()
        .to_list()
    )
    repeats = Repeats(rows.height - distinct.height, distinct.height - kept.height, clashes)
    clean = pl.concat([telemetry.filter(~suspect), kept.drop("_row").lazy()])
    return clean, repeats


# What a recipe sets and what measures it: feature, its sensor, the batches' setpoint.
SETPOINTS = (
    ("temp_mean", "air_temp_internal", "air_temp_setpoint"),
    ("humidity_mean", "air_humidity", "humidity_setpoint"),
    ("co2_mean", "co2_level_ambient", "co2_setpoint"),
    ("ppfd_lit_mean", "light_intensity_ppfd", "ppfd_setpoint"),
    ("ec_mean", "nutrient_solution_ec", "ec_setpoint"),
)
UNIT_FACTOR = 3.0  # a cycle's mean this many times above or below its setpoint: two units
UNIT_SHARE = 0.25  # ... in more than this share of batches (a unit is not a bad cycle)


def check_units(features: pl.DataFrame, batches: pl.DataFrame, source: str) -> None:
    """Refuse a sensor whose batch means are a factor away from their setpoints.

    The same quantity in two units passes every bound when both fit it: humidity logged
    as a fraction (0.65) under a setpoint in % (65), light in W/m2 under a PPFD setpoint,
    a cool room in Fahrenheit (59 F for 15 C). The models would learn the logged scale
    and Cortex would feed them the setpoints'. A real climate wanders around its setpoint
    (within 15 % on the simulated farms), not by a factor of 3 over a whole cycle. A few
    such cycles are real (a CO2 doser that failed for a cycle: ambient 420 ppm under 1,300
    set) and stay; a unit is in most batches, or in all since a logger was changed.
    """
    table = features.join(batches, on="batch_id", how="inner")
    problems = []
    for feature, sensor, setpoint in SETPOINTS:
        if feature not in table.columns or setpoint not in table.columns:
            continue
        both = table.filter((pl.col(feature) > 0) & (pl.col(setpoint) > 0))
        ratio = both[feature] / both[setpoint]
        off = both.filter((ratio > UNIT_FACTOR) | (ratio < 1 / UNIT_FACTOR)).sort("batch_id")
        if off.height <= UNIT_SHARE * both.height:
            continue
        factor = float((off[feature] / off[setpoint]).median())
        examples = ", ".join(
            f"{r['batch_id']}: {r[feature]:.4g} logged against {r[setpoint]:.4g} set"
            for r in off.head(3).iter_rows(named=True)
        )
        unit = SENSOR_UNITS[sensor][0]
        problems.append(
            f"column '{sensor}' averages {factor:.3g} times batches' '{setpoint}' in "
            f"{off.height} of {both.height} batches ({examples}): expected both in {unit}"
        )
    if problems:
        raise DataError(
            f"{source}: " + "; ".join(problems) + ". A sensor and its setpoint in two units "
            "(a fraction for %, W/m2 for umol/m2/s, uS/cm for mS/cm) pass every range; "
            "convert one, or correct the batches' setpoints if these are wrong."
        )


def missing_readings(sums: pl.DataFrame) -> dict[str, int]:
    """Per sensor, readings left empty while another sensor had a value. A reading is
    valid, a glitch, empty in a dropout, or one of these; the aggregated sensors' valid
    readings are counted already, which spares the streaming pass nine columns (a tenth
    of its peak memory on 10M rows)."""
    by_sensor = {s: k for k, s in MEANS.items()}
    out = {}
    for s in SENSORS:
        if s in by_sensor:
            rest = pl.col("n_readings") - pl.col(f"_{by_sensor[s]}_n") - pl.col(f"_glitch_{s}")
            out[s] = int(sums.select((rest - pl.col("_dropout")).sum()).item())
        else:
            out[s] = int(sums[f"_missing_{s}"].sum())
    return out


def crop_relative(
    table: pl.DataFrame, optima: Mapping[str, CropOptimum] | None = None
) -> pl.DataFrame:
    """Climate relative to each crop's agronomic optimum, so crops share one response curve.

    A crop with no optimum (not in `optima`, i.e. not in params' prepare.crop_optima) keeps
    its absolute climate in the *_dev columns: the reference is taken as 0.
    """
    optima = builtin_optima() if optima is None else optima
    reference = pl.DataFrame(
        {
            "crop": list(optima),
            "_t": [float(c.air_temp) for c in optima.values()],
            "_rh": [float(c.humidity) for c in optima.values()],
            "_ec": [float(c.ec) for c in optima.values()],
            "_ph": [float(c.ph) for c in optima.values()],
        },
        schema={"crop": pl.String, **{k: pl.Float64 for k in ("_t", "_rh", "_ec", "_ph")}},
    )
    return (
        table.join(reference, on="crop", how="left")
        .with_columns(pl.col("_t", "_rh", "_ec", "_ph").fill_null(0.0))
        .with_columns(
            (pl.col("temp_mean") - pl.col("_t")).alias("temp_dev"),
            (pl.col("humidity_mean") - pl.col("_rh")).alias("humidity_dev"),
            (pl.col("ec_mean") - pl.col("_ec")).alias("ec_dev"),
            (pl.col("ph_mean") - pl.col("_ph")).alias("ph_dev"),
        )
        .drop("_t", "_rh", "_ec", "_ph")
    )


def derived(table: pl.DataFrame, optima: Mapping[str, CropOptimum] | None = None) -> pl.DataFrame:
    """The features computed from other features, for prepare and Cortex alike: climate
    relative to the crop's optimum, and the cycle's totals.

    Growth accumulates: what a crop weighs at harvest, and how fast it is growing then,
    follow the light and warmth it received over the whole cycle (the cumulative light
    integral, mol/m2, and degree-days, C d from 0 C), which daily means give only as a
    product with the cycle length, a product trees and additive splines learn poorly.
    The totals are on no default feature list: the README gives the measurements why.
    """
    return crop_relative(table, optima).with_columns(
        (pl.col("dli_mean") * pl.col("cycle_days")).alias("light_integral"),
        (pl.col("temp_mean") * pl.col("cycle_days")).alias("degree_days"),
    )
