"""The wire: how a request is spoken (AWS JSON 1.0 or Smithy RPC v2 CBOR) and answered, the SigV4 access key it
signed with, and client text made fit for a log."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .api import CODECONNECTIONS, Service, epoch_seconds, service_named
from .api_error import ApiError

_CREDENTIAL = re.compile(r"Credential=([^/\s,]*)/")
_ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,128}\Z")
#: Counted under this key in calls_by_access_key: a Credential= that is not an access key id.
MALFORMED_ACCESS_KEY = "(malformed)"

_CBOR_PATH = re.compile(r"/service/([^/]+)/operation/([^/]+)\Z")
LONGEST_OPERATION_KEY = 128

JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
CBOR_CONTENT_TYPE = "application/cbor"


def access_key_of(authorization: str | None) -> str | None:
    """The access key id of a SigV4 ``Authorization`` header (``Credential=AKID/date/region/...``), or None."""
    if not authorization:
        return None
    match = _CREDENTIAL.search(authorization)
    if match is None:
        return None
    key = match.group(1)
    return key if _ACCESS_KEY_ID.match(key) else MALFORMED_ACCESS_KEY


@dataclass(frozen=True)
class WireProtocol:
    """How one request is spoken: JSON 1.0 or rpc-v2-cbor, and for which service (None: not known)."""

    cbor: bool
    service: Service | None
    operation: str


def decode_body(protocol: WireProtocol, body: bytes) -> tuple[Any, str | None]:
    """The request body as data, or None and why it is not (the answer is then SerializationException)."""
    if protocol.cbor:
        if not body:
            return {}, None
        try:
            import cbor2

            return cbor2.loads(body), None
        except Exception as error:  # cbor2 raises several kinds for hostile input, RecursionError included
            return None, f"the request body is not valid CBOR ({type(error).__name__})"
    if not body.strip():
        return {}, None
    try:
        return json.loads(body), None
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None, "the request body is not valid JSON"


def error_body(protocol: WireProtocol, error: ApiError) -> dict[str, Any]:
    if protocol.cbor:
        namespace = protocol.service.namespace if protocol.service is not None else CODECONNECTIONS.namespace
        return {"__type": f"{namespace}#{error.code}", "message": error.message}
    return {"__type": error.code, "message": error.message}


def json_default(value: object) -> Any:
    if isinstance(value, datetime):
        return epoch_seconds(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def too_large(limit: int) -> ApiError:
    return ApiError(
        "RequestEntityTooLargeException",
        f"the request body is larger than {limit} bytes; the fake refuses it unread",
        413,
    )


def protocol_of(url_path: str, target_header: str) -> WireProtocol:
    """Which protocol, service and operation a request speaks, from its path and ``X-Amz-Target`` header."""
    path = url_path.split("?", 1)[0]
    if path.startswith("/service/"):
        match = _CBOR_PATH.match(path)
        if match is None:
            return WireProtocol(cbor=True, service=None, operation="-")
        service = service_named(match.group(1))
        service = service if service is not None and service.cbor else None
        return WireProtocol(cbor=True, service=service, operation=match.group(2)[:LONGEST_OPERATION_KEY])
    prefix, _, operation = target_header.rpartition(".")
    service = service_named(prefix) if prefix else None
    if service is None:
        return WireProtocol(cbor=False, service=None, operation=(target_header or "-")[:LONGEST_OPERATION_KEY])
    return WireProtocol(cbor=False, service=service, operation=operation[:LONGEST_OPERATION_KEY])
