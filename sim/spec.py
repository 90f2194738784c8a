"""The one base class of everything a scenario file describes.

Scenario files are written by people, so every value is checked the same strict way,
whatever model it belongs to (the engine's faults and distributions, a model's config):

* unknown fields are errors (``extra="forbid"``);
* types are strict: ``true`` is not the number 1, ``"5"`` is not the number 5 and ``2.5``
  is not an integer (a float that is whole, like ``3.0``, is not one either);
* every float is finite: ``.nan`` and ``.inf`` are refused (a field that means "no limit"
  says so with ``null``);
* validated models are frozen, so a run cannot change its own scenario.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

__all__ = ["Spec", "probabilities"]


class Spec(BaseModel):
    """Base of every scenario model; see the module docstring."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        strict=True,
        allow_inf_nan=False,
    )


def probabilities(weights: Sequence[float], what: str = "weights") -> list[float]:
    """``weights`` scaled to probabilities that sum to 1, or ValueError saying why they cannot be.

    Weights must be finite and >= 0 with at least one above 0.  They are scaled by their
    largest value before summing, so huge but finite weights (``[1e308, 1e308]``) still give
    usable probabilities instead of overflowing to infinity.
    """
    values = [float(w) for w in weights]
    if not values:
        raise ValueError(f"{what} must not be empty")
    if any(not math.isfinite(w) or w < 0 for w in values):
        raise ValueError(f"{what} must be finite numbers >= 0 (got {values})")
    largest = max(values)
    if largest <= 0:
        raise ValueError(f"{what} must not all be zero")
    scaled = [w / largest for w in values]
    total = math.fsum(scaled)
    return [w / total for w in scaled]
