"""Request-path benchmark: app commands and dashboard refreshes through the twin, against a bare SimPy chain.

Run from the repository root::

    .venv/bin/python benchmarks/requests.py                    # 20,000 app + 5,000 dashboard users, 10 min
    .venv/bin/python benchmarks/requests.py --minutes 2 --skip-chain
    .venv/bin/python benchmarks/requests.py --pairs 5           # twin and chain in turn 5 times (default 3)

**The twin run** builds a :class:`models.config.Scenario` in code: ``--users`` mobile users
sending a command a minute each and a quarter as many dashboard users refreshing once a
minute (about 250,000 requests in 10 simulated minutes with the defaults), a small meter
fleet for the dashboards to report on, no faults.  It runs the way ``hems-twin run`` does
(``models.twin.build``, ``kernel.run``, ``models.results.summarise``) and the wall time
covers all three.

**The bare chain** sends the same requests (the twin's count of each kind, at the same
Poisson rates) through plain SimPy with the twin's hops and limits and no logic: one
process per request; a ``simpy.Resource`` per service with the twin's concurrency (gateway
512, device manager 64, PostgreSQL 100 connections, IoT Core 256, Redis 64, analytics 50);
a ``timeout`` for every network hop and every service time, drawn from the twin's
distributions.  A command is phone -> gateway -> device manager -> INSERT -> publish (and
the delivery to the device with its acknowledgement) -> UPDATE -> Redis -> back; a refresh
is phone -> gateway -> analytics engine -> replica query -> back.  It is the floor of a
straightforward process-per-request design, with nothing the twin exists to show.

Each measurement runs in a fresh subprocess, so peak RSS (``ru_maxrss``) is its own.  The
table goes to stdout; the figures (no timestamps) go to
``benchmarks/results/requests-<minutes>min-<users>u.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from harness import child, median, peak_rss_mib, row, write

SEED = 7
COMMANDS_PER_USER_PER_HOUR = 60.0
QUERIES_PER_USER_PER_HOUR = 60.0
TARGET_RATIO = 1.0


# -- the measured children ------------------------------------------------------------------
def scenario(minutes: float, users: int) -> Any:
    """The benchmark scenario: commands and dashboard refreshes, a small fleet, no faults."""
    from models.config import FleetConfig, Scenario, WorkloadConfig

    return Scenario(
        name="bench-requests",
        description="request-path benchmark: app commands and dashboard refreshes, no faults",
        duration=minutes * 60.0,
        fleet=FleetConfig(meters=100, controllables=users),
        workload=WorkloadConfig(
            mobile_users=users,
            commands_per_user_per_hour=COMMANDS_PER_USER_PER_HOUR,
            dashboard_users=users // 4,
            queries_per_user_per_hour=QUERIES_PER_USER_PER_HOUR,
        ),
    )


def run_twin(minutes: float, users: int) -> dict[str, Any]:
    """Build, run and summarise the twin; return the measured figures."""
    from models.results import summarise
    from models.twin import build

    spec = scenario(minutes, users)
    start = time.perf_counter()
    world = build(spec, SEED)
    world.kernel.run(until=spec.duration)
    result = summarise(world)
    wall = time.perf_counter() - start
    commands = result["flows"]["commands"]
    analytics = result["flows"]["analytics"]
    return {
        "simulated_s": spec.duration,
        "users": users,
        "commands": commands["intents"],
        "command_requests": commands["requests_sent"],
        "commands_applied": commands["applied"],
        "command_latency_p50_s": commands["latency_s"]["p50"],
        "dashboard_requests": analytics["requests"],
        "dashboard_availability": analytics["availability"],
        "requests": commands["requests_sent"] + analytics["requests"],
        "invariants_held": result["invariants_held"],
        "events": result["engine"]["events"],
        "wall_s": wall,
        "peak_rss_mib": peak_rss_mib(),
    }


def run_chain(minutes: float, commands: int, queries: int) -> dict[str, Any]:
    """Send ``commands`` commands and ``queries`` refreshes through the bare chain."""
    import numpy as np
    import simpy

    env = simpy.Environment()
    rng = np.random.default_rng(SEED)
    resources = {
        name: simpy.Resource(env, capacity)
        for name, capacity in {
            "gateway": 512,
            "device-manager": 64,
            "postgres": 100,
            "iot-core": 256,
            "redis": 64,
            "analytics": 50,
            "replica": 100,
        }.items()
    }

    def stream(draw: Any) -> Any:
        """Values of ``draw(n)`` handed out one at a time, drawn 4096 at a go."""
        while True:
            yield from draw(4096).tolist()

    lan = 0.001  # access + zone links inside the region, as the twin's defaults (0.2 + 0.3 + 0.3 + 0.2 ms)
    wan = stream(lambda n: 0.001 + 2 * np.exp(np.log(0.015) + 0.3 * rng.standard_normal(n)))  # two region hops
    write = stream(lambda n: np.exp(np.log(0.002) + 0.3 * rng.standard_normal(n)))
    query = stream(lambda n: np.exp(np.log(0.040) + 0.6 * rng.standard_normal(n)))
    done = [0, 0]

    def serve(name: str, seconds: float) -> Any:
        with resources[name].request() as slot:
            yield slot
            yield env.timeout(seconds)

    def call(name: str, seconds: float) -> Any:
        yield env.timeout(lan)
        yield from serve(name, seconds)
        yield env.timeout(lan)

    def delivery() -> Any:
        yield env.timeout(next(wan))  # broker -> device
        yield env.timeout(next(wan))  # the device's acknowledgement

    def command() -> Any:
        yield env.timeout(next(wan))
        with resources["gateway"].request() as gateway:
            yield gateway
            yield env.timeout(0.001)  # JWT check
            yield env.timeout(lan)
            with resources["device-manager"].request() as worker:
                yield worker
                yield env.timeout(0.001)
                yield from call("postgres", next(write))  # INSERT pending
                yield from call("iot-core", 0.001)  # publish
                env.process(delivery())
                yield from call("postgres", next(write))  # UPDATE sent
                yield from call("redis", 0.0002)
            yield env.timeout(lan)
        yield env.timeout(next(wan))
        done[0] += 1

    def refresh() -> Any:
        yield env.timeout(next(wan))
        with resources["gateway"].request() as gateway:
            yield gateway
            yield env.timeout(0.001)
            yield env.timeout(lan)
            with resources["analytics"].request() as worker:
                yield worker
                yield from call("replica", next(query))
            yield env.timeout(lan)
        yield env.timeout(next(wan))
        done[1] += 1

    def arrivals(count: int, body: Any) -> Any:
        gaps = rng.exponential(minutes * 60.0 / max(1, count), count).tolist()
        for gap in gaps:
            yield env.timeout(gap)
            env.process(body())

    env.process(arrivals(commands, command))
    env.process(arrivals(queries, refresh))
    start = time.perf_counter()
    env.run()
    wall = time.perf_counter() - start
    return {
        "commands": done[0],
        "dashboard_requests": done[1],
        "requests": done[0] + done[1],
        "simulated_s": env.now,
        "events": next(env._eid) - 1,  # simpy exposes no public event counter
        "wall_s": wall,
        "peak_rss_mib": peak_rss_mib(),
    }


# -- the parent: subprocesses, table, JSON ----------------------------------------------------


def _with_rates(run: dict[str, Any]) -> dict[str, Any]:
    """A child's figures with its requests per wall second and events per request."""
    run["requests_per_wall_s"] = run["requests"] / run["wall_s"]
    run["events_per_request"] = run["events"] / max(1, run["requests"])
    return run


def _typical(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The first run's simulated figures (the same in every run: same seed) with the runs' median timings."""
    typical = dict(runs[0])
    for key in ("wall_s", "requests_per_wall_s", "peak_rss_mib"):
        typical[key] = median([run[key] for run in runs])
    return typical


def _report(minutes: float, users: int, skip_chain: bool, pairs: int) -> dict[str, Any]:
    """Twin and chain in turn, ``pairs`` times; the ratio is the median of the pairs' ratios.

    Why pairs: the machine is shared and its speed drifts by tens of percent within
    minutes, so a twin run and a chain run far apart in time are not comparable.  Each
    pair runs back to back, the ratio is taken within the pair, and the median of those
    is what the table and the JSON report (with every pair's figures alongside).
    """
    twins: list[dict[str, Any]] = []
    chains: list[dict[str, Any]] = []
    for _ in range(1 if skip_chain else pairs):
        twins.append(_with_rates(child(__file__, "twin", "--minutes", str(minutes), "--users", str(users))))
        if skip_chain:
            break
        chain = child(
            __file__,
            "chain",
            "--minutes",
            str(minutes),
            "--commands",
            str(twins[-1]["command_requests"]),
            "--queries",
            str(twins[-1]["dashboard_requests"]),
        )
        chains.append(_with_rates(chain))
    twin = _typical(twins)
    report: dict[str, Any] = {
        "benchmark": "requests",
        "minutes": minutes,
        "users": users,
        "seed": SEED,
        "pairs": len(twins),
        "twin": twin,
        "twin_wall_s_each": [run["wall_s"] for run in twins],
    }
    lines = [
        f"request benchmark: {users:,} app users and {users // 4:,} dashboard users, {minutes:g} simulated min, "
        f"seed {SEED}, {len(twins)} pair(s) of runs (medians)",
        "",
        "twin",
        row("commands (requests sent)", f"{twin['commands']:,} ({twin['command_requests']:,})"),
        row("dashboard requests", twin["dashboard_requests"]),
        row("invariants held", twin["invariants_held"]),
        row("wall seconds", twin["wall_s"]),
        row("requests per wall second", twin["requests_per_wall_s"]),
        row("simpy events", twin["events"]),
        row("events per request", twin["events_per_request"]),
        row("peak RSS MiB", twin["peak_rss_mib"]),
    ]
    if chains:
        chain = _typical(chains)
        ratios = [t["requests_per_wall_s"] / c["requests_per_wall_s"] for t, c in zip(twins, chains, strict=True)]
        ratio = median(ratios)
        report["chain"] = chain
        report["chain_wall_s_each"] = [run["wall_s"] for run in chains]
        report["ratio_each_pair"] = ratios
        report["ratio_twin_to_chain"] = ratio
        verdict = "ok" if ratio >= TARGET_RATIO else "MISSED"
        lines += [
            "",
            "bare SimPy chain (same hops, limits and service times; no logic)",
            row("requests", chain["requests"]),
            row("wall seconds", chain["wall_s"]),
            row("requests per wall second", chain["requests_per_wall_s"]),
            row("simpy events", chain["events"]),
            row("events per request", chain["events_per_request"]),
            row("peak RSS MiB", chain["peak_rss_mib"]),
            "",
            row("twin / chain, each pair", ", ".join(f"{r:.2f}" for r in ratios)),
            row("twin / chain requests per second", ratio, f"median; target >= {TARGET_RATIO:g}: {verdict}"),
        ]
    print("\n".join(lines))
    report["target_ratio"] = TARGET_RATIO
    write(f"requests-{minutes:g}min-{users}u.json", report)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description="Request-path benchmark: the twin against a bare SimPy chain.")
    parser.add_argument("--minutes", type=float, default=10.0, help="simulated minutes (default 10)")
    parser.add_argument("--users", type=int, default=20_000, help="mobile users; dashboards are a quarter as many")
    parser.add_argument("--skip-chain", action="store_true", help="measure the twin only")
    parser.add_argument(
        "--pairs", type=int, default=3, help="twin and chain run in turn this many times; medians (default 3)"
    )
    parser.add_argument("--child", choices=("twin", "chain"), help=argparse.SUPPRESS)
    parser.add_argument("--commands", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--queries", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "twin":
        print(json.dumps(run_twin(args.minutes, args.users)))
    elif args.child == "chain":
        print(json.dumps(run_chain(args.minutes, args.commands, args.queries)))
    else:
        if args.pairs < 1:
            parser.error("--pairs must be at least 1")
        _report(args.minutes, args.users, args.skip_chain, args.pairs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
