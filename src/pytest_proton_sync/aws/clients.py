"""How clients are made: the fetch settings, botocore's config, a client from boto3's chain or the fake, the
default region, and the check of a 200 answer's raw body before botocore parses it (parsed once).

"boto3's chain" is botocore's: a client without an account comes from a plain botocore session, as boto3.client
makes it underneath (same environment, config files, credentials and endpoints), without importing boto3.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import botocore.awsrequest
import botocore.config
import botocore.configprovider
import botocore.exceptions
import botocore.session

from pytest_proton_sync import __version__
from pytest_proton_sync import options as options_module
from pytest_proton_sync.aws.accounts import Account
from pytest_proton_sync.aws.answers import MalformedAnswer
from pytest_proton_sync.aws.deadline import THREAD
from pytest_proton_sync.aws.hermetic import FAKE_DEFAULT_REGION, fake_client
from pytest_proton_sync.model import SyncStatus
from pytest_proton_sync.options import Options
from pytest_proton_sync.text.safetext import clean, excerpt


@dataclass(frozen=True)
class FetchSettings:
    """How to fetch: the user's :class:`~pytest_proton_sync.options.Options` as they are (read through, never
    copied), what the run adds (the fake's endpoint), and the fetch's internal bounds, which are not options."""

    options: Options = field(default_factory=options_module.defaults)
    endpoint_url: str | None = None  # set by --proton-fake only; otherwise boto3's own chain decides
    use_fake_credentials: bool = False  # --proton-fake: a fresh machine has no credentials, and needs none
    # -- internal bounds, not options --
    backoff_base: float = 0.25  # retry n sleeps uniform(0, min(backoff_cap, backoff_base * 2**n)) ("full jitter")
    backoff_cap: float = 5.0
    connect_attempts: int = 3  # attempts when the endpoint cannot be reached at all (refused, DNS, connect timeout)
    unresponsive_limit: int = 3  # this many calls in a row to one endpoint without any answer: the rest are not sent
    progress_every: float = 10.0  # seconds between progress reports while calls are pending

    # The options the fetch reads, by the names hook implementations (pytest_proton_sync_make_client) know.
    @property
    def concurrency(self) -> int:
        return self.options.concurrency

    @property
    def max_attempts(self) -> int:  # HTTP attempts per API call, retries included
        return self.options.max_attempts

    @property
    def retry_mode(self) -> str:  # botocore's "standard" or "adaptive" (adaptive adds client-side pacing)
        return self.options.retry_mode

    @property
    def connect_timeout(self) -> float:  # per connection attempt
        return self.options.connect_timeout

    @property
    def read_timeout(self) -> float:  # per socket read: a trickle never trips it, call_timeout does
        return self.options.read_timeout

    @property
    def max_rps(self) -> float | None:
        return self.options.max_rps

    @property
    def wait_seconds(self) -> float:
        return self.options.wait

    @property
    def poll_interval(self) -> float:
        return self.options.poll_interval

    @property
    def region(self) -> str | None:  # --proton-region: used for entries that name none
        return self.options.region

    @property
    def call_timeout(self) -> float:  # overall deadline of one API call: connect + read + every retry and backoff
        return self.options.call_timeout


ClientMaker = Callable[[str, str, "Account | None"], Any]  # (service, region, account) -> botocore client


def botocore_config(settings: FetchSettings) -> botocore.config.Config:
    # One attempt per botocore call: the plugin's own loop retries (Fetcher.ask), inside the call deadline, with
    # no client-wide retry quota that a storm could drain.
    return botocore.config.Config(
        retries={"mode": settings.retry_mode, "total_max_attempts": 1},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=max(10, settings.concurrency),
        user_agent_extra=f"pytest-proton-sync/{__version__}",
    )


def default_client(service: str, region: str, settings: FetchSettings, account: Account | None = None) -> Any:
    """A client from boto3's standard chain, or from ``account``'s own session (its assumed role or profile);
    only --proton-fake overrides its endpoint and credentials (and then no account's credentials are used)."""
    if settings.use_fake_credentials and settings.endpoint_url:
        # --proton-fake: nothing of the user's AWS set-up may break or redirect it
        return fake_client(service, region, settings.endpoint_url, botocore_config(settings))
    extra: dict[str, Any] = {}
    if settings.endpoint_url:
        extra["endpoint_url"] = settings.endpoint_url
    if account is not None:
        session = account.session(region)
        return session.client(service, region_name=region, config=botocore_config(settings), **extra)
    return botocore.session.Session().create_client(service, region_name=region, config=botocore_config(settings),
                                                     **extra)


def default_region(settings: FetchSettings) -> str | None:
    """--proton-region, then AWS_REGION (which other AWS SDKs honour), then boto3's own chain."""
    if settings.region:
        return settings.region
    if settings.use_fake_credentials:
        # --proton-fake: neither the environment nor a profile may break it; the fake ignores it
        return FAKE_DEFAULT_REGION
    if os.environ.get("AWS_REGION"):
        return os.environ["AWS_REGION"]
    region = botocore.session.Session().get_config_variable("region")
    return str(region) if region else None


def configured_endpoint(service: str, settings: FetchSettings) -> str | None:
    """The endpoint URL a default client of ``service`` would use, without making one (a client costs a service
    model and an endpoint ruleset): the fake's, or what boto3's chain configures (AWS_ENDPOINT_URL_PROTON,
    AWS_ENDPOINT_URL, ``endpoint_url`` in the config file), unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS says to
    ignore those. None: AWS's own endpoint for the region. Raises what the chain raises (an unknown AWS_PROFILE)."""
    if settings.endpoint_url:
        return settings.endpoint_url
    session = botocore.session.Session()
    if session.get_config_variable("ignore_configured_endpoint_urls"):
        return None
    # The provider botocore's Session.create_client itself asks for "endpoint_url".
    provider = botocore.configprovider.ConfiguredEndpointProvider(
        full_config=session.full_config, scoped_config=session.get_scoped_config(), client_name=service)
    url = provider.provide()
    return str(url) if url else None


def default_credentials_missing() -> bool:
    """Whether boto3's standard chain finds no credentials (asked only when no call will be made anyway)."""
    try:
        return botocore.session.Session().get_credentials() is None
    except botocore.exceptions.BotoCoreError:
        return False  # a broken profile: the call's own error says what is wrong once the region is set


# botocore's parser logs each raw body at DEBUG: while that log is on, it gets the real body to log.
_PARSER_LOG = logging.getLogger("botocore.parsers")
# What botocore's JSON parser is handed instead of a body already checked and normalised: an empty object.
_PARSED_ALREADY = b"{}"


def before_parse(operation_model: Any = None, response_dict: Any = None, **kwargs: Any) -> None:
    """A 200 answer's raw body checked and normalised (``THREAD.answer``) before botocore parses it.

    Parsed once: the fetch uses the checked answer, never botocore's parse of it, so botocore's JSON parser is then
    handed an empty object rather than the body a second time (unless its DEBUG log would show the body)."""
    normalise = getattr(THREAD, "normalise", None)
    if normalise is None or not isinstance(response_dict, MutableMapping) or response_dict.get("status_code") != 200:
        return
    headers = response_dict.get("headers") or {}
    THREAD.answer = check_body(response_dict.get("body") or b"", str(headers.get("content-type", "")), normalise)
    if _json_protocol(operation_model) and not _PARSER_LOG.isEnabledFor(logging.DEBUG):
        response_dict["body"] = _PARSED_ALREADY


def _json_protocol(operation_model: Any) -> bool:
    """Whether botocore reads this operation's answer as a JSON object (the only kind of body check_body passes)."""
    service_model = getattr(operation_model, "service_model", None)
    protocol = getattr(service_model, "resolved_protocol", None) or getattr(service_model, "protocol", None)
    return protocol == "json"


def check_body(body: bytes, content_type: str, normalise: Callable[[Mapping[str, Any]], SyncStatus]) -> SyncStatus:
    """A 200 answer's raw body -> SyncStatus, or MalformedAnswer saying what came back (content type, length, a
    short sanitised excerpt). botocore would read an empty body, an HTML page or broken JSON as an empty answer,
    i.e. "never synced"; and a member of the wrong type can crash its parser."""

    def what(problem: str) -> MalformedAnswer:
        shown = f": {excerpt(body)}" if body else ""
        return MalformedAnswer(
            f"{problem} (HTTP 200, Content-Type {clean(content_type, 80) or '(none)'}, {len(body)} bytes){shown}"
        )

    if not body.strip():
        return _raise(what("an empty answer where a JSON object was expected"))
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            at_end = exc.pos >= len(exc.doc.rstrip())
            detail = f"{exc.msg.removesuffix(' at')}: character {exc.pos} of {len(exc.doc)}"
            detail += ", cut short?" if at_end or exc.msg.startswith("Unterminated") else ""
        else:
            detail = "not UTF-8"
        looks = "an HTML page" if body.lstrip()[:1] == b"<" else "not JSON"
        return _raise(what(f"{looks} where a JSON object was expected ({detail})"))
    if not isinstance(data, dict):
        return _raise(what(f"a JSON {type(data).__name__} where a JSON object was expected"))
    try:
        return normalise(data)
    except MalformedAnswer as exc:
        raise MalformedAnswer(f"not the documented shape: {exc}") from None
    except RecursionError:
        return _raise(what("nested too deeply"))


def _raise(error: Exception) -> SyncStatus:
    raise error


def sent_requests() -> int:
    """HTTP requests sent since this thread's last :func:`reset_sent_requests` (0 for uninstrumented clients)."""
    return int(getattr(THREAD, "count", 0))


def reset_sent_requests() -> None:
    THREAD.count = 0
