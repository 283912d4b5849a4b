"""One boto3 session per AWS account of the manifest: an assumed role, or a profile from the AWS config files.

A role account's session holds botocore's own refreshable assume-role credentials
(:class:`botocore.credentials.AssumeRoleCredentialFetcher` inside a ``DeferredRefreshableCredentials``): nothing is
asked of STS until the account's first request is signed, so only accounts with selected targets assume their
role, each in the worker thread that first needs it (under that account's own lock, never one lock for all), and
the credentials renew themselves when a long ``--proton-wait`` outlasts them.

A role that cannot be assumed raises :class:`AccountUnavailable` from the request that needed it; a permanent
refusal (access denied, bad external id, expired source credentials) is remembered, so STS is asked once per
account and every later request of that account fails the same way at once. Messages name the alias and the role
ARN, never a secret: not the source keys, not the session token, not the external id.

Imports no pytest; imported by the fetch only, so a run without a manifest never loads it. boto3 itself is imported
only when an account's session is made (the extension API hands out boto3 sessions): a run without accounts builds
its clients from botocore's session, as boto3 does underneath, and spares boto3's import (s3transfer and
multiprocessing with it, about 20 ms).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import botocore.config
import botocore.credentials
import botocore.exceptions
import botocore.session

from pytest_proton_sync.model import AccountSpec
from pytest_proton_sync.text.redact import ReportedError, redact

if TYPE_CHECKING:
    import boto3

DEFAULT_SESSION_NAME = "pytest-proton-sync"
STS_DEFAULT_DURATION = 3600  # what STS grants when AssumeRole names no DurationSeconds
# How long a transient failure (STS unreachable, throttled) answers for the account without asking STS again: long
# enough that the account's other targets, queued behind the first one's retries, fail at once instead of each
# retrying in turn; short enough that the next poll of --proton-wait asks again.
TRANSIENT_MEMORY_SECONDS = 5.0

# STS answers that may well be different a moment later: not remembered, and mapped to codes the fetcher polls
# again while waiting.
_STS_THROTTLED = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded"})
_SOURCE_CREDENTIALS_BAD = frozenset({
    "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch",
    "UnrecognizedClientException", "IncompleteSignature", "MissingAuthenticationToken",
})

_README = "see the README's \"Several AWS accounts\""


class AccountUnavailable(ReportedError):
    """An account's credentials could not be had: every target of that account is an *error*.

    ``code`` is what the test's error line shows; ``transient`` says whether asking again later may work (then the
    code is one the fetcher polls again while waiting). ``str()`` is the whole message, fix line included.
    """

    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient


class _AssumedRoleCredentials(botocore.credentials.DeferredRefreshableCredentials):  # type: ignore[misc]
    """botocore's deferred refreshable credentials with refresh windows that fit the session's length.

    botocore renews 15 minutes (when convenient) and 10 minutes (blocking) before expiry, sized for hour-long
    sessions: a 900-second session would be "due" from its first second and assumed again on every request.
    """

    def __init__(
        self,
        refresh_using: Callable[[], dict[str, Any]],
        duration_seconds: int,
        time_fetcher: Callable[[], datetime] | None = None,
    ) -> None:
        if time_fetcher is None:
            super().__init__(refresh_using, method="assume-role")
        else:
            super().__init__(refresh_using, method="assume-role", time_fetcher=time_fetcher)
        self._advisory_refresh_timeout = min(15 * 60, duration_seconds // 3)
        self._mandatory_refresh_timeout = min(10 * 60, duration_seconds // 6)


class _NoCache(dict[str, Any]):
    """The fetcher's answer cache, always empty: the credentials object alone decides when to renew.

    botocore's fetcher would answer a renewal from its cache while the cached answer has 15 minutes left by the
    wall clock, whatever the credentials' own refresh windows say; the one fetcher per account needs no cache.
    """

    def __contains__(self, key: object) -> bool:
        return False


class _OneCredentialProvider(botocore.credentials.CredentialProvider):  # type: ignore[misc]
    """A credential chain of one link: the account's credentials (and no fallback to anything else)."""

    METHOD = "pytest-proton-sync-account"
    CANONICAL_NAME = "pytest-proton-sync-account"

    def __init__(self, credentials: Any) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Any:
        return self._credentials


class Account:
    """One account of this run: its alias and settings (``spec``), and, made on first use, its boto3 session.

    ``sts_config`` is the botocore Config of the STS client that assumes the role (the plugin passes its retry
    and timeout settings). ``time_fetcher`` replaces botocore's clock, for tests of renewal.
    """

    def __init__(
        self,
        spec: AccountSpec,
        sts_config: botocore.config.Config | None = None,
        time_fetcher: Callable[[], datetime] | None = None,
        transient_memory: float = TRANSIENT_MEMORY_SECONDS,
    ) -> None:
        self.spec = spec
        self._sts_config = sts_config
        self._time_fetcher = time_fetcher
        self._lock = threading.Lock()  # this account's only: accounts assume their roles side by side
        self._session: boto3.session.Session | None = None
        self._failure: AccountUnavailable | None = None  # permanent: for the rest of the run
        self._transient: tuple[float, AccountUnavailable] | None = None  # (when, what) for transient_memory seconds
        self._transient_memory = transient_memory
        self._fetcher: Any = None  # botocore's AssumeRoleCredentialFetcher, made at the first assumption
        self._sts_region: str | None = None
        self.assume_role_calls = 0  # AssumeRole requests sent (retries inside one not counted)

    @property
    def alias(self) -> str:
        return self.spec.alias

    def __repr__(self) -> str:
        how = f"role {self.spec.role_arn}" if self.spec.role_arn else f"profile {self.spec.profile}"
        return f"Account({self.alias!r}, {how})"

    def session(self, region: str | None = None) -> boto3.session.Session:
        """The account's boto3 session, made once. Raises AccountUnavailable for a profile that does not exist or
        gives no credentials. A role is not assumed here: its first signed request does that.

        ``region``: where the first client of the account is made; the STS client uses it unless the source
        profile names a region.
        """
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if self._session is None:
                try:
                    self._session = self._role_session(region) if self.spec.role_arn else self._profile_session()
                except AccountUnavailable as error:
                    self._failure = error
                    raise
            return self._session

    # -- profile accounts ---------------------------------------------------------------------------------
    def _profile_session(self) -> boto3.session.Session:
        import boto3.session  # see the module's docstring

        profile = str(self.spec.profile)
        try:
            session = boto3.session.Session(profile_name=profile)
            credentials = session.get_credentials()
        except botocore.exceptions.ProfileNotFound:
            raise AccountUnavailable(
                "ProfileNotFound",
                f"account {self.alias!r}: the AWS config files have no profile {profile!r}\n  fix: add the profile "
                "to ~/.aws/config (or the file AWS_CONFIG_FILE names), or correct 'profile' in the manifest's "
                "accounts.",
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise AccountUnavailable(
                "ProfileUnusable",
                f"account {self.alias!r}: profile {profile!r} cannot be used: {self._scrub(str(exc))}\n  fix: "
                "correct the profile in the AWS config files.",
            ) from None
        if credentials is None:
            raise AccountUnavailable(
                "NoCredentials",
                f"account {self.alias!r}: profile {profile!r} gives no credentials\n  fix: give the profile "
                "credentials (keys, a role, SSO or credential_process) in the AWS config files.",
            )
        return session

    # -- role accounts ------------------------------------------------------------------------------------
    def _role_session(self, region: str | None) -> boto3.session.Session:
        import boto3.session  # see the module's docstring

        self._sts_region = region
        duration = self.spec.duration_seconds or STS_DEFAULT_DURATION
        credentials = _AssumedRoleCredentials(self._refresh, duration, self._time_fetcher)
        core = botocore.session.Session()
        core.register_component("credential_provider", botocore.credentials.CredentialResolver(
            [_OneCredentialProvider(credentials)]))
        return boto3.session.Session(botocore_session=core)

    def _refresh(self) -> dict[str, Any]:
        """botocore's ``refresh_using``: called under the credentials' own refresh lock when they are due."""
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if self._transient is not None and time.monotonic() - self._transient[0] < self._transient_memory:
                raise self._transient[1]
            try:
                if self._fetcher is None:
                    self._fetcher = self._make_fetcher()
                data: dict[str, Any] = self._fetcher.fetch_credentials()
                return data
            except AccountUnavailable as unavailable:
                self._remember(unavailable)
                raise
            except Exception as exc:
                explained = self._explain(exc)
                self._remember(explained)
                raise explained from None

    def _remember(self, failure: AccountUnavailable) -> None:
        if failure.transient:
            self._transient = (time.monotonic(), failure)
        else:
            self._failure = failure

    def _make_fetcher(self) -> Any:
        spec = self.spec
        source_profile = spec.source_profile
        try:
            source = botocore.session.Session(profile=source_profile) if source_profile else \
                botocore.session.Session()
            source_credentials = source.get_credentials()
        except botocore.exceptions.ProfileNotFound:
            raise AccountUnavailable(
                "ProfileNotFound",
                f"account {self.alias!r}: the AWS config files have no profile {source_profile!r} (its "
                f"source_profile) to assume {spec.role_arn} with\n  fix: add the profile, or correct "
                "'source_profile' in the manifest's accounts.",
            ) from None
        if source_credentials is None:
            chain = f"profile {source_profile!r}" if source_profile else "the standard credential chain"
            raise AccountUnavailable(
                "NoCredentials",
                f"account {self.alias!r}: no credentials to assume {spec.role_arn} with ({chain} found none)\n"
                "  fix: give this pipeline credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or "
                "run in a role), or name a 'source_profile' that has them.",
            )
        region = source.get_config_variable("region") or self._sts_region
        config = self._sts_config

        def sts_client(service: str, **credentials: Any) -> Any:
            self.assume_role_calls += 1  # the fetcher makes one client per AssumeRole request
            return source.create_client(service, region_name=region, config=config, **credentials)

        extra: dict[str, Any] = {"RoleSessionName": spec.session_name or DEFAULT_SESSION_NAME}
        if spec.external_id is not None:
            extra["ExternalId"] = spec.external_id
        if spec.duration_seconds is not None:
            extra["DurationSeconds"] = spec.duration_seconds
        return botocore.credentials.AssumeRoleCredentialFetcher(
            sts_client, source_credentials, spec.role_arn, extra_args=extra, cache=_NoCache()
        )

    def _explain(self, exc: Exception) -> AccountUnavailable:
        """An exception from assuming the role -> the message a person acts on, naming alias, role and STS error."""
        spec = self.spec
        head = f"account {self.alias!r}: cannot assume {spec.role_arn}"
        source = f"profile {spec.source_profile!r}" if spec.source_profile else "the standard credential chain"
        if isinstance(exc, botocore.exceptions.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            said = self._scrub(str(error.get("Message", "")) or str(exc))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            what = f"{head}: STS said {code}: {said}"
            if code in _STS_THROTTLED:
                return AccountUnavailable("ThrottlingException", f"{what}\n  fix: re-run later; fewer pipelines "
                                          "assuming this role at once.", transient=True)
            if status >= 500:
                return AccountUnavailable("ServiceUnavailable", f"{what} (HTTP {status})\n  fix: a problem on "
                                          "STS's side; re-run later.", transient=True)
            if code in _SOURCE_CREDENTIALS_BAD:
                return AccountUnavailable("AssumeRoleFailed", f"{what}\n  fix: the credentials that assume the role "
                                          f"({source}) are expired or invalid: refresh them.")
            if code in ("AccessDenied", "AccessDeniedException"):
                external = " and the external id the manifest gives" if spec.external_id else ""
                return AccountUnavailable(
                    "AssumeRoleFailed",
                    f"{what}\n  fix: the role's trust policy must trust this pipeline's identity ({source}){external},"
                    f" and that identity needs sts:AssumeRole on the role ({_README}).",
                )
            return AccountUnavailable("AssumeRoleFailed", f"{what}\n  fix: correct the account in the manifest's "
                                      "accounts (role_arn, external_id, session_name, duration_seconds).")
        if isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
                            botocore.exceptions.ConnectTimeoutError, botocore.exceptions.ReadTimeoutError)):
            return AccountUnavailable(
                "EndpointUnreachable",
                f"{head}: STS did not answer: {self._scrub(str(exc))}\n  fix: check the network and the STS "
                "endpoint (AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL).",
                transient=True,
            )
        return AccountUnavailable(
            "AssumeRoleFailed", f"{head}: {type(exc).__name__}: {self._scrub(str(exc))}\n  fix: check the "
            f"credentials that assume the role ({source}) and the account's settings in the manifest.",
        )

    def _scrub(self, text: str) -> str:
        """``text`` without the external id (STS does not echo it, but nothing here relies on that)."""
        if self.spec.external_id:
            text = text.replace(self.spec.external_id, "[REDACTED]")
        return redact(text)


class Accounts:
    """The accounts of one run: one :class:`Account` per distinct AccountSpec, made when first asked for."""

    def __init__(self, sts_config: botocore.config.Config | None = None) -> None:
        self._sts_config = sts_config
        self._accounts: dict[AccountSpec, Account] = {}
        self._lock = threading.Lock()

    def get(self, spec: AccountSpec | None) -> Account | None:
        if spec is None:
            return None
        with self._lock:
            account = self._accounts.get(spec)
            if account is None:
                account = self._accounts[spec] = Account(spec, self._sts_config)
            return account
