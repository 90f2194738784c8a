"""Client behaviour: the mobile app's timeout-and-retry, and the dashboard's single try.

The app waits ``timeout`` for an answer and, on a timeout, a connection error, a 429 or
a 5xx, tries again on its retry policy, waiting at least what a ``Retry-After`` asks.  Without idempotency keys
each retry is a brand-new command to the server -- the duplicate commands of review C2.
With them, one key per user intent lets the server recognise the retry.

A retry limiter (:class:`~models.policies.RetryLimiter`: a Finagle budget, the AWS SDKs'
retry quota, gRPC retry throttling) may cap the retries on top of the schedule, because a
schedule alone lets every intent become ``max_attempts`` requests when the backend is slow:
the retry storm that keeps a briefly slowed backend overloaded.  The limiter belongs to the
client instance that sends (an SDK keeps one per client), so the caller passes the one of
the sending client; this logic consults it once per call, per attempt and per retry, in the
order :class:`~models.policies.RetryCall` prescribes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from models.names import API_GATEWAY
from models.ops import HttpRequest, HttpResponse
from models.policies import RandomSource, RetryCall, RetryKind, RetryLimiter, RetryPolicy, RetryStop
from sim.ops import Logic, Now, OperationTimeout, OpError, Sleep

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
    gave_up: RetryStop | None = None
    """Why the app stopped retrying (``"attempts"``, ``"budget"``, ...); None when accepted."""


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


def _kind(failure: int | OpError) -> RetryKind:
    """What a retry answers, for the limiter's price: a timeout costs an AWS quota most."""
    if isinstance(failure, OpError):
        return "timeout" if isinstance(failure, OperationTimeout) else "transient"
    return "throttle" if failure == 429 else "transient"


def send_command(
    settings: AppSettings,
    user: str,
    device_id: int,
    action: str,
    intent: str,
    rng: RandomSource | None = None,
    limiter: RetryLimiter | None = None,
    on_request: Callable[[], None] | None = None,
) -> Logic[AppResult]:
    """Send one command the way the app does; see the module docstring.

    ``rng`` draws the retry policy's jitter, if it has any; ``limiter`` is the sending
    client's retry limiter, if it has one: a retry it refuses ends the intent (``gave_up``
    ``"budget"``) with the last failure.  ``on_request`` is told each time a request goes
    out (the offered load an observer counts; it changes nothing here).
    """
    headers = {"Authorization": f"Bearer token-{user}"}
    if settings.send_idempotency_keys:
        headers["Idempotency-Key"] = intent
    body = {"device_id": device_id, "action": action, "intent": intent}
    started = yield Now()
    call = RetryCall(settings.app_retry, started, rng=rng, limiter=limiter)
    while True:
        retry_after: float | None = None
        failure: int | OpError
        if on_request is not None:
            on_request()
        try:
            response: HttpResponse = yield HttpRequest(
                GATEWAY, "POST /api/v1/devices/{id}/commands", user, body, headers, timeout=settings.app_timeout
            )
        except OpError as error:
            failure = error
        else:
            if response.ok:
                call.on_success((yield Now()))
                return AppResult(True, response.status, call.attempts)
            failure = response.status
            retry_after = _seconds(response.headers.get("Retry-After"))
        last = failure.reason if isinstance(failure, OpError) else failure
        retryable = isinstance(failure, OpError) or _retryable(failure)
        now = yield Now()
        delay = call.on_failure(now, retryable=retryable, kind=_kind(failure), retry_after_s=retry_after)
        if delay is None:
            return AppResult(False, last, call.attempts, call.stop)
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
