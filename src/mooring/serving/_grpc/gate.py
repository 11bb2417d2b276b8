"""The gate every gRPC call passes, which gives it the REST path's admission, deadline,
errors, metrics and access log (:class:`Gate`, one per server; its services are
:mod:`.tfserving`'s and :mod:`.inference`'s, started by :mod:`.server`).

Each call runs in :meth:`Gate.run`:

* an inference call (Predict, Classify, Regress, MultiInference, ModelInfer) is admitted
  by the server's :class:`~mooring.serving._admission.Admission`, the one REST's requests
  take their permit from, or refused ``UNAVAILABLE`` (counted as the door counts a refused 503,
  not as an answered request);
* its deadline is the client's gRPC deadline or ``[serving] deadline_ms``, the sooner;
* a :class:`~mooring.errors.MooringError` becomes the gRPC status of its HTTP status
  (:data:`GRPC_CODES`), with its message cut at 1,024 characters as TF Serving cuts
  them; anything else is logged and answered ``INTERNAL`` with only the request id;
* the call is counted in the metrics (protocol ``grpc``, status as the HTTP code the same
  error has over REST) and written to the access log with its gRPC method as the path;
  the ``x-request-id`` (always the server's own id), ``x-client-request-id`` (the
  ``x-request-id`` the client sent, when a plain token) and ``x-model-version`` trailing
  metadata carry what REST's headers do.

Examples:
    >>> grpc_code(404).name
    'NOT_FOUND'
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar, cast

import grpc
from grpc import aio

from mooring.errors import MooringError
from mooring.serving._door_answers import refusal_message
from mooring.serving._errors import DeadlineExceededError, OverloadedError
from mooring.serving._http import CLIENT_CLOSED, client_request_id, request_id
from mooring.serving._predict import Call, Predictor
from mooring.serving._state import ServerState

__all__ = ["GRPC_CODES", "MESSAGE_LIMIT", "Gate", "GrpcCall", "answer_error", "grpc_code"]

log = logging.getLogger("mooring.serving")

#: The HTTP status a :class:`~mooring.errors.MooringError` carries → its gRPC status.
GRPC_CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.FAILED_PRECONDITION,
    499: grpc.StatusCode.CANCELLED,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
    507: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
#: TF Serving cuts error messages at this many characters.
MESSAGE_LIMIT = 1024

Reply = TypeVar("Reply")


@dataclass(kw_only=True)
class GrpcCall(Call):
    """A gRPC call: a :class:`Call` with its full method name and its invocation metadata."""

    method: str
    metadata: dict[str, str] = field(default_factory=dict)


def grpc_code(http_status: int) -> grpc.StatusCode:
    """The gRPC status of an error that REST answers with ``http_status``.

    >>> grpc_code(404).name, grpc_code(503).name, grpc_code(418).name
    ('NOT_FOUND', 'UNAVAILABLE', 'INVALID_ARGUMENT')
    """
    code = GRPC_CODES.get(http_status)
    if code is not None:
        return code
    client_error = 400 <= http_status < 500
    return grpc.StatusCode.INVALID_ARGUMENT if client_error else grpc.StatusCode.INTERNAL


def _metadata(context: aio.ServicerContext) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):
            found.setdefault(key.lower(), value)
    return found


def _client(context: aio.ServicerContext) -> str | None:
    """The peer's address without its port: ``ipv4:127.0.0.1:5000`` → ``127.0.0.1``."""
    peer = context.peer() or ""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]%") or None
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0] or None
    return peer or None


class Gate:
    """Runs each gRPC call through the server's shared path (one per server)."""

    def __init__(self, state: ServerState, predictor: Predictor) -> None:
        self.state = state
        self.predictor = predictor

    def trace(self, call: GrpcCall) -> None:
        """Start the call's span, when tracing is on (once ``call.model`` is known); a
        ``traceparent`` in the metadata makes it a child of the caller's span."""
        tracing = self.state.tracing
        if tracing is not None and call.trace is None:
            call.trace = tracing.request(
                call.method,
                call.request_id,
                call.protocol,
                call.model,
                call.arrived,
                call.metadata,
                call.client_request_id,
            )

    async def run(
        self,
        context: aio.ServicerContext,
        method: str,
        work: Callable[[GrpcCall], Awaitable[Reply]],
        inference: bool,
        size: int = 0,
    ) -> Reply:
        """Answer one call with ``work(call)``, or with the status of its error
        (:func:`answer_error`).

        ``method`` is the full gRPC method (``/tensorflow.serving.PredictionService/Predict``);
        ``inference`` calls, whose request message is ``size`` bytes, are admitted by the
        server's admission (its permits and its budget of body bytes).
        """
        arrived = time.monotonic()
        metadata = _metadata(context)
        remaining = context.time_remaining()
        budget = self.predictor.deadline_s
        if remaining is not None:
            budget = min(budget, max(float(remaining), 0.0))
        call = GrpcCall(
            method=method,
            metadata=metadata,
            protocol="grpc",
            request_id=request_id(),
            client_request_id=client_request_id(metadata.get("x-request-id")),
            arrived=arrived,
            deadline=arrived + budget,
            key=metadata.get("x-request-key"),
        )
        call.headers["x-request-id"] = call.request_id
        if call.client_request_id is not None:
            call.headers["x-client-request-id"] = call.client_request_id
        state = self.state
        admission = state.admission
        refused = admission.try_admit(size) if inference else None
        if refused is not None:
            # Refused as the door refuses a REST request: counted as refused, not answered.
            answer_error(
                context,
                grpc.StatusCode.UNAVAILABLE,
                refusal_message(state.door.limits, refused),
                tuple(call.headers.items()),
            )
            return cast(Reply, None)  # with an error status gRPC discards the reply
        status = 200
        error: tuple[grpc.StatusCode, str] | None = None
        reply: Reply | None = None
        try:
            reply = await work(call)
        except MooringError as exc:
            status = exc.http_status
            error = (grpc_code(status), str(exc))
            if isinstance(exc, OverloadedError):
                call.headers["retry-after"] = str(exc.retry_after)
            if isinstance(exc, DeadlineExceededError):
                call.shed = exc.shed
        except asyncio.CancelledError:
            # The client went away or its deadline passed: count it as REST would.
            passed = time.monotonic() >= call.deadline
            self._finish(call, 504 if passed else CLIENT_CLOSED, method, context)
            raise
        except Exception:
            log.exception("gRPC call %s (request %s) failed", method, call.request_id)
            status = 500
            error = (grpc.StatusCode.INTERNAL, f"internal error (request id {call.request_id})")
        finally:
            if inference:
                admission.release(size)
        trailing = tuple((k.lower(), v) for k, v in call.headers.items())
        self._finish(call, status, method, context)
        if error is not None:
            answer_error(context, error[0], error[1], trailing)
            return cast(Reply, None)
        context.set_trailing_metadata(trailing)
        assert reply is not None
        return reply

    def refuse(self, context: aio.ServicerContext, why: str) -> None:
        """Answer a call refused by admission before its message was parsed
        (:class:`AdmitBeforeParsing`): UNAVAILABLE with the refusal's reason, counted as
        the door counts a refused 503."""
        self.state.admission.count(why)
        rid = request_id()
        answer_error(
            context,
            grpc.StatusCode.UNAVAILABLE,
            refusal_message(self.state.door.limits, why),
            (("x-request-id", rid),),
        )

    def _finish(self, call: Call, status: int, method: str, context: aio.ServicerContext) -> None:
        self.predictor.finish(call, status, method="grpc", path=method, client=_client(context))


def answer_error(
    context: aio.ServicerContext,
    code: grpc.StatusCode,
    details: str,
    trailing: tuple[tuple[str, str], ...] = (),
) -> None:
    """End a call with ``code`` and ``details`` (cut at :data:`MESSAGE_LIMIT` characters)
    without raising; the handler then returns (its reply, if any, is discarded).

    ``context.abort`` raises instead: gRPC keeps the raised error on the call, and its
    traceback holds the handlers' frames, which hold the call and its request message
    (up to ``grpc_max_message_bytes``, several times that once parsed). That cycle is
    freed only by the cyclic garbage collector, hundreds of calls later under the
    server's thresholds, so a flood of refused or invalid calls held every message.

    Examples:
        >>> async def Predict(self, request, context):  # doctest: +SKIP
        ...     answer_error(context, grpc.StatusCode.UNIMPLEMENTED, "not served")
        ...     return None
    """
    context.set_code(code)
    context.set_details(details[:MESSAGE_LIMIT])
    if trailing:
        context.set_trailing_metadata(trailing)
