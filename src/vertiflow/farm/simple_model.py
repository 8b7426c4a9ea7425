"""A second, independent farm: crops grown by the SIMPLE crop model, not by `agronomy`.

Why: every default of the pipeline (features, model search, Cortex) must hold on data our
own simulator did not make. This world shares nothing with `agronomy` but the raw schema:
its yield is a *dynamic* daily simulation (canopy cover that builds up with thermal time,
radiation use efficiency, stresses that accelerate senescence), not a product of static
response curves; its grades follow growth *rate* and day length (tipburn, bolting) with
logistic grader noise, not a Gaussian latent score; its crops are spinach and arugula.

Structure: the SIMPLE crop model of Zhao, C., Liu, B., Xiao, L., Hoogenboom, G., Boote,
K.J., Kassie, B.T., et al. (2019), "A SIMPLE crop model", European Journal of Agronomy
104, 97-106, doi:10.1016/j.eja.2019.01.009. Daily, with T the mean air temperature:

    TT(d)    = sum over days of max(T - T_base, 0)                 thermal time (C d)
    f_Solar  = min( 1 / (1 + exp(-0.01 (TT - I50A))),               canopy build-up
                    1 / (1 + exp( 0.01 (TT - (T_sum - I50B)))) )    and senescence
    f_Temp   = 0 below T_base, (T - T_base)/(T_opt - T_base) up to T_opt, then 1
    f_Heat   = 1 - (T_max - T_heat)/(T_extreme - T_heat), clipped to [0, 1]
    f_CO2    = 1 + S_CO2 (min(CO2, 700) - 350)      (no gain below 350 ppm)
    I50B    += I50maxH (1 - f_Heat) each day       heat stress hastens senescence
    dB/dt    = RUE * f_Solar * PAR * f_CO2 * f_Temp * min(f_Water, f_Heat)
    yield    = (B0 + sum dB) * HI

Adaptations to a hydroponic vertical farm (ours, stated as such): radiation is the LEDs'
PAR, DLI = PPFD x photoperiod x 0.0036 mol/m2/d, with RUE in g dry matter per mol PAR;
T_max is the lit-period temperature (mean + 1 C); SIMPLE's drought index ARID becomes
root-zone osmotic stress, which grows with EC above the crop's tolerance and with the
evaporative demand (VPD, Tetens): ARID = min(1, s_EC max(EC - EC_tol, 0) VPD), f_Water =
1 - S_Water ARID; nutrient supply limits growth below EC_sat (f_N = min(1, EC/EC_sat)) and
pH away from 6.0 costs f_pH = 1 - 0.25 max(|pH - 6| - 0.4, 0). Fresh weight per plant =
shoot dry matter / dry-matter fraction / plants per m2.

Quality (ours): latent score = 2.2 - tipburn - bolting - pale + logistic noise, cut at
1.2 (PREMIUM) and 0.4 (REJECT). Tipburn follows the growth rate of the last week relative
to the crop's reference rate, worse at high humidity (calcium does not reach fast-growing
leaves that transpire little); bolting follows day length above the crop's critical
photoperiod (both are long-day plants), worse when warm; pale leaves follow low DLI and
low EC. Crop constants below are ours, chosen in published ranges for leafy crops
(RUE 0.5-0.8 g DM/mol PAR, dry-matter 5-8 %, T_base 2-5 C).

As the built-in simulator, this world knows its own noise: `truth` holds each batch's
expected yield and grade probabilities (the Bayes-optimal predictor), and
`expected_outcome` gives Cortex's judge the true value of any recipe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vertiflow.farm import agronomy

GRADES = agronomy.GRADES
NAME = "simple"


@dataclass(frozen=True)
class SimpleCrop:
    name: str
    cycle_days: int
    plants_per_m2: float
    t_base: float
    t_opt: float
    t_heat: float  # T_max above which heat stress starts
    t_extreme: float  # ... and growth stops
    t_sum: float  # thermal time to maturity (C d)
    i50a: float  # thermal time to 50 % canopy cover
    i50b: float  # thermal time before maturity at which senescence halves cover
    i50max_h: float  # daily increase of I50B under full heat stress
    rue: float  # g dry matter per mol PAR
    s_co2: float  # fractional gain per ppm, 350-700 ppm
    s_water: float
    ec_tol: float  # EC above which osmotic stress starts (mS/cm)
    s_ec: float
    ec_sat: float  # EC below which nutrients limit growth
    b0: float  # transplant biomass, g DM/m2
    hi: float  # harvested share of biomass (shoot)
    dry_matter: float  # dry-matter fraction of fresh weight
    growth_ref: float  # g DM/m2/d at which tipburn risk starts
    rh_tipburn: float  # % RH above which tipburn worsens
    critical_photoperiod: float  # h: longer days trigger bolting
    dli_low: float  # mol/m2/d: below, pale leaves


CROPS: dict[str, SimpleCrop] = {
    "spinach": SimpleCrop(
        name="spinach",
        cycle_days=35,
        plants_per_m2=40.0,
        t_base=2.0,
        t_opt=19.0,
        t_heat=26.0,
        t_extreme=36.0,
        t_sum=900.0,
        i50a=300.0,
        i50b=150.0,
        i50max_h=40.0,
        rue=0.62,
        s_co2=0.0009,
        s_water=0.8,
        ec_tol=2.0,
        s_ec=0.45,
        ec_sat=1.5,
        b0=20.0,
        hi=0.88,
        dry_matter=0.07,
        growth_ref=17.0,
        rh_tipburn=72.0,
        critical_photoperiod=14.0,
        dli_low=11.0,
    ),
    "arugula": SimpleCrop(
        name="arugula",
        cycle_days=28,
        plants_per_m2=60.0,
        t_base=4.0,
        t_opt=21.0,
        t_heat=28.0,
        t_extreme=38.0,
        t_sum=800.0,
        i50a=220.0,
        i50b=120.0,
        i50max_h=30.0,
        rue=0.55,
        s_co2=0.0008,
        s_water=0.7,
        ec_tol=2.2,
        s_ec=0.4,
        ec_sat=1.3,
        b0=15.0,
        hi=0.9,
        dry_matter=0.08,
        growth_ref=14.0,
        rh_tipburn=75.0,
        critical_photoperiod=15.0,
        dli_low=10.0,
    ),
}
QUALITY_SCALE = 0.22  # logistic grader noise
PREMIUM_ABOVE = 1.2
REJECT_BELOW = 0.4


def crop(name: str) -> SimpleCrop:
    try:
        return CROPS[name]
    except KeyError:
        raise ValueError(
            f"unknown crop {name!r} in the SIMPLE world; known: {sorted(CROPS)}"
        ) from None


def _f_temp(c: SimpleCrop, t: np.ndarray) -> np.ndarray:
    return np.clip((t - c.t_base) / (c.t_opt - c.t_base), 0.0, 1.0)


def _f_heat(c: SimpleCrop, t_max: np.ndarray) -> np.ndarray:
    return np.clip(1.0 - (t_max - c.t_heat) / (c.t_extreme - c.t_heat), 0.0, 1.0)


def _f_co2(c: SimpleCrop, co2: np.ndarray) -> np.ndarray:
    return 1.0 + c.s_co2 * (np.clip(co2, 350.0, 700.0) - 350.0)


def grow(
    c: SimpleCrop,
    temp: np.ndarray,
    rh: np.ndarray,
    co2: np.ndarray,
    ppfd: np.ndarray,
    photoperiod: np.ndarray,
    ec: np.ndarray,
    ph: np.ndarray,
    cycle_days: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Daily SIMPLE run, vectorised over batches: (fresh g per plant, last-week growth rate)."""
    arrays = np.broadcast_arrays(
        *(np.asarray(a, float) for a in (temp, rh, co2, ppfd, photoperiod, ec, ph, cycle_days))
    )
    temp, rh, co2, ppfd, photoperiod, ec, ph, cycle_days = arrays
    par = agronomy.dli(ppfd, photoperiod)
    t_max = temp + 1.0
    f_heat = _f_heat(c, t_max)
    arid = np.minimum(1.0, c.s_ec * np.maximum(ec - c.ec_tol, 0.0) * agronomy.vpd_kpa(temp, rh))
    f_water = 1.0 - c.s_water * arid
    f_n = np.minimum(1.0, ec / c.ec_sat)
    f_ph = np.clip(1.0 - 0.25 * np.maximum(np.abs(ph - 6.0) - 0.4, 0.0), 0.0, 1.0)
    daily_factor = par * c.rue * _f_co2(c, co2) * _f_temp(c, temp) * np.minimum(f_water, f_heat)
    daily_factor = daily_factor * f_n * f_ph
    dtt = np.maximum(temp - c.t_base, 0.0)
    days = np.rint(cycle_days).astype(int)
    biomass = np.full(temp.shape, c.b0)
    recent = np.zeros(temp.shape)
    i50b = np.full(temp.shape, c.i50b)
    for day in range(1, int(days.max(initial=0)) + 1):
        growing = day <= days
        i50b = i50b + c.i50max_h * (1.0 - f_heat)
        tt = dtt * day
        f_solar = np.minimum(
            1.0 / (1.0 + np.exp(-0.01 * (tt - c.i50a))),
            1.0 / (1.0 + np.exp(0.01 * (tt - (c.t_sum - i50b)))),
        )
        growth = np.where(growing, daily_factor * f_solar, 0.0)
        biomass = biomass + growth
        recent = recent + np.where(growing & (day > days - 7), growth, 0.0)
    fresh_g = biomass * c.hi / c.dry_matter / c.plants_per_m2
    return fresh_g, recent / 7.0


def quality_score_mean(
    c: SimpleCrop,
    temp: np.ndarray,
    rh: np.ndarray,
    ppfd: np.ndarray,
    photoperiod: np.ndarray,
    ec: np.ndarray,
    growth_rate: np.ndarray,
) -> np.ndarray:
    tipburn = np.maximum(growth_rate / c.growth_ref - 0.7, 0.0) * (
        1.0 + np.maximum(rh - c.rh_tipburn, 0.0) / 6.0
    )
    bolting = (
        np.maximum(photoperiod - c.critical_photoperiod, 0.0)
        / 2.5
        * (1.0 + np.maximum(temp - 22.0, 0.0) / 4.0)
    )
    pale = np.maximum(c.dli_low - agronomy.dli(ppfd, photoperiod), 0.0) / 3.0
    pale = pale + np.maximum(1.0 - ec, 0.0) / 0.4
    return 2.2 - 1.5 * tipburn - bolting - pale


def grade_probabilities(score_mean: np.ndarray) -> np.ndarray:
    """Columns in GRADES order; logistic grader noise."""

    def cdf(z: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-z))

    p_premium = cdf((score_mean - PREMIUM_ABOVE) / QUALITY_SCALE)
    p_reject = cdf((REJECT_BELOW - score_mean) / QUALITY_SCALE)
    return np.column_stack([p_premium, 1.0 - p_premium - p_reject, p_reject])


def expected_outcome(
    crop_name: str, recipe: np.ndarray, ph: np.ndarray, cycle_days: float
) -> tuple[np.ndarray, np.ndarray]:
    """Expected fresh weight per plant and grade probabilities of recipes (6 x n, in
    Cortex's RECIPE order: air_temp, humidity, co2, ppfd, photoperiod, ec), climate = setpoints."""
    c = crop(crop_name)
    temp, rh, co2, ppfd, photoperiod, ec = recipe
    fresh, rate = grow(c, temp, rh, co2, ppfd, photoperiod, ec, ph, np.full_like(temp, cycle_days))
    score = quality_score_mean(c, temp, rh, ppfd, photoperiod, ec, rate)
    return fresh, grade_probabilities(score)


def recipes(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Setpoints over the usual ranges of a leafy-greens farm (not centred on any optimum)."""
    return pd.DataFrame(
        {
            "air_temp_setpoint": np.round(rng.uniform(15.0, 29.0, n), 1),
            "humidity_setpoint": np.round(rng.uniform(45.0, 88.0, n), 0),
            "co2_setpoint": np.round(rng.uniform(400.0, 1500.0, n), -1),
            "ppfd_setpoint": np.round(rng.uniform(150.0, 550.0, n), 0),
            "photoperiod_setpoint": rng.integers(12, 21, n).astype(float),
            "ec_setpoint": np.round(rng.uniform(0.8, 2.8, n), 2),
            "ph_setpoint": np.round(rng.uniform(5.2, 6.9, n), 2),
        }
    )


def outcomes(
    batches: pd.DataFrame, real: pd.DataFrame, rng: np.random.Generator, yield_noise: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per batch: expected yield, realised fresh weight, grade probabilities, grades."""
    n = len(batches)
    mu, score_mean = np.empty(n), np.empty(n)
    for name in batches["crop"].unique():
        idx = (batches["crop"] == name).to_numpy()
        c, r = crop(name), real[idx]
        mu[idx], rate = grow(
            c,
            r.temp,
            r.rh,
            r.co2,
            r.ppfd,
            r.photoperiod,
            r.ec,
            r.ph,
            batches.loc[idx, "cycle_days"],
        )
        score_mean[idx] = quality_score_mean(c, r.temp, r.rh, r.ppfd, r.photoperiod, r.ec, rate)
    fresh = mu * rng.lognormal(-(yield_noise**2) / 2.0, yield_noise, n)
    probs = grade_probabilities(score_mean)
    score = score_mean + QUALITY_SCALE * rng.logistic(0.0, 1.0, n)
    grades = np.where(
        score > PREMIUM_ABOVE, GRADES[0], np.where(score < REJECT_BELOW, GRADES[2], GRADES[1])
    )
    return mu, fresh, probs, grades


DEFAULT_CROPS = {"spinach": 0.6, "arugula": 0.4}
YIELD_NOISE = 0.06  # lognormal sigma of fresh weight, as in the farm export of issue 13
