"""Mask credentials in text, and in every log record of the AWS libraries.

botocore's DEBUG records print whole requests: the ``Authorization`` header, ``X-Amz-Security-Token``, the
canonical request (with the token again) and the SigV4 signature. pytest shows such records in many places
(live logs, report sections, ``--log-file``, JUnit with ``junit_logging``), so the plugin masks them at the
source: :func:`install` wraps :func:`logging.setLogRecordFactory`, which every logger uses, including loggers
created after it.

:func:`redact` also masks the values of the process environment's credential variables (``AWS_SECRET_ACCESS_KEY``,
``MY_TOKEN``, ...: the rule is in :mod:`.envsecrets`) wherever they appear; every output of the plugin (failure
texts, collection errors, the table, JUnit properties, the JSON report, GitHub annotations and step summary, the
command line's messages) goes through it. Pure standard library: imports neither pytest nor boto3.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from pytest_proton_sync.text.envsecrets import credential_values, mask_values

MASK = "[REDACTED]"
# A credential variable's value is masked as [REDACTED:NAME]: the name says where it came from, and is no secret.
_MASKED = r"\[REDACTED(?::[A-Za-z_][A-Za-z0-9_]*)?\]"
_MASK_ONLY = re.compile(_MASKED + r"\Z")

_Data = TypeVar("_Data")

# Loggers whose records may carry credentials (prefixes: "botocore" covers "botocore.auth" and any child), and the
# plugin's own, whose records quote the API's messages.
AWS_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "pytest_proton_sync")

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
    r"(?P<value>" + _MASKED + r"|[^\s'\"&,;<>\\)}\]]+)",
    re.IGNORECASE,
)
# An AssumeRole request's ExternalId, a secret shared with the role's owner: in botocore's DEBUG dict repr
# ('ExternalId': '...') or the query body (ExternalId=...&). Its characters include , = @ : / so the value runs to a
# quote, an ampersand, a backslash or white space.
_EXTERNAL_ID = re.compile(
    r"(?P<key>(?:(?<![A-Za-z0-9])|(?<=\\n))external[_-]?id['\"]?\s*[:=]\s*(?:b?['\"])?)"
    r"(?P<value>" + _MASKED + r"|[^\s'\"&\\]+)",
    re.IGNORECASE,
)
# A SigV4 signature: "Signature=<hex>" (Authorization, presigned X-Amz-Signature) and botocore.auth's
# "Signature:\n<hex>".
_SIGNATURE = re.compile(r"(?P<key>(?<![A-Za-z])signature\s*[=:]\s*)[0-9a-f]{16,}", re.IGNORECASE)


# Userinfo in a URL: http://user:password@host/ (an endpoint URL set in AWS_ENDPOINT_URL*, a proxy URL). The
# userinfo ends at the last "@" before the host; it cannot contain "/", "?", "#" or whitespace.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s'\"<>]+)@")


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with credential values replaced by ``[REDACTED]``; idempotent, and ordinary text is unchanged.

    The values of ``environ``'s credential variables (default: the process environment, as it is now) are masked
    first, wherever they are, as ``[REDACTED:NAME]``, so that the patterns below see the mask rather than part of a
    value (and leave it as it is, or make it ``[REDACTED]`` where a header's whole value goes)."""
    return _redact(text, credential_values(os.environ if environ is None else environ))


def redactor(environ: Mapping[str, str] | None = None) -> Callable[[str], str]:
    """:func:`redact` with the environment read once, now: for many texts made at one moment (a manifest's
    test ids), where reading it per text would cost more than the masking."""
    values = credential_values(os.environ if environ is None else environ)
    return lambda text: _redact(text, values)


def _redact(text: str, values: tuple[tuple[str, str], ...]) -> str:
    text = mask_values(text, values, _variable_mask)
    if ":" not in text and "=" not in text and "<" not in text:
        return text  # every pattern below needs one of these: most names, shas and states are done here
    text = _URL_USERINFO.sub(lambda m: m.group("scheme") + MASK + "@", text)
    text = _HEADER.sub(lambda m: m.group("key") + MASK, text)
    text = _XML.sub(lambda m: m.group("open") + MASK + m.group("close"), text)
    text = _EXTERNAL_ID.sub(_masked_value, text)
    text = _KEY_VALUE.sub(_masked_value, text)
    return _SIGNATURE.sub(lambda m: m.group("key") + MASK, text)


def redact_strings(value: _Data, environ: Mapping[str, str] | None = None) -> _Data:
    """``value`` (JSON-like data: dicts, lists, strings, numbers) with :func:`redact` applied to every string in it,
    keys included; a new structure, the given one is not changed. The environment is read once for all of them."""
    return _redact_strings(value, credential_values(os.environ if environ is None else environ))


def _redact_strings(value: _Data, values: tuple[tuple[str, str], ...]) -> _Data:
    if isinstance(value, str):
        return _redact(value, values)  # type: ignore[return-value]
    if isinstance(value, dict):
        return {  # type: ignore[return-value]
            _redact_strings(key, values): _redact_strings(item, values) for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_strings(item, values) for item in value)
    return value


def _masked_value(match: re.Match[str]) -> str:
    """A key's value masked; one masked already stays as it is (with the variable's name, if it has one)."""
    value = match.group("value")
    return match.group("key") + (value if _MASK_ONLY.match(value) else MASK)


def _variable_mask(name: str) -> str:
    return f"[REDACTED:{name}]"


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
