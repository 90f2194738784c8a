"""Client behaviour: the mobile app's timeout-and-retry, and the dashboard's single try.

The app waits ``timeout`` for an answer and, on a timeout, a connection error, a 429 or
a 5xx, tries again after a backoff, up to ``retries`` times.  Without idempotency keys
each retry is a brand-new command to the server -- the duplicate commands of review C2.
With them, one key per user intent lets the server recognise the retry.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.names import API_GATEWAY
from models.ops import HttpRequest, HttpResponse
from sim.ops import Logic, OpError, Sleep

__all__ = ["AppResult", "AppSettings", "dashboard_query", "send_command"]

GATEWAY = API_GATEWAY


@dataclass(frozen=True, slots=True)
class AppSettings:
    """The mobile app's networking behaviour."""

    app_timeout: float
    app_retries: int
    app_retry_backoff: float
    send_idempotency_keys: bool


@dataclass(frozen=True, slots=True)
class AppResult:
    """How a user intent ended from the user's point of view."""

    accepted: bool
    status: int | str
    attempts: int


def _retryable(status: int) -> bool:
    return status == 429 or status == 409 or status >= 500


def send_command(settings: AppSettings, user: str, device_id: int, action: str, intent: str) -> Logic[AppResult]:
    """Send one command the way the app does; see the module docstring."""
    headers = {"Authorization": f"Bearer token-{user}"}
    if settings.send_idempotency_keys:
        headers["Idempotency-Key"] = intent
    body = {"device_id": device_id, "action": action, "intent": intent}
    last: int | str = "none"
    for attempt in range(1, settings.app_retries + 2):
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
        if attempt <= settings.app_retries:
            yield Sleep(settings.app_retry_backoff * attempt)
    return AppResult(False, last, settings.app_retries + 1)


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
