"""Expectations from the repository, shown with no AWS: a small git repository, `rev: HEAD`, the bundled fake.

    python examples/rev_demo.py

It builds a repository of Proton template bundles in a temporary directory (four commits), writes a manifest
whose entries say `rev: HEAD` (content matching, the default for `rev:`), and a fake state in which Proton
synced vpc-env from the branch head (same files as its last change: passes by content) and eks-env from a commit
before its last change (fails, listing the files that differ and the commits between). Then it clones the
repository with `--depth 1`, as CI checkouts do by default, and runs the gate there: the shallow history cannot
say which commit last changed a bundle, so that is an error with the fix, never a guess. Needs git and this
package installed (`pip install .`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Demo",
    "GIT_AUTHOR_EMAIL": "demo@example.com",
    "GIT_COMMITTER_NAME": "Demo",
    "GIT_COMMITTER_EMAIL": "demo@example.com",
}
SCHEMA = "schema:\n  format: {openapi: 3.0.0}\n  environment_input_type: Input\n  types: {}\n"


def git(repository: Path, *arguments: str) -> str:
    done = subprocess.run(["git", *arguments], cwd=repository, env=GIT_ENV, capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


def commit(repository: Path, message: str, files: dict[str, str]) -> str:
    for name, text in files.items():
        path = repository / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repository, "add", "-A")
    git(repository, "commit", "-q", "-m", message)
    return git(repository, "rev-parse", "HEAD")


def bundle(name: str, body: str) -> dict[str, str]:
    return {f"templates/{name}/v1/schema/schema.yaml": SCHEMA,
            f"templates/{name}/v1/infrastructure/cloudformation.yaml": f"Resources:\n  Vpc: {body}\n"}


def run_gate(title: str, checkout: Path, state: Path) -> None:
    print(f"\n===== {title} =====", flush=True)
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--proton-manifest",
                    str(checkout / "proton-sync.yaml"), "--proton-fake", str(state), "-q", "--no-header"],
                   cwd=checkout, check=False)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="proton-sync-demo-") as temporary:
        root = Path(temporary)
        repository = root / "platform-templates"
        repository.mkdir()
        git(repository, "init", "-q", "-b", "main")
        commit(repository, "Add vpc-env and eks-env", {**bundle("vpc-env", "a"), **bundle("eks-env", "a")})
        eks_before = commit(repository, "vpc-env: bigger subnets", bundle("vpc-env", "b"))
        commit(repository, "eks-env: managed node group", bundle("eks-env", "b"))
        head = commit(repository, "README only", {"README.md": "Templates\n"})

        manifest = (
            "version: 1\n"
            "defaults:\n"
            "  region: us-east-1\n"
            "  repository: {provider: GITHUB, name: acme/platform-templates, branch: main, directory: templates}\n"
            "  rev: HEAD            # the expected commit: the last one at or before HEAD that changed the bundle\n"
            "templates:\n"
            "  - {name: vpc-env, type: ENVIRONMENT, version: 1}\n"
            "  - {name: eks-env, type: ENVIRONMENT, version: 1}\n"
        )
        (repository / "proton-sync.yaml").write_text(manifest)
        state = root / "fake-state.yaml"
        state.write_text(
            "defaults:\n"
            "  repository: {provider: GITHUB, name: acme/platform-templates, branch: main, directory: templates}\n"
            "templates:\n"
            f"  - {{name: vpc-env, type: ENVIRONMENT, version: 1, synced: {head}}}        # the branch head\n"
            f"  - {{name: eks-env, type: ENVIRONMENT, version: 1, synced: {eks_before}}}  # before its last change\n"
        )
        run_gate("full history: vpc-env passes by content, eks-env fails with the files that differ",
                 repository, state)

        shallow = root / "shallow"
        git(root, "clone", "-q", "--depth", "1", repository.as_uri(), str(shallow))
        (shallow / "proton-sync.yaml").write_text(manifest)
        run_gate("a --depth 1 clone: the history cannot say, so it is an error with the fix", shallow, state)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
