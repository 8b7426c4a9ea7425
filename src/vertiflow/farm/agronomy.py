"""Crop physiology: how yield and quality respond to a growing climate.

The simulator draws the farm's data from these curves, and Cortex's ground truth scores
recipes with them, so both share one definition of "what the plant does". The curves
follow published horticulture: a cardinal-temperature (beta) response, saturating light
(DLI) and CO2 responses, optimum bands for EC and pH, and tipburn risk at high humidity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr  # standard normal CDF; far lighter to import than scipy.stats

GRADES = ("PREMIUM", "STANDARD", "REJECT")


@dataclass(frozen=True)
class Crop:
    """Agronomic constants for one leafy crop (fresh weight is per plant)."""

    name: str
    cycle_days: int
    potential_g: float  # fresh weight at an ideal climate, ambient CO2
    t_min: float  # cardinal temperatures (C): growth stops below t_min / above t_max
    t_opt: float
    t_max: float
    temp_band: tuple[float, float]  # agronomic comfort band, for "time out of band"
    rh_opt: float
    rh_band: tuple[float, float]
    dli_k: float  # DLI (mol/m2/d) at which light response reaches 63 % of its plateau
    dli_low: float  # below this DLI leaves are pale and leggy (quality loss)
    co2_gain: float  # fractional yield gain at CO2 saturation over ambient 400 ppm
    co2_k: float  # ppm above ambient for 63 % of that gain
    ec_opt: float
    ec_width: float
    ph_opt: float
    ph_width: float


CROPS: dict[str, Crop] = {
    # Basil Genovese (VertiFlow's crop): 20-28 C band, optimum 24 C, damage <10 or >35 C.
    "basil": Crop(
        name="basil",
        cycle_days=35,
        potential_g=62.0,
        t_min=10.0,
        t_opt=24.0,
        t_max=35.0,
        temp_band=(20.0, 28.0),
        rh_opt=62.0,
        rh_band=(50.0, 75.0),
        dli_k=9.0,
        dli_low=10.0,
        co2_gain=0.35,
        co2_k=450.0,
        ec_opt=1.6,
        ec_width=0.55,
        ph_opt=6.0,
        ph_width=0.55,
    ),
    # Butterhead lettuce: cooler optimum, lower light saturation, longer cycle.
    "lettuce": Crop(
        name="lettuce",
        cycle_days=42,
        potential_g=150.0,
        t_min=4.0,
        t_opt=21.0,
        t_max=32.0,
        temp_band=(17.0, 24.0),
        rh_opt=65.0,
        rh_band=(55.0, 75.0),
        dli_k=7.0,
        dli_low=9.0,
        co2_gain=0.30,
        co2_k=400.0,
        ec_opt=1.3,
        ec_width=0.5,
        ph_opt=5.9,
        ph_width=0.5,
    ),
}


def crop(name: str) -> Crop:
    try:
        return CROPS[name]
    except KeyError:
        known = ", ".join(sorted(CROPS))
        raise ValueError(f"unknown crop {name!r}; known crops: {known}") from None


def dli(ppfd: np.ndarray, photoperiod_h: np.ndarray) -> np.ndarray:
    """Daily light integral (mol/m2/d) from PPFD (umol/m2/s) and hours of light."""
    return ppfd * photoperiod_h * 0.0036


def vpd_kpa(temp_c: np.ndarray, rh_pct: np.ndarray) -> np.ndarray:
    """Vapour pressure deficit by the Tetens equation."""
    es = 0.6108 * np.exp(17.27 * temp_c / (temp_c + 237.3))
    return es * (1.0 - rh_pct / 100.0)


def _temperature_response(c: Crop, t: np.ndarray) -> np.ndarray:
    """Yan & Hunt (1999) beta function: 1 at t_opt, 0 at and beyond the cardinals."""
    t = np.clip(t, c.t_min, c.t_max)
    alpha = (c.t_opt - c.t_min) / (c.t_max - c.t_opt)
    return ((c.t_max - t) / (c.t_max - c.t_opt)) * ((t - c.t_min) / (c.t_opt - c.t_min)) ** alpha


def _band(x: np.ndarray, opt: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - opt) / width) ** 2)


def expected_yield_g(
    c: Crop,
    temp: np.ndarray,
    rh: np.ndarray,
    co2: np.ndarray,
    day_light: np.ndarray,
    ec: np.ndarray,
    ph: np.ndarray,
    cycle_days: np.ndarray,
) -> np.ndarray:
    """Mean fresh weight per plant (g) for a realised climate: the Bayes-optimal predictor."""
    light = (1.0 - np.exp(-day_light / c.dli_k)) / (1.0 - np.exp(-22.0 / c.dli_k))
    co2_factor = 1.0 + c.co2_gain * (1.0 - np.exp(-np.maximum(co2 - 400.0, 0.0) / c.co2_k))
    co2_factor *= np.where(co2 < 400.0, co2 / 400.0, 1.0)
    humidity = _band(rh, c.rh_opt, 18.0)
    growth = np.clip(cycle_days / c.cycle_days, 0.0, None) ** 1.2
    return (
        c.potential_g
        * _temperature_response(c, temp)
        * light
        * co2_factor
        * humidity
        * _band(ec, c.ec_opt, c.ec_width)
        * _band(ph, c.ph_opt, c.ph_width)
        * growth
    )


# Quality: a latent score (higher is better) with Gaussian noise, cut into three grades.
QUALITY_NOISE = 0.35
PREMIUM_ABOVE = 1.2
REJECT_BELOW = 0.4


def quality_score_mean(
    c: Crop,
    temp: np.ndarray,
    rh: np.ndarray,
    day_light: np.ndarray,
    ec: np.ndarray,
    ph: np.ndarray,
) -> np.ndarray:
    """Mean latent quality: tipburn at high humidity under fast growth, heat, nutrition, light."""
    vigour = 1.0 - np.exp(-day_light / c.dli_k)
    tipburn = 2.5 * np.maximum(rh - c.rh_band[1], 0.0) / 10.0 * vigour
    heat = np.maximum(temp - c.temp_band[1], 0.0) / 2.5
    cold = np.maximum(c.temp_band[0] - temp, 0.0) / 4.0
    nutrition = np.abs(ec - c.ec_opt) / 1.0 + np.abs(ph - c.ph_opt) / 0.9
    pale = np.maximum(c.dli_low - day_light, 0.0) / 2.5
    return 2.2 - tipburn - heat - cold - nutrition - pale


def grade_probabilities(score_mean: np.ndarray) -> np.ndarray:
    """P(PREMIUM), P(STANDARD), P(REJECT) for each mean score: columns in GRADES order."""
    p_premium = ndtr((score_mean - PREMIUM_ABOVE) / QUALITY_NOISE)
    p_reject = ndtr((REJECT_BELOW - score_mean) / QUALITY_NOISE)
    return np.column_stack([p_premium, 1.0 - p_premium - p_reject, p_reject])


def grade_from_score(score: np.ndarray) -> np.ndarray:
    return np.where(
        score > PREMIUM_ABOVE, GRADES[0], np.where(score < REJECT_BELOW, GRADES[2], GRADES[1])
    )
