"""The data contract: raw tables a farm exports, and the prepared feature table.

Names and physical bounds of telemetry fields are VertiFlow's own, so a farm's exports
fit without renaming. Telemetry bounds are *physical*: a reading outside them is a
sensor glitch (flagged and cleaned, not fatal). Batches and harvests are bookkeeping:
a value outside its range there is a data error.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from vertiflow.farm.agronomy import GRADES

# Physical bounds of each sensor (unit, low, high); outside them a reading is a glitch.
SENSOR_UNITS = {
    "air_temp_internal": ("C", -10.0, 60.0),
    "air_humidity": ("%", 0.0, 100.0),
    "co2_level_ambient": ("ppm", 200.0, 5000.0),
    "vapor_pressure_deficit": ("kPa", 0.0, 5.0),
    "light_intensity_ppfd": ("umol/m2/s", 0.0, 2000.0),
    "light_dli_accumulated": ("mol/m2/d", 0.0, 50.0),
    "light_photoperiod": ("h", 0.0, 24.0),
    "nutrient_solution_ec": ("mS/cm", 0.0, 5.0),
    "water_ph": ("pH", 3.0, 10.0),
    "water_temp": ("C", 5.0, 35.0),
    "dissolved_oxygen": ("mg/L", 0.0, 20.0),
}
SENSOR_BOUNDS = {k: (lo, hi) for k, (_, lo, hi) in SENSOR_UNITS.items()}
SENSORS = list(SENSOR_UNITS)


def _num(lo: float, hi: float, *, nullable: bool = False) -> pa.Column:
    return pa.Column(pl.Float64, pa.Check.in_range(lo, hi), nullable=nullable, coerce=True)


BATCHES = pa.DataFrameSchema(
    {
        "batch_id": pa.Column(pl.String, unique=True),
        "crop": pa.Column(pl.String, pa.Check.str_length(min_value=1)),  # any crop: names are data
        "rack_id": pa.Column(pl.String),
        "module_id": pa.Column(pl.String),
        "start_date": pa.Column(pl.Datetime, coerce=True),
        "cycle_days": pa.Column(pl.Int64, pa.Check.in_range(1, 120), coerce=True),
        "air_temp_setpoint": _num(-10.0, 60.0),
        "humidity_setpoint": _num(0.0, 100.0),
        "co2_setpoint": _num(200.0, 5000.0),
        "ppfd_setpoint": _num(0.0, 2000.0),
        "photoperiod_setpoint": _num(0.0, 24.0),
        "ec_setpoint": _num(0.0, 5.0),
        "ph_setpoint": _num(3.0, 10.0),
    },
    name="batches",
)

HARVESTS = pa.DataFrameSchema(
    {
        "batch_id": pa.Column(pl.String, unique=True),
        "harvest_date": pa.Column(pl.Datetime, coerce=True),
        # two checks, not in_range(0, 2000) with its lower bound excluded: a crop failure's
        # 0.0 was refused as breaking 'in_range(0.0, 2000.0)', which it seems to meet
        "fresh_weight_g": pa.Column(
            pl.Float64, [pa.Check.gt(0.0), pa.Check.le(2000.0)], coerce=True
        ),
        "quality_grade": pa.Column(pl.String, pa.Check.isin(list(GRADES))),
        "energy_kwh": _num(0.0, 1e6, nullable=True),
    },
    name="harvests",
)
# A harvest sheet with a row per batch leaves these empty while the batch grows: such a
# row is read as no harvest yet; a row with only some of them empty is refused.
HARVEST_RESULTS = ("harvest_date", "fresh_weight_g", "quality_grade")
# Columns an export may leave out: read as empty. A farm that meters energy per building,
# not per module, has no energy_kwh; nothing trains on it (Cortex's energy cost comes
# from params), so refusing such an export would stop the pipeline for no reason.
OPTIONAL_COLUMNS = ("energy_kwh",)

# Telemetry is streamed, never validated whole: `rawdata.scan_telemetry` checks these
# columns and their types, and `features.summarise_telemetry` screens each reading
# against SENSOR_BOUNDS, counting glitches.
TELEMETRY = pa.DataFrameSchema(
    {
        "batch_id": pa.Column(pl.String),
        "timestamp": pa.Column(pl.Datetime, coerce=True),
        **{name: pa.Column(pl.Float64, nullable=True, coerce=True) for name in SENSORS},
    },
    name="telemetry",
)

# How a CSV's columns are read before validation (`rawdata._csv_overrides`): labels as
# text, measurements as decimals, whatever the first rows look like.
_RAW = (BATCHES, HARVESTS, TELEMETRY)
LABELS = {n for t in _RAW for n, c in t.columns.items() if c.dtype.type == pl.String}
DECIMALS = {n for t in _RAW for n, c in t.columns.items() if c.dtype.type == pl.Float64}

TRUTH = pa.DataFrameSchema(
    {
        "batch_id": pa.Column(pl.String, unique=True),
        "yield_expected_g": pa.Column(pl.Float64),
        "p_premium": _num(0.0, 1.0),
        "p_standard": _num(0.0, 1.0),
        "p_reject": _num(0.0, 1.0),
    },
    name="truth",
)

# The prepared table: one row per batch, every feature present.
FEATURE_RANGES = {
    "cycle_days": (1.0, 120.0),
    "temp_mean": (-10.0, 60.0),
    "temp_std": (0.0, 30.0),
    "humidity_mean": (0.0, 100.0),
    "humidity_std": (0.0, 50.0),
    "co2_mean": (200.0, 5000.0),
    "vpd_mean": (0.0, 5.0),
    "ppfd_lit_mean": (0.0, 2000.0),
    "photoperiod_h": (0.0, 24.0),
    "dli_mean": (0.0, 50.0),
    "ec_mean": (0.0, 5.0),
    "ec_std": (0.0, 5.0),
    "ph_mean": (3.0, 10.0),
    "ph_std": (0.0, 7.0),
    "water_temp_mean": (5.0, 35.0),
    "dissolved_oxygen_mean": (0.0, 20.0),
    "temp_dev": (-60.0, 60.0),
    "humidity_dev": (-100.0, 100.0),
    "ec_dev": (-5.0, 5.0),
    "ph_dev": (-10.0, 10.0),  # a crop without optimum: absolute pH (3..10)
    "temp_out_of_band": (0.0, 1.0),
    "humidity_out_of_band": (0.0, 1.0),
    "dropout_fraction": (0.0, 1.0),
    "light_integral": (0.0, 6000.0),  # mol/m2 per cycle: dli x cycle_days
    "degree_days": (-1200.0, 7200.0),  # C d: temp x cycle_days
}

# Features of probes a farm may not have (its telemetry column is empty): absent from
# every batch they are left out, and a probe installed partway through the history leaves
# them empty before it (the models take missing values). Cortex sets the others from the
# recipe, so those stay required: their sensors are RECIPE_SENSORS.
OPTIONAL_FEATURES = ("vpd_mean", "water_temp_mean", "dissolved_oxygen_mean")
RECIPE_SENSORS = (
    "air_temp_internal",
    "air_humidity",
    "co2_level_ambient",
    "light_intensity_ppfd",
    "nutrient_solution_ec",
    "water_ph",
)

PREPARED = pa.DataFrameSchema(
    {
        "batch_id": pa.Column(pl.String, unique=True),
        "crop": pa.Column(pl.String, pa.Check.str_length(min_value=1)),
        "start_date": pa.Column(pl.Datetime),
        "harvest_date": pa.Column(pl.Datetime),
        # out-of-band shares are empty for a crop with no optimum (no band) in params
        **{
            name: _num(lo, hi, nullable=name.endswith("_out_of_band") or name in OPTIONAL_FEATURES)
            for name, (lo, hi) in FEATURE_RANGES.items()
        },
        "n_readings": pa.Column(pl.Int64, pa.Check.ge(1), coerce=True),
        "fresh_weight_g": pa.Column(pl.Float64, pa.Check.gt(0.0)),
        "quality_grade": pa.Column(pl.String, pa.Check.isin(list(GRADES))),
        "energy_kwh": pa.Column(pl.Float64, pa.Check.ge(0.0), nullable=True),
    },
    name="prepared",
)
