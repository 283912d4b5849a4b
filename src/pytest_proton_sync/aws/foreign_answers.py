"""Answers that did not come from the AWS API: a wrong endpoint's 404 page, a proxy's 501, a load balancer's 503.

botocore turns an answer without the API's own error shape into a ClientError whose code is the bare HTTP status
("404") and whose message is the page itself or the status's reason phrase. Such a page is untrusted text of any
size, so it is never shown whole: one line of it at most, made safe by text/safetext.clean. Imports neither pytest
nor boto3.
"""

from __future__ import annotations

import http
import re

from pytest_proton_sync.text.safetext import clean

#: Server-error statuses worth another attempt (the plugin's retry loop retries these, as botocore's modes do).
RETRIED_STATUSES = frozenset({500, 502, 503, 504})
#: Server-error statuses not retried (501 Not Implemented, 505, ...): from 500 to 599, the rest.
NOT_RETRIED_5XX = frozenset(range(500, 600)) - RETRIED_STATUSES
_EXCERPT_CHARACTERS = 120
_TAG = re.compile(r"<[^>]{0,500}>")
_SPACE = re.compile(r"\s+")


def is_foreign(code: str, status: int) -> bool:
    """Whether an error answer lacks the API's error shape (botocore then uses the HTTP status as its code)."""
    return bool(status) and code == str(status)


def describe(status: int, page: str, service: str, operation: str, gave_up: str) -> str:
    """Cause line(s) and a ``fix:`` line for a foreign answer. ``gave_up``: what the retries did, or ""."""
    reason = _reason(status)
    excerpt = _excerpt(page, reason)
    shown = f": {excerpt}" if excerpt else ""
    cause = f"the endpoint answered HTTP {status} {reason} with a page that is not an AWS API answer{shown}"
    variable = f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}"
    where = f"check the endpoint ({variable}, AWS_ENDPOINT_URL, endpoint_url in the AWS config file)"
    if status == 404:
        fix = f"{where}: it does not serve {operation}; unset it to use the AWS endpoint of the region."
    elif status in RETRIED_STATUSES:
        fix = f"{where} and any proxy in between; if it is the AWS endpoint, re-run later."
    else:
        fix = f"{where} and any proxy in between: it does not speak the {service} API."
    retries = f"\n  {gave_up}" if gave_up else ""
    return f"{cause}{retries}\n  fix: {fix}"


def not_retried(status: int, message: str, service: str) -> str:
    """An API-shaped error with a server-error status that is not retried (LocalStack answers 501 for an API it
    does not implement, say): the answer, that it was not retried, and a fix line."""
    variable = f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}"
    return (f"{message} (HTTP {status} {_reason(status)}; not retried: only 500, 502, 503 and 504 are "
            f"retried)\n  fix: check that the endpoint ({variable}, AWS_ENDPOINT_URL) implements the {service} API.")


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "(an unknown status)"


def _excerpt(page: str, reason: str) -> str:
    """The page's first words, tags dropped, quoted and made safe; "" when it says only the reason."""
    text = _SPACE.sub(" ", _TAG.sub(" ", page[:20_000])).strip()
    if not text or text == reason or text == str(reason).lower():
        return ""
    return clean(text, _EXCERPT_CHARACTERS, quoted=True)
