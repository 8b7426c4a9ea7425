#!/usr/bin/env python3
"""A farm export graded by size, written without vertiflow (it imports none of it).

A helper wrote it to try the README's bring-your-own-data steps on data our simulators did
not make: three crops the built-in agronomy does not know, a crop response of its own
(saturating light and CO2, Gaussian temperature, EC, pH and humidity optima), grades that
follow the harvest's weight against the crop's base weight (as a grader sorting by size),
and a spreadsheet's mess (day/month dates, padded headers, ';' and decimal commas, NA
cells, spikes, dropouts, a logger down a whole cycle, loggers tagging past harvest).

Writes batches.csv, telemetry.csv, harvests.csv into OUT and the Bayes truth (expected
yield, grade probabilities, Bayes grade) per batch into --truth, then prints the Bayes
accuracy on the pipeline's test split (the latest 20 % of batches by start date).
`benchmarks/size_graded_farm.py` runs it.

Usage: python benchmarks/size_graded_export.py OUT --truth TRUTH.csv [--seed N] [--racks N]
"""

from __future__ import annotations

import argparse
import math
import os
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

# ---------------------------------------------------------------- the world
CROPS = {
    #             base g, share, cycle days, T opt, T width, EC opt, light k (DLI), CO2 gain
    "Lollo Rosso": dict(
        base=120.0,
        share=0.40,
        days=(32, 40),
        t_opt=20.0,
        t_w=6.0,
        ec_opt=1.4,
        k_dli=13.0,
        co2_gain=0.30,
        rh_opt=68.0,
        recipe=dict(temp=21.0, rh=68.0, co2=800.0, ppfd=300.0, photo=16, ec=1.5, ph=6.0),
    ),
    "mizuna": dict(
        base=40.0,
        share=0.35,
        days=(28, 34),
        t_opt=23.0,
        t_w=7.0,
        ec_opt=1.8,
        k_dli=10.0,
        co2_gain=0.25,
        rh_opt=65.0,
        recipe=dict(temp=22.0, rh=65.0, co2=900.0, ppfd=260.0, photo=16, ec=1.7, ph=6.1),
    ),
    "Red Chard": dict(
        base=75.0,
        share=0.25,
        days=(34, 40),
        t_opt=22.0,
        t_w=6.5,
        ec_opt=2.1,
        k_dli=16.0,
        co2_gain=0.35,
        rh_opt=70.0,
        recipe=dict(temp=22.0, rh=70.0, co2=1000.0, ppfd=380.0, photo=17, ec=2.0, ph=6.2),
    ),
}
YIELD_SIGMA = 0.07  # lognormal biological noise
GRADER_SCALE = 0.03  # logistic noise on the size score
PREMIUM_ABOVE, REJECT_BELOW = 0.85, 0.55  # realised weight / crop base weight
SCALE = 1.45  # so that a typical recipe lands around the grade cuts
RACKS, MODULES_PER_RACK = 4, 3
START = datetime(2024, 7, 1)
EXPORT = datetime(2026, 9, 15, 23, 0)  # the export's date: later harvests do not exist yet
MODULE_AREA = 2.0
TEST_FRACTION = 0.2


def response(crop: str, temp, rh, co2, ppfd, photo, ec, ph, days):
    """Multiplicative crop response (relative to base weight) to the realised climate."""
    c = CROPS[crop]
    dli = ppfd * photo * 0.0036
    f_light = 1.0 - np.exp(-dli / c["k_dli"])
    f_co2 = (1.0 + c["co2_gain"] * (1.0 - np.exp(-(co2 - 400.0) / 350.0))) / (1.0 + c["co2_gain"])
    f_temp = np.exp(-(((temp - c["t_opt"]) / c["t_w"]) ** 2))
    f_ec = np.exp(-(((ec - c["ec_opt"]) / 0.9) ** 2))
    f_ph = np.exp(-(((ph - 6.0) / 1.3) ** 2))
    f_rh = np.exp(-(((rh - c["rh_opt"]) / 30.0) ** 2))
    lo, hi = c["days"]
    f_days = (days / ((lo + hi) / 2.0)) ** 1.3
    return SCALE * f_light * f_co2 * f_temp * f_ec * f_ph * f_rh * f_days


# Gauss-Hermite nodes for E over the lognormal noise
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(60)
_GH_W = _GH_W / _GH_W.sum()


def grade_probs(rel_median: float):
    """P(PREMIUM), P(STANDARD), P(REJECT) given the median relative weight."""
    rel = rel_median * np.exp(YIELD_SIGMA * _GH_X)  # realised relative weight
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    p_prem = float(np.sum(_GH_W * sig((rel - PREMIUM_ABOVE) / GRADER_SCALE)))
    p_rej = float(np.sum(_GH_W * sig((REJECT_BELOW - rel) / GRADER_SCALE)))
    return p_prem, 1.0 - p_prem - p_rej, p_rej


def vpd(temp, rh):
    es = 0.6108 * np.exp(17.27 * temp / (temp + 237.3))
    return es * (1.0 - rh / 100.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=20240902)
    ap.add_argument("--truth", required=True)
    ap.add_argument(
        "--racks", type=int, default=RACKS, help="more racks: a bigger farm of the same world"
    )
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)

    names = list(CROPS)
    shares = np.array([CROPS[n]["share"] for n in names])
    batches, harvests, truth, tele_parts = [], [], [], []
    serial = 0
    for r in range(1, args.racks + 1):
        for m in range(1, MODULES_PER_RACK + 1):
            rack, module = f"R{r}", f"R{r}-M{m:02d}"
            t = START + timedelta(days=int(rng.integers(0, 20)), hours=9)
            while t < EXPORT - timedelta(days=3):
                serial += 1
                bid = f"{serial:05d}"  # numbered ids with leading zeros
                crop = names[rng.choice(len(names), p=shares)]
                c = CROPS[crop]
                days = int(rng.integers(c["days"][0], c["days"][1] + 1))
                # the farm's recipe: its usual one per crop, explored around (clipped to the box)
                ctr = c["recipe"]

                def pick(k, lo, hi, sd, nd, ctr=ctr):
                    return round(float(np.clip(rng.normal(ctr[k], sd), lo, hi)), nd)

                sp = dict(
                    temp=pick("temp", 17.0, 28.0, 2.2, 1),
                    rh=pick("rh", 50.0, 85.0, 7.0, 0),
                    co2=pick("co2", 400.0, 1400.0, 220.0, -1),
                    ppfd=pick("ppfd", 150.0, 550.0, 85.0, 0),
                    photo=float(np.clip(round(rng.normal(ctr["photo"], 1.8)), 12, 20)),
                    ec=pick("ec", 1.0, 2.6, 0.3, 2),
                    ph=pick("ph", 5.5, 6.8, 0.25, 2),
                )
                # what the module actually held (a little off its setpoints)
                act = dict(
                    temp=sp["temp"] + rng.normal(0, 0.4),
                    rh=float(np.clip(sp["rh"] + rng.normal(0, 2.0), 35, 95)),
                    co2=max(sp["co2"] + rng.normal(0, 25.0), 380.0),
                    ppfd=sp["ppfd"] * rng.normal(1.0, 0.03),
                    photo=sp["photo"],
                    ec=max(sp["ec"] + rng.normal(0, 0.05), 0.3),
                    ph=sp["ph"] + rng.normal(0, 0.05),
                )
                rel_med = float(
                    response(
                        crop,
                        act["temp"],
                        act["rh"],
                        act["co2"],
                        act["ppfd"],
                        act["photo"],
                        act["ec"],
                        act["ph"],
                        days,
                    )
                )
                start = t
                harvest = start + timedelta(days=days)
                batches.append(
                    dict(
                        batch_id=bid,
                        crop=crop,
                        rack_id=rack,
                        module_id=module,
                        start=start,
                        cycle_days=days,
                        **{f"sp_{k}": v for k, v in sp.items()},
                    )
                )
                harvested = harvest <= EXPORT
                if harvested:
                    rel = rel_med * math.exp(rng.normal(0, YIELD_SIGMA))
                    weight = c["base"] * rel
                    score = rel + rng.logistic(0, GRADER_SCALE)
                    grade = (
                        "PREMIUM"
                        if score > PREMIUM_ABOVE
                        else ("REJECT" if score < REJECT_BELOW else "STANDARD")
                    )
                    led_kwh = act["ppfd"] * MODULE_AREA / 2.7 * act["photo"] * days / 1000.0
                    hvac_kwh = (
                        led_kwh / 3.0
                        + 1.5 * MODULE_AREA * abs(act["temp"] - 20.0) * 24 * days / 3.0 / 1000.0
                    )
                    energy = (led_kwh + hvac_kwh) * rng.normal(1.0, 0.03)
                    harvests.append(
                        dict(
                            batch_id=bid,
                            harvest=harvest + timedelta(hours=int(rng.integers(0, 6))),
                            weight=weight,
                            grade=grade,
                            energy=energy,
                        )
                    )
                    pp, ps, pr = grade_probs(rel_med)
                    truth.append(
                        dict(
                            batch_id=bid,
                            crop=crop,
                            start_date=start,
                            yield_expected_g=c["base"] * rel_med * math.exp(YIELD_SIGMA**2 / 2),
                            p_premium=pp,
                            p_standard=ps,
                            p_reject=pr,
                            grade=grade,
                        )
                    )
                # ---- hourly telemetry
                logger_down = serial == 77  # one logger down for a whole cycle
                if not logger_down:
                    end = min(harvest, EXPORT)
                    extra = (
                        timedelta(days=3) if serial in (40, 150) else timedelta(0)
                    )  # logger kept tagging
                    ts = pd.date_range(start, end + extra, freq="h", inclusive="left")
                    n = len(ts)
                    hour = ts.hour.to_numpy()
                    lights_on = 6
                    lit = ((hour - lights_on) % 24) < act["photo"]
                    drift = np.linspace(0, rng.normal(0, 0.3), n)
                    temp = act["temp"] + np.where(lit, 0.8, -1.2) + drift + rng.normal(0, 0.3, n)
                    rh = np.clip(
                        act["rh"] + np.where(lit, -2.0, 3.0) + rng.normal(0, 2.0, n), 20, 99
                    )
                    co2 = act["co2"] + np.where(lit, -30.0, 40.0) + rng.normal(0, 30.0, n)
                    ppfd = np.where(lit, act["ppfd"] * (1 + rng.normal(0, 0.02, n)), 0.0)
                    hrs_since_on = ((hour - lights_on) % 24) + 1
                    dli_acc = np.where(
                        lit,
                        act["ppfd"] * np.minimum(hrs_since_on, act["photo"]) * 0.0036,
                        act["ppfd"] * act["photo"] * 0.0036,
                    )
                    photo = np.full(n, act["photo"])
                    ec = (
                        act["ec"] + 0.1 * np.sin(np.arange(n) / 24.0 / 3.0) + rng.normal(0, 0.04, n)
                    )
                    ph = (
                        act["ph"]
                        + 0.05 * np.cos(np.arange(n) / 24.0 / 2.0)
                        + rng.normal(0, 0.04, n)
                    )
                    wtemp = act["temp"] - 2.0 + rng.normal(0, 0.2, n)
                    do = 14.6 - 0.28 * wtemp + rng.normal(0, 0.25, n)
                    tele = pd.DataFrame(
                        {
                            "batch_id": bid,
                            "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S"),
                            "module_id": module,
                            "air_temp_internal": temp.round(2),
                            "air_humidity": rh.round(1),
                            "co2_level_ambient": co2.round(0),
                            "vapor_pressure_deficit": vpd(temp, rh).round(3),
                            "light_intensity_ppfd": ppfd.round(1),
                            "light_dli_accumulated": dli_acc.round(2),
                            "light_photoperiod": photo,
                            "nutrient_solution_ec": ec.round(3),
                            "water_ph": ph.round(2),
                            "water_temp": wtemp.round(2),
                            "dissolved_oxygen": do.round(2),
                        }
                    )
                    tele_parts.append(tele)
                t = harvest + timedelta(days=int(rng.integers(1, 3)))  # clean and restock

    tele = pd.concat(tele_parts, ignore_index=True)
    sensors = list(tele.columns[3:])
    n = len(tele)
    # messiness: logger dropouts (whole row empty), single missing cells, spikes
    drop = rng.random(n) < 0.008
    tele.loc[drop, sensors] = np.nan
    for s in sensors:
        miss = rng.random(n) < 0.002
        tele.loc[miss, s] = np.nan
        spike = rng.random(n) < 0.0003
        tele.loc[spike, s] = -999.0 if s != "co2_level_ambient" else 9999.0
    tele.to_csv(os.path.join(args.out, "telemetry.csv"), index=False, na_rep="NA")

    b = pd.DataFrame(batches)
    bt = pd.DataFrame(
        {
            " Batch_ID": b["batch_id"],
            "Crop": b["crop"],
            "Rack_ID": b["rack_id"],
            "Module_ID": b["module_id"],
            "Start_Date": b["start"].dt.strftime("%d/%m/%Y %H:%M"),  # a spreadsheet's dates
            "Cycle_Days": b["cycle_days"],
            "air_temp_setpoint": b["sp_temp"],
            "humidity_setpoint": b["sp_rh"],
            "co2_setpoint": b["sp_co2"],
            "ppfd_setpoint": b["sp_ppfd"],
            "photoperiod_setpoint": b["sp_photo"],
            "ec_setpoint": b["sp_ec"],
            "ph_setpoint": b["sp_ph"],
        }
    )
    bt.to_csv(os.path.join(args.out, "batches.csv"), index=False)

    h = pd.DataFrame(harvests)
    grade_case = rng.choice(["upper", "title", "lower"], len(h), p=[0.8, 0.15, 0.05])
    grades = [getattr(g, c)() for g, c in zip(h["grade"], grade_case, strict=True)]
    ht = pd.DataFrame(
        {
            "batch_id": h["batch_id"],
            "harvest_date": h["harvest"].dt.strftime("%Y-%m-%d %H:%M"),
            "fresh_weight_g": h["weight"].round(1),
            "quality_grade": grades,
            "energy_kwh": h["energy"].round(1),
        }
    )
    # a French spreadsheet's export: ';' separated, decimal commas
    ht.to_csv(os.path.join(args.out, "harvests.csv"), index=False, sep=";", decimal=",")

    # ---- truth and the Bayes accuracy on the pipeline's split
    tr = pd.DataFrame(truth)
    probs = tr[["p_premium", "p_standard", "p_reject"]].to_numpy()
    tr["bayes_grade"] = np.array(["PREMIUM", "STANDARD", "REJECT"])[probs.argmax(1)]
    tr.to_csv(args.truth, index=False)
    have_tele = set(tele["batch_id"])
    split = (
        tr[tr["batch_id"].isin(have_tele)]
        .sort_values(["start_date", "batch_id"])
        .reset_index(drop=True)
    )
    s = np.sort(split["start_date"].to_numpy())
    cutoff = s[math.floor((1 - TEST_FRACTION) * (len(s) - 1))]  # 'lower' quantile
    test = split[split["start_date"] >= cutoff]
    print(f"batches {len(b)}, harvested {len(h)}, telemetry rows {n}")
    print("crop counts:", b["crop"].value_counts().to_dict())
    print("grades:", h["grade"].value_counts().to_dict())
    print(f"test cutoff {cutoff}, test batches {len(test)}")
    acc = float((test["bayes_grade"] == test["grade"]).mean())
    exp_acc = float(test[["p_premium", "p_standard", "p_reject"]].max(axis=1).mean())
    ll = float(
        -np.mean(
            np.log(
                np.clip(
                    test.apply(
                        lambda r: r[
                            {
                                "PREMIUM": "p_premium",
                                "STANDARD": "p_standard",
                                "REJECT": "p_reject",
                            }[r["grade"]]
                        ],
                        axis=1,
                    ),
                    1e-15,
                    1,
                )
            )
        )
    )
    print(f"Bayes accuracy on test (realised) {acc:.4f}; expected {exp_acc:.4f}")
    print(f"Bayes log loss on test {ll:.4f}")
    all_acc = float((tr["bayes_grade"] == tr["grade"]).mean())
    expected = tr[["p_premium", "p_standard", "p_reject"]].max(axis=1).mean()
    print(f"Bayes accuracy on all harvested batches {all_acc:.4f}, expected {expected:.4f}")


if __name__ == "__main__":
    main()
