"""The farm worlds that can make data, and what each says a recipe truly yields.

Cortex judges its recipes by the truth of the world that made the data (`world.json` in
the raw folder names it): the built-in `agronomy` or the second, independent `simple`.
"""

from __future__ import annotations

import numpy as np

from vertiflow.farm import agronomy, simple_model


def _agronomy(crop: str, recipe: np.ndarray, ph: np.ndarray, cycle_days: float):
    c = agronomy.crop(crop)
    temp, humidity, co2, ppfd, photoperiod, ec = recipe
    light = agronomy.dli(ppfd, photoperiod)
    yield_g = agronomy.expected_yield_g(c, temp, humidity, co2, light, ec, ph, cycle_days)
    quality = agronomy.quality_score_mean(c, temp, humidity, light, ec, ph)
    return yield_g, agronomy.grade_probabilities(quality)


OUTCOMES = {"agronomy": _agronomy, simple_model.NAME: simple_model.expected_outcome}


def expected_outcome(
    world: str, crop: str, recipe: np.ndarray, ph: np.ndarray, cycle_days: float
) -> tuple[np.ndarray, np.ndarray]:
    """Expected fresh weight per plant (g) and grade probabilities (GRADES order) of recipes
    (6 x n: air_temp, humidity, co2, ppfd, photoperiod, ec), the climate held at setpoints."""
    if world not in OUTCOMES:
        raise ValueError(f"unknown world {world!r}; known: {', '.join(OUTCOMES)}")
    return OUTCOMES[world](crop, recipe, ph, cycle_days)
