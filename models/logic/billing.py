"""Each home's bill for the billing period: kWh from the readings table x the tariff (review C5).

The analytics engine bills what the ``readings`` hypertable holds: every row counts for
one reporting interval at its ``power_watts``.  As designed that is all it does, so a
firmware bug's ``power_watts = -999999`` row takes 2.8 kWh off the bill for a 10 s
interval (the review's "$-50,000" estimate, at scale), and a duplicate row bills its
interval twice.

With validation the bad rows are in the ``anomalies`` table instead, and their intervals
would go unbilled.  ``estimate_gaps`` is the metering industry's answer (validation,
estimation and editing, VEE): bill each anomalous interval at the home's mean valid power
over the period -- each interval once, however many copies of the bad reading arrived.

Pure: arrays in, arrays out; no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BillingSettings", "bills_usd", "estimated_energy_wh"]


@dataclass(frozen=True, slots=True)
class BillingSettings:
    """How the analytics engine turns stored readings into a bill."""

    tariff_per_kwh: float
    estimate_gaps: bool


def estimated_energy_wh(
    energy_wh: np.ndarray, readings: np.ndarray, anomalous_intervals: np.ndarray, hours_per_reading: float
) -> np.ndarray:
    """Energy per home with each anomalous interval billed at the home's mean valid power.

    Args:
        energy_wh: Per home, the sum of ``power_watts x hours_per_reading`` over its stored rows.
        readings: Per home, how many rows that sum covers.
        anomalous_intervals: Per home, distinct intervals whose reading was flagged.
        hours_per_reading: The reporting interval in hours.

    A home with no valid row has no mean: its gaps stay unbilled (zero), not guessed.
    """
    hours = readings * hours_per_reading
    mean_power_w = np.divide(energy_wh, hours, out=np.zeros_like(energy_wh), where=readings > 0)
    estimated: np.ndarray = energy_wh + anomalous_intervals * mean_power_w * hours_per_reading
    return estimated


def bills_usd(
    settings: BillingSettings,
    energy_wh: np.ndarray,
    readings: np.ndarray,
    anomalous_intervals: np.ndarray,
    hours_per_reading: float,
) -> np.ndarray:
    """Each home's bill in US dollars (unrounded: the error to the cent is measured on it)."""
    energy = (
        estimated_energy_wh(energy_wh, readings, anomalous_intervals, hours_per_reading)
        if settings.estimate_gaps
        else energy_wh
    )
    result: np.ndarray = energy / 1000.0 * settings.tariff_per_kwh
    return result
