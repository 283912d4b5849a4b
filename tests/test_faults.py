"""Trustworthy under faults: end to end (pytester) against the fake with seeded, reproducible faults.

Throttling, 5xx answers and dropped connections must never change a verdict; only a spent retry budget turns a
target into an *error*, saying so and how many attempts were made. Unreachable, unresponsive and never-answering
endpoints end in errors within the configured timeouts.

Deterministic by construction: the fake decides each request's fault from (seed, call key, call number) alone, so
the requests each target needs follow from the seed (``fault_chain``), and the tests compare the fake's own
request counts with that. Wall time is only ever bounded from above, generously, to catch hangs. The seeds are
picked so that the plugin's backoff (full jitter up to 0.25 s * 2**n, FetchSettings) keeps every run to a few
seconds.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from junitparser import Error, Failure, JUnitXml

from pytest_proton_sync.fake import FakeServer, FakeState
from pytest_proton_sync.fake.state import Fault, Faults
from pytest_proton_sync.fetch.pacing import KeyPacer, RateLimiter
from pytest_proton_sync.fetch.rate_learning import RateLearner

from .conftest import SHA_A, SHA_OLD, fake_state, template, write_manifest

pytestmark = pytest.mark.usefixtures("aws_env")

STATUS_CALL = "GetTemplateSyncStatus"
# 210 targets: seed 192 throttles 62 requests and fails 17 with HTTP 500; 63 targets need 2 to 4 requests, and no
# target's backoff can add up to more than 3.2 s (see test_the_seeds_do_what_the_tests_say).
THROTTLE_AND_5XX = {"seed": 192, "throttle_rate": 0.25, "error_5xx_rate": 0.05}
DROPS = {"seed": 1, "drop_rate": 0.2}


# -- helpers ----------------------------------------------------------------------------------------------------
def junit_outcomes(path: Path) -> dict[str, tuple[str, str]]:
    """name -> (outcome, the failure or error text), read back by a real JUnit consumer."""
    cases: dict[str, tuple[str, str]] = {}
    for suite in JUnitXml.fromfile(str(path)):
        for case in suite:
            outcome, text = "passed", ""
            for result in case.result:
                outcome = "error" if isinstance(result, Error) else "failed" if isinstance(result, Failure) \
                    else "skipped"
                text = f"{result.message or ''}\n{result.text or ''}"
            cases[case.name] = (outcome, text)
    return cases


def a_mix(count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
    """(manifest entries, fake templates, test name -> outcome on a clean run): in sync, out of sync, no sync
    status, never synced, access denied."""
    entries, templates, outcomes = [], [], {}
    for i in range(count):
        name, type_ = f"t{i:03d}", "SERVICE" if i % 2 else "ENVIRONMENT"
        entries.append(template(name, SHA_A, type_))
        fake_entry: dict[str, Any] = {"name": name, "type": type_, "version": 1, "synced": SHA_A}
        outcome = "failed"
        if i % 10 == 7:
            pass  # not in the fake: ResourceNotFoundException
        elif i % 10 == 3:
            fake_entry["synced"] = SHA_OLD
        elif i % 30 == 11:
            del fake_entry["synced"]
            fake_entry["latest"] = {"status": "FAILED", "sha": SHA_A, "events": [{"type": "E", "event": "boom"}]}
        elif i % 50 == 19:
            fake_entry["deny"] = True
            outcome = "error"
        else:
            outcome = "passed"
        if i % 10 != 7:
            templates.append(fake_entry)
        outcomes[f"{type_}/{name}@1"] = outcome
    return entries, templates, outcomes


def counts(outcomes: dict[str, str]) -> dict[str, int]:
    """assert_outcomes() arguments for these outcomes."""
    plural = {"passed": "passed", "failed": "failed", "error": "errors"}
    return {plural[o]: sum(1 for v in outcomes.values() if v == o) for o in plural}


def status_key(entry: dict[str, Any]) -> str:
    return f"{STATUS_CALL} {entry['type']}/{entry['name']}@{entry['version']}"


def fault_chain(faults: Faults, key: str, limit: int = 50) -> list[Fault]:
    """The faults a key's requests meet, in order, until the first request that is answered."""
    chain: list[Fault] = []
    while (fault := faults.decide(key, len(chain))) is not Fault.NONE and len(chain) < limit:
        chain.append(fault)
    return chain


def requests_needed(faults: Faults, keys: list[str]) -> dict[str, int]:
    return {key: len(fault_chain(faults, key)) + 1 for key in keys}


def run_timed(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, float]:
    started = time.monotonic()
    result = pytester.runpytest(*args, "-p", "no:cacheprovider")
    return result, time.monotonic() - started


@pytest.fixture
def dead_port() -> int:
    """A loopback port nobody listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def never_accepting_port() -> Iterator[int]:
    """A loopback port that listens but never accepts: its one-slot backlog is already full, so every further
    connection attempt hangs until the client's connect timeout (Linux drops the SYN)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    filler = socket.create_connection(("127.0.0.1", port), timeout=1)
    try:
        yield port
    finally:
        filler.close()
        server.close()


# -- faults that must not change any verdict --------------------------------------------------------------------
@pytest.mark.plugin_logic
def test_throttling_and_5xx_change_no_verdict(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    entries, templates, outcomes = a_mix(210)
    manifest = write_manifest(pytester.path, *entries)

    aws_env.set_state(fake_state(*templates))
    clean, _ = run_timed(pytester, "--proton-manifest", str(manifest), "--junitxml=clean.xml")
    clean.assert_outcomes(**counts(outcomes))
    assert {name: outcome for name, (outcome, _) in junit_outcomes(pytester.path / "clean.xml").items()} == outcomes
    assert aws_env.total_calls(operation=STATUS_CALL) == 210

    faulty_state: FakeState = fake_state(*templates, faults=THROTTLE_AND_5XX)
    aws_env.set_state(faulty_state)
    aws_env.reset_calls()
    # Default settings: the storm must change no verdict without any tuning.
    faulty, seconds = run_timed(pytester, "--proton-manifest", str(manifest), "--junitxml=faulty.xml")
    faulty.assert_outcomes(**counts(outcomes))
    clean_outcomes = {name: outcome for name, (outcome, _) in junit_outcomes(pytester.path / "clean.xml").items()}
    faulty_outcomes = {name: outcome for name, (outcome, _) in junit_outcomes(pytester.path / "faulty.xml").items()}
    assert len(faulty_outcomes) == 210
    assert faulty_outcomes == clean_outcomes
    # Every target was asked exactly until its first answered request: each fault retried, nothing more.
    expected = requests_needed(faulty_state.faults, [status_key(e) for e in entries])
    assert aws_env.calls == expected
    assert sum(expected.values()) == 210 + 62 + 17  # the seed really injects faults (62 throttles, 17 5xx)
    assert max(expected.values()) == 4  # and some targets need several retries
    # The errors are the denied targets, and say so; no error mentions throttling or a server error.
    errors = {n: t for n, (o, t) in junit_outcomes(pytester.path / "faulty.xml").items() if o == "error"}
    assert all("AccessDeniedException" in text for text in errors.values()), errors
    assert seconds < 60  # a hang guard only; about 3 s


def test_dropped_connections_are_retried_and_change_no_verdict(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    entries, templates, outcomes = a_mix(60)
    manifest = write_manifest(pytester.path, *entries)
    aws_env.set_state(fake_state(*templates))
    run_timed(pytester, "--proton-manifest", str(manifest), "--junitxml=clean.xml")

    state = fake_state(*templates, faults=DROPS)
    aws_env.set_state(state)
    aws_env.reset_calls()
    result, seconds = run_timed(pytester, "--proton-manifest", str(manifest), "--junitxml=dropped.xml",
                                "--proton-max-attempts", "10")
    result.assert_outcomes(**counts(outcomes))
    assert {n: o for n, (o, _) in junit_outcomes(pytester.path / "dropped.xml").items()} == \
        {n: o for n, (o, _) in junit_outcomes(pytester.path / "clean.xml").items()}
    assert aws_env.calls == requests_needed(state.faults, [status_key(e) for e in entries])
    assert aws_env.total_calls() > 60 + 15
    assert seconds < 60


def test_adaptive_retry_mode_changes_no_verdict(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    """botocore's adaptive mode also paces the whole client after a throttle, starting from a low rate (about
    0.5 requests a second right after a burst), so this stays small: 8 targets, 3 of them throttled once."""
    entries, templates, outcomes = a_mix(8)
    manifest = write_manifest(pytester.path, *entries)
    state = fake_state(*templates, faults={"seed": 14, "throttle_rate": 0.25})
    aws_env.set_state(state)
    result, seconds = run_timed(pytester, "--proton-manifest", str(manifest), "--proton-retry-mode", "adaptive",
                                "--proton-max-attempts", "10", "--junitxml=out.xml")
    result.assert_outcomes(**counts(outcomes))
    assert {name: outcome for name, (outcome, _) in junit_outcomes(pytester.path / "out.xml").items()} == outcomes
    assert aws_env.calls == requests_needed(state.faults, [status_key(e) for e in entries])
    assert aws_env.total_calls() == 8 + 3
    assert seconds < 60


# -- a spent budget is an error that says so --------------------------------------------------------------------
# The plugin's own retry budget under a service that refuses every request. 6 targets of 3 attempts are fewer
# requests than make a key "refusing" (RateLearner.REFUSED_RUN), so each target spends exactly its budget. The pacer
# holds the key at its lowest rate meanwhile (about 8 s). No dependency version changes it (botocore's throttling
# errors are covered in every matrix row by the other tests here).
@pytest.mark.plugin_logic
def test_throttled_past_the_budget_is_an_error_after_exactly_that_many_attempts(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    entries, templates, _ = a_mix(6)
    assert len(entries) * 3 < RateLearner.REFUSED_RUN
    aws_env.set_state(fake_state(*templates, faults={"throttle_rate": 1.0}))
    manifest = write_manifest(pytester.path, *entries)
    result, seconds = run_timed(pytester, "--proton-manifest", str(manifest), "--junitxml=out.xml",
                                "--proton-max-attempts", "3")
    result.assert_outcomes(errors=6)
    cases = junit_outcomes(pytester.path / "out.xml")
    assert {outcome for outcome, _ in cases.values()} == {"error"}
    for name, (_, text) in cases.items():
        assert f"{name} could not be checked: ThrottlingException (after 3 attempts)" in text
        assert "throttled by the API and gave up after 3 attempts" in text
        assert "fix: raise --proton-max-attempts" in text
    assert aws_env.calls == {status_key(e): 3 for e in entries}
    result.stdout.fnmatch_lines(["*could not be checked: ThrottlingException (after 3 attempts)",
                                 "  throttled by the API and gave up after 3 attempts"])
    assert "Traceback" not in result.stdout.str()
    assert seconds < 60  # backoff: at most 1 s + 2 s per target


@pytest.mark.plugin_logic
def test_a_service_that_refuses_everything_errors_every_target_in_seconds_not_minutes(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    """40 targets, the default 10 attempts: held at 1 request a second, that was 400 requests and minutes (pacing
    does not count against a call's deadline). Once 20 throttles in a row span 10 s the key is given up: every
    target an error that says the API refuses everything, and no request after that."""
    entries, templates, _ = a_mix(40)
    aws_env.set_state(fake_state(*templates, faults={"throttle_rate": 1.0}))
    manifest = write_manifest(pytester.path, *entries)
    result, seconds = run_timed(pytester, "--proton-manifest", str(manifest), "--junitxml=out.xml")
    result.assert_outcomes(errors=40)
    cases = junit_outcomes(pytester.path / "out.xml")
    assert {outcome for outcome, _ in cases.values()} == {"error"}
    refused = [text for _, text in cases.values() if "were all throttled" in text]
    assert len(refused) >= 30  # the rest spent their own attempts before the key was given up
    assert all("the API refuses everything for now" in text and "Service Quotas" in text for text in refused)
    assert any("not asked: the last 20 requests" in text for text in refused)
    assert sum(aws_env.calls.values()) <= 32 + 25  # the opening round, then about one a second until given up
    assert seconds < 30
    assert "Traceback" not in result.stdout.str()


def test_server_errors_are_retried_to_the_attempt_budget_for_every_target(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    """The plugin retries by itself (botocore makes one attempt per call), so no client-wide retry quota can stop
    the retries of some targets once others have failed: every target gets exactly its attempts."""
    entries, templates, _ = a_mix(60)
    aws_env.set_state(fake_state(*templates, faults={"error_5xx_rate": 1.0}))
    manifest = write_manifest(pytester.path, *entries)
    result, seconds = run_timed(pytester, "--proton-manifest", str(manifest), "--junitxml=out.xml",
                                "--proton-max-attempts", "3", "--proton-concurrency", "60")
    result.assert_outcomes(errors=60)
    for entry in entries:
        outcome, text = junit_outcomes(pytester.path / "out.xml")[f"{entry['type']}/{entry['name']}@1"]
        assert outcome == "error"
        assert "InternalServerException (after 3 attempts)" in text and "(HTTP 500)" in text
        assert "gave up after 3 attempts\n" in text
    assert aws_env.calls == {status_key(e): 3 for e in entries}
    assert seconds < 60


def test_dead_endpoint_is_an_error_for_every_target_quickly_with_the_defaults(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, dead_port: int
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_PROTON", f"http://127.0.0.1:{dead_port}")
    entries, _, _ = a_mix(20)
    manifest = write_manifest(pytester.path, *entries)
    result, seconds = run_timed(pytester, "--proton-manifest", str(manifest), "--junitxml=out.xml")
    result.assert_outcomes(errors=20)
    cases = junit_outcomes(pytester.path / "out.xml")
    assert {outcome for outcome, _ in cases.values()} == {"error"}
    for _, text in cases.values():
        assert "could not be checked: EndpointUnreachable" in text
        assert f'Could not connect to the endpoint URL: "http://127.0.0.1:{dead_port}/"' in text
        assert "gave up after 3 attempts" in text  # connect_attempts: a refusing endpoint will not change soon
        assert "fix: check the endpoint" in text
    assert "Traceback" not in result.stdout.str()
    assert seconds < 30


def test_endpoint_that_never_accepts_is_bounded_by_the_connect_timeout(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, never_accepting_port: int
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_PROTON", f"http://127.0.0.1:{never_accepting_port}")
    entries, _, _ = a_mix(5)
    manifest = write_manifest(pytester.path, *entries)
    result, seconds = run_timed(pytester, "--proton-manifest", str(manifest), "--proton-connect-timeout", "0.3",
                                "--proton-max-attempts", "2")
    result.assert_outcomes(errors=5)
    result.stdout.fnmatch_lines([
        "*could not be checked: EndpointUnreachable (after 2 attempts)",
        "  Connect timeout on endpoint URL: *",
        "  gave up after 2 attempts (connect timeout 0.3 s, read timeout 20 s)",
    ])
    assert seconds < 20  # 2 x 0.3 s per target, all at once


def test_hung_endpoint_is_bounded_by_the_read_timeout(pytester: pytest.Pytester, aws_env: FakeServer) -> None:
    entries, templates, _ = a_mix(10)
    # Every answer would take 30 s: only the read timeout can end this run in time.
    aws_env.set_state(fake_state(*templates, faults={"slow_rate": 1.0, "slow_seconds": 30}))
    manifest = write_manifest(pytester.path, *entries)
    result, seconds = run_timed(pytester, "--proton-manifest", str(manifest), "--junitxml=out.xml",
                                "--proton-read-timeout", "0.5", "--proton-max-attempts", "2")
    result.assert_outcomes(errors=10)
    timed_out = 0
    for _, (outcome, text) in junit_outcomes(pytester.path / "out.xml").items():
        assert outcome == "error"
        if "could not be checked: ReadTimeout" in text:
            timed_out += 1
            assert "could not be checked: ReadTimeout (after 2 attempts)" in text
            assert "no answer within the read timeout of 0.5 s; gave up after 2 attempts" in text
            assert "--proton-read-timeout" in text
        else:  # after 3 calls in a row without an answer, the others are ended or not sent (unresponsive_limit)
            assert "could not be checked: EndpointUnresponsive" in text
            assert "3 calls in a row to http://127.0.0.1:" in text
    assert timed_out >= 3
    assert all(count <= 2 for count in aws_env.calls.values())
    assert seconds < 20  # 2 x 0.5 s per target, all at once; 30 s if the read timeout did not apply


# -- --proton-max-rps -------------------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


@pytest.mark.parametrize(("rate", "expected"), [
    (2.0, [0.0, 0.0, 0.5, 1.0, 1.5, 2.0]),  # a burst of one second's worth, then 1/rate apart
    (0.5, [0.0, 2.0, 4.0, 6.0]),  # below one a second: one at once, then 2 s apart (this used to hang)
    (None, [0.0, 0.0, 0.0]),  # no cap
])
def test_rate_limiter_paces_requests(rate: float | None, expected: list[float]) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate, clock=clock, sleep=clock.sleep)
    times = []
    for _ in expected:
        limiter.acquire()
        times.append(clock.now)
    assert times == expected


def test_rate_limiter_burst_after_idle_is_capped() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4.0, clock=clock, sleep=clock.sleep)
    clock.now = 100.0  # idle for a long time: the bucket holds one second's worth, no more
    for _ in range(6):
        limiter.acquire()
    assert clock.now == 100.5


def test_max_rps_paces_every_request_retries_included(
    pytester: pytest.Pytester, aws_env: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    acquired: list[float | None] = []
    original = KeyPacer.delay

    def counting(self: KeyPacer) -> float:
        delay = original(self)
        if delay <= 0:  # a token: this request may go
            acquired.append(self.rate)
        return delay

    monkeypatch.setattr(KeyPacer, "delay", counting)
    entries, templates, outcomes = a_mix(30)
    state = fake_state(*templates, faults={"seed": 13, "throttle_rate": 0.25})  # 11 targets throttled once
    aws_env.set_state(state)
    manifest = write_manifest(pytester.path, *entries)
    result, seconds = run_timed(pytester, "--proton-manifest", str(manifest), "--proton-max-rps", "200")
    result.assert_outcomes(**counts(outcomes))
    sent = aws_env.total_calls()
    assert sent == sum(requests_needed(state.faults, [status_key(e) for e in entries]).values()) == 30 + 11
    assert len(acquired) == sent  # one token per HTTP request, retries included
    # The first request is paced at exactly what the user gave (no answer yet, so no throttling cut either):
    # --proton-max-rps reached the key's pacer. (Later rates may be cut by the throttles, never raised above it.)
    assert acquired[0] == 200.0
    assert all(rate is not None and rate <= 200.0 for rate in acquired)
    assert seconds < 60


