"""Real git repositories for tests, built with one ``git fast-import`` process each.

``History`` collects commits (files to write or delete, merges, branches, tags) and ``build()`` feeds them to
git in one stream, then returns the commit ids. Fast and deterministic (fixed author and dates).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ENV = {
    **os.environ,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "LC_ALL": "C",
}


def git(cwd: Path, *arguments: str, input: bytes | None = None) -> str:
    completed = subprocess.run(["git", *arguments], cwd=cwd, env=ENV, input=input, capture_output=True, check=False)
    assert completed.returncode == 0, f"git {arguments}: {completed.stderr.decode()}"
    return completed.stdout.decode().strip()


ENVIRONMENT_SCHEMA = "schema:\n  format:\n    openapi: 3.0.0\n  environment_input_type: Input\n  types: {}\n"
SERVICE_SCHEMA = (
    "schema:\n  format:\n    openapi: 3.0.0\n  service_input_type: Input\n  pipeline_input_type: P\n  types: {}\n"
)


def environment_bundle(name: str, major: int = 1, directory: str = "templates", body: str = "x") -> dict[str, str]:
    base = f"{directory}/{name}/v{major}" if directory else f"{name}/v{major}"
    return {
        f"{base}/schema/schema.yaml": ENVIRONMENT_SCHEMA,
        f"{base}/infrastructure/cloudformation.yaml": f"Resources: {body}\n",
    }


def service_bundle(name: str, major: int = 1, directory: str = "templates", body: str = "x") -> dict[str, str]:
    base = f"{directory}/{name}/v{major}" if directory else f"{name}/v{major}"
    return {
        f"{base}/schema/schema.yaml": SERVICE_SCHEMA,
        f"{base}/instance_infrastructure/cloudformation.yaml": f"Resources: {body}\n",
    }


@dataclass
class _Commit:
    label: str
    branch: str
    message: str
    files: dict[str, str | None]
    parent: str | None
    merge: str | None


@dataclass
class History:
    """Commits to build; labels name them in ``build()``'s answer."""

    commits: list[_Commit] = field(default_factory=list)
    tags: list[tuple[str, str, bool]] = field(default_factory=list)

    def commit(
        self,
        label: str,
        files: dict[str, str | None] | None = None,
        *,
        branch: str = "main",
        message: str | None = None,
        parent: str | None = None,
        merge: str | None = None,
    ) -> History:
        """A commit on ``branch``: ``files`` maps path -> contents (None deletes). ``parent`` starts the branch
        from that label; ``merge`` adds a second parent. As in fast-import, a commit's tree starts from its
        first parent's: give a merge the files it brings in (what `git merge` would have written)."""
        self.commits.append(_Commit(label, branch, message or label, dict(files or {}), parent, merge))
        return self

    def tag(self, name: str, label: str, annotated: bool = False) -> History:
        self.tags.append((name, label, annotated))
        return self

    def build(self, path: Path) -> dict[str, str]:
        path.mkdir(parents=True, exist_ok=True)
        git(path, "init", "-q", "-b", "main")
        marks = {commit.label: index + 1 for index, commit in enumerate(self.commits)}
        stream = bytearray()

        def data(text: str) -> None:
            raw = text.encode()
            stream.extend(b"data %d\n" % len(raw) + raw + b"\n")

        for index, commit in enumerate(self.commits):
            stream.extend(f"commit refs/heads/{commit.branch}\nmark :{index + 1}\n".encode())
            stream.extend(f"committer Test <test@example.com> {1_700_000_000 + index * 60} +0000\n".encode())
            data(commit.message)
            if commit.parent is not None:
                stream.extend(f"from :{marks[commit.parent]}\n".encode())
            if commit.merge is not None:
                stream.extend(f"merge :{marks[commit.merge]}\n".encode())
            for name, contents in commit.files.items():
                quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
                if contents is None:
                    stream.extend(f"D {quoted}\n".encode())
                else:
                    stream.extend(f"M 100644 inline {quoted}\n".encode())
                    data(contents)
            stream.extend(b"\n")
        for index, (name, label, annotated) in enumerate(self.tags):
            if annotated:
                stream.extend(f"tag {name}\nfrom :{marks[label]}\n".encode())
                stream.extend(f"tagger Test <test@example.com> {1_800_000_000 + index} +0000\n".encode())
                data(f"tag {name}")
            else:
                stream.extend(f"reset refs/tags/{name}\nfrom :{marks[label]}\n\n".encode())
        marks_file = path / ".git" / "test-marks"
        git(path, "fast-import", "--quiet", f"--export-marks={marks_file}", input=bytes(stream))
        by_mark = dict(line.split(" ") for line in marks_file.read_text().splitlines())
        marks_file.unlink()
        return {label: by_mark[f":{mark}"] for label, mark in marks.items()}
