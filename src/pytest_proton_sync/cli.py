"""The ``pytest-proton-sync`` command: check manifests without calling AWS, and serve the bundled fake.

::

    pytest-proton-sync validate proton-sync.yaml [more.yaml ...]
    pytest-proton-sync schema [--report] > proton-sync.schema.json
    pytest-proton-sync fake-server examples/fake-account.yaml [--host 127.0.0.1] [--port 0] [--log-requests]

Exit codes: 0 success; 1 a manifest has problems; 2 bad usage or a state file the fake cannot use.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from . import __version__

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-proton-sync",
        description="Gate a pipeline on AWS Proton template sync: tools around the pytest plugin.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = commands.add_parser(
        "validate",
        help="check manifests (schema, shas, duplicates) without calling AWS",
        description="Check manifests without calling AWS. Prints 'OK path: N targets' per valid manifest, "
        "and each problem as 'file:line:col: field: message' on stderr.",
    )
    validate.add_argument("manifests", nargs="+", metavar="MANIFEST")
    validate.set_defaults(run=_validate)

    schema = commands.add_parser(
        "schema",
        help="print the manifest's JSON Schema (for editors: yaml-language-server, IDEs)",
        description="Print the JSON Schema (draft 2020-12) that manifests are validated against, to save beside "
        "a manifest and name in its first line: '# yaml-language-server: $schema=proton-sync.schema.json'. "
        "With --report, the schema of the --proton-report JSON instead.",
    )
    schema.add_argument("--report", action="store_true", help="the JSON report's schema, not the manifest's")
    schema.set_defaults(run=_schema)

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
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    code: int = arguments.run(arguments)
    return code


def _validate(arguments: argparse.Namespace) -> int:
    # Imported here so `fake-server` and `--version` work even where the manifest module cannot be imported.
    try:
        from .manifest import ManifestError, load_manifest
    except ImportError as error:
        print(f"pytest-proton-sync validate: cannot load the manifest reader: {error}", file=sys.stderr)
        return EXIT_USAGE

    paths: Sequence[str] = arguments.manifests
    all_valid = True
    for path in paths:
        try:
            manifest = load_manifest(path)
        except ManifestError as error:
            all_valid = False
            for problem in error.problems:
                print(problem, file=sys.stderr)
            if not error.problems:  # never leave a failure without a line saying why
                print(f"{path}: {error}", file=sys.stderr)
            continue
        except OSError as error:
            all_valid = False
            print(f"{path}: cannot read the manifest: {error.strerror or error}", file=sys.stderr)
            continue
        count = len(manifest.targets)
        print(f"OK {path}: {count} target{'' if count == 1 else 's'}")
    return EXIT_OK if all_valid else EXIT_INVALID


def _schema(arguments: argparse.Namespace) -> int:
    import json

    if arguments.report:
        from .jsonreport import report_schema

        schema = report_schema()
    else:
        from .manifest import manifest_schema

        schema = manifest_schema()
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


if __name__ == "__main__":
    raise SystemExit(main())
