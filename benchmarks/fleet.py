"""Fleet benchmark: a smart-meter fleet through the twin's whole ingest path, against a bare relay.

Run from the repository root::

    .venv/bin/python benchmarks/fleet.py                   # 10,000 meters, 1 simulated hour
    .venv/bin/python benchmarks/fleet.py --hours 0.25 --meters 2000 --skip-relay
    .venv/bin/python benchmarks/fleet.py --memory-check    # peak RSS of 1 h against 4 h

**The twin run** builds a :class:`models.config.Scenario` in code -- ``--meters`` meters
reporting every 10 s, four stream shards (room for 4,000 records/s), a few hundred mobile
and dashboard users sending commands and running queries alongside -- and runs it with
:func:`models.twin.build`, ``kernel.run`` and :func:`models.results.summarise`, exactly as
``hems-twin run`` does.

**The bare relay** pushes the same number of readings through plain SimPy with as many
``simpy.Store`` hops as the twin's reading path has: meter -> broker (MQTT publish),
broker -> stream (the IoT rule's PutRecords), stream -> consumer (GetRecords), consumer ->
database (the bulk insert) -- four hops, so four stores.  The devices are one generator
process emitting on the fleet's schedule (same meters, period, random phases and
scheduler tick); each hop is one process doing ``yield store.get()`` then
``store.put()`` into the next store; a sink at the end counts.  No logic, no delays, no
faults: it is the floor a naive process-and-store design cannot go below.

Each measurement runs in a fresh subprocess, so peak RSS (``ru_maxrss``) is its own.
The table goes to stdout; the figures (no timestamps) go to
``benchmarks/results/fleet-<hours>h-<meters>m.json`` (``fleet-memory-<meters>m.json``
for ``--memory-check``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from itertools import pairwise
from typing import Any

from harness import child, peak_rss_mib, row, write

SEED = 7
PERIOD = 10.0  # seconds between two readings of one meter
TICK = 0.25  # the fleet scheduler's tick (FleetConfig default)
HOPS = ("meter->broker", "broker->stream", "stream->consumer", "consumer->database")

TARGET_RATIO = 2.0
TARGET_WALL_S = 60.0
TARGET_RSS_MIB = 1024.0
TARGET_RSS_GROWTH = 0.10


# -- the measured children ------------------------------------------------------------------
def scenario(hours: float, meters: int) -> Any:
    """The benchmark scenario: the fleet plus command and dashboard traffic, no faults."""
    from models.config import FleetConfig, Scenario, StreamConfig, WorkloadConfig

    return Scenario(
        name="bench-fleet",
        description="fleet benchmark: meters through the whole ingest path, commands and dashboards alongside",
        duration=hours * 3600.0,
        fleet=FleetConfig(meters=meters, report_every=PERIOD, tick=TICK, controllables=500),
        stream=StreamConfig(shards=4),
        workload=WorkloadConfig(
            mobile_users=500,
            commands_per_user_per_hour=2.0,
            dashboard_users=200,
            queries_per_user_per_hour=12.0,
        ),
    )


def run_twin(hours: float, meters: int) -> dict[str, Any]:
    """Build, run and summarise the twin; return the measured figures."""
    from models.results import summarise
    from models.twin import build

    spec = scenario(hours, meters)
    start = time.perf_counter()
    world = build(spec, SEED)
    world.kernel.run(until=spec.duration)
    result = summarise(world)
    wall = time.perf_counter() - start
    sensor = result["flows"]["sensor"]
    commands = result["flows"]["commands"]
    return {
        "simulated_s": spec.duration,
        "meters": meters,
        "readings_emitted": sensor["readings_emitted"],
        "readings_stored": sensor["stored"],
        "commands": commands["intents"],
        "commands_applied": commands["applied"],
        "dashboard_requests": result["flows"]["analytics"]["requests"],
        "invariants_held": result["invariants_held"],
        "events": result["engine"]["events"],
        "wall_s": wall,
        "peak_rss_mib": peak_rss_mib(),
    }


def run_relay(hours: float, meters: int, readings: int) -> dict[str, Any]:
    """Push ``readings`` readings through the bare four-hop relay; return the figures."""
    import numpy as np
    import simpy

    env = simpy.Environment()
    stores = [simpy.Store(env) for _ in HOPS]
    delivered = [0]

    def devices() -> Any:
        rng = np.random.default_rng(SEED)
        next_emit = rng.uniform(0.0, PERIOD, meters)
        first = stores[0]
        left = readings
        while left > 0:
            horizon = env.now + TICK
            due = np.nonzero(next_emit < horizon)[0]
            if len(due):
                times = next_emit[due]
                next_emit[due] = times + PERIOD
                order = np.argsort(times, kind="stable")
                for device, at in zip(due[order].tolist()[:left], times[order].tolist()[:left], strict=True):
                    first.put((device, at))
                left -= min(left, len(due))
            yield env.timeout(TICK)

    def hop(source: simpy.Store, target: simpy.Store) -> Any:
        while True:
            item = yield source.get()
            target.put(item)

    def sink(source: simpy.Store) -> Any:
        while True:
            yield source.get()
            delivered[0] += 1

    env.process(devices())
    for source, target in pairwise(stores):
        env.process(hop(source, target))
    env.process(sink(stores[-1]))
    start = time.perf_counter()
    env.run()  # ends when the devices are done and every reading reached the sink
    wall = time.perf_counter() - start
    return {
        "hops": len(HOPS),
        "readings_delivered": delivered[0],
        "simulated_s": env.now,
        "events": next(env._eid) - 1,  # simpy exposes no public event counter
        "wall_s": wall,
        "peak_rss_mib": peak_rss_mib(),
    }


# -- the parent: subprocesses, table, JSON ----------------------------------------------------


def _twin(hours: float, meters: int) -> dict[str, Any]:
    figures = child(__file__, "twin", "--hours", str(hours), "--meters", str(meters))
    figures["readings_per_wall_s"] = figures["readings_stored"] / figures["wall_s"]
    figures["simulated_s_per_wall_s"] = figures["simulated_s"] / figures["wall_s"]
    figures["events_per_reading"] = figures["events"] / max(1, figures["readings_stored"])
    return figures


def _relay(hours: float, meters: int, readings: int) -> dict[str, Any]:
    figures = child(__file__, "relay", "--hours", str(hours), "--meters", str(meters), "--readings", str(readings))
    figures["readings_per_wall_s"] = figures["readings_delivered"] / figures["wall_s"]
    figures["events_per_reading"] = figures["events"] / max(1, figures["readings_delivered"])
    return figures


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def _fleet(hours: float, meters: int, skip_relay: bool) -> dict[str, Any]:
    twin = _twin(hours, meters)
    report: dict[str, Any] = {"benchmark": "fleet", "hours": hours, "meters": meters, "seed": SEED, "twin": twin}
    lines = [f"fleet benchmark: {meters:,} meters every {PERIOD:g} s, {hours:g} simulated h, seed {SEED}", "", "twin"]
    lines += [
        row("readings stored", twin["readings_stored"]),
        row("commands / dashboard requests", f"{twin['commands']:,} / {twin['dashboard_requests']:,}"),
        row("invariants held", twin["invariants_held"]),
        row(
            "wall seconds",
            twin["wall_s"],
            f"target < {TARGET_WALL_S * hours:g}: {_verdict(twin['wall_s'] < TARGET_WALL_S * hours)}",
        ),
        row("readings per wall second", twin["readings_per_wall_s"]),
        row("simulated seconds per wall second", twin["simulated_s_per_wall_s"]),
        row("simpy events", twin["events"]),
        row("events per reading", twin["events_per_reading"]),
        row(
            "peak RSS MiB",
            twin["peak_rss_mib"],
            f"target < {TARGET_RSS_MIB:g}: {_verdict(twin['peak_rss_mib'] < TARGET_RSS_MIB)}",
        ),
    ]
    if not skip_relay:
        relay = _relay(hours, meters, twin["readings_stored"])
        ratio = twin["readings_per_wall_s"] / relay["readings_per_wall_s"]
        report["relay"] = relay
        report["ratio_twin_to_relay"] = ratio
        lines += [
            "",
            f"bare relay ({len(HOPS)} Store hops: {', '.join(HOPS)})",
            row("readings delivered", relay["readings_delivered"]),
            row("wall seconds", relay["wall_s"]),
            row("readings per wall second", relay["readings_per_wall_s"]),
            row("simpy events", relay["events"]),
            row("events per reading", relay["events_per_reading"]),
            row("peak RSS MiB", relay["peak_rss_mib"]),
            "",
            row(
                "twin / relay readings per second",
                ratio,
                f"target >= {TARGET_RATIO:g}: {_verdict(ratio >= TARGET_RATIO)}",
            ),
        ]
    print("\n".join(lines))
    report["targets"] = {"ratio": TARGET_RATIO, "wall_s_per_hour": TARGET_WALL_S, "peak_rss_mib": TARGET_RSS_MIB}
    write(f"fleet-{hours:g}h-{meters}m.json", report)
    return report


def _memory_check(meters: int) -> dict[str, Any]:
    runs = {hours: _twin(hours, meters) for hours in (1.0, 4.0)}
    growth = runs[4.0]["peak_rss_mib"] / runs[1.0]["peak_rss_mib"]
    lines = [f"memory check: {meters:,} meters, 1 h against 4 h (fresh processes)", ""]
    lines.append(f"  {'':<10} {'readings stored':>16} {'wall s':>10} {'events':>12} {'peak RSS MiB':>14}")
    for hours, figures in runs.items():
        lines.append(
            f"  {f'{hours:g} h':<10} {figures['readings_stored']:>16,} {figures['wall_s']:>10.1f}"
            f" {figures['events']:>12,} {figures['peak_rss_mib']:>14.1f}"
        )
    ok = abs(growth - 1.0) <= TARGET_RSS_GROWTH
    lines += ["", f"  peak RSS 4 h / 1 h: {growth:.3f}   target within {TARGET_RSS_GROWTH:.0%}: {_verdict(ok)}"]
    print("\n".join(lines))
    report = {
        "benchmark": "fleet-memory",
        "meters": meters,
        "seed": SEED,
        "runs": {f"{hours:g}h": figures for hours, figures in runs.items()},
        "rss_ratio_4h_to_1h": growth,
        "target_growth": TARGET_RSS_GROWTH,
    }
    write(f"fleet-memory-{meters}m.json", report)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description="Fleet benchmark: the twin's ingest path against a bare SimPy relay.")
    parser.add_argument("--hours", type=float, default=1.0, help="simulated hours (default 1)")
    parser.add_argument(
        "--meters", type=int, default=10_000, help="smart meters, one reading each 10 s (default 10000)"
    )
    parser.add_argument("--skip-relay", action="store_true", help="measure the twin only")
    parser.add_argument("--memory-check", action="store_true", help="peak RSS of a 1 h and a 4 h run, and their ratio")
    parser.add_argument("--child", choices=("twin", "relay"), help=argparse.SUPPRESS)
    parser.add_argument("--readings", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "twin":
        print(json.dumps(run_twin(args.hours, args.meters)))
    elif args.child == "relay":
        print(json.dumps(run_relay(args.hours, args.meters, args.readings)))
    elif args.memory_check:
        _memory_check(args.meters)
    else:
        _fleet(args.hours, args.meters, args.skip_relay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
