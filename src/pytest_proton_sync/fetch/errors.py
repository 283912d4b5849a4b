"""What went wrong, for a person: an exception from botocore (or our own checks) -> a CheckError with its fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import botocore.awsrequest
import botocore.config
import botocore.exceptions

from pytest_proton_sync.aws import foreign_answers
from pytest_proton_sync.aws.accounts import AccountUnavailable
from pytest_proton_sync.aws.answers import MalformedAnswer
from pytest_proton_sync.aws.clients import FetchSettings
from pytest_proton_sync.fetch import cancel
from pytest_proton_sync.kinds import Kind
from pytest_proton_sync.model import CheckError
from pytest_proton_sync.text.redact import redact
from pytest_proton_sync.text.safetext import clean

# Codes worth asking again on the next poll while waiting; anything else (access denied, bad region) will not
# change by itself, so waiting on it would only hide the real problem until the deadline.
TRANSIENT_CODES = frozenset({
    "ThrottlingException", "InternalServerException", "ServiceUnavailable", "EndpointUnreachable", "ReadTimeout",
    "MalformedAnswer", "DeadlineExceeded", "EndpointUnresponsive",
})
THROTTLING_CODES = frozenset({
    "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException", "RequestLimitExceeded",
    "RequestThrottled", "RequestThrottledException", "SlowDown", "ProvisionedThroughputExceededException",
})
RETRYABLE_CODES = frozenset({
    "InternalServerException", "InternalFailure", "InternalError", "ServiceUnavailable", "ServiceUnavailableException",
    "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
})


MESSAGE_LIMIT = 300  # characters of an API error message shown


# -- errors ----------------------------------------------------------------------------------------------------------
def _gave_up(attempts: int, settings: FetchSettings, detail: str = "") -> str:
    return f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}{detail}"


def fits(error: CheckError) -> CheckError:
    """Credentials masked (URL userinfo included) and every line safe to print."""
    lines = redact(error.message).split("\n")
    return replace(error, code=clean(error.code, 80), message="\n".join(clean(line, 2 * MESSAGE_LIMIT)
                                                                        for line in lines[:12]))


def classify_error(
    exc: BaseException, kind: Kind, region: str, settings: FetchSettings, attempts: int | None = None
) -> CheckError:
    """An exception from botocore (or our own checks) -> a CheckError a person can act on. Never includes
    credentials; API text in it is cleaned and capped (safetext).

    ``attempts``: HTTP requests this call sent, when known.
    """
    if isinstance(exc, AccountUnavailable):  # the account's role or profile, not this target, is the problem
        return fits(CheckError(exc.code, exc.message))
    return fits(_classify_error(exc, kind, region, settings, attempts or 1))


def _classify_error(exc: BaseException, kind: Kind, region: str, settings: FetchSettings, attempts: int) -> CheckError:
    gave_up = _gave_up(attempts, settings)
    if isinstance(exc, MalformedAnswer):
        return CheckError(
            "MalformedAnswer",
            f"{clean(str(exc), 2 * MESSAGE_LIMIT)}\n  {gave_up}\n  fix: this is not a {kind.operation_name} answer: "
            "check AWS_ENDPOINT_URL_PROTON / AWS_ENDPOINT_URL and any proxy in between.",
            attempts,
        )
    if isinstance(exc, botocore.exceptions.ClientError):
        return _client_error(exc, kind, region, attempts, gave_up)
    return _botocore_error(exc, settings, attempts, gave_up)


def _client_error(
    exc: botocore.exceptions.ClientError, kind: Kind, region: str, attempts: int, gave_up: str
) -> CheckError:
    """An error answer of the API (or of something answering in its place)."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    message = clean(str(error.get("Message", "")) or str(exc), MESSAGE_LIMIT)
    metadata: Mapping[str, Any] = exc.response.get("ResponseMetadata", {})
    if code in ("AccessDeniedException", "AccessDenied"):
        return CheckError(
            code,
            f"{message}\n  fix: allow {kind.operation_name} for this identity in {region} "
            "(see the README's IAM policy).",
            attempts,
        )
    if code in ("UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException",
                "InvalidClientTokenId", "MissingAuthenticationTokenException"):
        return CheckError(code, f"{message}\n  fix: refresh or correct the AWS credentials.", attempts)
    status = int(metadata.get("HTTPStatusCode", 0) or 0)
    if foreign_answers.is_foreign(code, status):  # a page from something that is not the API: its own message
        retried = _retried_status(status)
        # The raw page: describe() makes its own one-line, printable excerpt (tags and white space folded).
        page = str(error.get("Message", "")) or str(exc)
        return CheckError(code, foreign_answers.describe(status, page, kind.service, kind.operation_name,
                                                         gave_up if retried else ""), attempts)
    if status in foreign_answers.NOT_RETRIED_5XX:
        return CheckError(code, foreign_answers.not_retried(status, message, kind.service), attempts)
    if code in THROTTLING_CODES or status == 429:
        return CheckError(
            code,
            f"throttled by the API and {gave_up}\n  fix: raise --proton-max-attempts or --proton-call-timeout, "
            "or lower --proton-concurrency / set --proton-max-rps.",
            attempts,
        )
    if status >= 500 or code in RETRYABLE_CODES:
        return CheckError(
            code,
            f"{message} (HTTP {status})\n  {gave_up}\n  fix: a problem on the service's side; re-run later, or "
            "raise --proton-max-attempts.",
            attempts,
        )
    return CheckError(code, message, attempts)


def _botocore_error(exc: BaseException, settings: FetchSettings, attempts: int, gave_up: str) -> CheckError:
    """No answer of the API: credentials, region, the network, or something unexpected."""
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return CheckError("NoCredentials", f"no AWS credentials found\n  fix: {NO_CREDENTIALS_FIX}")
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return CheckError("NoRegion", NO_REGION)
    if isinstance(exc, botocore.exceptions.ReadTimeoutError):
        return CheckError(
            "ReadTimeout",
            f"{clean(str(exc), MESSAGE_LIMIT)}\n  no answer within the read timeout of {settings.read_timeout:g} s; "
            f"{gave_up}\n  fix: check the endpoint (AWS_ENDPOINT_URL_PROTON / AWS_ENDPOINT_URL) and the network, or "
            "raise --proton-read-timeout if it is only slow.",
            attempts,
        )
    if isinstance(exc, (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)):
        timeouts = f" (connect timeout {settings.connect_timeout:g} s, read timeout {settings.read_timeout:g} s)"
        return CheckError(
            "EndpointUnreachable",
            f"{clean(str(exc), MESSAGE_LIMIT)}\n  {_gave_up(attempts, settings, timeouts)}\n  fix: check "
            "the endpoint (AWS_ENDPOINT_URL_PROTON / AWS_ENDPOINT_URL), the region and the network.",
            attempts,
        )
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return CheckError(type(exc).__name__, clean(str(exc), MESSAGE_LIMIT), attempts)
    return CheckError(type(exc).__name__, f"unexpected error: {clean(str(exc), MESSAGE_LIMIT)}", attempts)


def deadline_error(settings: FetchSettings, attempts: int, last: str) -> CheckError:
    return fits(CheckError(
        "DeadlineExceeded",
        f"no complete answer within the call deadline of {settings.call_timeout:g} s (connect, read and retries "
        f"together) after {attempts} attempt{'s' if attempts != 1 else ''}{'; last: ' + last if last else ''}\n"
        "  fix: check the endpoint (AWS_ENDPOINT_URL_PROTON / AWS_ENDPOINT_URL) and the network (an answer that "
        "arrives a few bytes at a time is cut off too), or raise --proton-call-timeout.",
        attempts,
    ))


def cancelled_error(attempts: int, detail: str = "before the API answered", reason: str | None = None) -> CheckError:
    return CheckError("Cancelled", f"{reason or cancel.current().reason} {detail}", attempts)


NO_REGION_FIX = ("set AWS_REGION (or AWS_DEFAULT_REGION), give `region:` in the manifest's defaults, or pass "
                 "--proton-region.")
NO_REGION = f"no AWS region\n  fix: {NO_REGION_FIX}"
NO_CREDENTIALS_FIX = ("set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), run in a role, or try "
                      "the bundled fake with --proton-fake STATE.")
# With no region no call is made, so missing credentials would only show on the next run: both are said at once.
NO_REGION_NOR_CREDENTIALS = (f"no AWS region, and no AWS credentials either\n  fix: {NO_REGION_FIX}\n"
                             f"  fix: {NO_CREDENTIALS_FIX}")


def worth_retrying(code: str, status: int) -> bool:
    """A server error that asking again may fix. A 501 (not implemented) or 505 never is, whatever its code says
    (LocalStack answers InternalFailure with 501 for an API it lacks)."""
    if status in foreign_answers.NOT_RETRIED_5XX:
        return False
    return _retried_status(status) or code in RETRYABLE_CODES


def _retried_status(status: int) -> bool:
    """Server errors worth another attempt: 500, 502, 503, 504. A 501 (not implemented), 505 and the like will
    not change by asking again."""
    return status in foreign_answers.RETRIED_STATUSES


def short_reason(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return clean(str(exc.response.get("Error", {}).get("Code", "")) or "error", 80)
    if isinstance(exc, MalformedAnswer):
        return "MalformedAnswer"
    return clean(type(exc).__name__, 80)
