"""No secret in any output: not the secret key, the session token, an Authorization value or a SigV4 signature.

Each run turns on every way pytest can show more: -vv, long tracebacks with locals, every report section,
DEBUG log capture and live logs, a log file, JUnit with all logging, and botocore's own DEBUG stream logger
(what `boto3.set_stream_logger("botocore")` in a conftest does), whose records print request headers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_proton_sync.fake import FakeServer
from pytest_proton_sync.text.redact import MASK, install, redact, redactor

from .conftest import (
    ACCESS_KEY_ID,
    SECRET_ACCESS_KEY,
    SESSION_TOKEN,
    SHA_A,
    SHA_OLD,
    fake_state,
    template,
    write_manifest,
)

# A SigV4 signature is 64 hex digits, after "Signature=" in the Authorization header or presigned URLs, and after
# "Signature:" in botocore.auth's DEBUG line.
SIGNATURE = re.compile(r"Signature\s*[=:]\s*[0-9a-f]{16,}", re.IGNORECASE)
AUTHORIZATION_VALUE = re.compile(r"AWS4-HMAC-SHA256\s+Credential=|Credential=" + ACCESS_KEY_ID)

LOUD_FLAGS = (
    "-vv", "--tb=long", "--showlocals", "-rA",
    "--log-level=DEBUG", "--log-cli-level=DEBUG",
    "--log-file=proton.log", "--log-file-level=DEBUG",
    "-o", "junit_logging=all", "--junitxml=out.xml",
    "-p", "no:cacheprovider",
)

# What a person debugging a gate adds to conftest.py: botocore's DEBUG records straight to stderr.
STREAM_LOGGER_CONFTEST = """
import logging
import sys

_handler = logging.StreamHandler(sys.stderr)
_handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))


def pytest_configure(config):
    for name in ("botocore", "boto3", "urllib3"):
        logging.getLogger(name).setLevel(logging.DEBUG)
        logging.getLogger(name).addHandler(_handler)


def pytest_unconfigure(config):
    for name in ("botocore", "boto3", "urllib3"):
        logging.getLogger(name).removeHandler(_handler)
        logging.getLogger(name).setLevel(logging.NOTSET)
"""


@pytest.fixture
def mixed_targets(pytester: pytest.Pytester, aws_env: FakeServer) -> Path:
    """One passing, one failing and one erroring target, plus one that is throttled once and then passes."""
    aws_env.set_state(fake_state(
        {"name": "passes", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A},
        {"name": "fails", "type": "ENVIRONMENT", "version": 1, "synced": SHA_OLD},
        {"name": "errors", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A, "deny": True},
        {"name": "retried", "type": "SERVICE", "version": 1, "synced": SHA_A},
        faults={"seed": 0, "throttle_rate": 0.3},
    ))
    pytester.makeconftest(STREAM_LOGGER_CONFTEST)
    return write_manifest(pytester.path, template("passes", SHA_A), template("fails", SHA_A),
                          template("errors", SHA_A), template("retried", SHA_A, "SERVICE"))


def assert_no_secret(where: str, text: str) -> None:
    for secret in (SECRET_ACCESS_KEY, SESSION_TOKEN):
        assert secret not in text, f"{where} shows a secret: ...{_around(text, secret)}..."
    for pattern in (SIGNATURE, AUTHORIZATION_VALUE):
        match = pattern.search(text)
        assert match is None, f"{where} shows {match.group(0)!r}: ...{_around(text, match.group(0))}..."


def _around(text: str, needle: str) -> str:
    at = text.find(needle)
    return text[max(0, at - 120): at + len(needle) + 40]


def check_every_output(pytester: pytest.Pytester, result: pytest.RunResult) -> None:
    result.assert_outcomes(passed=2, failed=1, errors=1)
    outputs = {
        "stdout": result.stdout.str(),
        "stderr": result.stderr.str(),
        "JUnit XML": (pytester.path / "out.xml").read_text(),
        "log file": (pytester.path / "proton.log").read_text(),
    }
    # The run really was loud: botocore's request records reached the outputs (so a leak would show)...
    everything = "\n".join(outputs.values())
    assert "Sending http request" in everything
    assert "CanonicalRequest" in everything
    for where, text in outputs.items():
        assert_no_secret(where, text)
    # ...with the secrets masked where they used to be.
    assert f"'X-Amz-Security-Token': b'{MASK}'" in everything
    assert f"x-amz-security-token:{MASK}" in everything


def test_no_secret_in_any_output_in_process(pytester: pytest.Pytester, mixed_targets: Path) -> None:
    factory = logging.getLogRecordFactory()
    result = pytester.runpytest("--proton-manifest", str(mixed_targets), *LOUD_FLAGS)
    check_every_output(pytester, result)
    # The log record factory is restored when the session ends.
    assert logging.getLogRecordFactory() is factory


def test_no_secret_in_any_output_under_xdist_in_a_subprocess(
    pytester: pytest.Pytester, mixed_targets: Path
) -> None:
    # Under xdist the controller asks the API inside pytest's run loop, where live logging (--log-cli-level)
    # prints every botocore record to the terminal.
    result = pytester.runpytest_subprocess("-n", "2", "--proton-manifest", str(mixed_targets), *LOUD_FLAGS)
    check_every_output(pytester, result)


# -- redact(): the masking rules, one by one -------------------------------------------------------------------
SIG = "e3efe1ee4df99f2f3ddf0bebeb0de74bc822ae64b1829caa5e2093104b47ea35"
AUTH = f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20260101/us-east-1/proton/aws4_request, " \
       f"SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature={SIG}"


@pytest.mark.parametrize(("text", "expected"), [
    # botocore.endpoint "Sending http request": the headers dict, values as bytes
    (f"headers={{'X-Amz-Date': b'20260101T000000Z', 'X-Amz-Security-Token': b'{SESSION_TOKEN}', "
     f"'Authorization': b'{AUTH}', 'Content-Length': '97'}}",
     f"headers={{'X-Amz-Date': b'20260101T000000Z', 'X-Amz-Security-Token': b'{MASK}', "
     f"'Authorization': b'{MASK}', 'Content-Length': '97'}}"),
    # botocore.auth CanonicalRequest: header lines
    (f"POST\n/\n\nhost:example\nx-amz-security-token:{SESSION_TOKEN}\nx-amz-target:X\n\nhost;x-amz-security-token",
     f"POST\n/\n\nhost:example\nx-amz-security-token:{MASK}\nx-amz-target:X\n\nhost;x-amz-security-token"),
    # botocore.auth "Signature:" line
    (f"Signature:\n{SIG}", f"Signature:\n{MASK}"),
    # a raw HTTP dump, as a bytes repr (http.client's debuglevel) and as lines
    (f"b'POST / HTTP/1.1\\r\\nAuthorization: {AUTH}\\r\\nX-Amz-Security-Token: {SESSION_TOKEN}\\r\\n'",
     f"b'POST / HTTP/1.1\\r\\nAuthorization: {MASK}\\r\\nX-Amz-Security-Token: {MASK}\\r\\n'"),
    ("Authorization: Bearer abc.def\nHost: x", f"Authorization: {MASK}\nHost: x"),
    # presigned URLs
    (f"https://b.s3.amazonaws.com/k?X-Amz-Security-Token={SESSION_TOKEN}&X-Amz-Signature={SIG}&X-Amz-Date=1",
     f"https://b.s3.amazonaws.com/k?X-Amz-Security-Token={MASK}&X-Amz-Signature={MASK}&X-Amz-Date=1"),
    # config files, keyword arguments, reprs, JSON and STS's XML
    (f"aws_secret_access_key = {SECRET_ACCESS_KEY}\naws_session_token={SESSION_TOKEN}",
     f"aws_secret_access_key = {MASK}\naws_session_token={MASK}"),
    (f"ReadOnlyCredentials(access_key='{ACCESS_KEY_ID}', secret_key='{SECRET_ACCESS_KEY}', token='{SESSION_TOKEN}')",
     f"ReadOnlyCredentials(access_key='{ACCESS_KEY_ID}', secret_key='{MASK}', token='{MASK}')"),
    (f'{{"accessKeyId":"{ACCESS_KEY_ID}","secretAccessKey":"{SECRET_ACCESS_KEY}","sessionToken":"{SESSION_TOKEN}"}}',
     f'{{"accessKeyId":"{ACCESS_KEY_ID}","secretAccessKey":"{MASK}","sessionToken":"{MASK}"}}'),
    (f"<SecretAccessKey>{SECRET_ACCESS_KEY}</SecretAccessKey><SessionToken>{SESSION_TOKEN}</SessionToken>",
     f"<SecretAccessKey>{MASK}</SecretAccessKey><SessionToken>{MASK}</SessionToken>"),
    # what must stay: ordinary text, the names of signed headers, and a git sha
    (f"synced {SHA_A}; SignedHeaders=host;x-amz-security-token",
     f"synced {SHA_A}; SignedHeaders=host;x-amz-security-token"),
    ("Retry needed, retrying request after delay of: 0.5", "Retry needed, retrying request after delay of: 0.5"),
])
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected  # idempotent


def test_a_redactor_masks_what_redact_masks_with_the_environment_read_when_it_is_made() -> None:
    environ = {"DEPLOY_TOKEN": "tok-1234567890", "HOME": "/home/ci"}
    redact_now = redactor(environ)
    text = "name tok-1234567890 in /home/ci; Authorization: AWS4 abc"
    assert redact_now(text) == redact(text, environ) == "name [REDACTED:DEPLOY_TOKEN] in /home/ci; Authorization: " \
        + MASK
    environ["DEPLOY_TOKEN"] = "another-token-value"
    assert redact_now("another-token-value") == "another-token-value"  # read once: made per batch, not kept


@pytest.fixture
def installed() -> Iterator[None]:
    uninstall = install()
    try:
        yield
    finally:
        uninstall()


def test_records_of_aws_loggers_are_redacted_even_from_loggers_made_later(
    installed: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # A child logger that did not exist when redaction was installed, arguments formatted lazily.
    logging.getLogger("botocore.brand_new_child").debug("headers: %s", {"Authorization": AUTH})
    logging.getLogger("urllib3.connectionpool").debug("token %s", f"x-amz-security-token:{SESSION_TOKEN}")
    try:
        raise RuntimeError(f"aws_secret_access_key={SECRET_ACCESS_KEY}")
    except RuntimeError:
        logging.getLogger("boto3.resources").debug("failed", exc_info=True)
    logging.getLogger("someone.else").debug("Signature=%s", SIG)  # not an AWS logger: left alone
    text = caplog.text
    assert SESSION_TOKEN not in text and SECRET_ACCESS_KEY not in text and AUTH not in text
    assert f"{{'Authorization': '{MASK}'}}" in text
    assert f"Signature={SIG}" in text


def test_uninstall_restores_the_factory_it_found() -> None:
    before = logging.getLogRecordFactory()
    uninstall = install()
    assert logging.getLogRecordFactory() is not before
    uninstall()
    assert logging.getLogRecordFactory() is before
    uninstall()  # twice is harmless
    assert logging.getLogRecordFactory() is before


def test_uninstall_under_another_factory_leaves_it_in_place() -> None:
    before = logging.getLogRecordFactory()
    uninstall = install()
    ours = logging.getLogRecordFactory()

    def theirs(*args: object, **kwargs: object) -> logging.LogRecord:
        return ours(*args, **kwargs)  # type: ignore[arg-type]

    logging.setLogRecordFactory(theirs)
    try:
        uninstall()
        assert logging.getLogRecordFactory() is theirs  # not torn out from under whoever wrapped us
        record = logging.getLogger("botocore").makeRecord("botocore", logging.DEBUG, "f", 1, f"token={SESSION_TOKEN}",
                                                           (), None)
        assert record.getMessage() == f"token={SESSION_TOKEN}"  # ours is now a pass-through
    finally:
        logging.setLogRecordFactory(before)


def test_botocore_logs_a_failed_credential_refresh_in_one_line_without_the_plugins_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """botocore warns "Refreshing temporary credentials failed during mandatory refresh period" with the exception
    of the plugin's own credential provider attached; pytest shows it under "Captured log". The plugin reports the
    account's error itself: the record keeps one line, and no traceback reaches the user."""
    from datetime import datetime, timedelta, timezone

    from botocore.credentials import RefreshableCredentials

    from pytest_proton_sync.aws.accounts import AccountUnavailable

    def refuse() -> dict[str, str]:
        raise AccountUnavailable("AssumeRoleDenied", "account 'prod': role arn:aws:iam::1:role/x cannot be assumed")

    soon = datetime.now(timezone.utc) + timedelta(seconds=5)  # inside botocore's mandatory refresh period
    credentials = RefreshableCredentials("AKIDEXAMPLE", "secret", "token", soon, refuse, "test")
    uninstall = install()
    try:
        with caplog.at_level(logging.WARNING, logger="botocore.credentials"), pytest.raises(AccountUnavailable):
            credentials.get_frozen_credentials()
    finally:
        uninstall()
    (record,) = [r for r in caplog.records if r.name == "botocore.credentials"]
    shown = caplog.handler.format(record)
    assert "Refreshing temporary credentials failed during mandatory refresh period" in shown
    assert "role arn:aws:iam::1:role/x cannot be assumed" in shown
    assert "Traceback" not in shown and "\n" not in shown.strip()
