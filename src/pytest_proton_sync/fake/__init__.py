"""The bundled fake AWS Proton endpoint: a real HTTP server on loopback that answers from a YAML state file.

::

    from pytest_proton_sync.fake import FakeServer, FakeState

    state = FakeState.from_file("examples/fake-account.yaml")
    with FakeServer(state) as server:          # 127.0.0.1, ephemeral port
        client = boto3.client("proton", endpoint_url=server.endpoint_url, ...)
        server.calls                           # {"GetTemplateSyncStatus ENVIRONMENT/vpc-env@1": 1, ...}

It answers ``GetTemplateSyncStatus`` and ``GetTemplateSyncConfig`` in the AWS JSON 1.0 protocol, checked
against botocore's own model, and can inject latency, throttling, server errors, dropped connections and slow
answers reproducibly. The state file format is documented in :mod:`pytest_proton_sync.fake.state` and in
``docs/fake-state.md``. Imports no pytest.
"""

from __future__ import annotations

from .server import FakeServer
from .state import FakeState, FakeStateError, Faults

__all__ = ["FakeServer", "FakeState", "FakeStateError", "Faults"]
