"""The pytest entry point: options, the plugin's own hookspecs, and whether a manifest is in play.

Only when one is does :func:`pytest_configure` register the stateful :class:`~.session.ProtonSyncSession`, which
carries every other hook; a pytest run without a manifest pays for nothing but these few functions. Nothing heavy
is imported at plugin load (boto3, PyYAML, jsonschema and the fake come in only with a manifest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .options import OPTIONS, OptionError, OptionSpec, read_options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("proton-sync", "AWS Proton sync gate (pytest-proton-sync)")
    group.addoption("--proton-manifest", action="append", dest="proton_manifests", metavar="PATH",
                    help="manifest of expected syncs; repeatable. Without other paths, only the manifests' checks "
                    "are collected.")
    parser.addini("proton_manifests", type="linelist", help="manifests, relative to the ini file's directory")
    for spec in OPTIONS:
        # Values are checked in options.py, so the command line and the ini file get the same one-line usage error.
        choices = {"choices": spec.choices} if spec.kind == "choice" else {}
        group.addoption(spec.flag, dest=spec.dest, metavar=spec.metavar, help=spec.help_text(), **choices)
        if spec.ini:
            parser.addini(spec.dest, help=f"default for {spec.flag}")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import default_hooks, hookspecs

    pluginmanager.add_hookspecs(hookspecs)
    pluginmanager.register(default_hooks, "proton_sync_default_hooks")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    # With manifests and no paths, only the manifests are collected (pytest_configure). Look for the first
    # conftest.py files beside them too, not in testpaths: a gate run in a repository must not fail because
    # tests/conftest.py imports the unit tests' own dependencies. (known_args_namespace is the pre-parse
    # namespace pytest itself reads here; it has no underscore but no documentation either.)
    namespace = early_config.known_args_namespace
    if getattr(namespace, "file_or_dir", None):
        return
    manifests = _manifests(early_config, getattr(namespace, "proton_manifests", None) or [])
    for path in manifests:
        # Said here, before pytest would fall back to loading conftest.py files from tests/ and the like.
        if not (early_config.invocation_params.dir / path).is_file():
            raise pytest.UsageError(f"proton-sync manifest not found: {path}")
    if manifests:
        namespace.file_or_dir = [str(path) for path in manifests]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "proton_sync: a sync check generated from a proton-sync manifest")
    manifests = _manifests(config)
    if not manifests:
        return
    from .session import SESSION_KEY, ProtonSyncSession

    try:
        options = read_options(lambda spec: _given(config, spec))
    except OptionError as error:
        raise pytest.UsageError(str(error)) from None
    session = ProtonSyncSession(config, manifests, options)
    # Manifests are what to collect. With no explicit paths on the command line, collect only them: a pipeline
    # gate should not also run the repository's unit tests found through testpaths.
    wanted = [str(path) for path in manifests]
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args[:] = wanted
        # Say so in the header too: pytest would otherwise print "testpaths: ..." it no longer collects.
        config.args_source = pytest.Config.ArgsSource.ARGS
    else:
        config.args.extend(a for a in wanted if a not in config.args)
    session.start()
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "proton_sync_session")


def _given(config: pytest.Config, spec: OptionSpec) -> tuple[Any, Any]:
    return config.getoption(spec.dest), (config.getini(spec.dest) if spec.ini else None)


def _manifests(config: pytest.Config, given_on_command_line: list[str] | None = None) -> list[Path]:
    """--proton-manifest paths as given; else ini proton_manifests, relative to the ini file's directory."""
    if given_on_command_line is None:
        given_on_command_line = config.getoption("proton_manifests")
    given = [Path(p) for p in given_on_command_line or []]
    if given:
        return given
    base = config.inipath.parent if config.inipath else config.invocation_params.dir
    return [base / p for p in config.getini("proton_manifests") or []]
