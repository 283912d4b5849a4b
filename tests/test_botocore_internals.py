"""The botocore internals the call deadline relies on (aws/deadline.py), checked against the installed botocore.

The deadline's effect (a trickled or silent answer ended on time) is tested end to end in test_hostile.py;
these fail when a botocore release inside the supported range moves them, instead of the deadline silently
degrading to per-read timeouts only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

import botocore.awsrequest
import pytest

from pytest_proton_sync.aws.clients import FetchSettings, botocore_config, configured_endpoint, default_client
from pytest_proton_sync.aws.deadline import THREAD, Call, watch_connections
from pytest_proton_sync.aws.hermetic import fake_client
from pytest_proton_sync.fake import FakeServer
from pytest_proton_sync.model import Target

from .conftest import fake_state

SHA = "a" * 40


class RecordingCall(Call):
    """A Call that remembers every connection its attempts were given and handed back."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.attached: list[Any] = []
        self.detached: list[Any] = []

    def attach(self, conn: Any) -> None:
        self.attached.append(conn)
        super().attach(conn)

    def detach(self, conn: Any) -> None:
        self.detached.append(conn)
        super().detach(conn)


def client_of(fake: FakeServer) -> Any:
    return fake_client("proton", "us-east-1", fake.endpoint_url, botocore_config(FetchSettings()))


def target() -> Target:
    return cast(Target, object())  # the pools never look at the call's target: it is there for progress lines


@pytest.mark.parametrize("name", ["AWSHTTPConnectionPool", "AWSHTTPSConnectionPool"])
def test_the_connection_pools_still_hand_out_and_take_back_connections(name: str) -> None:
    pool = getattr(botocore.awsrequest, name)
    assert callable(getattr(pool, "_get_conn", None))
    assert callable(getattr(pool, "_put_conn", None))


def test_a_client_is_watched_and_its_request_uses_the_watched_pool(fake: FakeServer) -> None:
    fake.set_state(fake_state({"name": "vpc", "type": "ENVIRONMENT", "version": "1", "synced": SHA}))
    client = client_of(fake)
    assert watch_connections(client)
    call = RecordingCall(target(), time.monotonic() + 30)
    THREAD.call = call
    try:
        client.get_template_sync_status(templateName="vpc", templateType="ENVIRONMENT", templateVersion="1")
    finally:
        THREAD.call = None
    assert call.attached, "the request's connection never reached the call: the deadline could not end it"
    assert call.detached == call.attached[-1:]


def test_anything_but_a_botocore_client_is_declined() -> None:
    assert not watch_connections(object())


@pytest.mark.parametrize("setting", ["service", "global", "config file", "ignored", "none"])
def test_the_headers_endpoint_is_the_one_botocore_gives_a_client(
    setting: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The header names the endpoint from the settings botocore reads, without making a client: the two must agree.
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_PROTON", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config"
    config.write_text("[default]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    if setting == "service":
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1/global")
        monkeypatch.setenv("AWS_ENDPOINT_URL_PROTON", "http://127.0.0.1:1/proton")
    elif setting == "global":
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1/global")
    elif setting == "config file":
        config.write_text("[default]\nregion = eu-west-1\nservices = local\n\n"
                          "[services local]\nproton =\n  endpoint_url = http://127.0.0.1:1/from-config\n")
    elif setting == "ignored":
        monkeypatch.setenv("AWS_ENDPOINT_URL_PROTON", "http://127.0.0.1:1/proton")
        monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    settings = FetchSettings()
    client = default_client("proton", "eu-west-1", settings)
    configured = configured_endpoint("proton", settings)
    assert (configured or "https://proton.eu-west-1.amazonaws.com") == client.meta.endpoint_url
    assert (configured is None) == (setting in ("ignored", "none"))
