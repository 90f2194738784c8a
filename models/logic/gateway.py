"""The API gateway: load shedding, JWT validation, the per-user rate limit, bulkheads, routing
(review S1, C3).

Every request is checked against its user's token bucket (1000 requests per minute by
default) and answered 429 with ``Retry-After`` when it is empty; otherwise it is routed
to the owning service and the service's answer is passed back.  As designed the gateway
waits on services without a timeout, so one hanging service ends up holding every gateway
worker and the requests for the healthy services starve behind it (C3's cascade).  The C3
countermeasures here, all off as designed:

* ``upstream_timeout``: a timeout on calls to services (the review's 10 s): 504.
* Bulkheads: one :class:`Compartment` per upstream service caps the requests in flight to
  it, so a hanging service can hold only its own compartment's share of the workers.  A
  request that finds its compartment full gets 503 at once, with no upstream call -- or,
  with a bounded wait, waits for a place first (see :func:`route_request` for its cost).
  A request that got in always leaves, whatever the upstream call did.
* Load shedding (``shed_above``): while more than that share of the gateway's workers is
  busy, a new request is refused at once with 503 and ``Retry-After``, before it can take
  one of the last workers.
* Priority when shedding (S1's priority queues): a request marked ``X-Priority: low``
  (scheduled automation) is shed above its own, lower line (``shed_low_priority_above``),
  so in a load spike automation gives way first and user commands keep the capacity.

Pure logic: the rate limiter and the compartments are clock-injected state owned by the
gateway actor; the actor also says how busy it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from models.names import ANALYTICS, DEVICE_MANAGER
from models.ops import HttpRequest, HttpResponse
from models.policies import Admitted, Bulkhead, KeyedRateLimiter, Queued, retry_after_seconds
from sim.ops import Logic, Now, OperationTimeout, OpError, Sleep

__all__ = [
    "BULKHEAD_FULL",
    "PRIORITY_HEADER",
    "ROUTES",
    "SHED",
    "Compartment",
    "GatewaySettings",
    "is_low_priority",
    "route_request",
]

ROUTES = {
    "POST /api/v1/devices/{id}/commands": DEVICE_MANAGER,
    "GET /api/v1/analytics/energy": ANALYTICS,
}


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """What the gateway needs from its configuration (defaults: as designed)."""

    upstream_timeout: float | None
    shed_above: float | None = None
    shed_low_priority_above: float | None = None
    bulkhead_poll: float = 0.01
    overload_retry_after: float = 1.0


class Compartment:
    """One upstream service's :class:`~models.policies.Bulkhead`, shared by the gateway's
    requests to that service.

    :meth:`Bulkhead.leave` hands a freed permit straight to the first waiting request and
    returns its ``Admitted``.  Sans-IO logic cannot be woken from outside, so the ticket is
    kept here until the waiting request, polling, :meth:`claim`\\ s it.

    Args:
        max_concurrent: Requests allowed in flight to the service at once.
        max_wait_s: How long a request may wait for a place (0: nobody waits).
    """

    __slots__ = ("_handed_over", "bulkhead")

    def __init__(self, max_concurrent: int, *, max_wait_s: float = 0.0) -> None:
        self.bulkhead = Bulkhead(max_concurrent, max_queue=None, max_wait_s=max_wait_s)
        self._handed_over: set[int] = set()

    def leave(self, now: float | None) -> None:
        """Free a permit at ``now`` (``None``: the latest time the bulkhead saw)."""
        handed = self.bulkhead.leave(now)
        if handed is not None:
            self._handed_over.add(handed.ticket)

    def claim(self, ticket: int) -> bool:
        """Whether a :meth:`leave` handed ``ticket`` a permit (now held by its caller)."""
        if ticket in self._handed_over:
            self._handed_over.remove(ticket)
            return True
        return False


SHED = "load_shedding"
BULKHEAD_FULL = "bulkhead"
PRIORITY_HEADER = "X-Priority"
"""``low`` marks sheddable traffic (scheduled automation); absent or anything else: a user's."""


def _overloaded(settings: GatewaySettings, error: str, refused_by: str) -> HttpResponse:
    """503 with Retry-After; ``refused_by`` (:data:`SHED` or :data:`BULKHEAD_FULL`) says which
    guard refused, so the gateway can count them."""
    wait = retry_after_seconds(settings.overload_retry_after)
    body = {"error": error, "refused_by": refused_by}
    return HttpResponse(503, body, {} if wait is None else {"Retry-After": str(wait)})


def _enter(settings: GatewaySettings, compartment: Compartment) -> Logic[bool]:
    """Take a place in ``compartment``: ``True`` once admitted, ``False`` when refused.

    A queued request sleeps in steps of ``settings.bulkhead_poll`` and looks each time
    whether a finished request handed it a permit, until its deadline.
    """
    now: float = yield Now()
    decision = compartment.bulkhead.enter(now)
    if isinstance(decision, Admitted):
        return True
    if not isinstance(decision, Queued):
        return False  # full, and no waiting allowed
    ticket, deadline = decision.ticket, decision.deadline
    settled = False
    try:
        while True:
            if compartment.claim(ticket):
                settled = True
                return True
            if now >= deadline:
                settled = True
                if compartment.bulkhead.cancel(ticket, now):
                    return False  # its wait ran out: rejected ("timeout")
                # no longer waiting: either a leave handed it a permit since the last look, or
                # another request's call already expired it
                return compartment.claim(ticket)
            yield Sleep(min(settings.bulkhead_poll, deadline - now))
            now = yield Now()
    finally:
        # closed while waiting (the gateway crashed): leave the queue, or give back a place
        # handed over since the last look
        if not settled and not compartment.bulkhead.cancel(ticket, now) and compartment.claim(ticket):
            compartment.leave(None)


def route_request(
    settings: GatewaySettings,
    request: HttpRequest,
    limiter: KeyedRateLimiter,
    compartments: Mapping[str, Compartment] | None = None,
    *,
    load: float = 0.0,
) -> Logic[HttpResponse]:
    """Shed load, authenticate, rate-limit and forward one request.

    Args:
        settings: See :class:`GatewaySettings`.
        request: The client's request.
        limiter: The per-user token buckets.
        compartments: The bulkhead of each upstream service that has one (a service not
            named has none).
        load: The share of the gateway's workers busy now, this request's included.

    Cost of a bounded bulkhead wait: a waiting request holds its gateway worker (as a
    thread blocked on a semaphore would), and it notices a permit handed to it only at its
    next look, so a handed-over permit stays unused for up to ``bulkhead_poll`` and every
    waiting request costs one wake-up per ``bulkhead_poll``.  With no wait (the default)
    nothing polls.
    """
    if settings.shed_above is not None and load > settings.shed_above:
        return _overloaded(settings, "overloaded: shedding load", SHED)
    low_line = settings.shed_low_priority_above
    if low_line is not None and load > low_line and is_low_priority(request):
        return _overloaded(settings, "overloaded: shedding low-priority load", SHED)
    if not request.headers.get("Authorization", "").startswith("Bearer "):
        return HttpResponse(401, {"error": "missing or invalid JWT"})
    now = yield Now()
    if not limiter.try_take(request.user, now):
        wait = retry_after_seconds(limiter.retry_after(request.user, now))
        return HttpResponse(429, {"error": "rate limit"}, {} if wait is None else {"Retry-After": str(wait)})
    service = ROUTES.get(request.route)
    if service is None:
        return HttpResponse(404, {"error": f"no route {request.route}"})
    upstream: Any = HttpRequest(
        service, request.route, request.user, request.body, request.headers, timeout=settings.upstream_timeout
    )
    compartment = None if compartments is None else compartments.get(service)
    if compartment is None:
        return (yield from _forward(service, upstream))
    if not (yield from _enter(settings, compartment)):
        return _overloaded(settings, f"{service}: bulkhead full", BULKHEAD_FULL)
    left_at: float | None = None
    try:
        response = yield from _forward(service, upstream)
        left_at = yield Now()
        return response
    finally:
        compartment.leave(left_at)  # always, even if the logic is closed mid-call


def is_low_priority(request: HttpRequest) -> bool:
    """Whether ``request`` is sheddable traffic (``X-Priority: low``)."""
    return request.headers.get(PRIORITY_HEADER) == "low"


def _forward(service: str, upstream: Any) -> Logic[HttpResponse]:
    try:
        response: HttpResponse = yield upstream
    except OperationTimeout:
        return HttpResponse(504, {"error": f"{service} timed out"})
    except OpError as error:
        return HttpResponse(503, {"error": f"{service}: {error.reason}"})
    return response
