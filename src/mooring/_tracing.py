"""Optional OpenTelemetry traces: a span per served request and batch, per pipeline run and step.

Tracing is off unless ``[observability] otlp_endpoint`` is set. Off, :func:`start_tracing`
returns ``None``, nothing here imports ``opentelemetry``, and the callers pay one
``is not None`` check where a span would start. On, spans go to the collector over
OTLP/HTTP (the ``mooring-ml[otel]`` extra) from a background thread.

The shapes:

* a served prediction is a SERVER span (request id, model, version, protocol, status)
  with sequential children ``parse`` (body, decoding, inputs), ``contract``, ``queue``
  (waiting for a batch) and ``format``;
* a batch is a root span of its own (rows, requests) with a ``predict`` child in the
  worker thread. A batch serves many requests, so it is linked to each request span
  (and each request span back to it), not parented;
* ``mooring run`` is one span with a child per pipeline step (project, model, step, outcome).

Examples:
    >>> from mooring.config import ObservabilityConfig
    >>> start_tracing(ObservabilityConfig()) is None  # off: no endpoint, no import
    True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from mooring.config._observability import ObservabilityConfig
from mooring.errors import MissingExtraError

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

__all__ = ["BatchTrace", "RequestTrace", "Tracing", "start_tracing"]

A = TypeVar("A")
R = TypeVar("R")

SCOPE = "mooring"


def start_tracing(
    cfg: ObservabilityConfig, *, exporter: SpanExporter | None = None
) -> Tracing | None:
    """Tracing as ``cfg`` says: ``None`` when no endpoint is set (and no ``exporter`` given).

    ``exporter`` replaces the OTLP exporter (a console or in-memory exporter; spans are
    then exported as they end). Call :meth:`Tracing.shutdown` to flush on the way out.

    Raises:
        MissingExtraError: tracing is configured but ``opentelemetry`` is not installed.

    Examples:
        >>> cfg = ObservabilityConfig(otlp_endpoint="http://localhost:4318")
        >>> tracing = start_tracing(cfg)  # doctest: +SKIP
        >>> tracing.shutdown()  # doctest: +SKIP
    """
    if exporter is None and cfg.otlp_endpoint is None:
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        raise MissingExtraError(
            "[observability] otlp_endpoint is set but OpenTelemetry is not installed; "
            "run pip install 'mooring-ml[otel]', or remove otlp_endpoint to turn traces off"
        ) from None
    provider = TracerProvider(
        resource=Resource.create({"service.name": cfg.service_name}),
        sampler=_sampler(cfg.sample_ratio),
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise MissingExtraError(
                "[observability] otlp_endpoint is set but the OTLP/HTTP exporter is not "
                "installed; run pip install 'mooring-ml[otel]'"
            ) from None
        otlp = OTLPSpanExporter(
            endpoint=cfg.traces_url, headers=dict(cfg.headers), timeout=cfg.export_timeout_s
        )
        # Exported from a background thread in batches: the request path only queues a span.
        provider.add_span_processor(BatchSpanProcessor(otlp))
    return Tracing(provider)


def _sampler(ratio: float) -> Any:
    """Keep ``ratio`` of root traces; children follow their parent; a batch is kept when
    any request it served is (otherwise a kept request would link to a missing batch)."""
    from opentelemetry.sdk.trace.sampling import (
        Decision,
        ParentBased,
        Sampler,
        SamplingResult,
        TraceIdRatioBased,
    )

    class LinkedOrRatio(Sampler):
        def __init__(self) -> None:
            self.ratio = TraceIdRatioBased(ratio)

        def should_sample(  # type: ignore[no-untyped-def]
            self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
            trace_state=None,
        ):  # fmt: skip
            if links:
                kept = any(link.context.trace_flags.sampled for link in links)
                decision = Decision.RECORD_AND_SAMPLE if kept else Decision.DROP
                return SamplingResult(decision, attributes if kept else None)
            return self.ratio.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return f"LinkedOrRatio{{{ratio}}}"

    return ParentBased(root=LinkedOrRatio())


class Tracing:
    """One tracer provider and what mooring starts with it: requests, batches, runs."""

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        self.tracer: Tracer = provider.get_tracer(SCOPE)
        self._trace = trace
        self._context = context
        self._propagator = TraceContextTextMapPropagator()

    def request(
        self,
        name: str,
        request_id: str,
        protocol: str,
        model: str,
        arrived: float,
        headers: Mapping[str, str] | None = None,
        client_request_id: str | None = None,
    ) -> RequestTrace:
        """Start a served request's span, backdated to ``arrived`` (``time.monotonic()``).

        A W3C ``traceparent`` in ``headers`` makes it a child of the caller's span.
        ``client_request_id``: the X-Request-Id the client sent, if any
        (``mooring.client_request_id``, beside the server's ``mooring.request_id``).
        """
        parent = self._propagator.extract(headers) if headers is not None else None
        start = time.time_ns() - int((time.monotonic() - arrived) * 1e9)
        attributes = {
            "mooring.request_id": request_id,
            "mooring.protocol": protocol,
            "mooring.model": model,
        }
        if client_request_id is not None:
            attributes["mooring.client_request_id"] = client_request_id
        span = self.tracer.start_span(
            name,
            context=parent,
            kind=self._trace.SpanKind.SERVER,
            start_time=start,
            attributes=attributes,
        )
        return RequestTrace(self, span)

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:
        """A span that is current while the block runs (the pipeline's run and steps).

        An exception marks it as an error and goes on.

        Examples:
            >>> with tracing.span("validate", {"mooring.step": "x"}) as span:  # doctest: +SKIP
            ...     span.set_attribute("mooring.outcome", "done")
        """
        with self.tracer.start_as_current_span(name, attributes=attributes) as span:
            yield span

    def shutdown(self) -> None:
        """Export what is still queued and stop (waits for the collector, bounded)."""
        self.provider.shutdown()


class RequestTrace:
    """A served request's span and its one open phase (``parse``, ``contract``, ...).

    The phases follow each other, so each one ends the previous: the handler only says
    where it is (:meth:`phase`), and the batcher ends ``queue`` when a batch takes it.
    """

    __slots__ = ("_open", "_phase", "model", "span", "tracing", "version")

    def __init__(self, tracing: Tracing, span: Span) -> None:
        self.tracing = tracing
        self.span = span
        self.model = ""
        self.version = ""
        self._open: Span | None = None
        self._phase: str | None = None
        self.phase("parse")

    def phase(self, name: str | None) -> None:
        """End the open phase and start ``name`` as the next child (``None``: just end)."""
        if self._open is not None:
            self._open.end()
            self._open = None
        self._phase = name
        if name is not None:
            context = self.tracing._trace.set_span_in_context(self.span)
            self._open = self.tracing.tracer.start_span(name, context=context)

    @property
    def trace_id(self) -> str:
        """The trace's id as 32 hex digits, as trace back ends show and search it."""
        return f"{self.span.get_span_context().trace_id:032x}"

    def served_by(self, model: str, version: int) -> None:
        """The model and version that answer (set once routed)."""
        self.model, self.version = model, str(version)
        self.span.set_attribute("mooring.model", model)
        self.span.set_attribute("mooring.model.version", self.version)

    def dequeued(self) -> None:
        """A batch took the request: its wait in the queue is over."""
        if self._phase == "queue":
            self.phase(None)

    def finish(self, status: int) -> None:
        """End the open phase and the request span with the HTTP status answered."""
        self.phase(None)
        span = self.span
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
        span.end()

    def start_batch(self, requests: Sequence[RequestTrace | None], rows: int) -> BatchTrace:
        """The span of a batch holding ``requests`` (this one among them), linked to each."""
        return BatchTrace(self.tracing, self.model, self.version, requests, rows)


class BatchTrace:
    """A batch's span: links to its requests, and the model call run in its context."""

    __slots__ = ("_requests", "span", "tracing")

    def __init__(
        self,
        tracing: Tracing,
        model: str,
        version: str,
        requests: Sequence[RequestTrace | None],
        rows: int,
    ) -> None:
        from opentelemetry.trace import Link

        self.tracing = tracing
        self._requests = [r for r in requests if r is not None]
        self.span = tracing.tracer.start_span(
            "batch",
            links=[Link(r.span.get_span_context()) for r in self._requests],
            attributes={
                "mooring.model": model,
                "mooring.model.version": version,
                "mooring.batch.rows": rows,
                "mooring.batch.requests": len(requests),
            },
        )

    def wrap(self, function: Callable[[A], R]) -> Callable[[A], R]:
        """``function`` run in a worker thread under a ``predict`` span in this batch's
        context: executor threads do not inherit the event loop's context, so it is
        attached there explicitly (spans the model call makes nest under the batch)."""
        tracing = self.tracing
        context: Context = tracing._trace.set_span_in_context(self.span)

        def traced(argument: A) -> R:
            token = tracing._context.attach(context)
            try:
                with tracing.tracer.start_as_current_span("predict"):
                    return function(argument)
            finally:
                tracing._context.detach(token)

        return traced

    def end(self, error: BaseException | None = None) -> None:
        """End the batch; on success each request span gets a link back to it."""
        span = self.span
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        else:
            batch = span.get_span_context()
            for request in self._requests:
                # A request that timed out while its batch ran has already ended.
                if request.span.is_recording():
                    request.span.add_link(batch)
        span.end()
