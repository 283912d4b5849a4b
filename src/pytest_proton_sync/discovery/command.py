"""``pytest-proton-sync discover``, and the stacks ``init`` adds: the command-line side of :mod:`.listing`.

::

    pytest-proton-sync discover [--region R] [--profile P] [--repository OWNER/NAME] [--manifest] [--fake STATE]

Exit codes: 0 listed; 1 the account could not be listed (credentials, access denied naming the IAM action, an
unreachable endpoint, an answer that cannot be trusted); 2 bad usage or a state file the fake cannot use.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pytest_proton_sync.exitcodes import EXIT_OK, EXIT_UNLISTED, EXIT_USAGE


def add_parser(commands: Any) -> None:
    discover = commands.add_parser(
        "discover",
        help="list what syncs from Git in an AWS account (read-only), or print a manifest of its stacks",
        description=(
            "List the CloudFormation stacks synced from Git (CodeConnections repository links and their sync "
            "configurations) and the Proton templates and service instances synced from Git, where Proton answers. "
            "Read-only list calls, every page followed. Endpoints, credentials and region come from boto3's "
            "standard chain (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...). With --manifest, print a manifest "
            "with a `stacks:` entry per stack instead."
        ),
    )
    discover.add_argument("--region", help="the region to list (default: boto3's chain)")
    discover.add_argument("--profile", help="the AWS profile to list with (default: boto3's chain)")
    discover.add_argument("--repository", metavar="OWNER/NAME",
                          help="only what syncs from this repository (case ignored, as the gate compares names)")
    discover.add_argument("--manifest", action="store_true",
                          help="print a manifest (version 1, `rev: HEAD`, one `stacks:` entry per stack)")
    discover.add_argument("--fake", metavar="STATE",
                          help="list from the bundled fake started with this state file (no AWS)")
    discover.set_defaults(run=run_discover)


def run_discover(arguments: argparse.Namespace) -> int:
    from pytest_proton_sync.discovery.listing import DiscoveryError, discover, open_lister
    from pytest_proton_sync.discovery.text import listing_lines, manifest_text

    def fail(message: str, code: int = EXIT_UNLISTED) -> int:
        print(f"pytest-proton-sync discover: {message}", file=sys.stderr)
        return code

    if arguments.repository is not None and not _is_repository(arguments.repository):
        return fail(f"--repository {arguments.repository!r} is not owner/name\nfix: e.g. --repository acme/infra",
                    EXIT_USAGE)
    fake = None
    if arguments.fake is not None:
        from pytest_proton_sync.fake import FakeServer, FakeState, FakeStateError

        try:
            fake = FakeServer(FakeState.from_file(arguments.fake)).start()
        except FakeStateError as error:
            return fail(str(error), EXIT_USAGE)
        except OSError as error:
            return fail(f"cannot start the fake: {error.strerror or error}", EXIT_USAGE)
    try:
        lister = open_lister(arguments.region, arguments.profile, fake.endpoint_url if fake is not None else None)
        discovered = discover(lister, arguments.repository, proton=not arguments.manifest)
    except DiscoveryError as error:
        return fail(error.message)
    finally:
        if fake is not None:
            fake.stop()
    if arguments.manifest:
        sys.stdout.write(manifest_text(discovered.stacks, lister.region))
    else:
        for line in listing_lines(discovered):
            print(line)
    return EXIT_OK


def _is_repository(text: str) -> bool:
    owner, _, name = text.rpartition("/")
    return bool(owner) and bool(name) and not text.startswith("/") and " " not in text


def _stacks_of(repository: str, region: str | None, profile: str | None) -> Any:
    """The stacks synced from ``repository``, or None after saying on stderr why they could not be listed."""
    from pytest_proton_sync.discovery.listing import DiscoveryError, discover, open_lister

    try:
        lister = open_lister(region, profile)
        return discover(lister, repository, proton=False).stacks, lister.region
    except DiscoveryError as error:
        print(f"note: stacks synced from {repository} not added: {error.message.splitlines()[0]}\n"
              f"  fix: run init again with AWS credentials (--profile, --region), or later: "
              f"`pytest-proton-sync discover --repository {repository} --manifest`", file=sys.stderr)
        return None


def add_stacks_for_init(text: str, repository: str, region: str | None, profile: str | None) -> str:
    """``init``'s manifest with the stacks synced from ``repository`` added, when AWS can be asked."""
    from pytest_proton_sync.discovery.text import with_stacks

    found = _stacks_of(repository, region, profile)
    if found is None:
        return text
    stacks, _ = found
    updated, left_out = with_stacks(text, stacks)
    for line in left_out:
        print(f"warning: {line}", file=sys.stderr)
    if updated is not text:
        print(f"added {len(stacks) - len(left_out)} stack(s) synced from {repository}")
    return updated


def stacks_only_for_init(repository: str, region: str | None, profile: str | None) -> str | None:
    """A manifest of the stacks synced from ``repository`` (for a checkout without template bundles), or None."""
    from pytest_proton_sync.discovery.text import manifest_text, stack_entries

    found = _stacks_of(repository, region, profile)
    if found is None:
        return None
    stacks, listed_region = found
    if not stack_entries(stacks)[0]:
        return None
    return str(manifest_text(stacks, listed_region))
