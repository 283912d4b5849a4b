"""Running one timed child process: its clean environment, wall time, peak memory, and the fake's call count.

Every timed run in the benchmarks is a whole child process (Python start-up included), started with
``run_child`` in an environment from ``child_environment`` (no inherited ``AWS_*``/``BOTO_*``/``PYTEST_*``,
dummy credentials, the fake's URL). ``checked`` turns a failed run into ``BenchmarkError``: a timing of a gate
that did not pass is meaningless.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fakesetup import OPERATION, REGION

from pytest_proton_sync.fake import FakeServer

CHILD_TIMEOUT_SECONDS = 900.0


@dataclass(frozen=True)
class ChildRun:
    wall_seconds: float
    max_rss_mib: float
    exit_code: int
    output: str
    cpu_seconds: float = 0.0  # user + system time of the child itself (os.wait4)


PLUGIN_MODULE = "pytest_proton_sync.plugin"
# Loaded through PYTEST_PLUGINS (autoload is off), the plugin is blocked by its module name, not its entry point's.
WITHOUT_PLUGIN = f"no:{PLUGIN_MODULE}"


def child_environment(endpoint_url: str | None) -> dict[str, str]:
    """The caller's environment without anything that could change what AWS or pytest do, plus dummy creds."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "PYTEST_", "BOTO_"))
        # PYTHONDONTWRITEBYTECODE would make every child compile boto3, botocore, pytest and the plugin from source
        # (about a tenth of a 500-target run's CPU): the warm-up run is there to write the .pyc files a CI
        # machine's later runs read.
        and key not in ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONDONTWRITEBYTECODE")
    }
    missing = str(Path(tempfile.gettempdir()) / "pytest-proton-sync-bench-no-such-file")
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "benchmark",
            "AWS_SECRET_ACCESS_KEY": "benchmark",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": missing,
            "AWS_SHARED_CREDENTIALS_FILE": missing,
            # Only this plugin: the project's dev venv also holds the test extras' pytest plugins (hypothesis imports
            # itself at configure, ~1 s with assertion rewriting), which are not the plugin's cost nor a user's.
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            "PYTEST_PLUGINS": PLUGIN_MODULE,
        }
    )
    if endpoint_url is not None:
        env["AWS_ENDPOINT_URL_PROTON"] = endpoint_url
    return env


def _max_rss_mib(ru_maxrss: int) -> float:
    # Linux reports KiB, macOS bytes.
    return ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else ru_maxrss / 1024


def run_child(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> ChildRun:
    """Run one child to completion; wall time from spawn to exit, and that child's own peak RSS.

    The child is reaped with ``os.wait4``, which returns the resource usage of exactly that process (unlike
    ``getrusage(RUSAGE_CHILDREN)``, a running maximum over all children ever reaped).
    """
    with tempfile.TemporaryFile(mode="w+b") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
        )
        timer = threading.Timer(CHILD_TIMEOUT_SECONDS, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here; stop Popen from waiting again
        output.seek(0)
        text = output.read().decode("utf-8", errors="replace")
    return ChildRun(wall, _max_rss_mib(usage.ru_maxrss), process.returncode, text, usage.ru_utime + usage.ru_stime)


class BenchmarkError(RuntimeError):
    pass


def checked(run: ChildRun, what: str) -> ChildRun:
    """A timing of a run that did not do its job is meaningless: stop with its output."""
    if run.exit_code != 0:
        tail = "\n".join(run.output.splitlines()[-30:])
        raise BenchmarkError(f"{what} exited with {run.exit_code}; its output ends with:\n{tail}")
    return run


def timed_call_counted(
    server: FakeServer, argv: Sequence[str], cwd: Path, env: Mapping[str, str], what: str
) -> tuple[ChildRun, int]:
    server.reset_calls()
    run = checked(run_child(argv, cwd, env), what)
    return run, server.total_calls(operation=OPERATION)


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
