"""The second world (SIMPLE crop model): its equations, its data, its truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vertiflow.data import rawdata
from vertiflow.farm import simple_model as sm
from vertiflow.farm import worlds
from vertiflow.farm.simulator import SimConfig, simulate_batches, write_farm

SPINACH = sm.crop("spinach")
WORLD = SimConfig(
    world=sm.NAME, crops={"spinach": 0.5, "arugula": 0.5}, racks=1, modules_per_rack=2,
    cycles_per_module=5, yield_noise=sm.YIELD_NOISE,
)  # fmt: skip


def grow(**kw):
    base = dict(temp=19.0, rh=65.0, co2=900.0, ppfd=350.0, photoperiod=16.0, ec=1.8, ph=6.0)
    base.update(kw)
    args = {k: np.atleast_1d(np.asarray(v, float)) for k, v in base.items()}
    return sm.grow(SPINACH, **args, cycle_days=np.array([35.0]))


def test_simple_responses_follow_zhao_2019():
    t = np.array([0.0, 2.0, 10.5, 19.0, 25.0])
    assert np.allclose(sm._f_temp(SPINACH, t), [0, 0, 0.5, 1, 1])  # linear to T_opt, then 1
    assert sm._f_heat(SPINACH, np.array([26.0, 31.0, 36.0]))[1] == pytest.approx(0.5)
    co2 = sm._f_co2(SPINACH, np.array([300.0, 350.0, 700.0, 1400.0]))
    assert co2[0] == co2[1] == 1.0 and co2[2] == co2[3] > 1.0  # saturates at 700 ppm
    assert grow(ppfd=450.0)[0] > grow(ppfd=250.0)[0]  # more light, more biomass
    assert grow(temp=30.0)[0] < grow(temp=22.0)[0]  # heat stress
    assert grow(ec=2.8, rh=45.0)[0] < grow(ec=2.8, rh=85.0)[0]  # osmotic stress x demand


def test_quality_falls_with_day_length_and_fast_growth():
    def score(**kw):
        _, rate = grow(**kw)
        base = dict(temp=19.0, rh=65.0, ppfd=350.0, photoperiod=16.0, ec=1.8)
        base.update({k: v for k, v in kw.items() if k in base})
        args = {k: np.atleast_1d(np.asarray(v, float)) for k, v in base.items()}
        return sm.quality_score_mean(SPINACH, **args, growth_rate=rate)[0]

    assert score(photoperiod=20.0) < score(photoperiod=13.0)  # bolting: long days
    assert score(rh=85.0, ppfd=500.0) < score(rh=60.0, ppfd=500.0)  # tipburn: humid, fast
    p = sm.grade_probabilities(np.array([-1.0, 0.8, 3.0]))
    assert np.allclose(p.sum(axis=1), 1.0) and p[0, 2] > 0.9 and p[2, 0] > 0.9


def test_world_is_deterministic_and_writes_its_truth_and_name(tmp_path):
    a, b = simulate_batches(WORLD), simulate_batches(WORLD)
    assert all(x.equals(y) for x, y in zip(a, b, strict=True))
    write_farm(tmp_path, WORLD)
    assert json.loads((tmp_path / "world.json").read_text()) == {"world": "simple"}
    raw = rawdata.load(tmp_path)  # the raw schema: a farm export like any other
    assert raw.world == "simple" and set(raw.batches["crop"]) == {"spinach", "arugula"}
    batches, _, truth, real = a
    arugula = batches["crop"] == "arugula"
    assert batches.loc[arugula, "cycle_days"].between(25, 31).all()  # its own cycle length
    # truth is the noise-free SIMPLE run on the realised climate: the Bayes predictor
    i = int(np.flatnonzero(arugula)[0])
    r = real.iloc[i]
    expected, _ = sm.grow(
        sm.crop("arugula"), *(np.array([r[k]]) for k in ("temp", "rh", "co2", "ppfd")),
        np.array([r.photoperiod]), np.array([r.ec]), np.array([r.ph]),
        np.array([float(batches.cycle_days[i])]),
    )  # fmt: skip
    assert truth.yield_expected_g[i] == pytest.approx(expected[0])


def test_worlds_dispatch_to_their_own_truth():
    recipe = np.array([[20.0], [65.0], [900.0], [350.0], [16.0], [1.8]])
    y_simple, p_simple = worlds.expected_outcome("simple", "spinach", recipe, np.array([6.0]), 35)
    y_agro, _ = worlds.expected_outcome("agronomy", "basil", recipe, np.array([6.0]), 35)
    assert y_simple[0] > 0 and y_agro[0] > 0 and p_simple.shape == (1, 3)
    with pytest.raises(ValueError, match="unknown world"):
        worlds.expected_outcome("mars", "spinach", recipe, np.array([6.0]), 35)
