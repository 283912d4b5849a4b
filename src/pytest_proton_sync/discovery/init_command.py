"""``pytest-proton-sync init``: a starter manifest from the checkout's template bundles and stack deployment
files at HEAD, with the stacks AWS syncs from the repository when it can be asked (:mod:`.command`).

The parser is cli.py's; this is what the command does, imported only when it runs.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_proton_sync.discovery.command import add_stacks_for_init, stacks_only_for_init
from pytest_proton_sync.exitcodes import EXIT_INVALID, EXIT_OK, EXIT_USAGE
from pytest_proton_sync.git.bundles import (
    Discovery,
    StackFile,
    discover_bundles,
    discover_stacks,
    is_repository_name,
    repository_from_url,
    starter_manifest,
)
from pytest_proton_sync.git.checkout import Checkout, GitError
from pytest_proton_sync.manifest.schema import manifest_schema


@dataclass(frozen=True)
class _InitFindings:
    """What ``init`` read from the checkout at HEAD."""

    head: str
    repository: str
    provider: str | None
    discovery: Discovery
    stacks: tuple[StackFile, ...]
    stack_problems: tuple[str, ...]


def run_init(arguments: argparse.Namespace) -> int:
    """``pytest-proton-sync init``: its exit code."""
    def fail(message: str, code: int = EXIT_USAGE) -> int:
        print(f"pytest-proton-sync init: {message}", file=sys.stderr)
        return code

    output = Path(arguments.output)
    if output.exists() and not arguments.force:
        return fail(f"{output} exists; not overwriting it\nfix: give --force, or another --output")
    if arguments.repository is not None and not is_repository_name(arguments.repository):
        return fail(f"--repository {arguments.repository!r} is not owner/repo\nfix: e.g. --repository acme/templates")
    region, region_problem = _init_region(arguments)
    if region_problem is not None:
        return fail(region_problem)
    found = _init_findings(arguments, fail)
    if isinstance(found, int):
        return found
    discovery, stacks = found.discovery, found.stacks
    for problem in [*discovery.problems, *found.stack_problems]:
        print(f"warning: {problem}", file=sys.stderr)
    if not discovery.bundles and not stacks:
        stacks_only = _stacks_only(arguments, found.repository)  # the stacks synced from the repository, asked of AWS
        if stacks_only is not None:
            return _write_init(output, stacks_only, arguments.force, fail)
        where = f"{discovery.directory}/" if discovery.directory else f"{arguments.directory or 'templates'}/"
        return fail(
            f"no template bundles ({where}<name>/v<major>/schema/schema.yaml) and no stack deployment files "
            f"(YAML with template-file-path) at HEAD {found.head[:12]}\n"
            "fix: give the directory holding the template bundles with --directory",
            EXIT_INVALID,
        )
    text = starter_manifest(discovery, found.repository, found.provider, rev="HEAD", region=region, stacks=stacks,
                            stack_problems=found.stack_problems)
    if not arguments.no_stacks:
        # What AWS syncs replaces the stacks guessed from deployment files, when it can be asked.
        text = add_stacks_for_init(text, found.repository, region, arguments.profile)
    unwritten = _write_text(output, text, arguments.force)
    if unwritten is not None:
        return fail(unwritten)
    _say_written(output, found, region)
    return EXIT_OK


def _init_findings(arguments: argparse.Namespace, fail: Callable[[str], int]) -> _InitFindings | int:
    """The bundles and stacks at HEAD of the checkout, and the repository they sync from; or ``fail``'s code."""
    try:
        with Checkout.open(Path(arguments.git_dir)) as checkout:
            head = checkout.resolve(["HEAD"])["HEAD"]
            if head is None:
                return fail(f"{checkout.root} has no commit at HEAD\nfix: commit the templates first")
            provider: str | None = None
            repository = arguments.repository
            if repository is None:
                origin = checkout.remote_urls().get("origin")
                inferred = repository_from_url(origin) if origin else None
                if inferred is None:
                    return fail(
                        "cannot tell the repository's owner/repo from the remote 'origin'"
                        f"{f' ({origin})' if origin else ' (there is none)'}\nfix: give --repository OWNER/REPO"
                    )
                provider, repository = inferred
            stacks, stack_problems = discover_stacks(checkout, head)
            directory = arguments.directory if arguments.directory is not None else "templates"
            if arguments.directory is None and checkout.tree(head, directory) is None:
                discovery = Discovery(head, "", (), ())  # no templates/ and none asked for: stacks only
            else:
                discovery = discover_bundles(checkout, head, directory)
    except GitError as error:
        return fail(str(error))
    return _InitFindings(head, repository, provider, discovery, tuple(stacks), tuple(stack_problems))


def _say_written(output: Path, found: _InitFindings, region: str | None) -> None:
    said = []
    if found.discovery.bundles:
        count = len(found.discovery.bundles)
        where = f"{found.discovery.directory}/" if found.discovery.directory else "the repository root"
        said.append(f"{count} template{'' if count == 1 else 's'} from {where}")
    if found.stacks:
        said.append(f"{len(found.stacks)} stack{'' if len(found.stacks) == 1 else 's'}")
    print(f"wrote {output}: {' and '.join(said)} at {found.head[:12]}")
    if region is None:
        print(f"{output} names no region: set `region:` in its defaults (or AWS_REGION) before the first run")


def _init_region(arguments: argparse.Namespace) -> tuple[str | None, str | None]:
    """The region the first run needs: the option, else the environment the run will see; never a guess. And why
    it cannot be used, if it cannot."""
    region_source = next((name for name in ("AWS_REGION", "AWS_DEFAULT_REGION") if os.environ.get(name)), None)
    region: str | None = arguments.region or (os.environ[region_source] if region_source else None)
    region_rule = manifest_schema()["$defs"]["region"]
    if region is not None and not re.fullmatch(region_rule["pattern"], region):
        given = "--region" if arguments.region else region_source
        return region, f"{given} {region!r} is not an AWS region\nfix: {region_rule['x-rule']}"
    return region, None


def _write_text(output: Path, text: str, force: bool) -> str | None:
    """Write ``text`` to ``output`` (over an existing file only with ``force``); why it could not be, if not."""
    try:
        with output.open("w" if force else "x", encoding="utf-8") as stream:
            stream.write(text)
    except FileExistsError:
        return f"{output} exists; not overwriting it\nfix: give --force, or another --output"
    except OSError as error:
        return f"cannot write {output}: {error.strerror or error}"
    return None


def _stacks_only(arguments: argparse.Namespace, repository: str) -> str | None:
    if arguments.no_stacks:
        return None
    return stacks_only_for_init(repository, arguments.region, arguments.profile)


def _write_init(output: Path, text: str, force: bool, fail: Callable[[str], int]) -> int:
    unwritten = _write_text(output, text, force)
    if unwritten is not None:
        return fail(unwritten)
    print(f"wrote {output}")
    return EXIT_OK
