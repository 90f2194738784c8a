"""Client behaviour: the mobile app's timeout-and-retry, and the dashboard's single try.

The app waits ``timeout`` for an answer and, on a timeout, a connection error, a 429 or
a 5xx, tries again on its retry policy, waiting at least what a ``Retry-After`` asks.  Without idempotency keys
each retry is a brand-new command to the server -- the duplicate commands of review C2.
With them, one key per user intent lets the server recognise the retry.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.names import API_GATEWAY
from models.ops import HttpRequest, HttpResponse
from models.policies import RandomSource, RetryPolicy
from sim.ops import Logic, Now, OpError, Sleep

__all__ = ["AppResult", "AppSettings", "dashboard_query", "send_command"]

GATEWAY = API_GATEWAY


@dataclass(frozen=True, slots=True)
class AppSettings:
    """The mobile app's networking behaviour."""

    app_timeout: float
    app_retry: RetryPolicy
    send_idempotency_keys: bool


@dataclass(frozen=True, slots=True)
class AppResult:
    """How a user intent ended from the user's point of view."""

    accepted: bool
    status: int | str
    attempts: int


def _seconds(header: str | None) -> float | None:
    """A ``Retry-After`` of delay-seconds (RFC 9110), or None when absent or not a number."""
    if header is None:
        return None
    try:
        seconds = float(header)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _retryable(status: int) -> bool:
    return status == 429 or status == 409 or status >= 500


def send_command(
    settings: AppSettings, user: str, device_id: int, action: str, intent: str, rng: RandomSource | None = None
) -> Logic[AppResult]:
    """Send one command the way the app does; see the module docstring.

    ``rng`` draws the retry policy's jitter, if it has any.
    """
    headers = {"Authorization": f"Bearer token-{user}"}
    if settings.send_idempotency_keys:
        headers["Idempotency-Key"] = intent
    body = {"device_id": device_id, "action": action, "intent": intent}
    last: int | str = "none"
    started = yield Now()
    attempt = 0
    while True:
        attempt += 1
        retry_after: float | None = None
        try:
            response: HttpResponse = yield HttpRequest(
                GATEWAY, "POST /api/v1/devices/{id}/commands", user, body, headers, timeout=settings.app_timeout
            )
        except OpError as error:
            last = error.reason
        else:
            if response.ok:
                return AppResult(True, response.status, attempt)
            last = response.status
            if not _retryable(response.status):
                return AppResult(False, response.status, attempt)
            retry_after = _seconds(response.headers.get("Retry-After"))
        now = yield Now()
        delay = settings.app_retry.next_delay(attempt, now=now, started_at=started, retry_after_s=retry_after, rng=rng)
        if delay is None:
            return AppResult(False, last, attempt)
        yield Sleep(delay)


def dashboard_query(timeout: float, user: str, device_id: int) -> Logic[HttpResponse]:
    """One dashboard refresh: a single request, no retry (the user reloads later)."""
    headers = {"Authorization": f"Bearer token-{user}"}
    request = HttpRequest(
        GATEWAY, "GET /api/v1/analytics/energy", user, {"device_id": device_id}, headers, timeout=timeout
    )
    try:
        response: HttpResponse = yield request
    except OpError as error:
        return HttpResponse(599, {"error": error.reason})
    return response
