"""From a run to its result body: per-flow outcomes, components, ledger, invariants.

Reading a result changes nothing: :func:`summarise` is a pure function of what the run
recorded, so it may be called mid-run, twice, or from a notebook cell run again, and a
later call after running on gives what a single run to the end gives.

Commands are judged here, in the manner of a checker reading a history (the run records
when each intent started, when devices applied it, what the app was told and the rows the
database holds); the verdicts go into a copy of the run's ledger, never the ledger itself:

* the device applied it once -> ``applied``; more than once -> ``applied`` (``duplicate``);
* not applied and the broker still retries it, the app still waits, or (with the outbox)
  its row is still pending -> in flight;
* otherwise ``failed``, with the reason the evidence shows: ``orphaned_pending`` (the user
  heard "accepted", the row stays pending, nothing will ever send it -- review C1),
  ``publish_failed``, ``lost_after_publish``, or the app's own error.

Commands whose publish IoT Core's per-connection limit refused are counted by their final
state in ``flows.commands.publish_limit`` (as designed the device manager swallows the
refusal: the row stays ``pending``, the app hears 202 -- an orphaned command), and when the
limit refused anything the result's ``warnings`` says so in a sentence.

Every result has a ``distributions`` section: each latency distribution tabulated at fixed
probabilities, the points of a CDF (:func:`_distributions`).

A scenario that declares SLOs gets a ``slos`` section too (:func:`models.slo.slo_section`):
each SLO's indicator over time, error budget consumed and burn-rate alerts; one with a
``durability:`` section gets a ``durability`` section (:func:`models.recovery.results.durability_section`):
backups, the archive, every disaster's RPO and RTO, and whether the review's claims held.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from models.logic.billing import BillingSettings, bills_usd
from models.monitoring import health_summary
from models.names import (
    APP_RESPONSE,
    AUTOMATION,
    COMMAND_LATENCY,
    COMMANDS,
    DASHBOARD_LATENCY,
    DEVICES,
    METERS,
    MOBILE,
    READING_END_TO_END,
    READINGS,
    STREAM_ITERATOR_AGE,
)
from models.settings import settings_from
from models.slo import slo_section
from models.windows import command_load
from sim.ledger import FinalState, Invariant, Ledger
from sim.metrics import CDF_PROBABILITIES, Histogram

if TYPE_CHECKING:
    from models.twin import World

__all__ = ["summarise"]


BREAKER_TRANSITIONS_LISTED = 1000
"""The flow lists the breakers' first this many state changes (a flapping breaker on a long run
could list millions); the component's figures count them all."""


def _settle_commands(world: World, ledger: Ledger) -> tuple[dict[str, Any], Histogram]:
    """The commands' figures, and the sketch of their time from tap to applied."""
    kernel = world.kernel
    mobile = world.mobile
    applied = world.devices.applied
    retrying = world.broker.pending_intents()
    rows_by_intent: dict[str, list[str]] = {}
    for row in world.database.commands.values():
        rows_by_intent.setdefault(row["intent"], []).append(row["status"])
    outbox = world.scenario.device_manager.outbox
    latency = Histogram()  # from the tap to the device applying it
    duplicates = 0
    into_void = 0  # told "accepted", never applied
    for intent, started in mobile.started.items():
        times = applied.get(intent)
        if times:
            latency.add(times[0] - started)
            duplicate = len(times) > 1
            duplicates += duplicate
            ledger.settle(COMMANDS, intent, FinalState.APPLIED, "duplicate" if duplicate else "")
            continue
        statuses = rows_by_intent.get(intent, [])
        finished = intent in mobile.results
        if not finished or intent in retrying or (outbox and "pending" in statuses):
            continue  # still in flight
        result = mobile.results[intent][0]
        if "pending" in statuses:
            reason = "orphaned_pending"
        elif "failed" in statuses:
            reason = "publish_failed"
        elif "sent" in statuses:
            reason = "lost_after_publish"
        elif getattr(result, "accepted", False):
            reason = "accepted_not_recorded"
        else:
            reason = f"app_{getattr(result, 'status', 'error')}"
        ledger.settle(COMMANDS, intent, FinalState.FAILED, reason)
        into_void += bool(getattr(result, "accepted", False))
    intents = len(mobile.started)
    n_applied = ledger.settled(COMMANDS, FinalState.APPLIED)
    n_failed = ledger.settled(COMMANDS, FinalState.FAILED)
    decided = n_applied + n_failed
    accepted = sum(1 for r, _ in mobile.results.values() if getattr(r, "accepted", False))
    return {
        "intents": intents,
        "applied": n_applied,
        "applied_more_than_once": duplicates,
        "failed": n_failed,
        "orphaned": ledger.settled(COMMANDS, FinalState.FAILED, "orphaned_pending"),
        "in_flight": intents - decided,
        "success_rate": n_applied / decided if decided else None,
        "app_told_accepted": accepted,
        "accepted_but_failed": into_void,
        "requests_sent": sum(getattr(r, "attempts", 0) for r, _ in mobile.results.values()),
        "latency_s": latency.summary(),
        "app_response_s": kernel.metrics.histogram(APP_RESPONSE).summary(),
        **command_load(world),  # offered-load amplification and goodput around the faults
    }, latency


def _distributions(world: World, applied_latency: Histogram) -> dict[str, Any]:
    """Every latency distribution, tabulated for CDF figures: each histogram the twin declares
    in seconds, and the commands' time from tap to applied (``flows.commands.latency_s``).

    ``quantiles`` holds ``[p, value]`` at :data:`sim.metrics.CDF_PROBABILITIES`, increasing in
    ``p`` and never decreasing in value; the same sketch as the summaries, so the entry at
    0.5 is the summary's ``p50``.
    """
    metrics = world.kernel.metrics
    sketches = {
        name: metrics.histogram(name)
        for name, spec in metrics.catalogue.items()
        if spec.kind == "histogram" and spec.unit == "s"
    }
    sketches[COMMAND_LATENCY] = applied_latency
    return {
        name: {"count": sketch.count, "unit": "s", "quantiles": sketch.quantiles(CDF_PROBABILITIES)}
        for name, sketch in sorted(sketches.items())
    }


def _publish_limit(world: World, verdicts: Ledger) -> dict[str, Any]:
    """What IoT Core's per-connection publish limit cost the users' commands, by final state.

    Read from the broker's record of refused publishes and the verdicts already settled, so
    a heavy command load that runs into the limit cannot pass for a healthy run: the refused
    commands fail silently as designed (:func:`models.logic.commands.submit_command` answers
    202), and the applied ones' latency stays low.
    """
    broker = world.broker
    started = world.mobile.started
    results = world.mobile.results
    states = dict.fromkeys((FinalState.APPLIED, FinalState.FAILED, FinalState.IN_FLIGHT), 0)
    hit = orphaned = into_void = 0
    for intent in broker.throttled_intents:
        if intent not in started:  # scheduled automation or a probe: not a user's intent
            continue
        hit += 1
        state, reason = verdicts.state_of(COMMANDS, intent)
        states[state] += 1
        if state is FinalState.FAILED:
            orphaned += reason == "orphaned_pending"
            into_void += bool(getattr(results[intent][0], "accepted", False))
    return {
        "limit_per_s": broker.config.publish_limit_per_s,
        "publishes_refused": broker.throttled,
        "intents_refused": hit,
        "applied": states[FinalState.APPLIED],
        "failed": states[FinalState.FAILED],
        "orphaned": orphaned,
        "accepted_but_failed": into_void,
        "in_flight": states[FinalState.IN_FLIGHT],
    }


def _warnings(commands: dict[str, Any]) -> list[str]:
    """Sentences for what a run's figures would hide unless read closely (none for most runs)."""
    limit = commands["publish_limit"]
    if not limit["publishes_refused"]:
        return []
    hit, intents = limit["intents_refused"], commands["intents"]
    share = f" ({100 * hit / intents:.0f} %)" if intents else ""
    return [
        f"IoT Core's per-connection publish limit ({limit['limit_per_s']:g}/s) refused "
        f"{limit['publishes_refused']:,} publishes (all clients'): {hit:,} of {intents:,} user commands{share} "
        f"were refused at least once; {limit['failed']:,} of them failed ({limit['orphaned']:,} orphaned pending; "
        f"{limit['accepted_but_failed']:,} after the app was told 'accepted'), {limit['applied']:,} were applied "
        f"by a later attempt, {limit['in_flight']:,} are still in flight"
    ]


def _sensor(world: World, ledger: Ledger) -> dict[str, Any]:
    kernel = world.kernel
    db = world.database
    # Records after a shard's checkpoint are in flight; some of them are already processed
    # (their rows may be in the database) and will be replayed if the consumer crashes now.
    checkpoints = [shard.checkpoint for shard in world.stream.shards]
    awaiting = sum(max(0, done - cp) for done, cp in zip(world.ingest.processed_upto, checkpoints, strict=True))
    return {
        "readings_emitted": world.meters.emitted,
        "stored": ledger.settled(READINGS, FinalState.STORED, ""),
        "stored_as_anomaly": ledger.settled(READINGS, FinalState.STORED, "anomalies_table"),
        "dropped": ledger.settled(READINGS, FinalState.DROPPED),
        "dead_lettered": ledger.settled(READINGS, FinalState.DEAD_LETTERED),
        "copies_sent": world.meters.copies,
        "duplicate_rows": db.duplicate_rows,
        "corrupted_rows": db.corrupted_rows,
        "devices_with_negative_energy": sum(1 for e in db.energy_wh if e < 0),
        "end_to_end_latency_s": kernel.metrics.histogram(READING_END_TO_END).summary(),
        "ingestion_lag_s": kernel.metrics.histogram(STREAM_ITERATOR_AGE).summary(),
        "stream_backlog_at_end": world.stream.backlog(),
        "processed_awaiting_checkpoint": awaiting,
        "unprocessed_in_stream": world.stream.backlog() - awaiting,
    }


def _analytics(world: World) -> dict[str, Any]:
    users = world.dashboards
    return {
        "requests": users.total,
        "good": users.good,
        "availability": users.good / users.total if users.total else None,
        "served_from_cache": users.degraded,
        "statuses": dict(sorted(users.statuses.items())),
        "latency_s": world.kernel.metrics.histogram(DASHBOARD_LATENCY).summary(),
        "staleness_s": users.staleness.summary(),
        "answers_missing_rows": users.answers_missing_rows,
        "breaker_transitions": [dict(t) for t in world.analytics.transitions[:BREAKER_TRANSITIONS_LISTED]],
        "breakers": _breakers(world),
    }


def _breakers(world: World) -> dict[str, Any]:
    """Each replica breaker's state over the run: seconds in each state, times opened, state at end.

    Read from the engine's log of transitions, never from the breakers (asking a breaker its
    state moves a due OPEN -> HALF_OPEN, which would change the run): an open breaker whose
    ``open_for`` has passed counts as half open from then on, as it would answer.
    """
    config = world.scenario.analytics.breaker
    if config is None:
        return {}
    end = world.kernel.now
    timelines: dict[str, list[tuple[float, str]]] = {replica: [] for replica in world.analytics.settings.replicas}
    for change in world.analytics.transitions:
        timelines.setdefault(change["replica"], []).append((change["t"], change["to"]))
    figures: dict[str, Any] = {}
    for replica, changes in sorted(timelines.items()):
        seconds: dict[str, float] = {}
        state, since = "closed", 0.0
        for at, new in changes:
            seconds[state] = seconds.get(state, 0.0) + at - since
            state, since = new, at
        if state == "open" and since + config.open_for <= end:
            seconds["open"] = seconds.get("open", 0.0) + config.open_for
            state, since = "half_open", since + config.open_for
        seconds[state] = seconds.get(state, 0.0) + end - since
        figures[replica] = {
            "state_at_end": state,
            "times_opened": sum(1 for _, new in changes if new == "open"),
            "seconds_in": {name: seconds.get(name, 0.0) for name in ("closed", "open", "half_open")},
        }
    return figures


def _billing(world: World) -> dict[str, Any]:
    """Each home's bill for the period as the analytics engine computes it from the database,
    against the bill of what its meter truly measured (C5)."""
    config = world.scenario.analytics.billing
    db = world.database
    homes = db.energy_wh.size
    anomalous = np.zeros(homes)
    for device, _ in db.anomalous_intervals:
        if device < homes:
            anomalous[device] += 1
    settings = settings_from(BillingSettings, config)
    billed = bills_usd(
        settings, db.energy_wh - db.late_energy_wh, db.reading_count - db.late_readings, anomalous, db.hours_per_reading
    )
    true = world.meters.true_energy_wh / 1000.0 * config.tariff_per_kwh
    error = billed - true
    worst = float(np.abs(error).max()) if homes else 0.0
    return {
        "homes": homes,
        "period_s": db.bill_until,
        "tariff_per_kwh": config.tariff_per_kwh,
        "true_usd": round(float(true.sum()), 2),
        "billed_usd": round(float(billed.sum()), 2),
        "max_abs_error_usd": round(worst, 4),
        "mean_abs_error_usd": round(float(np.abs(error).mean()), 6) if homes else 0.0,
        "homes_off_by_a_cent_or_more": int(np.count_nonzero(np.abs(error) >= 0.01)),
        "negative_bills": int(np.count_nonzero(billed < 0)),
        "lowest_bill_usd": round(float(billed.min()), 2) if homes else 0.0,
        "estimated_intervals": int(anomalous.sum()) if config.estimate_gaps else 0,
    }


def _inventory(world: World) -> dict[str, int]:
    held = world.meters.inventory()
    for kind, n in world.stream.unsettled(world.ingest.settled_upto).items():
        held[kind] = held.get(kind, 0) + n
    return held


def _command_invariants(world: World) -> list[Invariant]:
    """Cross-checks between components that no single component can fake."""
    received = sum(len(times) for times in world.devices.applied.values()) + world.devices.ignored_duplicates
    deliveries = world.broker.deliveries
    sent_rows = sum(1 for row in world.database.commands.values() if row["status"] == "sent")
    published = world.broker.served
    return [
        Invariant(
            "commands: devices only act on what the broker delivered",
            received <= deliveries,
            f"{received} commands received by devices, {deliveries} deliveries by the broker",
        ),
        Invariant(
            "commands: a row is 'sent' only after a publish was accepted",
            sent_rows <= published,
            f"{sent_rows} rows marked sent, {published} publishes accepted",
        ),
    ]


def summarise(world: World) -> dict[str, Any]:
    """The result body of the run so far (a pure reading: the world is left as it was)."""
    kernel = world.kernel
    verdicts = kernel.ledger.copy()
    commands, applied_latency = _settle_commands(world, verdicts)
    commands["publish_limit"] = _publish_limit(world, verdicts)
    ledger, invariants = verdicts.report(_inventory(world))
    invariants += _command_invariants(world)
    components: dict[str, Any] = {name: actor.stats() for name, actor in sorted(kernel.actors.items())}
    components[METERS] = world.meters.stats()
    components[DEVICES] = world.devices.stats()
    components[MOBILE] = world.mobile.stats()
    if world.automation is not None:
        components[AUTOMATION] = world.automation.stats()
    components["network"] = {
        "messages_dropped": kernel.network.dropped,
        "messages_duplicated": kernel.network.duplicated,
    }
    series_until = min(kernel.now, world.scenario.duration)  # mid-run: no empty future buckets
    body: dict[str, Any] = {
        "flows": {
            "sensor": _sensor(world, verdicts),
            "commands": commands,
            "analytics": _analytics(world),
            "billing": _billing(world),
        },
        "components": dict(sorted(components.items())),
        "ledger": ledger,
        "invariants": [inv.as_dict() for inv in invariants],
        "invariants_held": all(inv.held for inv in invariants),
        "warnings": _warnings(commands),
        "faults": [dict(entry) for entry in world.faults.log],  # a copy: the run goes on filling its own
        "counters": dict(sorted(kernel.metrics.counters.items())),
        "spans": kernel.spans.summary(),
        "timeseries": {
            "interval_s": kernel.metrics.interval,
            "start_s": kernel.start,  # the first bucket's start is the bucket holding it
            **kernel.metrics.every_series(series_until, kernel.start),
        },
        "distributions": _distributions(world, applied_latency),
        "health": health_summary(world, verdicts),
        "engine": {"simulated_s": kernel.now, "events": kernel.events_processed},
    }
    if world.scenario.slos:  # only when the scenario declares SLOs
        body["slos"] = slo_section(world)
    if world.recovery is not None:  # only with a durability section
        from models.recovery.results import durability_section

        body["durability"] = durability_section(world.recovery, kernel.now)
    return body
