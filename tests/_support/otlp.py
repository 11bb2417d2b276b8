"""A tiny OTLP/HTTP trace receiver on 127.0.0.1: records what an exporter posts to /v1/traces.

Decoded with ``opentelemetry-proto`` (what a collector runs), so a test sees exactly what
the configured exporter sent over the wire.

Example:
    >>> with OTLPReceiver() as receiver:  # doctest: +SKIP
    ...     cfg = ObservabilityConfig(otlp_endpoint=receiver.url)
    ...     spans = wait_until(lambda: len(receiver.received()) >= 3 and receiver.received(),
    ...                        "three spans at the receiver")
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests._support.server import ServerThread


@dataclass
class ReceivedSpan:
    """One span as the collector got it (ids as hex; attributes as plain values)."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    attributes: dict[str, Any]
    links: list[tuple[str, str]]
    service: str
    status_code: int
    start_ns: int
    end_ns: int
    events: list[str] = field(default_factory=list)


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def decode(body: bytes) -> list[ReceivedSpan]:
    """Every span of one ExportTraceServiceRequest."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        kind=span.kind,
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                        service=str(resource.get("service.name")),
                        status_code=span.status.code,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        events=[event.name for event in span.events],
                    )
                )
    return spans


class OTLPReceiver:
    """Records every POST /v1/traces; ``spans`` holds what arrived so far."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.posts = 0
        self._lock = threading.Lock()

        async def traces(request: Request) -> Response:
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                ExportTraceServiceResponse,
            )

            received = decode(await request.body())
            with self._lock:
                self.posts += 1
                self.spans.extend(received)
            return Response(
                ExportTraceServiceResponse().SerializeToString(),
                media_type="application/x-protobuf",
            )

        app = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])
        self.server = ServerThread(app)
        self.url = self.server.url

    def __enter__(self) -> OTLPReceiver:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    def received(self) -> list[ReceivedSpan]:
        """The spans received so far (a copy)."""
        with self._lock:
            return list(self.spans)
