"""Crop physiology and the simulator: the ground truth everything else is measured against."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vertiflow.farm import agronomy
from vertiflow.farm.simulator import SimConfig, simulate_batches, write_farm

BASIL = agronomy.crop("basil")
TINY = SimConfig(racks=1, modules_per_rack=3, cycles_per_module=6)


def test_dli_and_vpd_match_textbook_values():
    assert agronomy.dli(np.array(380.0), np.array(16.0)) == pytest.approx(21.888)
    # Tetens at 25 C: es = 3.168 kPa, so 50 % RH leaves a deficit of 1.584 kPa.
    assert agronomy.vpd_kpa(np.array(25.0), np.array(50.0)) == pytest.approx(1.584, abs=1e-3)


def test_yield_peaks_at_optimum_and_vanishes_at_cardinal_temperatures():
    def y(temp, **kw):
        base = {"rh": 62.0, "co2": 900.0, "day_light": 17.0, "ec": 1.6, "ph": 6.0, "cycle_days": 35}
        base.update(kw)
        return agronomy.expected_yield_g(
            BASIL, np.array(temp), **{k: np.array(v) for k, v in base.items()}
        )

    temps = np.linspace(10, 35, 251)
    assert temps[np.argmax(y(temps))] == pytest.approx(BASIL.t_opt, abs=0.1)
    assert y(BASIL.t_min) == 0.0 and y(BASIL.t_max) == 0.0
    assert y(24.0, co2=1200.0) > y(24.0, co2=400.0)  # enrichment helps
    assert y(24.0, day_light=20.0) > y(24.0, day_light=10.0)  # more light, more growth
    assert y(24.0, ec=2.6) < y(24.0)  # salt stress


def test_grade_probabilities_sum_to_one_and_order_with_quality():
    p = agronomy.grade_probabilities(np.array([-1.0, 0.8, 3.0]))
    assert np.allclose(p.sum(axis=1), 1.0)
    assert p[0].argmax() == 2 and p[2].argmax() == 0  # low score -> REJECT, high -> PREMIUM


def test_simulator_is_deterministic_by_seed():
    a = simulate_batches(TINY)
    b = simulate_batches(TINY)
    c = simulate_batches(SimConfig(**{**TINY.__dict__, "seed": 7}))
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x, y)
    assert not a[1]["fresh_weight_g"].equals(c[1]["fresh_weight_g"])


def test_truth_is_rounded_below_the_last_bits_a_cpu_changes():
    """numpy's exp/log differ in the last bit between AVX-512 and AVX2 machines: unrounded,
    truth.parquet (and so data/raw's md5 in dvc.lock) differed between them."""
    truth = simulate_batches(TINY)[2]
    assert np.array_equal(truth["yield_expected_g"], truth["yield_expected_g"].round(6))
    probabilities = truth[["p_premium", "p_standard", "p_reject"]]
    assert np.array_equal(probabilities, probabilities.round(9))
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-8)


def test_truth_is_the_mean_of_the_observed_yield():
    _batches, harvests, truth, _ = simulate_batches(SimConfig(cycles_per_module=20))
    ratio = harvests["fresh_weight_g"] / truth["yield_expected_g"]
    assert ratio.mean() == pytest.approx(1.0, abs=0.01)  # unbiased lognormal noise
    assert ratio.std() == pytest.approx(SimConfig().yield_noise, rel=0.15)
    assert set(harvests["quality_grade"]) == set(agronomy.GRADES)


def test_telemetry_carries_the_configured_glitches(tmp_path):
    config = SimConfig(**{**TINY.__dict__, "dropout_rate": 0.05, "spike_rate": 0.01})
    info = write_farm(tmp_path, config)
    telemetry = pd.read_parquet(tmp_path / "telemetry.parquet")
    assert len(telemetry) == info["telemetry_rows"]
    dropouts = telemetry["air_temp_internal"].isna().mean()
    spikes = (telemetry["co2_level_ambient"] > 5000).mean() + (
        telemetry["co2_level_ambient"] < 200
    ).mean()
    assert dropouts == pytest.approx(0.05, abs=0.01)
    assert spikes == pytest.approx(0.01 * 0.95, abs=0.004)
    lit = telemetry["light_intensity_ppfd"] > 1
    assert lit.mean() == pytest.approx(16 / 24, abs=0.2)  # photoperiods of 12-20 h
