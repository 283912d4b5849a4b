"""FakeState: everything the fake answers from, and its two constructors (a state file, a plain mapping).

Apart from the records in :mod:`.state` so that the reader (:mod:`.statefile`) builds it without importing it:
the constructors call the reader, the reader is handed the class. Pure data: no I/O beyond reading the file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .state import (
    FakeRepositoryLink,
    FakeServiceInstance,
    FakeStack,
    FakeSyncConfiguration,
    FakeTemplate,
    Faults,
    Listing,
)
from .statefile import load_state_file, state_from_mapping


@dataclass(frozen=True)
class FakeState:
    """Everything the fake answers from. Build it with :meth:`from_file` or :meth:`from_mapping`."""

    templates: tuple[FakeTemplate, ...] = ()
    faults: Faults = field(default_factory=Faults)
    source: str = "<memory>"
    service_instances: tuple[FakeServiceInstance, ...] = ()
    stacks: tuple[FakeStack, ...] = ()
    repository_links: tuple[FakeRepositoryLink, ...] = ()
    sync_configurations: tuple[FakeSyncConfiguration, ...] = ()
    listing: Listing = field(default_factory=Listing)

    @classmethod
    def from_file(cls, path: str | Path) -> FakeState:
        """Read and validate a YAML state file. Raises :class:`FakeStateError` (only) with every problem."""
        return load_state_file(path, cls)

    @classmethod
    def from_mapping(cls, data: Any, source: str = "<memory>") -> FakeState:
        """Validate plain Python data shaped like a state file. Raises :class:`FakeStateError` (only)."""
        return state_from_mapping(data, source, cls)

    # Lookups are by dictionary: a benchmark state has thousands of templates and every request looks one up.
    @functools.cached_property
    def _templates(self) -> dict[tuple[str, str, str], FakeTemplate]:
        return {(t.type, t.name, t.version): t for t in self.templates}

    @functools.cached_property
    def _instances(self) -> dict[tuple[str, str], FakeServiceInstance]:
        return {(i.service, i.name): i for i in self.service_instances}

    @functools.cached_property
    def _stacks(self) -> dict[str, FakeStack]:
        return {s.name: s for s in self.stacks}

    def find(self, template_type: str, name: str, version: str) -> FakeTemplate | None:
        return self._templates.get((template_type, name, version))

    def versions_of(self, template_type: str, name: str) -> tuple[FakeTemplate, ...]:
        return tuple(t for t in self.templates if (t.type, t.name) == (template_type, name))

    def find_service_instance(self, service: str, name: str) -> FakeServiceInstance | None:
        return self._instances.get((service, name))

    def instances_of(self, service: str) -> tuple[FakeServiceInstance, ...]:
        return tuple(i for i in self.service_instances if i.service == service)

    def find_stack(self, name: str) -> FakeStack | None:
        return self._stacks.get(name)

    @functools.cached_property
    def _links(self) -> dict[str, FakeRepositoryLink]:
        return {link.id: link for link in self.repository_links}

    @functools.cached_property
    def _configurations_by_link(self) -> dict[str, tuple[FakeSyncConfiguration, ...]]:
        by_repository: dict[tuple[str, str], list[FakeSyncConfiguration]] = {}
        for configuration in self.sync_configurations:
            by_repository.setdefault((configuration.provider, configuration.repository.lower()), []).append(
                configuration)
        return {link.id: tuple(by_repository.get((link.provider, link.name.lower()), ()))
                for link in self.repository_links}

    def find_repository_link(self, link_id: str) -> FakeRepositoryLink | None:
        return self._links.get(link_id)

    def sync_configurations_of(self, link_id: str) -> tuple[FakeSyncConfiguration, ...]:
        return self._configurations_by_link.get(link_id, ())
