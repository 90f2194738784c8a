"""The API gateway: JWT validation, the per-user rate limit, routing (review S1, C3).

Every request is checked against its user's token bucket (1000 requests per minute by
default) and answered 429 with ``Retry-After`` when it is empty; otherwise it is routed
to the owning service and the service's answer is passed back.  As designed the gateway
waits on services without a timeout; the C3 countermeasure sets one (10 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.names import ANALYTICS, DEVICE_MANAGER
from models.ops import HttpRequest, HttpResponse
from models.policies import KeyedRateLimiter, retry_after_seconds
from sim.ops import Logic, Now, OperationTimeout, OpError

__all__ = ["ROUTES", "GatewaySettings", "route_request"]

ROUTES = {
    "POST /api/v1/devices/{id}/commands": DEVICE_MANAGER,
    "GET /api/v1/analytics/energy": ANALYTICS,
}


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """What the gateway needs from its configuration."""

    upstream_timeout: float | None


def route_request(
    settings: GatewaySettings,
    request: HttpRequest,
    limiter: KeyedRateLimiter,
) -> Logic[HttpResponse]:
    """Authenticate, rate-limit and forward one request."""
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
    try:
        response: HttpResponse = yield upstream
    except OperationTimeout:
        return HttpResponse(504, {"error": f"{service} timed out"})
    except OpError as error:
        return HttpResponse(503, {"error": f"{service}: {error.reason}"})
    return response
