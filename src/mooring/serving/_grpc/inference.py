"""The Open Inference Protocol (KServe v2) over gRPC: ``inference.GRPCInferenceService``.

``ServerLive``, ``ServerReady``, ``ModelReady``, ``ServerMetadata``, ``ModelMetadata`` and
``ModelInfer``, as the REST routes under ``/v2`` answer them: each input one rank-1
tensor ``[n]`` (``BYTES`` for strings, a number type otherwise), in typed ``contents``
or in ``raw_input_contents`` (decoded by the REST binary extension's own code,
:func:`mooring.serving._protocols.v2.binary_column`); outputs come back in
``raw_output_contents``, as Triton answers. The stubs are generated from the vendored
``protos/open_inference_grpc.proto``.

Triton's extensions share the service name, and ``tritonclient.grpc`` calls them
(model repository, statistics, shared memory, trace and log settings, ``ModelConfig``,
``ModelStreamInfer``): they are answered ``UNIMPLEMENTED`` with a message naming the
method.

Examples:
    >>> client = tritonclient.grpc.InferenceServerClient("127.0.0.1:8500")  # doctest: +SKIP
    >>> client.infer("income", inputs).as_numpy("probabilities")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import grpc
import numpy as np
import orjson
from grpc import aio

from mooring.errors import NotFoundError
from mooring.formats._columns import InputPolicy, column_values, describe
from mooring.formats._model import TensorInfo
from mooring.formats._tensors import batch_of, cast_numbers, check_dims, check_shape
from mooring.serving._errors import InvalidRequestError
from mooring.serving._explain import EXPLAIN_INFO, explanation_tensors
from mooring.serving._grpc.gate import Gate, GrpcCall, answer_error
from mooring.serving._grpc.protos import open_inference_grpc_pb2 as pb
from mooring.serving._grpc.protos import open_inference_grpc_pb2_grpc as pb_grpc
from mooring.serving._protocols import v2

__all__ = ["SERVICE", "add_service", "columns_from_infer"]

SERVICE = "inference.GRPCInferenceService"
_PREFIX = f"/{SERVICE}/"
_SERVED = ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata",
           "ModelInfer")  # fmt: skip
# datatype → the InferTensorContents field holding its values (FP16 travels raw only).
_CONTENTS = {
    "FP32": "fp32_contents", "FP64": "fp64_contents", "INT8": "int_contents",
    "INT16": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
    "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
    "UINT64": "uint64_contents", "BYTES": "bytes_contents", "BOOL": "bool_contents",
}  # fmt: skip


def _version(text: str, field: str) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and 0 < len(text) < 10 and int(text) > 0):
        raise InvalidRequestError(
            f"{field}: version {describe(text)} is not a positive integer; e.g. '3'"
        )
    return int(text)


# An output's numpy dtype → its datatype (keyed by dtype: its name is slow to build).
_DATATYPE_OF = {np.dtype(k): v for k, v in v2.DATATYPES.items() if k != "string"}
# The fields of a tensor whose data is in raw_input_contents, in field-number order.
_HEAD = tuple(
    pb.ModelInferRequest.InferInputTensor.DESCRIPTOR.fields_by_name[name]
    for name in ("name", "datatype", "shape")
)


def _rows(field: str, shape: list[int]) -> int:
    if len(shape) != 1 or shape[0] < 0:
        raise InvalidRequestError(
            f"{field}: shape {shape} is not [n]; each input is one rank-1 tensor with one value "
            "per row (no broadcasting)"
        )
    return shape[0]


def _from_contents(
    field: str, tensor: Any, rows: int, info: TensorInfo, policy: InputPolicy
) -> list[Any]:
    datatype = tensor.datatype
    wanted = _CONTENTS.get(datatype)
    if wanted is None:
        raise InvalidRequestError(
            f"{field}: {datatype} data travels in raw_input_contents only (no contents field)"
        )
    contents = tensor.contents
    other = sorted(f.name for f, _ in contents.ListFields() if f.name != wanted)
    if other:
        raise InvalidRequestError(
            f"{field}: {datatype} values belong in contents.{wanted}, not {', '.join(other)}"
        )
    values = list(getattr(contents, wanted))
    if len(values) != rows:
        raise InvalidRequestError(
            f"{field}: {len(values)} values in contents.{wanted} but shape says [{rows}]"
        )
    if datatype == "BYTES":
        texts = []
        for i, item in enumerate(values):
            try:
                texts.append(item.decode("utf-8"))
            except UnicodeDecodeError:
                raise InvalidRequestError(
                    f"{field}[{i}]: BYTES element is not UTF-8 text"
                ) from None
        values = texts
    elif datatype in ("INT8", "INT16", "UINT8", "UINT16"):
        info_range = np.iinfo(np.dtype(v2.NUMERIC[datatype]))
        if any(v < info_range.min or v > info_range.max for v in values):
            raise InvalidRequestError(f"{field}: a value is outside {datatype}'s range")
    return column_values(field, values, info, policy)


def columns_from_infer(
    request: pb.ModelInferRequest,
    inputs: Mapping[str, TensorInfo],
    policy: InputPolicy,
    *,
    columnar: bool = True,
) -> tuple[dict[str, Any], int]:
    """A ``ModelInferRequest``'s tensors → (columns, rows), checked as REST's ``/infer``.

    Raises:
        InvalidRequestError: naming the input: unknown, sent twice or missing; a shape
            other than ``[n]`` or differing ``n``; a datatype that does not fit; data that
            does not hold the shape; raw and typed contents mixed.
    """
    tensors = list(request.inputs)
    if not tensors:
        raise InvalidRequestError(
            "inputs: expected a non-empty list of tensors, one per model input"
        )
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(tensors):
        raise InvalidRequestError(
            f"raw_input_contents: {len(raw)} entries for {len(tensors)} inputs; send one per "
            "input, in the order of inputs"
        )
    if policy.ignored:  # the version's known non-feature columns: taken and dropped
        kept = [
            i for i, t in enumerate(tensors) if t.name in inputs or t.name not in policy.ignored
        ]
        tensors = [tensors[i] for i in kept]
        raw = [raw[i] for i in kept] if raw else raw
    described = [_described(tensor) for tensor in tensors]
    seen: set[str] = set()
    for i, (name, _, _, _) in enumerate(described):
        if name not in inputs:
            raise InvalidRequestError(
                f"inputs[{i}]: unexpected input {describe(name)}; the model's inputs are: "
                + ", ".join(inputs)
            )
        if name in seen:
            raise InvalidRequestError(f"inputs[{i}]: input {name!r} is sent twice")
        seen.add(name)
    missing = [n for n in inputs if n not in seen]
    if missing:
        raise InvalidRequestError(
            f"inputs: missing input {missing[0]!r}; the model's inputs are: {', '.join(inputs)}"
        )
    if not columnar:
        return _tensors_from_infer(tensors, raw, inputs, policy)
    columns: dict[str, Any] = {}
    rows: int | None = None
    for i, (tensor, (name, datatype, shape, typed)) in enumerate(
        zip(tensors, described, strict=True)
    ):
        info = inputs[name]
        field = f"inputs.{name}"
        n = _rows(field, shape)
        if rows is not None and n != rows:
            raise InvalidRequestError(
                f"{field}: shape [{n}] but other inputs have [{rows}]; every input needs the "
                "same number of rows"
            )
        rows = n
        if (info.is_string and datatype != "BYTES") or (
            not info.is_string and datatype not in v2.NUMERIC
        ):
            expected = "BYTES" if info.is_string else "a number type such as FP32"
            raise InvalidRequestError(
                f"{field}: datatype {describe(datatype)} does not fit input dtype {info.dtype}; "
                f"send {expected}"
            )
        if raw:
            if typed:
                raise InvalidRequestError(
                    f"{field}: contents and raw_input_contents are both set; use one of them "
                    "for every input"
                )
            columns[name] = v2.binary_column(field, datatype, raw[i], n, info, policy)
        else:
            columns[name] = _from_contents(field, tensor, n, info, policy)
    if not rows:
        raise InvalidRequestError("inputs: empty batch (shape [0]); send at least one row")
    return columns, rows


def _described(tensor: Any) -> tuple[str, str, list[int], bool]:
    """A tensor's name, datatype, shape and whether typed contents are set. A tensor of
    exactly those three fields (raw contents travel beside it) is read on one
    ``ListFields`` call; any other is read field by field."""
    fields = tensor.ListFields()
    if len(fields) == 3 and (fields[0][0], fields[1][0], fields[2][0]) == _HEAD:
        return fields[0][1], fields[1][1], list(fields[2][1]), False
    typed = tensor.HasField("contents") and bool(tensor.contents.ListFields())
    return tensor.name, tensor.datatype, list(tensor.shape), typed


def _tensors_from_infer(
    tensors: list[Any], raw: list[bytes], inputs: Mapping[str, TensorInfo], policy: InputPolicy
) -> tuple[dict[str, Any], int]:
    """A tensor model's inputs, each of its signature's rank and fixed dimensions, from
    ``raw_input_contents`` or the typed contents (:func:`v2.infer_tensors` for gRPC)."""
    out: dict[str, np.ndarray[Any, Any]] = {}
    for i, tensor in enumerate(tensors):
        info = inputs[tensor.name]
        field = f"inputs.{tensor.name}"
        dims = check_dims(field, list(tensor.shape))
        datatype = v2.tensor_datatype(field, tensor.datatype, info)
        if raw:
            if tensor.HasField("contents") and tensor.contents.ListFields():
                raise InvalidRequestError(
                    f"{field}: contents and raw_input_contents are both set; use one of them "
                    "for every input"
                )
            out[tensor.name] = v2.binary_tensor_in(field, datatype, raw[i], dims, info, policy)
            continue
        wanted = _CONTENTS.get(datatype)
        if wanted is None:
            raise InvalidRequestError(
                f"{field}: {datatype} data travels in raw_input_contents only (no contents field)"
            )
        values = list(getattr(tensor.contents, wanted))
        if len(values) != math.prod(dims):
            raise InvalidRequestError(
                f"{field}: {len(values)} values in contents.{wanted} do not hold shape {dims}"
            )
        if info.is_string:
            array = np.empty(len(values), dtype=object)
            array[:] = values
        else:
            array = cast_numbers(field, np.array(values), info, policy)
        check_shape(field, dims, info)
        out[tensor.name] = array.reshape(dims)
    return out, batch_of(out, "inputs")


def _tensor_metadata(info: TensorInfo) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=info.name,
        datatype=v2.DATATYPES.get(info.dtype, "FP32"),
        shape=[-1 if d is None else d for d in info.shape],
    )


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    """The protocol's six RPCs over the server's shared prediction path."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def ServerLive(  # noqa: N802 - the RPC's name
        self, request: pb.ServerLiveRequest, context: aio.ServicerContext
    ) -> pb.ServerLiveResponse:
        async def work(call: GrpcCall) -> pb.ServerLiveResponse:
            return pb.ServerLiveResponse(live=True)

        return await self.gate.run(context, _PREFIX + "ServerLive", work, False)

    async def ServerReady(  # noqa: N802
        self, request: pb.ServerReadyRequest, context: aio.ServicerContext
    ) -> pb.ServerReadyResponse:
        async def work(call: GrpcCall) -> pb.ServerReadyResponse:
            return pb.ServerReadyResponse(ready=self.gate.state.ready)

        return await self.gate.run(context, _PREFIX + "ServerReady", work, False)

    async def ServerMetadata(  # noqa: N802
        self, request: pb.ServerMetadataRequest, context: aio.ServicerContext
    ) -> pb.ServerMetadataResponse:
        async def work(call: GrpcCall) -> pb.ServerMetadataResponse:
            return pb.ServerMetadataResponse(name="mooring", version="1", extensions=[])

        return await self.gate.run(context, _PREFIX + "ServerMetadata", work, False)

    async def ModelReady(  # noqa: N802
        self, request: pb.ModelReadyRequest, context: aio.ServicerContext
    ) -> pb.ModelReadyResponse:
        async def work(call: GrpcCall) -> pb.ModelReadyResponse:
            manager = self.gate.state.manager(request.name)
            call.model = manager.name
            version = _version(request.version, "version")
            if version is None:
                return pb.ModelReadyResponse(ready=manager.ready)
            if not manager.knows(version):
                raise NotFoundError(
                    f"model '{manager.name}' has no version {version} here; served: "
                    f"{sorted(manager.served_versions()) or 'none'}"
                )
            return pb.ModelReadyResponse(ready=version in manager.served_versions())

        return await self.gate.run(context, _PREFIX + "ModelReady", work, False)

    async def ModelMetadata(  # noqa: N802
        self, request: pb.ModelMetadataRequest, context: aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        async def work(call: GrpcCall) -> pb.ModelMetadataResponse:
            manager = self.gate.state.manager(request.name)
            call.model = manager.name
            model = manager.model_for_metadata(_version(request.version, "version"))
            return pb.ModelMetadataResponse(
                name=manager.name,
                versions=[str(v) for v in manager.served_versions()],
                platform="tensorflow_savedmodel",
                inputs=[_tensor_metadata(i) for i in model.inputs.values()],
                outputs=[_tensor_metadata(i) for i in model.outputs.values()],
            )

        return await self.gate.run(context, _PREFIX + "ModelMetadata", work, False)

    async def ModelInfer(  # noqa: N802
        self, request: pb.ModelInferRequest, context: aio.ServicerContext
    ) -> pb.ModelInferResponse:
        if any(out.name in EXPLAIN_INFO for out in request.outputs):
            # An explanation: its own limit and thread, never an inference permit.
            return await self.gate.run(
                context, _PREFIX + "ModelInfer", lambda call: self._explain(call, request), False
            )
        return await self.gate.run(
            context,
            _PREFIX + "ModelInfer",
            lambda call: self._infer(call, request),
            True,
            request.ByteSize(),
        )

    async def _infer(self, call: GrpcCall, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        gate = self.gate
        manager = gate.state.manager(request.model_name)
        call.model = manager.name
        gate.trace(call)
        version = _version(request.model_version, "model_version")
        slot = gate.predictor.route(call, manager, version=version, label=None)
        model = slot.model
        wanted = [out.name for out in request.outputs] or list(model.outputs)
        for i, name in enumerate(wanted):
            if name not in model.outputs:
                raise InvalidRequestError(
                    f"outputs[{i}]: unknown output {describe(name)}; outputs: "
                    + ", ".join(model.outputs)
                )
        columns, rows = columns_from_infer(
            request, model.inputs, gate.predictor.policy_for(model), columnar=model.columnar
        )
        outputs = await gate.predictor.serve(call, manager, slot, columns, rows)
        response = pb.ModelInferResponse(
            model_name=manager.name, model_version=str(slot.version), id=request.id
        )
        for name in dict.fromkeys(wanted):
            value = outputs[name]
            kind = "BYTES" if value.dtype == object else _DATATYPE_OF.get(value.dtype, "FP32")
            response.outputs.add(name=name, datatype=kind, shape=list(value.shape))
            response.raw_output_contents.append(v2.binary_tensor(value))
        return response

    async def _explain(
        self, call: GrpcCall, request: pb.ModelInferRequest
    ) -> pb.ModelInferResponse:
        """``ModelInfer`` asking for ``attributions`` (with ``baseline``, ``explained``):
        the inputs explained by the version that would answer them; the columns, what is
        explained, the method and the unit in the response's parameters."""
        call.explaining = True
        gate = self.gate
        manager = gate.state.manager(request.model_name)
        call.model = manager.name
        version = _version(request.model_version, "model_version")
        slot = gate.predictor.route(call, manager, version=version, label=None)
        model = slot.model
        wanted = [out.name for out in request.outputs]
        for i, name in enumerate(wanted):
            if name not in EXPLAIN_INFO:
                raise InvalidRequestError(
                    f"outputs[{i}]: {describe(name)} is not an output of an explanation; "
                    "ask for " + ", ".join(EXPLAIN_INFO) + " (or infer without them)"
                )
        columns, rows = columns_from_infer(
            request, model.inputs, gate.predictor.policy_for(model), columnar=model.columnar
        )
        explanation = await gate.predictor.explaining.explain(model, columns, rows)
        explained = explanation_tensors(explanation)
        response = pb.ModelInferResponse(
            model_name=manager.name, model_version=str(slot.version), id=request.id
        )
        for name in dict.fromkeys(wanted):
            value = explained["tensors"][name]
            response.outputs.add(name=name, datatype="FP32", shape=list(value.shape))
            response.raw_output_contents.append(v2.binary_tensor(value))
        for key, value in explained["parameters"].items():
            # The columns as a JSON list: a column's name may hold any character.
            text = value if isinstance(value, str) else orjson.dumps(value).decode()
            response.parameters[key].string_param = text
        return response


_UNIMPLEMENTED = (
    "{method} is a Triton extension that mooring does not serve; the Open Inference "
    "Protocol's ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata and "
    "ModelInfer are served"
)


class _TritonExtensions(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Answers every other method of the service UNIMPLEMENTED, naming it."""

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = details.method
        if not method.startswith(_PREFIX) or method.removeprefix(_PREFIX) in _SERVED:
            return None
        message = _UNIMPLEMENTED.format(method=method)

        async def unary(request: bytes, context: aio.ServicerContext) -> bytes:
            answer_error(context, grpc.StatusCode.UNIMPLEMENTED, message)
            return b""

        async def stream(requests: Any, context: aio.ServicerContext) -> None:
            answer_error(context, grpc.StatusCode.UNIMPLEMENTED, message)

        if method.endswith("/ModelStreamInfer"):
            return grpc.stream_stream_rpc_method_handler(stream)
        return grpc.unary_unary_rpc_method_handler(unary)


def add_service(server: aio.Server, gate: Gate) -> None:
    """Register the protocol's service, and the UNIMPLEMENTED answer for Triton's extensions."""
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        InferenceService(gate), server
    )
    server.add_generic_rpc_handlers((_TritonExtensions(),))
