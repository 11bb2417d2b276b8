"""The gRPC server: one ``grpc.aio`` server on the REST server's event loop, which
admits an inference call's bytes before parsing them (:class:`AdmitBeforeParsing`).

:func:`start_grpc` is called from ``build_app``'s lifespan when ``[serving] grpc_port``
is set; it serves TF Serving's ``PredictionService`` and ``ModelService``
(:mod:`.tfserving`) and the Open Inference Protocol's ``GRPCInferenceService``
(:mod:`.inference`), which answer through the same :class:`~mooring.serving._predict.Predictor`
as REST: the same routing (canary split by the ``x-request-key`` metadata), contract,
batcher, prediction log and hot swaps.

Each call then passes the gate (:mod:`.gate`): the REST path's admission, deadline,
errors, metrics and access log.

Examples:
    >>> server = await start_grpc(state, predictor, host="127.0.0.1", port=8500)  # doctest: +SKIP
    >>> await server.stop(grace=5)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import grpc
from grpc import aio

from mooring.config import ServingConfig
from mooring.errors import ConfigError
from mooring.serving._grpc.gate import Gate
from mooring.serving._predict import Predictor
from mooring.serving._state import ServerState

__all__ = ["INFERENCE_METHODS", "AdmitBeforeParsing", "concurrent_calls", "start_grpc"]

log = logging.getLogger("mooring.serving")

#: The inference methods: their request messages hold bytes of the body budget.
INFERENCE_METHODS = frozenset(
    {
        "/tensorflow.serving.PredictionService/Predict",
        "/tensorflow.serving.PredictionService/Classify",
        "/tensorflow.serving.PredictionService/Regress",
        "/tensorflow.serving.PredictionService/MultiInference",
        "/inference.GRPCInferenceService/ModelInfer",
    }
)


class _Refused:
    """What an inference call's request becomes when admission refuses its bytes."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


class AdmitBeforeParsing(aio.ServerInterceptor):  # type: ignore[misc]
    """Admit an inference call's message against the body budget (and the permits) by
    its size, before it is parsed; a refused one is answered UNAVAILABLE unparsed.

    Parsing a protobuf message costs several times its size (the message, then the
    arrays made of it): 300 calls of 2.25 MiB, each parsed before the budget refused
    it, grew a worker by 2 GiB. The check here reads ``len(bytes)`` only; the call still
    takes its permit and its bytes in :meth:`Gate.run`, once parsed.
    """

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(details)
        if (
            method not in INFERENCE_METHODS
            or handler is None
            or handler.unary_unary is None
            or handler.request_deserializer is None
        ):
            return handler
        wrapped = self._wrapped[method] = self._wrap(handler)
        return wrapped

    def _wrap(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        gate, parse, answer = self.gate, handler.request_deserializer, handler.unary_unary
        admission = gate.state.admission

        def admitted(raw: bytes) -> object:
            why = admission.refusal(len(raw), admission.max_in_flight)
            return _Refused(why) if why is not None else parse(raw)

        async def unary(request: object, context: aio.ServicerContext) -> object:
            if type(request) is _Refused:
                gate.refuse(context, request.why)
                return None
            return await answer(request, context)

        return handler._replace(request_deserializer=admitted, unary_unary=unary)


def concurrent_calls(limits: ServingConfig) -> int:
    """The gRPC calls the server takes at once, on every connection together: the
    ``max_in_flight`` admitted and as many more being answered or refused, and at least
    64, so that a burst past a small ``max_in_flight`` is refused by admission (which
    names the limit) rather than by grpcio. Past it grpcio answers RESOURCE_EXHAUSTED
    before it reads the call's message.

    >>> from mooring.config import ServingConfig
    >>> concurrent_calls(ServingConfig()), concurrent_calls(ServingConfig(max_in_flight=100))
    (64, 200)
    """
    return max(64, 2 * limits.max_in_flight)


async def start_grpc(
    state: ServerState, predictor: Predictor, *, host: str, port: int, shared: bool = False
) -> aio.Server:
    """Start the gRPC APIs on ``host:port`` on the running event loop; the started server.

    ``shared``: the port is shared with the other workers of one server (``SO_REUSEPORT``).

    Imports TensorFlow (without Keras, :func:`mooring._tensorflow.import_tensorflow`)
    before TF Serving's generated protos, which import the ``tensorflow`` package.

    Raises:
        ConfigError: the port cannot be bound.
    """
    from mooring._tensorflow import import_tensorflow

    await asyncio.to_thread(import_tensorflow)
    from mooring.serving._grpc import inference, tfserving

    limit = state.serving.grpc_max_message_bytes
    gate = Gate(state, predictor)
    server = aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", -1),
            # HTTP/2 flow control at its 64 KiB windows, not grown by bandwidth probes:
            # a call's bytes beyond them wait in the client until the server reads the
            # call, so calls not yet taken (or refused) hold little here. 300 calls of
            # 2.25 MiB on one channel grew a worker by 612 MiB with the probes, 376
            # without (benchmarks/bench_grpc_flood.py). A connection's streams are not
            # capped instead: a new channel's first calls, sent before it has the
            # server's settings, were reset (32 small calls at once: 39 of 96 failed).
            ("grpc.http2.bdp_probe", 0),
            # One port per server, unless workers of one server share it (checked free
            # by their supervisor first).
            ("grpc.so_reuseport", 1 if shared else 0),
        ],
        interceptors=[AdmitBeforeParsing(gate)],
        maximum_concurrent_rpcs=concurrent_calls(state.serving),
    )
    tfserving.add_services(server, gate)
    inference.add_service(server, gate)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        bound, why = 0, str(exc)
    else:
        why = "the port is taken or the address is not this machine's"
    if not bound:
        raise ConfigError(
            f"[serving] grpc_port: cannot listen on {address} ({why}); choose a free port"
        )
    await server.start()
    log.debug("gRPC APIs listening on %s", address)  # mooring serve's banner says it
    return server
