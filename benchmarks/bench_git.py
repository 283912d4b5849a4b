"""How fast the git layer answers what `rev:` + `match: content` need, on a big repository.

    python benchmarks/bench_git.py [--commits 10000] [--bundles 500] [--repeats 5] [--rebuild]

Builds (once, with one `git fast-import`, cached under the system temp directory) a linear repository of
--commits commits holding --bundles template bundles ``templates/t<i>/v1/`` (schema + infrastructure file):
the first commit adds everything; each later commit changes one file, in a bundle (60%; the first 10% of
bundles are never touched again, so the walk for them runs to the root) or in ``src/`` (40%). Then, per
repeat, with a fresh Checkout (new processes, cold caches):

1. open the checkout and resolve HEAD;
2. last_changes(HEAD, every bundle) -- the expected commit of each;
3. object_ids_at(every (expected commit, bundle)) -- the expected content, as if each bundle had its own synced
   commit (LastChange.contents already holds it: this step checks that and times the many-commit case);
4. object_ids at one other commit (HEAD~1000, as a synced commit would be) for every bundle.

Prints a markdown table of medians (and min/max); never asserts. The goal: all four together <= 1 s.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pytest_proton_sync.git.checkout import CHANGED, Checkout

GOAL_SECONDS = 1.0


def build(path: Path, commits: int, bundles: int) -> None:
    environment = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C"}
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=environment)
    rng = random.Random(1)
    stream = bytearray()

    def data(text: str) -> None:
        raw = text.encode()
        stream.extend(b"data %d\n%s\n" % (len(raw), raw))

    def header(index: int, message: str) -> None:
        stream.extend(b"commit refs/heads/main\n")
        stream.extend(b"committer Bench <bench@example.com> %d +0000\n" % (1_600_000_000 + index * 60))
        data(message)

    header(0, "add every bundle")
    for bundle in range(bundles):
        base = f"templates/t{bundle:04d}/v1"
        kind = "environment" if bundle % 3 else "service"
        stream.extend(f"M 100644 inline {base}/schema/schema.yaml\n".encode())
        data(f"schema:\n  format:\n    openapi: 3.0.0\n  {kind}_input_type: Input{bundle}\n  types: {{}}\n")
        stream.extend(f"M 100644 inline {base}/infrastructure/cloudformation.yaml\n".encode())
        data(f"Resources: {{}}  # {bundle} 0\n")
    for module in range(50):
        stream.extend(f"M 100644 inline src/module{module}.py\n".encode())
        data(f"VALUE = {module}\n")
    stream.extend(b"\n")
    untouched = bundles // 10
    for index in range(1, commits):
        if rng.random() < 0.6 and bundles > untouched:
            bundle = rng.randrange(untouched, bundles)
            name = f"templates/t{bundle:04d}/v1/infrastructure/cloudformation.yaml"
            contents = f"Resources: {{}}  # {bundle} {index}\n"
        else:
            name = f"src/module{rng.randrange(50)}.py"
            contents = f"VALUE = {index}\n"
        header(index, f"change {name}")
        stream.extend(f"M 100644 inline {name}\n".encode())
        data(contents)
        stream.extend(b"\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=bytes(stream), check=True, env=environment)
    subprocess.run(["git", "gc", "-q"], cwd=path, check=True, env=environment)  # as a fresh clone would be: packed
    (path / ".bench-complete").write_text("ok\n")


def repository(commits: int, bundles: int, rebuild: bool) -> Path:
    key = hashlib.sha256(f"v1 {commits} {bundles}".encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"pytest-proton-sync-bench-git-{key}"
    if rebuild or not (path / ".bench-complete").exists():
        if path.exists():
            subprocess.run(["rm", "-rf", str(path)], check=True)
        started = time.perf_counter()
        print(f"building {path} ({commits} commits, {bundles} bundles)...", file=sys.stderr)
        build(path, commits, bundles)
        print(f"built in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return path


def cpu_seconds() -> float:
    """CPU time of this process and of its waited-for children (the git processes), user + system."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def one_run(path: Path, bundles: int) -> tuple[list[float], dict[str, int]]:
    paths = [f"templates/t{bundle:04d}/v1/" for bundle in range(bundles)]
    times: list[float] = []
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    with Checkout.open(path) as checkout:
        resolved = checkout.resolve(["HEAD", "HEAD~1000"])
        head, synced = resolved["HEAD"], resolved["HEAD~1000"]
        assert head is not None and synced is not None
        times.append(time.perf_counter() - started)

        started = time.perf_counter()
        changes = checkout.bundle_changes(head, {path: [path] for path in paths})
        times.append(time.perf_counter() - started)
        assert all(change.state == CHANGED for change in changes.values())

        started = time.perf_counter()
        by_commit: dict[str, list[str]] = defaultdict(list)
        for change_path, change in changes.items():
            assert change.commit is not None
            by_commit[change.commit].append(change_path)
        at_expected = checkout.object_ids_at((change.commit or "", path) for path, change in changes.items())
        expected = {path: at_expected[(change.commit or "", path)] for path, change in changes.items()}
        assert all(change.contents == ((path, expected[path]),) for path, change in changes.items())
        times.append(time.perf_counter() - started)

        started = time.perf_counter()
        at_synced = checkout.object_ids(synced, paths)
        times.append(time.perf_counter() - started)
    times.append(cpu_seconds() - cpu_before)  # after close(): the batch process has been waited for
    same = sum(expected[p] == at_synced[p] for p in paths)
    return times, {"distinct expected commits": len(by_commit), "bundles with equal content at HEAD~1000": same}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--bundles", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true")
    arguments = parser.parse_args()
    path = repository(arguments.commits, arguments.bundles, arguments.rebuild)
    one_run(path, arguments.bundles)  # warm the OS file cache
    samples: list[list[float]] = []
    facts: dict[str, int] = {}
    for _ in range(arguments.repeats):
        times, facts = one_run(path, arguments.bundles)
        samples.append([*times[:4], sum(times[:4]), times[4]])
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    print(f"{arguments.commits} commits, {arguments.bundles} bundles, {arguments.repeats} repeats; "
          f"{git_version}; Python {platform.python_version()}; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(", ".join(f"{name}: {value}" for name, value in facts.items()))
    print()
    print("| step | median | min | max |")
    print("| --- | ---: | ---: | ---: |")
    names = [
        "open + resolve HEAD, HEAD~1000",
        f"last_changes(HEAD, {arguments.bundles} bundles)",
        "object_ids at the expected commits",
        f"object_ids at HEAD~1000 ({arguments.bundles} bundles)",
        "**total** (wall)",
        "CPU time, Python + git processes",
    ]
    for column, name in enumerate(names):
        values = [sample[column] * 1000 for sample in samples]
        print(f"| {name} | {statistics.median(values):.0f} ms | {min(values):.0f} ms | {max(values):.0f} ms |")
    total = statistics.median(sample[4] for sample in samples)
    print()
    print(f"goal: total <= {GOAL_SECONDS:.1f} s: {'PASS' if total <= GOAL_SECONDS else 'MISS'} ({total:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
