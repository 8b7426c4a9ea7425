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
