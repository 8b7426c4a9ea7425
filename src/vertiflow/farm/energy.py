"""Electricity a growing recipe costs: LED lighting plus the HVAC that removes its heat.

Per square metre of growing area. LED electrical power is PPFD divided by fixture
efficacy (umol/J); nearly all of it ends up as heat the HVAC must pump out at its COP,
plus the envelope load of holding the setpoint against the building's ambient air.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EnergyModel:
    led_efficacy_umol_per_j: float = 2.7
    hvac_cop: float = 3.0
    envelope_w_per_m2_k: float = 1.5
    ambient_temp_c: float = 20.0

    def led_kwh_per_m2_day(self, ppfd: np.ndarray, photoperiod_h: np.ndarray) -> np.ndarray:
        return ppfd / self.led_efficacy_umol_per_j * photoperiod_h / 1000.0

    def hvac_kwh_per_m2_day(
        self, ppfd: np.ndarray, photoperiod_h: np.ndarray, temp_setpoint: np.ndarray
    ) -> np.ndarray:
        led_heat = self.led_kwh_per_m2_day(ppfd, photoperiod_h)
        envelope = (
            self.envelope_w_per_m2_k * np.abs(temp_setpoint - self.ambient_temp_c) * 24.0 / 1000.0
        )
        return (led_heat + envelope) / self.hvac_cop


@dataclass(frozen=True)
class Tariff:
    """Electricity prices (MAD/kWh); peak runs from peak_start to peak_end (hours)."""

    peak_price: float = 1.2
    offpeak_price: float = 0.8
    peak_start: int = 7
    peak_end: int = 23

    @property
    def offpeak_hours(self) -> float:
        return 24.0 - (self.peak_end - self.peak_start)

    def lighting_price(self, photoperiod_h: np.ndarray) -> np.ndarray:
        """Mean price of lit hours: lights start at peak_end and use off-peak hours first."""
        off = np.minimum(photoperiod_h, self.offpeak_hours)
        peak = photoperiod_h - off
        return (off * self.offpeak_price + peak * self.peak_price) / np.maximum(photoperiod_h, 1e-9)

    @property
    def daily_mean_price(self) -> float:
        return (
            self.offpeak_hours * self.offpeak_price + (24 - self.offpeak_hours) * self.peak_price
        ) / 24


def energy_cost_per_m2_day(
    model: EnergyModel,
    tariff: Tariff,
    ppfd: np.ndarray,
    photoperiod_h: np.ndarray,
    temp: np.ndarray,
) -> np.ndarray:
    """MAD per m2 per day: LED power and its heat removal at lit-hour prices, envelope load
    at the day's mean price."""
    led = model.led_kwh_per_m2_day(ppfd, photoperiod_h)
    lit_price = tariff.lighting_price(photoperiod_h)
    envelope = model.hvac_kwh_per_m2_day(np.zeros_like(ppfd), photoperiod_h, temp)
    return led * (1.0 + 1.0 / model.hvac_cop) * lit_price + envelope * tariff.daily_mean_price
