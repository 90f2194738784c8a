"""What a smart-home scenario will cost to run, worked out before it runs.

The figures come from the scenario alone and are calibrated on the benchmarks
(``benchmarks/fleet.py``: 10,000 meters for an hour schedule about 260,000 simpy events,
handle 3.6 M readings in about 14 s and peak at about 108 MiB; ``benchmarks/requests.py``:
250,000 requests at about 14 events and 120 microseconds each).  They are rough -- right
within a factor of two or so, and on the safe side for retries (every intent is counted
with all its attempts) -- which is enough to refuse, before it starts, a run that would
take days or more memory than the machine has, and to say which field to change.
"""

from __future__ import annotations

import math

from models.config import Scenario
from sim.twin import Estimate

__all__ = ["estimate"]

BASE_MEMORY = 100 * 2**20
"""The interpreter with numpy, scipy, networkx and pydantic loaded."""
SECONDS_PER_EVENT = 8.5e-6
"""Wall time of one simpy event with the work it carries on the request path (about 120,000
per second, the logic and spans included)."""
SECONDS_PER_READING = 4.2e-6
"""Wall time per reading on the fleet path, where readings travel as batches, not events."""
EVENTS_PER_REQUEST = 15
"""simpy events of one command or dashboard request across its hops (14.2 measured)."""
BYTES_PER_METER = 2048
"""Per-meter arrays: schedule, firmware, totals and the duplicate-key window."""
BYTES_PER_READING_IN_FLIGHT = 250
"""A reading waiting in the stream or a resend queue (a tuple of seven numbers)."""
BYTES_PER_COMMAND = 1500
"""A tracked command: ledger entry, database row, app result, shadow and span data."""
BYTES_PER_SERIES_BUCKET = 100
"""One per-interval bucket of one time series."""
SERIES = 8
"""Per-interval time series a run records (the "sum" and "max" metrics of models.names.METRICS)."""


EVENTS_PER_PROBE = 6
"""simpy events of one probe run that calls nothing (the shallow /health)."""
EVENTS_PER_CHECK = 4
"""... and of each dependency a deep check calls."""


def _probe_events_per_s(scenario: Scenario) -> dict[str, float]:
    """The health probes' events per second, by the field that sets their rate."""
    health = scenario.health
    rates = {"health.shallow.period": EVENTS_PER_PROBE / health.shallow.period}
    if health.deep is not None:
        checks = EVENTS_PER_CHECK * len(health.deep_checks)
        rates["health.deep.period"] = (EVENTS_PER_PROBE + checks) / health.deep.period
    if health.synthetic is not None:
        synthetic = health.synthetic
        polls = synthetic.timeout / synthetic.poll
        rates["health.synthetic.period"] = (EVENTS_PER_PROBE + EVENTS_PER_REQUEST + polls) / synthetic.period
    return rates


SECONDS_PER_SEGMENT = 8e-6
"""Wall time of one WAL segment in the backup plane: cut, archived, checked (``benchmarks/durability.py``:
six months, about 260,000 segments, in about 1.5 s)."""
BYTES_PER_SEGMENT = 300
"""What the backup plane keeps per segment: its bounds, close time and archive entry."""


def _wal_segments(scenario: Scenario) -> float:
    """How many WAL segments the backup plane cuts over the whole horizon (0 without durability).

    A segment closes when full or, with ``archive_timeout``, at the latest that long after the
    last switch; the WAL rate is the flows' aggregate rows times their bytes per row (the
    detailed twin's own writes are counted from the fleet's readings).
    """
    durability = scenario.durability
    if durability is None:
        return 0.0
    wal = durability.wal
    rows = {table: flow.rows_per_s for table, flow in durability.flows.items()}
    if scenario.fleet.meters:
        rows["readings"] = max(rows.get("readings", 0.0), scenario.fleet.meters / scenario.fleet.report_every)
    bytes_per_s = sum(rate * scenario.postgres.wal_bytes_per_row.get(table, 0.0) for table, rate in rows.items())
    every = wal.segment_size / bytes_per_s if bytes_per_s > 0 else math.inf
    if wal.archive_timeout > 0:
        every = min(every, wal.archive_timeout)
    backups = scenario.duration / durability.backups.every  # each ends with a switch
    return (scenario.duration / every if math.isfinite(every) else 0.0) + backups


def estimate(scenario: Scenario) -> Estimate:
    """The events, peak memory and wall time of running ``scenario``, and what drives them.

    With a ``durability:`` section the detailed twin runs only from ``durability.detail_from``
    on; the months before it cost the backup plane's segments.
    """
    start = scenario.durability.detail_from if scenario.durability is not None else 0.0
    duration = scenario.duration - start  # the detailed twin's span
    fleet, workload = scenario.fleet, scenario.workload
    readings_per_s = fleet.meters / fleet.report_every if fleet.meters else 0.0
    requests_per_s = (
        workload.mobile_users * workload.commands_per_user_per_hour * (workload.app_retry.max_attempts or 10)
        + workload.dashboard_users * workload.queries_per_user_per_hour
    ) / 3600.0
    schedule = workload.automation
    if schedule is not None and schedule.first_at < scenario.duration:  # scheduled bursts, one try each
        runs = math.ceil((scenario.duration - max(start, schedule.first_at)) / schedule.every)
        requests_per_s += runs * schedule.devices / duration
    polls_per_s = scenario.stream.shards / scenario.ingest.poll_interval
    ticks_per_s = 1.0 / fleet.tick if fleet.meters else 0.0
    relay_per_s = 1.0 / scenario.device_manager.relay_interval if scenario.device_manager.outbox else 0.0
    events_per_s = {
        "fleet.tick": ticks_per_s,
        "stream.shards": polls_per_s * 6,
        "workload": requests_per_s * EVENTS_PER_REQUEST,
        "device_manager.relay_interval": relay_per_s * 5,
    }
    events_per_s.update(_probe_events_per_s(scenario))
    events = duration * sum(events_per_s.values()) + len(scenario.faults) * 4
    readings = duration * readings_per_s
    wall = {name: duration * rate * SECONDS_PER_EVENT for name, rate in events_per_s.items()}
    wall["fleet.meters"] = readings * SECONDS_PER_READING
    segments = _wal_segments(scenario)
    if segments:
        wall["durability.wal.archive_timeout"] = segments * SECONDS_PER_SEGMENT
    in_flight = readings_per_s * (scenario.ingest.checkpoint_every + scenario.ingest.poll_interval + 60.0)
    memory = {
        "fleet.meters": fleet.meters * BYTES_PER_METER + in_flight * BYTES_PER_READING_IN_FLIGHT,
        "workload": duration * workload.mobile_users * workload.commands_per_user_per_hour / 3600 * BYTES_PER_COMMAND,
        "metrics_interval": duration / scenario.metrics_interval * SERIES * BYTES_PER_SERIES_BUCKET,
        "keep_spans": scenario.keep_spans * 200.0,
    }
    if segments:
        memory["durability.wal.archive_timeout"] = segments * BYTES_PER_SEGMENT
    # The field to change: the largest share, an hour of wall time weighing as a GiB of memory.
    shares = [(field, seconds / 3600.0) for field, seconds in wall.items()]
    shares += [(field, size / 2**30) for field, size in memory.items()]
    driver = max(shares, key=lambda share: share[1])[0]
    return Estimate(
        events=events,
        memory_bytes=BASE_MEMORY + sum(memory.values()),
        wall_s=sum(wall.values()),
        driver="workload.mobile_users" if driver == "workload" else driver,
    )
