"""An endpoint that enforces an AWS-style request quota: the bundled fake behind a token bucket per API.

AWS meters each API (per account and region) with a token bucket: a steady refill rate and a burst. A request
that finds the bucket empty is refused with ``ThrottlingException`` and costs the caller a round trip. This is
the bundled fake with such a bucket per (service, operation) in front of its answers, so a gate's wall time can
be compared with the floor the quota sets, and the requests it had refused can be counted.

The refusal is spoken as the API's own model says (read from the installed botocore at run time): its HTTP
status (``error.httpStatusCode``, 400 when the model gives none: Proton, JSON 1.0, answers 400; CodeConnections
429) and the error's code in ``__type``, as the fake sends every error.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from pytest_proton_sync.fake import FakeServer, FakeState
from pytest_proton_sync.fake.api import ApiError, service_model
from pytest_proton_sync.fake.state import Fault

THROTTLING_CODE = "ThrottlingException"


def throttling_status(model_name: str) -> int:
    """The HTTP status the service's model gives ThrottlingException (400 if it gives none, as JSON 1.0 does)."""
    shape = service_model(model_name).shape_for_error_code(THROTTLING_CODE)
    error = (shape.metadata.get("error") or {}) if shape is not None else {}
    return int(error.get("httpStatusCode", 400))


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` held; starts full. Not thread-safe on its own."""

    def __init__(self, rate: float, burst: float, clock: Any = time.monotonic) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens = burst
        self._last = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class QuotaFakeServer(FakeServer):
    """The fake, with a token bucket per (service, operation): a request that finds it empty is throttled.

    The bucket is taken from when a request is answered (after the fake's latency), like a server that checks its
    quota as it handles the request. ``reset_calls`` also refills every bucket, so each timed run starts with a
    full burst.
    """

    def __init__(self, state: FakeState, rate: float, burst: float) -> None:
        super().__init__(state)
        self.rate, self.burst = rate, burst
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._throttled: Counter[str] = Counter()
        self._quota_lock = threading.Lock()
        self._statuses: dict[str, int] = {}
        self._first: float | None = None  # when the first and the last request of the run were answered
        self._last: float | None = None

    def reset_calls(self) -> None:
        super().reset_calls()
        with self._quota_lock:
            self._buckets.clear()
            self._throttled.clear()
            self._first = self._last = None

    def throttled(self, operation: str | None = None) -> int:
        with self._quota_lock:
            return sum(self._throttled.values()) if operation is None else self._throttled[operation]

    def request_span(self) -> float:
        """Seconds from the first request to the last of the run (the gate's start-up and report not included):
        what the quota's floor bounds."""
        with self._quota_lock:
            return 0.0 if self._first is None or self._last is None else self._last - self._first

    def _refuse_what_is_wrong(self, fault: Fault, handler: Any, protocol: Any, decode_problem: str | None) -> None:
        service = protocol.service
        if service is not None:
            key = (service.model_name, protocol.operation)
            with self._quota_lock:
                now = time.monotonic()
                self._first = now if self._first is None else self._first
                self._last = now
                bucket = self._buckets.setdefault(key, TokenBucket(self.rate, self.burst))
                allowed = bucket.take()
                if not allowed:
                    self._throttled[protocol.operation] += 1
                status = self._statuses.get(service.model_name)
            if not allowed:
                if status is None:
                    status = self._statuses.setdefault(service.model_name, throttling_status(service.model_name))
                raise ApiError(THROTTLING_CODE, "Rate exceeded", status)
        super()._refuse_what_is_wrong(fault, handler, protocol, decode_problem)
