"""The progress of a fetch as pytest shows it: a live line on a terminal, a plain line now and then in a CI log."""

from __future__ import annotations

import contextlib
import time

import pytest

from pytest_proton_sync.fetch.rounds import Progress

NON_TTY_PROGRESS_EVERY = 10.0  # seconds between plain progress lines in CI logs: what is pending, and for how long


class ProgressPrinter:
    """While waiting: a live status line on a terminal; a plain line every so often in a CI log. In the background
    mode the fetch thread only remembers the latest progress, and the main thread prints it while an item waits."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.reporter = config.pluginmanager.get_plugin("terminalreporter")
        self.live = bool(self.reporter is not None and self.reporter.isatty)
        self._last_plain = 0.0
        self._printed = False
        self._latest: Progress | None = None

    def __call__(self, progress: Progress) -> None:
        if self.reporter is None:
            return
        line = progress.line  # says which calls are under way, and for how long
        now = time.monotonic()
        if self.live:
            self.reporter.rewrite(line, erase=True)
            self._printed = True
        elif now - self._last_plain >= NON_TTY_PROGRESS_EVERY or progress.pending == 0:
            self.reporter.write_line(line)
            self._last_plain = now

    def remember(self, progress: Progress) -> None:
        self._latest = progress

    def print_latest(self) -> None:
        latest, capture = self._latest, self.config.pluginmanager.get_plugin("capturemanager")
        if latest is not None and self.reporter is not None:
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                self.reporter.write_line(latest.line)

    def finish(self) -> None:
        if self.reporter is not None and self.live and self._printed:
            self.reporter.write_line("")
