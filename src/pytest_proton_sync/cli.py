"""The ``pytest-proton-sync`` command: check manifests without calling AWS, and serve the bundled fake.

::

    pytest-proton-sync validate proton-sync.yaml [more.yaml ...]
    pytest-proton-sync schema [--report] > proton-sync.schema.json
    pytest-proton-sync fake-server examples/fake-account.yaml [--host 127.0.0.1] [--port 0] [--log-requests]
    pytest-proton-sync init [--directory templates] [--repository owner/repo] [--region us-east-1]
                            [--output proton-sync.yaml] [--force]
    pytest-proton-sync discover [--region R] [--profile P] [--repository OWNER/NAME] [--manifest] [--fake STATE]

Exit codes: 0 success; 1 a manifest has problems; 2 bad usage or a state file the fake cannot use.

What ``validate`` and ``check`` print about manifests goes through :func:`.redact.redact` (:func:`_say`): the values
of credential variables in the environment never reach the terminal or a CI log.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from . import __version__
from .exitcodes import EXIT_INVALID, EXIT_OK, EXIT_USAGE
from .yamlcheck.messages import plural

if TYPE_CHECKING:
    from .git.checkout import Checkout
    from .manifest.loader import Manifest
    from .reports.github import Located
    from .yamlcheck.problems import Problem

__all__ = ["EXIT_INVALID", "EXIT_OK", "EXIT_USAGE", "main"]  # the exit codes scripts test, from exitcodes.py


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-proton-sync",
        description="Gate a pipeline on Git sync (AWS Proton templates and service instances, CloudFormation "
        "stacks): tools around the pytest plugin.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    _add_validate(commands)
    _add_fake(commands)
    _add_init(commands)
    _add_check(commands)
    _add_schema(commands)
    _add_discover(commands)
    return parser


def _add_validate(commands: Any) -> None:
    validate = commands.add_parser(
        "validate",
        help="check manifests (schema, shas, duplicates) without calling AWS",
        description="Check manifests without calling AWS. Prints 'OK path: N targets' per valid manifest, "
        "and each problem as 'file:line:col: field: message' on stderr.",
    )
    validate.add_argument("manifests", nargs="+", metavar="MANIFEST")
    validate.set_defaults(run=_validate)



def _add_schema(commands: Any) -> None:
    schema = commands.add_parser(
        "schema",
        help="print the manifest's JSON Schema (for editors: yaml-language-server, IDEs)",
        description="Print the JSON Schema (draft 2020-12) that manifests are validated against, to save beside "
        "a manifest and name in its first line: '# yaml-language-server: $schema=proton-sync.schema.json'. "
        "With --report, the schema of the --proton-report JSON instead.",
    )
    schema.add_argument("--report", action="store_true", help="the JSON report's schema, not the manifest's")
    schema.set_defaults(run=_schema)

def _add_fake(commands: Any) -> None:
    fake = commands.add_parser(
        "fake-server",
        help="serve the fake AWS Proton endpoint from a state file until interrupted",
        description=(
            "Serve the fake AWS Proton endpoint on loopback until Ctrl-C or SIGTERM. Point clients at it "
            "with AWS_ENDPOINT_URL_PROTON or 'aws --endpoint-url'; any credentials are accepted, but "
            "requests must be signed."
        ),
    )
    fake.add_argument("state", metavar="STATE", help="the fake's YAML state file (see docs/fake-state.md)")
    fake.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    fake.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default)")
    fake.add_argument(
        "--log-requests", action="store_true", help="print one line per request on stderr (never headers)"
    )
    fake.set_defaults(run=_fake_server)


def _add_init(commands: Any) -> None:
    init = commands.add_parser(
        "init",
        help="write a starter manifest listing every template bundle and stack deployment file in the checkout",
        description=(
            "Find every {directory}/{name}/v{major}/schema/schema.yaml at the checkout's HEAD commit (the type "
            "comes from the schema) and every CloudFormation Git sync deployment file (a YAML file with "
            "template-file-path), and write a manifest expecting each to be synced from `rev: HEAD`."
        ),
    )
    init.add_argument("--directory", help="where the template bundles are (default: templates, if it exists)")
    init.add_argument(
        "--region", help="the AWS region of the syncs (default: AWS_REGION or AWS_DEFAULT_REGION; else a comment "
        "in the manifest says to set it)"
    )
    init.add_argument(
        "--repository", metavar="OWNER/REPO", help="repository name as the sync knows it (default: from origin)"
    )
    init.add_argument("--output", default="proton-sync.yaml", help="manifest to write (default: %(default)s)")
    init.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    init.add_argument(
        "--git-dir", default=".", metavar="PATH", help="a directory in the checkout (default: the current one)"
    )
    init.add_argument("--no-stacks", action="store_true",
                      help="do not ask AWS for the stacks synced from the repository (read-only list calls)")
    init.add_argument("--profile", help="AWS profile to list them with (default: boto3's chain)")
    init.set_defaults(run=_init)


def _add_check(commands: Any) -> None:
    check = commands.add_parser(
        "check",
        help="compare manifests with the git checkout, without AWS (for pull requests)",
        description=(
            "Without calling AWS: validate the manifests, resolve every entry at --rev in the checkout (its bundle "
            "must exist there), and compare the template entries with the bundles found in their directories: "
            "bundles with no entry, entries with no bundle, types that disagree. One line per problem; exit 1 "
            "if there is any."
        ),
    )
    check.add_argument("manifests", nargs="+", metavar="MANIFEST")
    check.add_argument("--rev", default="HEAD", help="the revision to check against (default: %(default)s)")
    check.add_argument(
        "--git-dir", metavar="PATH", help="a directory in the checkout (default: the one holding each manifest)"
    )
    check.set_defaults(run=_check)


def _say(line: object, error: bool = True) -> None:
    """Print one message about the manifests or the checkout, masked like every other output."""
    from .text.redact import redact

    print(redact(str(line)), file=sys.stderr if error else sys.stdout)


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    code: int = arguments.run(arguments)
    return code


def _validate(arguments: argparse.Namespace) -> int:
    # Imported here so `fake-server` and `--version` work even where the manifest module cannot be imported.
    try:
        from .manifest.loader import ManifestError
    except ImportError as error:
        print(f"pytest-proton-sync validate: cannot load the manifest reader: {error}", file=sys.stderr)
        return EXIT_USAGE

    from .manifest.loader import read_manifests
    from .session.selection import path_problem
    from .yamlcheck.problems import Problem

    paths: Sequence[str] = arguments.manifests
    # A directory, a FIFO or /dev/zero: said before anything opens it (a FIFO would block, /dev/zero not end).
    unusable = {path: problem for path in paths if (problem := path_problem(Path(path), path)) is not None}
    # As one set, as a pytest run reads them: a target declared in two files is a problem of the second.
    found = read_manifests([path for path in paths if path not in unusable])
    problems: list[Located] = []
    for path in dict.fromkeys(paths):
        result = found.get(path)
        if path in unusable:
            problems.append(_WholeFileProblem(path, unusable[path]))
        elif isinstance(result, ManifestError):
            # never leave a failure without a line saying why
            problems += result.problems or (Problem(path, None, None, "", str(result)),)
    _tell_problems(problems)
    for path, manifest in found.items():
        if not isinstance(manifest, ManifestError):
            _say(f"OK {path}: {plural(len(manifest.targets), 'target')}", error=False)
    return EXIT_INVALID if problems else EXIT_OK


class _WholeFileProblem:
    """A problem of a whole file (a directory, a FIFO) whose message names the file itself: shown as it is."""

    def __init__(self, path: str, text: str) -> None:
        self.file, self.line, self.column, self.field, self.message = path, None, None, "", text

    def __str__(self) -> str:
        return self.message


def _tell_problems(problems: Sequence[Located]) -> None:
    """Each problem on stderr; under GitHub Actions also an ``::error file=,line=,col=`` annotation each (on
    stdout, where the runner reads workflow commands) and a table in the job summary."""
    import os

    from .text.redact import redact

    for problem in problems:
        _say(problem)
    if not problems or os.environ.get("GITHUB_ACTIONS") != "true":
        return
    from .reports import github

    for line in github.manifest_annotation_lines(problems, os.environ.get("GITHUB_WORKSPACE")):
        print(redact(line), flush=True)
    summary = redact(github.manifest_summary(problems))
    failure = github.append_to_step_summary(os.environ.get("GITHUB_STEP_SUMMARY"), summary)
    if failure:
        print(f"warning: {failure}", file=sys.stderr)


def _check(arguments: argparse.Namespace) -> int:
    """Every problem of every manifest at once: the manifest's own, each entry's at --rev, and each disagreement
    between template entries and the bundles found, so that fixing one does not uncover the next."""
    from dataclasses import replace

    from .git.checkout import GitError
    from .git.expectations import Repository
    from .manifest.loader import Manifest, ManifestError, load_manifests
    from .yamlcheck.problems import Problem

    try:
        manifests = load_manifests(arguments.manifests)
    except ManifestError as error:
        _tell_problems(error.problems)
        return EXIT_INVALID
    repository = Repository(arguments.git_dir)
    lines: list[Problem] = []
    try:
        for manifest in manifests:
            try:
                checkout = repository.checkout_for(manifest.path)
                rev_sha = checkout.resolve([arguments.rev])[arguments.rev]
            except GitError as error:
                # The checkout's own wording names the plugin's --proton-git-dir; this command's option is --git-dir.
                fix = ("run it in the repository's checkout, or give --git-dir PATH"
                       if "not inside a git repository" in error.problem else error.fix)
                lines.append(Problem(str(manifest.path), None, None, "", f"{error.problem}\nfix: {fix}"))
                continue
            if rev_sha is None:
                lines.append(Problem(str(manifest.path), None, None, "",
                                     f"--rev {arguments.rev} does not name a commit in {checkout.root}"))
                continue
            # Every entry as if it said `rev: <--rev>`: its bundle must exist at that revision.
            at_rev = Manifest(manifest.path, tuple(
                replace(target, expectation=replace(target.expectation, rev=arguments.rev, match="content"))
                for target in manifest.targets))
            try:
                repository.resolve(at_rev, str(manifest.path))
            except ManifestError as error:
                lines += error.problems
            # The bundles are compared even when an entry has none: a bundle with no entry is a problem too.
            lines += _bundle_problems(checkout, rev_sha, manifest)
    finally:
        repository.close()
    _tell_problems(lines)
    if lines:
        return EXIT_INVALID
    count = sum(len(manifest.targets) for manifest in manifests)
    _say(f"OK: {count} {'entry matches' if count == 1 else 'entries match'} the checkout at {arguments.rev}",
         error=False)
    return EXIT_OK



def _bundle_problems(checkout: Checkout, rev_sha: str, manifest: Manifest) -> list[Problem]:
    """Where the manifest's template entries and the template bundles at ``rev_sha`` disagree, per directory."""
    from .git.bundles import compare_manifest_with_checkout, discover_bundles
    from .git.checkout import GitError
    from .yamlcheck.problems import Problem

    problems: list[Problem] = []
    templates = [t for t in manifest.targets if t.kind == "template" and t.expectation.paths]
    for directory in sorted({t.expectation.repository.directory or "" for t in templates}):
        declared = [
            (request["templateType"], t.name, request["templateVersion"], t.expectation.paths[0])
            for t in templates if (t.expectation.repository.directory or "") == directory
            for request in [dict(t.request)]
        ]
        try:
            discovery = discover_bundles(checkout, rev_sha, directory)
        except GitError as error:
            problems.append(Problem(str(manifest.path), None, None, "", error.problem))
            continue
        found = [*compare_manifest_with_checkout(declared, discovery.bundles, report_missing=False),
                 *discovery.problems]
        problems += [Problem(str(manifest.path), None, None, "", line) for line in found]
    return problems


def _schema(arguments: argparse.Namespace) -> int:
    import json

    if arguments.report:
        from .reports.jsonreport import report_schema

        schema = report_schema()
    else:
        from .manifest.schema import editor_schema

        schema = editor_schema()
    try:
        print(json.dumps(schema, indent=2), flush=True)
    except BrokenPipeError:  # `| head`: the reader has what it wanted; no traceback at exit either
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def _fake_server(arguments: argparse.Namespace) -> int:
    from .fake import FakeServer, FakeState, FakeStateError

    try:
        state = FakeState.from_file(arguments.state)
    except FakeStateError as error:
        print(f"pytest-proton-sync fake-server: {error}", file=sys.stderr)
        return EXIT_USAGE
    server = FakeServer(state, host=arguments.host, port=arguments.port, log_requests=arguments.log_requests)
    try:
        server.start()
    except OSError as error:
        where = f"{arguments.host}:{arguments.port}"
        print(
            f"pytest-proton-sync fake-server: cannot listen on {where}: {error.strerror or error}",
            file=sys.stderr,
        )
        return EXIT_USAGE

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # Scripts read this line to find the port: one line, flushed at once.
        print(f"serving fake AWS Proton on {server.endpoint_url} (state: {arguments.state})", flush=True)
        # A timed wait, so the signal handler's flag is seen promptly on every platform.
        while not stop_requested.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
    return EXIT_OK


def _init(arguments: argparse.Namespace) -> int:
    from .discovery.init_command import run_init

    return run_init(arguments)


def _add_discover(commands: Any) -> None:
    from .discovery.command import add_parser

    add_parser(commands)


if __name__ == "__main__":
    raise SystemExit(main())
