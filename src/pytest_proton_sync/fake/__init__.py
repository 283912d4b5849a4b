"""The bundled fake AWS endpoint: a real HTTP server on loopback that answers AWS Proton and AWS CodeConnections
from a YAML state file.

::

    from pytest_proton_sync.fake import FakeServer, FakeState

    state = FakeState.from_file("examples/fake-stacks.yaml")
    with FakeServer(state) as server:          # 127.0.0.1, ephemeral port
        proton = boto3.client("proton", endpoint_url=server.endpoint_url, ...)
        connections = boto3.client("codeconnections", endpoint_url=server.endpoint_url, ...)
        server.calls                 # {"GetTemplateSyncStatus ENVIRONMENT/vpc-env@1": 1, ...}
        server.calls_by_access_key   # {"AKIA...": Counter({"GetResourceSyncStatus network": 1}), ...}

It answers Proton's ``GetTemplateSyncStatus``, ``GetTemplateSyncConfig``, ``GetServiceInstanceSyncStatus`` and
``GetServiceSyncBlockerSummary`` in AWS JSON 1.0, and CodeConnections' ``GetResourceSyncStatus`` and
``GetSyncBlockerSummary`` in AWS JSON 1.0 and Smithy RPC v2 CBOR, checked against botocore's own models, and can
inject latency, throttling, server errors, dropped connections and slow answers reproducibly. The state file's
rules are the JSON Schema ``state.schema.json`` beside this module; its format is documented in
``docs/fake-state.md``. Imports no pytest.
"""

from __future__ import annotations

from .fake_state import FakeState
from .server import FakeServer
from .state import (
    FakeBlocker,
    FakeServiceInstance,
    FakeStack,
    FakeStateError,
    FakeTemplate,
    Faults,
    StateProblem,
)

__all__ = [
    "FakeBlocker",
    "FakeServer",
    "FakeServiceInstance",
    "FakeStack",
    "FakeState",
    "FakeStateError",
    "FakeTemplate",
    "Faults",
    "StateProblem",
]
