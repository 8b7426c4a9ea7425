"""The built-in farm: crop cycles, sensor telemetry and harvests, deterministic by seed.

Each module runs crop cycles back to back. A cycle's recipe (setpoints) is drawn from
the range the farm explores; the climate it actually gets deviates a little from the
setpoints; yield and quality follow `agronomy` with known noise, so the simulator also
writes the truth (`truth.parquet`): the Bayes-optimal yield and grade probabilities.
Telemetry carries what real sensors do: noise, slow drift, dropouts and spikes.

`SimConfig.world = "simple"` grows the crops with a second, independent crop model
(`simple_model`, the SIMPLE model of Zhao et al. 2019) instead; schedule, climate control,
sensors and energy stay the same. `world.json` names the world that made the data, so
Cortex can judge its recipes by that world's own truth.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vertiflow.data.schemas import SENSOR_BOUNDS
from vertiflow.farm import agronomy, simple_model
from vertiflow.farm.energy import EnergyModel

LIGHTS_ON_HOUR = 23  # lights start in the off-peak window (23:00-07:00)


@dataclass(frozen=True)
class SimConfig:
    seed: int = 42
    crops: dict[str, float] = field(default_factory=lambda: {"basil": 0.6, "lettuce": 0.4})
    racks: int = 10
    modules_per_rack: int = 8
    cycles_per_module: int = 40
    interval_minutes: int = 60
    start_date: str = "2010-01-04"
    module_area_m2: float = 2.0
    yield_noise: float = 0.08  # lognormal sigma of fresh weight around its expectation
    dropout_rate: float = 0.01  # share of readings where the logger sent nothing
    spike_rate: float = 0.0005  # share of readings per sensor with a fault value
    rows_per_chunk: int = 1_000_000
    # Drift scenarios, for monitoring tests and demos (the defaults are the farm as trained):
    co2_sensor_offset_ppm: float = 0.0  # a miscalibrated CO2 sensor: readings only
    climate_shift_c: float = 0.0  # a hotter summer the HVAC cannot hold: real air temperature
    setpoint_shift: dict[str, float] = field(default_factory=dict)  # a new cultivar's recipe
    yield_scale: float = 1.0  # ... and its different plant size
    world: str = "agronomy"  # or "simple": the second, independent crop model


def cycle_days(cfg: SimConfig, name: str) -> int:
    world = simple_model.crop if cfg.world == simple_model.NAME else agronomy.crop
    return world(name).cycle_days


def _recipes(rng: np.random.Generator, crops: list[agronomy.Crop]) -> pd.DataFrame:
    """Setpoints over the range the farm has explored (wider than the good band)."""
    n = len(crops)
    t_opt = np.array([c.t_opt for c in crops])
    ec_opt = np.array([c.ec_opt for c in crops])
    return pd.DataFrame(
        {
            "air_temp_setpoint": np.round(t_opt + rng.uniform(-7.0, 6.0, n), 1),
            "humidity_setpoint": np.round(rng.uniform(45.0, 88.0, n), 0),
            "co2_setpoint": np.round(rng.uniform(400.0, 1500.0, n), -1),
            "ppfd_setpoint": np.round(rng.uniform(150.0, 550.0, n), 0),
            "photoperiod_setpoint": rng.integers(12, 21, n).astype(float),  # whole hours
            "ec_setpoint": np.round(np.maximum(ec_opt + rng.uniform(-0.8, 1.0, n), 0.4), 2),
            "ph_setpoint": np.round(rng.uniform(5.2, 6.9, n), 2),
        }
    )


def _schedule(cfg: SimConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Which crop runs on which module when: cycles back to back with a turnaround day."""
    names = list(cfg.crops)
    weights = np.array([cfg.crops[n] for n in names], dtype=float)
    rows = []
    farm_start = pd.Timestamp(cfg.start_date)
    for r in range(1, cfg.racks + 1):
        for m in range(1, cfg.modules_per_rack + 1):
            day = int(rng.integers(0, 21))
            for _ in range(cfg.cycles_per_module):
                crop = names[rng.choice(len(names), p=weights / weights.sum())]
                days = cycle_days(cfg, crop) + int(rng.integers(-3, 4))
                rows.append(
                    (f"R{r:02d}", f"R{r:02d}-M{m}", crop, farm_start + pd.Timedelta(days=day), days)
                )
                day += days + 1
    sched = pd.DataFrame(rows, columns=["rack_id", "module_id", "crop", "start_date", "cycle_days"])
    sched = sched.sort_values(["start_date", "module_id"], kind="stable").reset_index(drop=True)
    sched.insert(0, "batch_id", [f"B{i:06d}" for i in range(1, len(sched) + 1)])
    return sched


def simulate_batches(
    cfg: SimConfig,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Batches, harvests, truth and the realised climate (the last feeds telemetry)."""
    rng = np.random.default_rng(cfg.seed)
    batches = _schedule(cfg, rng)
    simple = cfg.world == simple_model.NAME
    if simple:
        setpoints = simple_model.recipes(rng, len(batches))
    else:
        setpoints = _recipes(rng, [agronomy.crop(c) for c in batches["crop"]])
    batches = pd.concat([batches, setpoints], axis=1)
    for column, shift in cfg.setpoint_shift.items():
        batches[column] = batches[column] + shift
    n = len(batches)

    real = pd.DataFrame(
        {
            "temp": batches["air_temp_setpoint"] + rng.normal(0.0, 0.4, n) + cfg.climate_shift_c,
            "rh": np.clip(batches["humidity_setpoint"] + rng.normal(0.0, 2.0, n), 20, 98),
            "co2": batches["co2_setpoint"] + rng.normal(0.0, 30.0, n),
            "ppfd": batches["ppfd_setpoint"] * (1.0 + rng.normal(0.0, 0.02, n)),
            "photoperiod": batches["photoperiod_setpoint"].to_numpy(dtype=float),
            "ec": np.maximum(batches["ec_setpoint"] + rng.normal(0.0, 0.05, n), 0.1),
            "ph": batches["ph_setpoint"] + rng.normal(0.0, 0.08, n),
        }
    )
    real["dli"] = agronomy.dli(real["ppfd"], real["photoperiod"])
    if simple:
        mu, fresh_weight, probs, grades = simple_model.outcomes(batches, real, rng, cfg.yield_noise)
        mu, fresh_weight = mu * cfg.yield_scale, fresh_weight * cfg.yield_scale
    else:
        mu, fresh_weight, probs, grades = _agronomy_outcomes(cfg, batches, real, rng)
    return _tables(cfg, batches, real, rng, mu, fresh_weight, probs, grades)


def _agronomy_outcomes(
    cfg: SimConfig, batches: pd.DataFrame, real: pd.DataFrame, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = len(batches)
    mu = np.empty(n)
    quality_mean = np.empty(n)
    for name in batches["crop"].unique():
        idx = (batches["crop"] == name).to_numpy()
        c, r = agronomy.crop(name), real[idx]
        mu[idx] = agronomy.expected_yield_g(
            c, r.temp, r.rh, r.co2, r.dli, r.ec, r.ph, batches.loc[idx, "cycle_days"]
        )
        quality_mean[idx] = agronomy.quality_score_mean(c, r.temp, r.rh, r.dli, r.ec, r.ph)

    sigma = cfg.yield_noise
    mu = mu * cfg.yield_scale
    fresh_weight = mu * rng.lognormal(-(sigma**2) / 2.0, sigma, n)  # E[fresh_weight] = mu
    score = quality_mean + rng.normal(0.0, agronomy.QUALITY_NOISE, n)
    probs = agronomy.grade_probabilities(quality_mean)
    return mu, fresh_weight, probs, agronomy.grade_from_score(score)


def _tables(
    cfg: SimConfig,
    batches: pd.DataFrame,
    real: pd.DataFrame,
    rng: np.random.Generator,
    mu: np.ndarray,
    fresh_weight: np.ndarray,
    probs: np.ndarray,
    grades: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    n = len(batches)
    energy = EnergyModel()
    per_m2_day = energy.led_kwh_per_m2_day(
        real.ppfd, real.photoperiod
    ) + energy.hvac_kwh_per_m2_day(real.ppfd, real.photoperiod, real.temp)
    energy_kwh = per_m2_day * batches["cycle_days"] * cfg.module_area_m2 * rng.normal(1.0, 0.03, n)

    harvests = pd.DataFrame(
        {
            "batch_id": batches["batch_id"],
            "harvest_date": batches["start_date"]
            + pd.to_timedelta(batches["cycle_days"], unit="D"),
            "fresh_weight_g": np.round(fresh_weight, 2),
            "quality_grade": grades,
            "energy_kwh": np.round(energy_kwh, 2),
        }
    )
    # Rounded far below any effect: numpy's exp/log differ in the last bit between
    # AVX-512 and AVX2 machines, which changed truth.parquet's md5 (nothing else in
    # the export: its readings are already rounded as a sensor's are).
    truth = pd.DataFrame(
        {
            "batch_id": batches["batch_id"],
            "yield_expected_g": np.round(mu, 6),  # micrograms
            "p_premium": np.round(probs[:, 0], 9),
            "p_standard": np.round(probs[:, 1], 9),
            "p_reject": np.round(probs[:, 2], 9),
        }
    )
    return batches, harvests, truth, real


def _telemetry_chunk(
    cfg: SimConfig, batches: pd.DataFrame, real: pd.DataFrame, rng: np.random.Generator
) -> pa.Table:
    per_day = 24 * 60 // cfg.interval_minutes
    counts = batches["cycle_days"].to_numpy() * per_day
    b = np.repeat(np.arange(len(batches)), counts)
    i = np.arange(len(b)) - np.repeat(np.cumsum(counts) - counts, counts)  # reading index in batch
    frac = i / counts[b]  # progress through the cycle, for drift
    minute = (i * cfg.interval_minutes) % 1440
    photoperiod = real["photoperiod"].to_numpy()[b]
    lit = ((minute / 60.0 - LIGHTS_ON_HOUR) % 24.0) < photoperiod
    lit_dev = lit - photoperiod / 24.0  # zero-mean diurnal swing
    n = len(b)

    def per_batch(col: str) -> np.ndarray:
        return real[col].to_numpy()[b]

    def drift(scale: float) -> np.ndarray:  # probes recalibrated at each cycle start
        return rng.normal(0.0, scale, len(batches))[b] * frac

    temp = per_batch("temp") + 0.8 * lit_dev + drift(0.1) + rng.normal(0.0, 0.3, n)
    rh = per_batch("rh") - 3.0 * lit_dev + drift(0.3) + rng.normal(0.0, 1.5, n)
    ppfd = np.maximum(lit * (per_batch("ppfd") + rng.normal(0.0, 5.0, n)), 0.0)
    water_temp = 19.0 + 0.4 * (per_batch("temp") - 20.0) + rng.normal(0.0, 0.2, n)
    day_start = np.r_[0, np.flatnonzero(np.diff(b * 10_000 + i // per_day)) + 1]
    group_first = np.repeat(day_start, np.diff(np.r_[day_start, n]))
    light_mol = ppfd * cfg.interval_minutes * 60.0 / 1e6
    cum = np.cumsum(light_mol)
    columns = {
        "air_temp_internal": temp,
        "air_humidity": np.clip(rh, 0.0, 100.0),
        "co2_level_ambient": per_batch("co2")
        + rng.normal(0.0, 25.0, n)
        + cfg.co2_sensor_offset_ppm,
        "vapor_pressure_deficit": agronomy.vpd_kpa(temp, np.clip(rh, 0.0, 100.0)),
        "light_intensity_ppfd": ppfd,
        "light_dli_accumulated": cum - cum[group_first] + light_mol[group_first],
        "light_photoperiod": photoperiod,
        "nutrient_solution_ec": per_batch("ec") + drift(0.03) + rng.normal(0.0, 0.04, n),
        "water_ph": per_batch("ph") + drift(0.03) + rng.normal(0.0, 0.05, n),
        "water_temp": water_temp,
        "dissolved_oxygen": 8.8 - 0.18 * (water_temp - 20.0) + rng.normal(0.0, 0.2, n),
    }
    dropout = rng.random(n) < cfg.dropout_rate
    for name, values in columns.items():
        values = np.round(values, 3)
        lo, hi = SENSOR_BOUNDS[name]
        spike = rng.random(n) < cfg.spike_rate
        values[spike] = np.where(rng.random(spike.sum()) < 0.5, lo - 999.0, hi + 999.0)
        values[dropout] = np.nan
        columns[name] = values

    start = batches["start_date"].to_numpy().astype("datetime64[us]")[b]
    table = {
        "batch_id": batches["batch_id"].to_numpy()[b],
        "module_id": batches["module_id"].to_numpy()[b],
        "timestamp": start + (i * cfg.interval_minutes).astype("timedelta64[m]"),
        **columns,
    }
    return pa.table(table)


def write_farm(out_dir: Path, cfg: SimConfig) -> dict[str, int]:
    """Write batches, telemetry, harvests and truth as Parquet; telemetry in row groups."""
    out_dir.mkdir(parents=True, exist_ok=True)
    batches, harvests, truth, real = simulate_batches(cfg)
    batches.to_parquet(out_dir / "batches.parquet", index=False)
    harvests.to_parquet(out_dir / "harvests.parquet", index=False)
    truth.to_parquet(out_dir / "truth.parquet", index=False)
    (out_dir / "world.json").write_text(json.dumps({"world": cfg.world}) + "\n")

    rng = np.random.default_rng([cfg.seed, 1])
    per_batch = batches["cycle_days"].to_numpy() * (24 * 60 // cfg.interval_minutes)
    bounds = np.searchsorted(np.cumsum(per_batch), np.arange(1, 10_000) * cfg.rows_per_chunk)
    edges = np.unique(np.r_[0, bounds[bounds < len(batches)] + 1, len(batches)])
    rows = 0
    writer = None
    try:
        for lo, hi in itertools.pairwise(edges):
            chunk = _telemetry_chunk(cfg, batches.iloc[lo:hi], real.iloc[lo:hi], rng)
            if writer is None:
                writer = pq.ParquetWriter(out_dir / "telemetry.parquet", chunk.schema)
            writer.write_table(chunk)
            rows += chunk.num_rows
    finally:
        if writer is not None:
            writer.close()
    return {"batches": len(batches), "telemetry_rows": rows}
