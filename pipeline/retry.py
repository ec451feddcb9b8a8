"""Bounded retries for storage I/O: transient failures (connection refused, timeouts, 5xx) are
retried with exponential backoff until a time budget is spent, then :class:`StorageUnavailable`.

Only transient errors are retried: a missing file or a denied request fails at once (it becomes an
error row or a message). The budget is ``Storage.retry_seconds`` (``$NLE_IO_RETRY_SECONDS``).
"""

from __future__ import annotations

import errno
import logging
import time
from typing import Callable, TypeVar

T = TypeVar("T")

# Every retry is logged as one WARNING line starting with this prefix (on workers it lands in Ray's
# worker logs), so an outage that was ridden out leaves evidence.
RETRY_LOG_PREFIX = "storage retry"
_log = logging.getLogger(__name__)

DEFAULT_RETRY_SECONDS = 120.0
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 8.0

# Errors that say "try again later", by class name so that botocore/aiohttp need not be imported.
TRANSIENT_CLASS_NAMES = frozenset({
    "EndpointConnectionError", "ConnectionClosedError", "ConnectTimeoutError", "ReadTimeoutError",
    "ClientConnectorError", "ServerDisconnectedError", "ClientOSError", "ClientPayloadError",
    "FSTimeoutError", "IncompleteRead", "ResponseParserError", "ProxyConnectionError",
})
# ... and by message (pyarrow's S3 errors are plain OSErrors; s3fs maps 5xx to OSError too).
TRANSIENT_MESSAGES = (
    "NETWORK_CONNECTION", "SERVICE_UNAVAILABLE", "SLOW_DOWN", "INTERNAL_FAILURE",
    "HTTP status 5", "Service Unavailable", "ServiceUnavailable", "SlowDown", "InternalError",
    "Internal Server Error", "internal error", "Bad Gateway", "Gateway Timeout",
    "Could not connect",
    "Connection refused", "Connection reset", "Broken pipe", "timed out",
)
# ... and by errno: s3fs maps InternalError (HTTP 500) to EREMOTEIO, SlowDown/ServiceUnavailable
# (503) to EBUSY.
TRANSIENT_ERRNOS = frozenset(getattr(errno, name) for name in (
    "EREMOTEIO", "EBUSY", "EAGAIN", "ETIMEDOUT", "ECONNRESET", "ECONNREFUSED", "ECONNABORTED",
    "ENETUNREACH", "EHOSTUNREACH", "EPIPE") if hasattr(errno, name))
PERMANENT_TYPES = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError,
                   FileExistsError)


class StorageUnavailable(RuntimeError):
    """Storage stayed unreachable for the whole retry budget; the job stops (``--resume`` goes on)."""


def is_transient(exc: BaseException) -> bool:
    """True for failures that may go away by themselves (network, overload, server restarting)."""
    if isinstance(exc, PERMANENT_TYPES):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if any(cls.__name__ in TRANSIENT_CLASS_NAMES for cls in type(exc).__mro__):
        return True
    if isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS:
        return True
    text = str(exc)
    return any(pattern in text for pattern in TRANSIENT_MESSAGES)


def backoff_delays(budget_s: float, first_s: float = FIRST_DELAY_S,
                   cap_s: float = MAX_DELAY_S) -> list[float]:
    """Sleeps between attempts: doubling from ``first_s``, at most ``cap_s``, summing to at most
    ``budget_s`` (the last one shortened to fit)."""
    delays, total, delay = [], 0.0, first_s
    while total < budget_s:
        step = min(delay, cap_s, budget_s - total)
        delays.append(step)
        total += step
        delay *= 2
    return delays


def unavailable_message(what: str, budget_s: float, exc: BaseException) -> str:
    return (f"storage unreachable while {what}: gave up after {budget_s:g} s of retries "
            f"({type(exc).__name__}: {exc}); check the endpoint and network, then rerun with "
            "--resume to finish (rows already written are kept)")


def retry_call(fn: Callable[[], T], *, what: str, budget_s: float,
               sleep: Callable[[float], None] = time.sleep, redact=lambda s: s) -> T:
    """``fn()``, retried on transient errors for about ``budget_s`` seconds of backoff."""
    delays = backoff_delays(budget_s)
    for attempt in range(len(delays) + 1):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - classified right below
            if not is_transient(e):
                raise
            if attempt == len(delays):
                raise StorageUnavailable(redact(unavailable_message(what, budget_s, e))) from e
            _log.warning(redact(f"{RETRY_LOG_PREFIX} {attempt + 1}/{len(delays)} while {what}: "
                                f"{type(e).__name__}: {e}; next try in {delays[attempt]:.1f} s"))
            sleep(delays[attempt])
    raise AssertionError("unreachable")


def find_cause(exc: BaseException, kinds: tuple[type, ...]) -> BaseException | None:
    """The first exception of one of ``kinds`` among ``exc`` and what caused it (``__cause__``,
    ``__context__``, and the ``cause`` of Ray's task errors, which wrap what a worker raised)."""
    todo, seen = [exc], set()
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        if isinstance(current, kinds):
            plain = getattr(current, "cause", None)     # Ray's wrapper subclasses the original
            return plain if isinstance(plain, kinds) else current
        seen.add(id(current))
        linked = getattr(current, "cause", None)
        todo += [c for c in (linked, current.__cause__, current.__context__)
                 if isinstance(c, BaseException)]
    return None
