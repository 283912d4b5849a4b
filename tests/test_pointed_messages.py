"""Common first mistakes get their cause in one line and a ``fix:`` line, through pytest as a user runs it.

A directory, a symlink loop, a FIFO or a device given as the manifest; a target declared in two manifests
(pytest and ``validate``); an endpoint answering 404 or an HTML 501/503 page; the header's region line; the
summary's call count when no request went out.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_proton_sync.fake import FakeServer

from .conftest import SHA_A, fake_state, template, write_manifest

pytestmark = pytest.mark.usefixtures("aws_env")

PAGE_LINES = 40


def assert_no_traceback(result: pytest.RunResult) -> None:
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text and "INTERNALERROR" not in text


# -- the manifest path ------------------------------------------------------------------------------------------
def test_a_directory_given_as_the_manifest(pytester: pytest.Pytester) -> None:
    (pytester.path / "gates").mkdir()
    write_manifest(pytester.path / "gates", template("vpc-env", SHA_A))
    result = pytester.runpytest("--proton-manifest", "gates")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: proton-sync manifest gates is a directory, not a file",
                                 "  fix: give the manifest file in it, e.g. gates/proton-sync.yaml."])
    assert_no_traceback(result)


def test_an_ini_manifest_that_is_a_directory(pytester: pytest.Pytester) -> None:
    (pytester.path / "gates").mkdir()
    pytester.makeini("[pytest]\nproton_manifests = gates\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: proton-sync manifest */gates is a directory, not a file",
                                 "  fix: give the manifest file in it, e.g. */gates/proton-sync.yaml (it holds no*"])


@pytest.mark.parametrize("given", ["option", "ini"])
def test_a_symlink_loop_given_as_the_manifest(pytester: pytest.Pytester, given: str) -> None:
    os.symlink("loop-b.yaml", pytester.path / "loop-a.yaml")
    os.symlink("loop-a.yaml", pytester.path / "loop-b.yaml")
    if given == "ini":
        pytester.makeini("[pytest]\nproton_manifests = loop-a.yaml\n")
        result = pytester.runpytest()
    else:
        result = pytester.runpytest("--proton-manifest", "loop-a.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: proton-sync manifest *loop-a.yaml is a symlink loop: *",
                                 "  fix: point the link at the manifest file, or give the file's own path."])
    assert_no_traceback(result)


def test_a_dangling_symlink_given_as_the_manifest(pytester: pytest.Pytester) -> None:
    os.symlink("moved-away.yaml", pytester.path / "proton-sync.yaml")
    result = pytester.runpytest("--proton-manifest", "proton-sync.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: proton-sync manifest proton-sync.yaml is a symlink to moved-away.yaml, "
                                 "which does not exist", "  fix: *"])


def test_a_character_device_given_as_the_manifest(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--proton-manifest", os.devnull)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: proton-sync manifest {os.devnull} is a character device, not a regular "
                                 "file, so it cannot be read as a manifest",
                                 "  fix: save the manifest to a file and give that file's path."])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_given_as_the_manifest_neither_blocks_nor_says_not_found(pytester: pytest.Pytester) -> None:
    os.mkfifo(pytester.path / "manifest.yaml")
    # A subprocess with a timeout: opening a FIFO nobody writes to would block the run for ever.
    result = pytester.runpytest_subprocess("--proton-manifest", "manifest.yaml", "-p", "no:cacheprovider",
                                           timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: proton-sync manifest manifest.yaml is a FIFO (named pipe), not a regular "
                                 "file*", "  fix: *"])


def test_the_missing_manifest_message_has_a_fix_line(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--proton-manifest", "nope.yaml")
    result.stderr.fnmatch_lines(["ERROR: proton-sync manifest not found: nope.yaml",
                                 "  fix: give the path of the manifest file *"])


def run_validate(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_proton_sync.cli", "validate", *arguments], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def test_validate_refuses_a_directory_a_fifo_and_a_device_with_a_fix_line(tmp_path: Path) -> None:
    (tmp_path / "gates").mkdir()
    arguments = ["gates", os.devnull]
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.yaml")
        arguments.append("fifo.yaml")
    done = run_validate(*arguments, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == "proton-sync manifest gates is a directory, not a file"
    assert f"proton-sync manifest {os.devnull} is a character device, not a regular file, so it cannot be read " \
        "as a manifest" in lines
    assert sum(line.startswith("  fix: ") for line in lines) == len(arguments)
    assert "Traceback" not in done.stderr


# -- the same target in two manifests --------------------------------------------------------------------------
def test_validate_reports_a_target_declared_in_two_manifests(tmp_path: Path) -> None:
    write_manifest(tmp_path, template("vpc-env", SHA_A), template("eks-env", SHA_A), name="a.yaml")
    write_manifest(tmp_path, template("web-svc", SHA_A, "SERVICE"), template("vpc-env", SHA_A[:7]), name="b.yaml")
    alone = run_validate("a.yaml", cwd=tmp_path)
    assert (alone.returncode, alone.stdout) == (0, "OK a.yaml: 2 targets\n")
    done = run_validate("a.yaml", "b.yaml", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == "OK a.yaml: 2 targets\n"  # b.yaml is not OK
    assert done.stderr == ("b.yaml:13: templates[1]: the same target ENVIRONMENT/vpc-env@1 is already declared in "
                           "a.yaml:9; each target may appear in one manifest only\n")


def test_a_target_in_two_ini_manifests_stops_the_run_before_any_call(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    aws_env.set_state(fake_state({"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}))
    write_manifest(pytester.path, template("vpc-env", SHA_A), name="platform.yaml")
    write_manifest(pytester.path, template("vpc-env", "1b2c3d4"), name="team.yaml")
    pytester.makeini("[pytest]\nproton_manifests =\n    platform.yaml\n    team.yaml\n")
    # Even with the duplicate deselected: the manifests contradict each other, so nothing is asked.
    result = pytester.runpytest("-k", "not vpc")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["invalid proton-sync manifest team.yaml:",
                                 "team.yaml:9: templates?0?: the same target ENVIRONMENT/vpc-env@1 is already "
                                 "declared in platform.yaml:9; each target may appear in one manifest only"])
    assert aws_env.total_calls() == 0
    assert_no_traceback(result)


# -- answers that are not the API's ----------------------------------------------------------------------------
class PageServer(http.server.ThreadingHTTPServer):
    request_queue_size = 256  # a fetch's burst of connections (see tests/hostile.py)
    status = 404
    answered = 0
    json_error: str | None = None  # an API-shaped error body instead of an HTML page


class PageHandler(http.server.BaseHTTPRequestHandler):
    server: PageServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = (f"<html><head><title>{self.server.status}</title></head><body>\n"
                + "<p>This server does not know this path.</p>\n" * PAGE_LINES + "</body></html>\n").encode()
        kind = "text/html"
        if self.server.json_error is not None:
            body, kind = self.server.json_error.encode(), "application/x-amz-json-1.0"
        self.server.answered += 1
        self.send_response(self.server.status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def page_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[PageServer]:
    """Something that is not the AWS API at the endpoint the user configured: a web server's HTML pages."""
    server = PageServer(("127.0.0.1", 0), PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_PROTON", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_an_endpoint_answering_404_gets_a_fix_line(pytester: pytest.Pytester, page_server: PageServer) -> None:
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A))
    result = pytester.runpytest("--proton-manifest", str(manifest))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "ENVIRONMENT/vpc-env@1 could not be checked: 404",
        "  the endpoint answered HTTP 404 Not Found with a page that is not an AWS API answer: '404 This server*...'",
        "  fix: check the endpoint (AWS_ENDPOINT_URL_PROTON, AWS_ENDPOINT_URL, endpoint_url in the AWS config file):"
        " it does not serve proton:GetTemplateSyncStatus; unset it to use the AWS endpoint of the region.",
    ])
    assert "<p>" not in result.stdout.str()


def test_a_501_page_is_not_dumped_and_no_retry_quota_is_blamed(
    pytester: pytest.Pytester, page_server: PageServer
) -> None:
    page_server.status = 501
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A))
    result = pytester.runpytest("--proton-manifest", str(manifest))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "ENVIRONMENT/vpc-env@1 could not be checked: 501",
        "  the endpoint answered HTTP 501 Not Implemented with a page that is not an AWS API answer*",
        "  fix: check the endpoint (*) and any proxy in between: it does not speak the proton API.",
    ])
    out = result.stdout.str()
    assert "retry quota" not in out and "gave up" not in out
    assert out.count("This server does not know this path") <= 1
    assert page_server.answered == 1  # a 501 is not retried


def test_an_api_shaped_501_is_not_blamed_on_the_retry_quota(
    pytester: pytest.Pytester, page_server: PageServer
) -> None:
    # What LocalStack answers for an API it does not implement.
    page_server.status = 501
    page_server.json_error = ('{"__type": "InternalFailure", "message": "API for service \'proton\' not yet '
                              'implemented or pro feature"}')
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A))
    result = pytester.runpytest("--proton-manifest", str(manifest))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "ENVIRONMENT/vpc-env@1 could not be checked: InternalFailure",
        "  API for service 'proton' not yet implemented or pro feature (HTTP 501 Not Implemented; not retried: "
        "only 500, 502, 503 and 504 are retried)",
        "  fix: check that the endpoint (AWS_ENDPOINT_URL_PROTON, AWS_ENDPOINT_URL) implements the proton API.",
    ])
    assert "retry quota" not in result.stdout.str()
    assert page_server.answered == 1


def test_a_503_page_is_retried_and_says_so(pytester: pytest.Pytester, page_server: PageServer) -> None:
    page_server.status = 503
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A))
    result = pytester.runpytest("--proton-manifest", str(manifest), "--proton-max-attempts", "2")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "ENVIRONMENT/vpc-env@1 could not be checked: 503 (after 2 attempts)",
        "  the endpoint answered HTTP 503 Service Unavailable with a page that is not an AWS API answer*",
        "  gave up after 2 attempts",
        "  fix: check the endpoint (*) and any proxy in between; if it is the AWS endpoint, re-run later.",
    ])
    assert page_server.answered == 2


# -- the header and the summary --------------------------------------------------------------------------------
def test_the_header_speaks_of_a_default_region_only_when_an_entry_needs_one(
    pytester: pytest.Pytester, aws_env: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    aws_env.set_state(fake_state({"name": "vpc-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A},
                                 {"name": "eks-env", "type": "ENVIRONMENT", "version": 1, "synced": SHA_A}))
    defaults = {"region": "eu-west-1", "repository": {"provider": "GITHUB", "name": "acme/platform-templates",
                                                      "branch": "main", "directory": "templates"}}
    every_entry = write_manifest(pytester.path, template("vpc-env", SHA_A), template("eks-env", SHA_A),
                                 defaults=defaults, name="regional.yaml")
    result = pytester.runpytest("--proton-manifest", str(every_entry))
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["proton-sync: region eu-west-1 (from the manifests), endpoint http://127.0.0.1:*"])
    assert "no default region" not in result.stdout.str()

    one_lacks = write_manifest(pytester.path, template("vpc-env", SHA_A, region="eu-west-1"),
                               template("eks-env", SHA_A), name="mixed.yaml")
    result = pytester.runpytest("--proton-manifest", str(one_lacks))
    result.stdout.fnmatch_lines(["proton-sync: no default region (AWS_REGION, AWS_DEFAULT_REGION, --proton-region "
                                 "unset), and 1 entry names none"])
    result.assert_outcomes(passed=1, errors=1)


def test_the_header_names_the_endpoint_without_making_a_client(
    pytester: pytest.Pytester, aws_env: FakeServer
) -> None:
    # --collect-only asks nothing: the header's endpoint line must not cost a client either.
    pytester.makeconftest("""
        MADE = []

        def pytest_proton_sync_make_client(service, region, settings, account):
            MADE.append(service)  # and None: the plugin's own client

        def pytest_unconfigure(config):
            (config.rootpath / "made.txt").write_text(" ".join(MADE))
    """)
    manifest = write_manifest(pytester.path, template("vpc-env", SHA_A))
    result = pytester.runpytest("--proton-manifest", str(manifest), "--collect-only")
    result.stdout.fnmatch_lines([f"proton-sync: region us-east-1, endpoint {aws_env.endpoint_url}"])
    assert (pytester.path / "made.txt").read_text() == ""


def test_the_summary_counts_no_call_when_no_request_went_out(
    pytester: pytest.Pytester, aws_env: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    manifest = write_manifest(pytester.path, *[template(f"t{i}", SHA_A) for i in range(3)])
    result = pytester.runpytest("--proton-manifest", str(manifest))
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*could not be checked: NoCredentials*",
                                 "no sync-status call was sent (each target stopped before a request)"])
    assert "sync-status calls" not in result.stdout.str()
    assert aws_env.total_calls() == 0
