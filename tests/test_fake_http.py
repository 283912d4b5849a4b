"""The fake as an HTTP server under hostile or odd clients: bounded and chunked bodies, garbage, log injection,
and the AWS CLI. After every bad request a good one, through boto3, must still be answered."""

from __future__ import annotations

import functools
import io
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from pytest_proton_sync.fake import FakeServer, FakeState
from pytest_proton_sync.fake.server import MAX_BODY_BYTES

SHA = "0123456789abcdef0123456789abcdef01234567"
SIGNED = "AWS4-HMAC-SHA256 Credential=AKIDRAW/20260101/us-east-1/proton/aws4_request, Signature=00"
GOOD_BODY = json.dumps({"templateName": "vpc-env", "templateType": "ENVIRONMENT", "templateVersion": "1"}).encode()


def state() -> FakeState:
    return FakeState.from_mapping(
        {
            "defaults": {"repository": {"name": "acme/platform"}},
            "templates": [{"name": "vpc-env", "type": "ENVIRONMENT", "version": "1", "synced": SHA}],
            "service_instances": [{"service": "web-svc", "name": "prod", "synced": SHA}],
            "stacks": [{"name": "network", "synced": SHA}],
        },
        source="<test>",
    )


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(state()) as running:
        yield running


@functools.cache
def session() -> boto3.session.Session:
    # One session for the module: creating a client from a warm session is much cheaper than from a new one.
    return boto3.session.Session(aws_access_key_id="AKIAOK", aws_secret_access_key="x", region_name="us-east-1")


def still_answers(server: FakeServer) -> None:
    proton = session().client(
        "proton", endpoint_url=server.endpoint_url, config=Config(retries={"mode": "standard", "total_max_attempts": 1})
    )
    response = proton.get_template_sync_status(templateName="vpc-env", templateType="ENVIRONMENT", templateVersion="1")
    assert response["latestSuccessfulSync"]["targetRevision"]["sha"] == SHA


def exchange(server: FakeServer, raw: bytes, timeout: float = 5, *, then_close: bool = False) -> bytes:
    """Send raw bytes on a fresh connection and read until the server closes it or goes quiet.
    ``then_close``: the client sends nothing more (the server sees end of input at once)."""
    host, port = server.endpoint_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(raw)
        if then_close:
            conn.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
                if _complete(received):
                    break
        except TimeoutError:
            pass
    return received


def _complete(received: bytes) -> bool:
    head, separator, body = received.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


def parse(received: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in header_lines)}
    payload = json.loads(body) if headers.get("content-type", "").startswith("application/x-amz-json") else {}
    return int(status_line.split()[1]), headers, payload


def post(headers: dict[str, str], body: bytes = b"", target: str = "AwsProton20200720.GetTemplateSyncStatus") -> bytes:
    lines = ["POST / HTTP/1.1", "Host: fake", f"X-Amz-Target: {target}", f"Authorization: {SIGNED}",
             "Content-Type: application/x-amz-json-1.0"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(body: bytes, size: int = 7) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    encoded = b"".join(f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n" for piece in pieces)
    return encoded + b"0\r\nX-Trailer: ignored\r\n\r\n"


# -- bodies ------------------------------------------------------------------------------------------------
def test_a_body_past_the_cap_is_refused_unread(server: FakeServer) -> None:
    # Only the headers are sent: if the fake tried to read the promised body it would never answer.
    received = exchange(server, post({"Content-Length": str(MAX_BODY_BYTES + 1)}))
    status, headers, payload = parse(received)
    assert status == 413
    assert payload["__type"] == "RequestEntityTooLargeException" == headers["x-amzn-errortype"]
    assert headers["connection"] == "close"
    still_answers(server)


def test_boto3_gets_the_413_even_while_still_sending_a_large_body(server: FakeServer) -> None:
    proton = session().client(
        "proton",
        endpoint_url=server.endpoint_url,
        config=Config(parameter_validation=False, retries={"mode": "standard", "total_max_attempts": 1}),
    )
    for _ in range(2):  # and again, on whatever connection botocore uses next
        with pytest.raises(ClientError) as excinfo:
            proton.get_template_sync_status(
                templateName="x" * (8 * MAX_BODY_BYTES), templateType="ENVIRONMENT", templateVersion="1"
            )
        assert excinfo.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    still_answers(server)


def test_chunked_bodies_are_read(server: FakeServer) -> None:
    received = exchange(server, post({"Transfer-Encoding": "chunked"}, chunked(GOOD_BODY)))
    status, _, payload = parse(received)
    assert status == 200, payload
    assert payload["latestSuccessfulSync"]["targetRevision"]["sha"] == SHA
    assert server.calls == {"GetTemplateSyncStatus ENVIRONMENT/vpc-env@1": 1}


def test_chunked_keeps_the_connection_alive(server: FakeServer) -> None:
    request = post({"Transfer-Encoding": "chunked"}, chunked(GOOD_BODY))
    host, port = server.endpoint_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        for _ in range(2):
            conn.sendall(request)
            received = b""
            while not _complete(received):
                received += conn.recv(65536)
            assert parse(received)[0] == 200
    assert server.calls == {"GetTemplateSyncStatus ENVIRONMENT/vpc-env@1": 2}


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        (
            {"Transfer-Encoding": "chunked"},
            f"{MAX_BODY_BYTES + 1:x}\r\n".encode(),
            413,
            "RequestEntityTooLargeException",
        ),
        ({"Transfer-Encoding": "chunked"}, b"zz\r\n{}\r\n0\r\n\r\n", 400, "SerializationException"),
        ({"Transfer-Encoding": "chunked"}, b"-1\r\n{}\r\n0\r\n\r\n", 400, "SerializationException"),
        ({"Transfer-Encoding": "chunked"}, b"5\r\n{}\r\n0\r\n\r\n", 400, "SerializationException"),
        ({"Transfer-Encoding": "chunked", "Content-Length": "2"}, b"{}", 400, "SerializationException"),
        ({"Transfer-Encoding": "gzip"}, b"{}", 501, "SerializationException"),
        ({"Content-Length": "abc"}, b"{}", 400, "SerializationException"),
        ({"Content-Length": "-5"}, b"{}", 400, "SerializationException"),
    ],
    ids=["chunk-too-large", "chunk-size-not-hex", "chunk-size-negative", "chunk-short", "both-framings",
         "other-encoding", "length-not-a-number", "length-negative"],
)
def test_bad_framing_is_an_aws_shaped_error_and_closes(
    server: FakeServer, headers: dict[str, str], body: bytes, status: int, code: str
) -> None:
    received = exchange(server, post(headers, body))
    got_status, got_headers, payload = parse(received)
    assert (got_status, payload["__type"]) == (status, code)
    assert got_headers["connection"] == "close"
    still_answers(server)


# -- garbage -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[" * 100_000 + b"]" * 100_000,  # deep enough for a RecursionError in json, if not caught
        b"[1, 2]",
        b'"text"',
        json.dumps({"templateName": 7, "templateType": "ENVIRONMENT", "templateVersion": "1"}).encode(),
        json.dumps({"templateName": "vpc-env"}).encode(),
        json.dumps({"templateName": "vpc-env", "templateType": "ENVIRONMENT", "templateVersion": "1", "x": 1}).encode(),
    ],
    ids=["bad-json", "binary", "deep-json", "array", "string", "wrong-type", "missing-members", "unknown-member"],
)
def test_malformed_bodies_get_aws_errors_and_the_server_stays_up(server: FakeServer, body: bytes) -> None:
    status, headers, payload = parse(exchange(server, post({"Content-Length": str(len(body))}, body)))
    assert status == 400
    assert payload["__type"] in ("SerializationException", "ValidationException")
    assert headers["x-amzn-errortype"] == payload["__type"]
    assert "Traceback" not in payload["message"]
    still_answers(server)


@pytest.mark.parametrize(
    "target",
    ["AwsProton20200720.DeleteEverything", "Nope.GetTemplateSyncStatus", "CodeConnections_20231201.ListHosts", "."],
)
def test_unknown_operations(server: FakeServer, target: str) -> None:
    status, _, payload = parse(exchange(server, post({"Content-Length": "2"}, b"{}", target=target)))
    assert (status, payload["__type"]) == (400, "UnknownOperationException")
    still_answers(server)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x01\x02 garbage\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST / HTTP/1.1\r\n" + b"X-Long: " + b"a" * 70_000 + b"\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n{}",  # promises more than it sends, then goes away
        b"",
    ],
    ids=["binary", "bad-version", "huge-header", "short-body", "nothing"],
)
def test_garbage_then_a_good_request(server: FakeServer, raw: bytes) -> None:
    exchange(server, raw, then_close=True)
    still_answers(server)


def test_get_elsewhere_is_an_aws_shaped_404(server: FakeServer) -> None:
    status, headers, payload = parse(exchange(server, b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert (status, payload["__type"], headers["x-amzn-errortype"]) == (404, "UnknownOperationException",
                                                                        "UnknownOperationException")


# -- the log -----------------------------------------------------------------------------------------------
def test_logged_client_text_is_escaped() -> None:
    log = io.StringIO()
    with FakeServer(state(), log_requests=True, log_stream=log) as server:
        name = "evil\x1b[2J\x1b[31m\r\n::error::pwned\u2028"
        body = json.dumps({"templateName": name, "templateType": "ENVIRONMENT", "templateVersion": "1"}).encode()
        exchange(server, post({"Content-Length": str(len(body))}, body))
        exchange(server, post({"Content-Length": "2"}, b"{}", target="AwsProton20200720.\x1b]0;title\x07Op"))
        still_answers(server)
    text = log.getvalue()
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text and "\u2028" not in text
    lines = text.splitlines()
    assert len(lines) == 3, lines  # one line per request: the CR/LF in the name did not start a new one
    assert "evil\\x1b[2J\\x1b[31m\\r\\n::error::pwned\\u2028" in lines[0]
    assert "AKIDRAW" not in text and "AKIAOK" not in text and "Signature" not in text


# -- the AWS CLI -------------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
@pytest.mark.parametrize(
    "arguments",
    [
        # One command per service (each is a whole CLI process, over a second): the other operations go through
        # the same code paths and are covered through boto3 in test_fake_services.py.
        ["proton", "get-service-instance-sync-status", "--service-name", "web-svc", "--service-instance-name", "prod"],
        ["codeconnections", "get-sync-blocker-summary", "--resource-name", "network", "--sync-type", "CFN_STACK_SYNC"],
    ],
    ids=["proton", "codeconnections"],
)
def test_the_aws_cli_works_against_the_fake(server: FakeServer, tmp_path: Path, arguments: list[str]) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="AKIACLI", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    command = [str(shutil.which("aws")), *arguments, "--endpoint-url", server.endpoint_url, "--output", "json"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0 and "Invalid choice" in result.stderr:
        pytest.skip(f"this AWS CLI does not know {arguments[0]} {arguments[1]}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)
    assert sum(server.calls_by_access_key["AKIACLI"].values()) == 1


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_aws_shaped_errors(server: FakeServer, method: str) -> None:
    raw = f"{method} / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".encode()
    status, headers, payload = parse(exchange(server, raw))
    assert (status, payload["__type"], headers["connection"]) == (405, "UnknownOperationException", "close")
    still_answers(server)
