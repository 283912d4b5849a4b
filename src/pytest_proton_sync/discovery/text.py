"""What ``discover`` prints: one line per Git-synced resource, or a manifest with a ``stacks:`` entry per stack.

Pure: no I/O, no boto3, no pytest. Text from the API is untrusted: lines show it through :func:`safetext.clean`,
and a stack the manifest's schema could not express (a name with ``_``, say) becomes a comment, never an entry that
``validate`` would refuse.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

from pytest_proton_sync.discovery.listing import Discovered, StackSync
from pytest_proton_sync.manifest.schema import manifest_schema
from pytest_proton_sync.text.safetext import clean


def listing_lines(discovered: Discovered) -> list[str]:
    lines = []
    for stack in sorted(discovered.stacks, key=lambda item: (item.stack, item.repository)):
        file = f"  file {clean(stack.config_file, 300)}" if stack.config_file else "  (no deployment file)"
        lines.append(f"STACK {clean(stack.stack, 100)}  {clean(stack.provider, 40)} {clean(stack.repository, 200)}"
                     f"  branch {clean(stack.branch, 200)}{file}")
    for sync in sorted(discovered.proton, key=lambda item: (item.sync_type, item.parent, item.target)):
        kind, name = (("TEMPLATE", sync.target) if sync.sync_type == "TEMPLATE_SYNC"
                      else ("SERVICE_INSTANCE", f"{sync.parent}/{sync.target}"))
        directory = f"  directory {clean(sync.directory, 300)}" if sync.directory else ""
        lines.append(f"{kind} {clean(name, 200)}  {clean(sync.provider, 40)} {clean(sync.repository, 200)}"
                     f"  branch {clean(sync.branch, 200)}{directory}")
    stacks, links = len(discovered.stacks), len(discovered.links)
    summary = (f"{stacks} stack{'' if stacks == 1 else 's'} from {links} repository link{'' if links == 1 else 's'}"
               f", {len(discovered.proton)} Proton sync definition{'' if len(discovered.proton) == 1 else 's'}; "
               f"{discovered.calls} read-only call{'' if discovered.calls == 1 else 's'}")
    lines.append(summary)
    lines += [f"note: {note}" for note in discovered.notes]
    return lines


def _schema_pattern(definition: str) -> re.Pattern[str]:
    return re.compile(manifest_schema()["$defs"][definition]["pattern"])


def stack_entries(stacks: Sequence[StackSync]) -> tuple[list[dict[str, Any]], list[str]]:
    """Manifest entries for ``stacks`` (by name), and why any was left out."""
    name_pattern, path_pattern = _schema_pattern("stackName"), _schema_pattern("filePath")
    repository_pattern = _schema_pattern("repositoryName")
    entries: list[dict[str, Any]] = []
    left_out: list[str] = []
    for stack in sorted(stacks, key=lambda item: item.stack):
        shown = clean(stack.stack, 100)
        if not name_pattern.search(stack.stack) or len(stack.stack) > 128:
            left_out.append(f"stack {shown}: the manifest's stack names are letters, digits and '-', starting with "
                            "a letter")
            continue
        if not repository_pattern.search(stack.repository) or len(stack.repository) > 100 or not stack.branch:
            left_out.append(f"stack {shown}: repository {clean(stack.repository, 200)} cannot be written as owner/repo")
            continue
        entry: dict[str, Any] = {"name": stack.stack}
        if stack.config_file and path_pattern.search(stack.config_file):
            entry["config_file"] = stack.config_file
        else:
            # Without its deployment file, the entry's files are unknown: compare commit ids instead of content.
            entry["match"] = "exact"
        entry["repository"] = {"provider": stack.provider, "name": stack.repository, "branch": stack.branch[:200]}
        entries.append(entry)
    return entries, left_out


def _header(region: str | None, count: int, left_out: Sequence[str]) -> list[str]:
    where = f" in {region}" if region else ""
    lines = [
        f"# pytest-proton-sync manifest: the {count} CloudFormation stack{'' if count == 1 else 's'} synced from Git"
        f"{where},",
        "# as `pytest-proton-sync discover --manifest` found them. Each entry expects its stack to be synced from the",
        "# last commit at or before `rev` that changed its deployment file and template. Check it with",
        "# `pytest-proton-sync validate`; run it with `pytest --proton-manifest <this file>`.",
    ]
    if left_out:
        lines.append("# Not listed (the manifest cannot name them; add them by hand if you can):")
        lines += [f"#   {line}" for line in left_out]
    return lines


def manifest_text(stacks: Sequence[StackSync], region: str | None = None) -> str:
    entries, left_out = stack_entries(stacks)
    defaults: dict[str, Any] = {"rev": "HEAD"}
    if region:
        defaults["region"] = region
    data: dict[str, Any] = {"version": 1, "defaults": defaults}
    if entries:
        data["stacks"] = entries
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=False, width=1000)
    if not entries:
        body += "# no stack to list: a manifest needs at least one entry\n"
    return "\n".join(_header(region, len(entries), left_out)) + "\n" + body


def with_stacks(manifest: str, stacks: Sequence[StackSync]) -> tuple[str, list[str]]:
    """``init``'s template manifest with a ``stacks:`` section added. The templates' default repository moves into
    each template entry, so that its directory is not inherited by the stacks (where it would be checked)."""
    entries, left_out = stack_entries(stacks)
    if not entries:
        return manifest, left_out
    header = [line for line in manifest.splitlines() if line.startswith("#")]
    data: dict[str, Any] = yaml.safe_load(manifest)
    defaults = data.get("defaults") or {}
    repository = defaults.pop("repository", None)
    if repository is not None and data.get("templates"):
        data["templates"] = [{**entry, "repository": repository} for entry in data["templates"]]
    data["stacks"] = entries
    header.append("# The stacks: synced from Git through CodeConnections, as `discover` found them.")
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=False, width=1000)
    return "\n".join(header) + "\n" + body, left_out
