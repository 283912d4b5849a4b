"""The compatibility matrix: the integration tests on the oldest, a middle and the newest of the declared range.

Each row is a Python found through pyenv and a constraints file in .ci/constraints/ that pins every package, so a
row is reproducible. The row's venv is made with uv (seconds, from its cache) and the project installed into it,
editable, with its test extras; then the tests marked ``integration`` (real pytest sessions against the fake,
pytest-xdist, signals, subprocesses) run in it, except the few slow ones marked ``plugin_logic``. The whole suite
runs on the newest dependencies before this, in the README's test command.

Usage: python .ci/matrix.py [ROW ...]   (rows: see ROWS; default all). Exit 0 only if every row passed.
Standard library only: it runs with whatever Python starts it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".venv-matrix"


@dataclass(frozen=True)
class Row:
    name: str
    python: str  # major.minor, found under pyenv's versions/
    constraints: str  # file in .ci/constraints/; its first line says how it was compiled


ROWS = (
    Row("oldest", "3.10", "oldest-py3.10.txt"),  # the oldest allowed of every direct dependency
    Row("middle", "3.12", "middle-py3.12.txt"),  # pytest 8.4, pluggy 1.5, boto3 1.38, jsonschema 4.23, xdist 3.6
    Row("newest", "3.13", "newest-py3.13.txt"),  # the newest of everything when the file was compiled
)
REPORTED = ("pytest", "pluggy", "boto3", "botocore", "pyyaml", "jsonschema", "cbor2", "pytest-xdist")


def pyenv_root() -> Path | None:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv")
    if pyenv:
        found = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False).stdout.strip()
        if found:
            return Path(found)
    default = Path.home() / ".pyenv"
    return default if default.is_dir() else None


def find_python(version: str) -> Path:
    root = pyenv_root()
    if root is None:
        sys.exit(f"matrix: pyenv not found (no PYENV_ROOT, no `pyenv` on PATH, no ~/.pyenv); Python {version} is "
                 f"needed: install pyenv and `pyenv install {version}`")
    candidates = sorted((root / "versions").glob(f"{version}.*/bin/python{version}"),
                        key=lambda path: [int(part) for part in re.findall(r"\d+", path.parent.parent.name)])
    if not candidates:
        sys.exit(f"matrix: Python {version} is not installed under {root}/versions; install it: "
                 f"pyenv install {version}")
    return candidates[-1]


def uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if not found:
        sys.exit("matrix: uv not found; it is a test extra: pip install -e '.[test]'")
    return found


def run_row(row: Row) -> tuple[str, str, float]:
    python = find_python(row.python)
    venv = VENVS / row.name
    started = time.monotonic()
    env = {**os.environ, "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # compiled files kept: each row starts many Pythons and pytests
    subprocess.run([uv(), "venv", "-q", "--clear", "--python", str(python), str(venv)], check=True, env=env)
    subprocess.run([uv(), "pip", "install", "-q", "--compile-bytecode", "--python", str(venv / "bin" / "python"),
                    "-c", str(ROOT / ".ci" / "constraints" / row.constraints), "-e", f"{ROOT}[test]"],
                   check=True, env=env, cwd=ROOT)
    versions = installed_versions(venv, env)
    print(f"\n=== matrix row {row.name}: Python {python.parent.parent.name}, {versions}", flush=True)
    # -p no:randomly: the order of the main run's random seed is not what a row tests. -n 3 on two cores, as the
    # main run: the tests wait on subprocesses and the fake's latency about as much as they compute.
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-n", "3", "-q",
                             "-m", "integration and not plugin_logic", "-p", "no:randomly", "-p", "no:cacheprovider"],
                            env=env, cwd=ROOT, capture_output=True, text=True)
    sys.stdout.write(result.stdout[-20000:])
    sys.stderr.write(result.stderr[-5000:])
    summary = next((line.strip("= ") for line in reversed(result.stdout.splitlines()) if " in " in line), "?")
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        return "FAILED: " + summary, versions, elapsed
    return summary, versions, elapsed


def installed_versions(venv: Path, env: dict[str, str]) -> str:
    listing = subprocess.run([uv(), "pip", "list", "--python", str(venv / "bin" / "python"), "--format", "freeze"],
                             capture_output=True, text=True, check=True, env=env).stdout
    pins = dict(line.lower().split("==", 1) for line in listing.splitlines() if "==" in line)
    return ", ".join(f"{name} {pins[name]}" for name in REPORTED if name in pins)


def main(names: list[str]) -> int:
    rows = [row for row in ROWS if not names or row.name in names]
    unknown = set(names) - {row.name for row in ROWS}
    if unknown:
        sys.exit(f"matrix: no row {', '.join(sorted(unknown))}; rows: {', '.join(row.name for row in ROWS)}")
    outcomes = [(row, *run_row(row)) for row in rows]
    print("\n| row | versions | integration tests | time |\n| --- | --- | --- | --- |")
    for row, summary, versions, elapsed in outcomes:
        print(f"| {row.name} | {versions} | {summary} | {elapsed:.0f} s |")
    return 1 if any(summary.startswith("FAILED") for _, summary, _, _ in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
