"""Mask credentials in text, and in every log record of the AWS libraries.

botocore's DEBUG records print whole requests: the ``Authorization`` header, ``X-Amz-Security-Token``, the
canonical request (with the token again) and the SigV4 signature. pytest shows such records in many places
(live logs, report sections, ``--log-file``, JUnit with ``junit_logging``), so the plugin masks them at the
source: :func:`install` wraps :func:`logging.setLogRecordFactory`, which every logger uses, including loggers
created after it. Pure standard library: imports neither pytest nor boto3.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

MASK = "[REDACTED]"

# Loggers whose records may carry credentials (prefixes: "botocore" covers "botocore.auth" and any child).
AWS_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")

# A header whose whole value is secret, as a dict repr ('Authorization': b'...'), a header line
# (x-amz-security-token:...), a raw HTTP dump (...\r\nAuthorization: ...\r\n) or a query parameter (...=...&).
# The value ends at a quote, a line end, a backslash (of a repr's \r\n) or an ampersand; a name may follow a
# repr's \n escape.
_HEADER = re.compile(
    r"(?P<key>(?:(?<![\w-])|(?<=\\n))(?:authorization|x-amz-security-token|x-amz-sso[_-]bearer[_-]token)"
    r"['\"]?\s*[:=]\s*(?:b?['\"])?)"
    r"(?P<value>[^\r\n'\"\\&]+)",
    re.IGNORECASE,
)
# STS, SSO and credential_process answers: <SecretAccessKey>...</SecretAccessKey>.
_XML = re.compile(
    r"(?P<open><(?P<tag>SecretAccessKey|SecretKey|SessionToken|SecurityToken)>)[^<]*(?P<close></(?P=tag)>)",
    re.IGNORECASE,
)
# key=value, key: value, key='value', "key": "value" for secret-ish names: aws_secret_access_key, secretAccessKey,
# aws_session_token, sessionToken, secret_key and token (botocore's ReadOnlyCredentials repr), accessToken (SSO).
_KEY_VALUE = re.compile(
    r"(?P<key>(?:(?<![A-Za-z0-9])|(?<=\\n))(?:aws[_-]?)?"
    r"(?:secret[_-]?access[_-]?key|secret[_-]?key|session[_-]?token|security[_-]?token|access[_-]?token|token)"
    r"['\"]?\s*[:=]\s*(?:b?['\"])?)"
    r"(?P<value>" + re.escape(MASK) + r"|[^\s'\"&,;<>\\)}\]]+)",
    re.IGNORECASE,
)
# An AssumeRole request's ExternalId, a secret shared with the role's owner: in botocore's DEBUG dict repr
# ('ExternalId': '...') or the query body (ExternalId=...&). Its characters include , = @ : / so the value runs to a
# quote, an ampersand, a backslash or white space.
_EXTERNAL_ID = re.compile(
    r"(?P<key>(?:(?<![A-Za-z0-9])|(?<=\\n))external[_-]?id['\"]?\s*[:=]\s*(?:b?['\"])?)"
    r"(?P<value>" + re.escape(MASK) + r"|[^\s'\"&\\]+)",
    re.IGNORECASE,
)
# A SigV4 signature: "Signature=<hex>" (Authorization, presigned X-Amz-Signature) and botocore.auth's
# "Signature:\n<hex>".
_SIGNATURE = re.compile(r"(?P<key>(?<![A-Za-z])signature\s*[=:]\s*)[0-9a-f]{16,}", re.IGNORECASE)


# Userinfo in a URL: http://user:password@host/ (an endpoint URL set in AWS_ENDPOINT_URL*, a proxy URL). The
# userinfo ends at the last "@" before the host; it cannot contain "/", "?", "#" or whitespace.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s'\"<>]+)@")


def redact(text: str) -> str:
    """``text`` with credential values replaced by ``[REDACTED]``; idempotent, and ordinary text is unchanged."""
    text = _URL_USERINFO.sub(lambda m: m.group("scheme") + MASK + "@", text)
    text = _HEADER.sub(lambda m: m.group("key") + MASK, text)
    text = _XML.sub(lambda m: m.group("open") + MASK + m.group("close"), text)
    text = _EXTERNAL_ID.sub(lambda m: m.group("key") + MASK, text)
    text = _KEY_VALUE.sub(lambda m: m.group("key") + MASK, text)
    return _SIGNATURE.sub(lambda m: m.group("key") + MASK, text)


_EXCEPTION_FORMATTER = logging.Formatter()


class ReportedError(Exception):
    """An error the plugin reports itself, in its own words, on the targets it concerns. When a library logs one
    (botocore warns "Refreshing temporary credentials failed" with the exception of the plugin's own credential
    provider), the record keeps its one-line message and loses the Python traceback: a user can cause these, and
    no traceback reaches a user for what they can cause."""


def redact_record(record: logging.LogRecord) -> None:
    """Format ``record``'s message now and mask it; likewise its traceback and stack (formatters reuse them)."""
    try:
        message = record.getMessage()
    except Exception:  # arguments that do not fit the format: keep the format string, drop the arguments
        message = str(record.msg)
    record.args = ()
    if record.exc_info and isinstance(record.exc_info[1], ReportedError):
        message = f"{message}: {record.exc_info[1]}".splitlines()[0]
        record.exc_info = None
    record.msg = redact(message)
    if record.exc_info:
        if not record.exc_text:
            record.exc_text = _EXCEPTION_FORMATTER.formatException(record.exc_info)
        # Formatters print exc_text when exc_info is gone; no handler can render the raw exception again.
        record.exc_info = None
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def _is_one_of(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def install(loggers: Iterable[str] = AWS_LOGGERS) -> Callable[[], None]:
    """Mask every record the named loggers (and their children, existing or future) create from now on.

    Returns the function that undoes it: it restores the factory found here if ours is still the current one;
    if something wrapped ours meanwhile, ours stays in that chain as a pass-through. Calling it twice is fine.
    """
    prefixes = tuple(loggers)
    previous = logging.getLogRecordFactory()
    active = True

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if active and _is_one_of(record.name, prefixes):
            redact_record(record)
        return record

    logging.setLogRecordFactory(factory)

    def uninstall() -> None:
        nonlocal active
        active = False
        if logging.getLogRecordFactory() is factory:
            logging.setLogRecordFactory(previous)

    return uninstall
