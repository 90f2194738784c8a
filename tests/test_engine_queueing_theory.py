"""The engine against queueing theory: an M/M/c actor matches Erlang C and Little's law.

Built from the public engine API only: a Kernel, an Actor subclass with an exponential
service time, and one source process that spawns Poisson arrivals through the driver.
The test collects every request's queue wait itself (arrival in ``deliver`` to the start
of service, seen through the ``service_time`` hook), forms batch-means 99 % confidence
intervals for the mean wait and for P(wait), and checks that the Erlang C values lie
inside; it then checks that the actor's own figures (``queue_stats``) agree with the
per-request data, satisfy Little's law and give the offered load as utilisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from scipy import stats

from sim.actor import Actor, QueueStats, Request
from sim.distributions import Exponential
from sim.kernel import Kernel
from sim.ops import Operation, Sleep

LAM = 2.5  # arrivals per second
MU = 1.0  # services per second per worker
C = 4  # workers
SEED = 20_240_611
WARMUP = 500.0  # seconds discarded
HORIZON = 30_000.0  # about 75,000 arrivals
BATCHES = 20


@dataclass(frozen=True, slots=True)
class Job(Operation):
    target: str
    n: int
    timeout: float | None = None


class Server(Actor):
    """M/M/c server that notes, per job, when it arrived and when a worker started on it."""

    def __init__(self, kernel: Kernel, name: str, **kwargs: Any) -> None:
        super().__init__(kernel, name, zone="z1", region="r1", **kwargs)
        self.arrived: dict[int, float] = {}
        self.started: dict[int, float] = {}

    def deliver(self, request: Request) -> None:
        assert isinstance(request.op, Job)
        self.arrived[request.op.n] = self.kernel.now
        super().deliver(request)

    def service_time(self, op: Operation) -> float:
        assert isinstance(op, Job)
        self.started[op.n] = self.kernel.now  # a worker calls this the moment it pops the job
        return super().service_time(op)

    def handle(self, op: Operation, origin: str) -> Any:
        assert isinstance(op, Job)
        return op.n


def erlang_c(a: float, c: int) -> float:
    """P(wait) in an M/M/c queue with offered load ``a`` = lambda / mu < c."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def batch_ci(values: np.ndarray, batches: int, level: float = 0.99) -> tuple[float, float, float]:
    """Batch-means estimate and ``level`` confidence interval of the mean of a correlated series."""
    means = np.array([chunk.mean() for chunk in np.array_split(values, batches)])
    centre = float(means.mean())
    half = float(stats.t.ppf(0.5 + level / 2, batches - 1) * means.std(ddof=1) / math.sqrt(batches))
    return centre, centre - half, centre + half


@dataclass
class Run:
    server: Server
    window: QueueStats  # the actor's figures from WARMUP to HORIZON
    waits: np.ndarray  # per-job waits of the jobs arriving in [WARMUP, HORIZON - 60 s], in arrival order
    all_waits: np.ndarray  # per-job waits of every job a worker took


def simulate(seed: int) -> Run:
    """Run the M/M/c actor to HORIZON and collect its figures and every job's wait."""
    kernel = Kernel(seed=seed)
    kernel.network.add_node("client", zone="z1", region="r1")
    server = Server(kernel, "server", concurrency=C, service_time=Exponential(mean=1 / MU))
    gap = kernel.sampler(Exponential(mean=1 / LAM), "source")
    replies: list[Any] = []

    def job(n: int) -> Any:
        return (yield Job("server", n))

    def source() -> Any:
        n = 0
        while True:
            yield Sleep(gap())
            kernel.driver.spawn(job(n), "client", replies.append)
            n += 1

    kernel.driver.spawn(source(), "client")
    kernel.run(WARMUP)
    before = server.queue_stats()
    kernel.run(HORIZON)
    window = server.queue_stats().since(before)

    assert len(replies) > 70_000 and all(isinstance(r, int) for r in replies)  # every reply is a job's number
    jobs = sorted(server.started)
    assert jobs == list(range(len(jobs)))  # FIFO with no loss: the started jobs are a prefix
    arrived = np.array([server.arrived[n] for n in jobs])
    all_waits = np.array([server.started[n] for n in jobs]) - arrived
    keep = (arrived >= WARMUP) & (arrived <= HORIZON - 60.0)
    return Run(server, window, all_waits[keep], all_waits)


@pytest.fixture(scope="module")
def mmc() -> Run:
    return simulate(SEED)


def test_mean_wait_matches_erlang_c(mmc: Run) -> None:
    p_wait = erlang_c(LAM / MU, C)
    wq = p_wait / (C * MU - LAM)
    mean, low, high = batch_ci(mmc.waits, BATCHES)
    print(f"Wq theory {wq:.4f}  sim {mean:.4f}  99% CI [{low:.4f}, {high:.4f}]  n={mmc.waits.size}")
    assert low <= wq <= high
    assert high - low < 0.4 * wq  # the interval is tight enough to mean something (about +-8 % with this seed)


def test_wait_probability_matches_erlang_c(mmc: Run) -> None:
    p_wait = erlang_c(LAM / MU, C)
    assert p_wait == pytest.approx(0.3199, abs=1e-4)  # the textbook value, as a check on erlang_c
    share, low, high = batch_ci((mmc.waits > 0).astype(float), BATCHES)
    print(f"P(wait) theory {p_wait:.4f}  sim {share:.4f}  99% CI [{low:.4f}, {high:.4f}]")
    assert low <= p_wait <= high
    assert high - low < 0.15 * p_wait


def test_actor_wait_figures_are_the_per_request_waits(mmc: Run) -> None:
    server = mmc.server
    assert server.queue_wait.count == mmc.all_waits.size
    assert server.queue_wait.total == pytest.approx(float(mmc.all_waits.sum()), rel=1e-9)
    assert server.waited == int((mmc.all_waits > 0).sum())
    assert server.stats()["immediate"] == int((mmc.all_waits == 0).sum())
    assert server.queue_wait.max == pytest.approx(float(mmc.all_waits.max()), rel=1e-12)
    p99 = server.queue_wait.quantile(0.99)
    assert p99 == pytest.approx(float(np.quantile(mmc.all_waits, 0.99)), rel=0.02)


def test_littles_law_and_utilisation_from_actor_stats(mmc: Run) -> None:
    window = mmc.window
    assert window.start == WARMUP and window.end == HORIZON
    assert window.arrival_rate == pytest.approx(LAM, rel=0.03)
    # L_q = lambda * W_q, all three read from the actor
    print(
        f"Lq {window.mean_queue_length:.4f}  lambda*Wq {window.arrival_rate * window.mean_wait:.4f}"
        f"  utilisation {window.utilisation:.4f}  P(wait) {window.wait_probability:.4f}"
    )
    assert window.mean_queue_length == pytest.approx(window.arrival_rate * window.mean_wait, rel=0.02)
    # L = lambda * W for the servers: mean busy = lambda * E[S]; utilisation = a / c
    assert window.mean_busy == pytest.approx(window.arrival_rate / MU, rel=0.03)
    assert window.utilisation == pytest.approx(LAM / MU / C, rel=0.03)
    # and the theory's L_q = lambda * W_q from Erlang C
    lq = LAM * erlang_c(LAM / MU, C) / (C * MU - LAM)
    assert window.mean_queue_length == pytest.approx(lq, rel=0.1)


def test_result_file_figures(mmc: Run) -> None:
    figures = mmc.server.stats()
    whole = mmc.server.queue_stats()
    assert figures == mmc.server.stats()  # reading changes nothing
    assert figures["arrivals"] == whole.arrivals
    assert figures["observed_s"] == HORIZON
    assert figures["queue_wait_s"]["count"] == whole.dequeued
    assert figures["mean_queue_length"] == whole.mean_queue_length
    assert figures["utilisation"] == pytest.approx(LAM / MU / C, rel=0.03)
