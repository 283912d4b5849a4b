"""The lines the plugin adds to pytest's report header: the manifests, and where the run will ask.

Where comes from the settings and the environment boto3 reads (aws/clients.py), not from a client: the header
is printed before collection, and a client made only to print one line costs its service model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_proton_sync.aws.clients import FetchSettings, configured_endpoint, default_region
from pytest_proton_sync.model import Targeted
from pytest_proton_sync.text.redact import redact


def header_lines(manifests: Sequence[Path], fake_endpoint: str | None, targets: Sequence[Targeted[Any]],
                 settings: FetchSettings) -> list[str]:
    names = ", ".join(str(path) for path in manifests)
    lines = [f"proton-sync: manifests {names}"]
    if fake_endpoint is not None:
        lines.append(f"proton-sync: endpoint {fake_endpoint} (bundled fake, no AWS calls)")
        return lines
    if not targets:
        return lines  # the manifests cannot be read: collection says why, and nothing is asked
    try:
        lines.append(f"proton-sync: {_where(targets, settings)}")
    except Exception as exc:
        lines.append(f"proton-sync: AWS configuration problem: {type(exc).__name__}: {redact(str(exc))}")
    return lines


def _where(targets: Sequence[Targeted[Any]], settings: FetchSettings) -> str:
    """The region(s) the run asks, and the endpoint when it is not AWS's own."""
    own = sorted({target.region for target in targets if target.region})
    needing = sum(1 for target in targets if not target.region)
    # The default region matters only to entries that name none; with none such, it is not mentioned.
    region = default_region(settings) if needing else (own[0] if len(own) == 1 else None)
    if not needing:
        where = f"region{'s' if len(own) > 1 else ''} {_listed(own)} (from the manifests)"
    elif region:
        where = f"region {region}" + (f" (entries naming their own: {_listed(own)})" if own else "")
    else:
        noun = "entry names" if needing == 1 else "entries name"
        where = (f"no default region (AWS_REGION, AWS_DEFAULT_REGION, --proton-region unset), and {needing} "
                 f"{noun} none")
    url = configured_endpoint("proton", settings) if region else None
    if url and not url.endswith(".amazonaws.com") and ".amazonaws.com/" not in url:
        where += f", endpoint {redact(url)}"  # user:password@ in an endpoint URL is a secret too
    return where


def _listed(words: Sequence[str], at_most: int = 5) -> str:
    more = f" and {len(words) - at_most} more" if len(words) > at_most else ""
    return ", ".join(words[:at_most]) + more
