"""TF Serving's gRPC API: ``tensorflow.serving.PredictionService`` and ``ModelService``.

Wire-compatible with TF Serving (the stubs of ``tensorflow-serving-api``):

* ``ModelSpec``: ``name``; ``version`` or ``version_label`` (``production``, ``canary``:
  the served aliases, as REST's ``/labels/``), neither: the canary split by the
  ``x-request-key`` metadata; ``signature_name`` empty or ``serving_default``. The
  response's ``model_spec`` names the version that answered.
* ``Predict``: one rank-1 ``TensorProto`` per input (:mod:`.tensors`), ``output_filter``.
* ``Classify`` / ``Regress``: ``tf.Example`` inputs read with the version's inputs. A
  Keras 3 export has no classify or regress signature, so they are derived for every
  tabular model from its ``serving_default`` outputs and ``mooring.json``: Classify →
  one class per label value with its probability as score (binary and multiclass
  models); Regress → one score per example (a regression model's value, a binary
  classifier's positive-class probability). ``MultiInference`` runs several of them over
  one prediction of the same examples.
* ``GetModelMetadata`` (``metadata_field = ["signature_def"]``) → a ``SignatureDefMap``;
  ``GetModelStatus`` as REST's status document.

Examples:
    >>> stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)  # doctest: +SKIP
    >>> request = predict_pb2.PredictRequest()  # doctest: +SKIP
    >>> request.model_spec.name = "income"  # doctest: +SKIP
    >>> request.inputs["age"].CopyFrom(tf.make_tensor_proto([39.0]))  # doctest: +SKIP
    >>> stub.Predict(request, timeout=5).model_spec.version.value  # doctest: +SKIP
    1
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
import numpy as np
from grpc import aio
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    input_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from mooring.errors import NotFoundError
from mooring.formats._columns import describe
from mooring.formats._model import PROBABILITIES, SIGNATURE, VALUE, TensorInfo
from mooring.serving._errors import InvalidRequestError
from mooring.serving._grpc.gate import Gate, GrpcCall, answer_error
from mooring.serving._grpc.tensors import (
    columns_from_examples,
    columns_from_tensors,
    fill_tensor,
    tensors_from_protos,
)
from mooring.serving._loaded import ServedModel
from mooring.serving._models import ModelManager, Slot

__all__ = ["add_services", "classify_result", "regress_result", "signature_def_map"]

PREDICTION = "/tensorflow.serving.PredictionService/"
MODEL = "/tensorflow.serving.ModelService/"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
_DTYPES = {"float32": 1, "float64": 2, "int32": 3, "int64": 9, "string": 7}  # types_pb2 enums
_STATES = get_model_status_pb2.ModelVersionStatus.State
_OK, _UNAVAILABLE = 0, 14  # tensorflow.error.Code


def _signature(name: str) -> None:
    if name not in ("", SIGNATURE):
        raise InvalidRequestError(
            f"signature_name {describe(name)} does not exist; the model serves {SIGNATURE!r} "
            "(leave it empty for the default)"
        )


def _target(gate: Gate, call: GrpcCall, spec: model_pb2.ModelSpec) -> tuple[ModelManager, Any]:
    """The manager a ``ModelSpec`` names and its (version, label); starts the call's span."""
    manager = gate.state.manager(spec.name)
    call.model = manager.name
    gate.trace(call)
    version = spec.version.value if spec.HasField("version") else None
    label = spec.version_label or None
    if version is not None and label is not None:
        raise InvalidRequestError(
            "model_spec: set version or version_label, not both "
            f"(got version {version} and label {label!r})"
        )
    return manager, (version, label)


def _route(gate: Gate, call: GrpcCall, spec: model_pb2.ModelSpec) -> tuple[ModelManager, Slot]:
    manager, (version, label) = _target(gate, call, spec)
    _signature(spec.signature_name)
    return manager, gate.predictor.route(call, manager, version=version, label=label)


def _spec_out(target: model_pb2.ModelSpec, name: str, version: int) -> None:
    target.name = name
    target.version.value = version
    target.signature_name = SIGNATURE


def _examples(request_input: input_pb2.Input) -> tuple[list[Any], Any]:
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        return list(request_input.example_list.examples), None
    if kind == "example_list_with_context":
        listed = request_input.example_list_with_context
        return list(listed.examples), listed.context
    raise InvalidRequestError(
        "input: set example_list or example_list_with_context (tf.Example protos)"
    )


def _task(model: ServedModel) -> str:
    return str(model.metadata.get("task", ""))


def _check_classify(model: ServedModel) -> None:
    if PROBABILITIES not in model.outputs or _task(model) not in ("binary", "multiclass"):
        raise InvalidRequestError(
            f"Classify needs a classification model; model '{model.name}' version "
            f"{model.version} is a {_task(model) or 'model without a task'}: use Regress or Predict"
        )


def _check_regress(model: ServedModel) -> None:
    task = _task(model)
    if not (
        (task == "regression" and VALUE in model.outputs)
        or (task == "binary" and PROBABILITIES in model.outputs)
    ):
        raise InvalidRequestError(
            f"Regress needs one score per example: a regression model or a binary classifier; "
            f"model '{model.name}' version {model.version} is {task or 'without a task'}: "
            "use Classify or Predict"
        )


def classify_result(
    model: ServedModel, outputs: Mapping[str, np.ndarray[Any, Any]]
) -> classification_pb2.ClassificationResult:
    """One ``Classifications`` per example: every label value with its probability.

    The labels are the model's label vocabulary (``mooring.json``), in the order of the
    probability columns; a model without one is labelled by class id.
    """
    probabilities = np.asarray(outputs[PROBABILITIES], dtype=np.float32)
    if probabilities.ndim == 1:
        probabilities = np.stack([1.0 - probabilities, probabilities], axis=1)
    vocabulary = model.metadata.get("label_vocabulary") or []
    labels = [str(v) for v in vocabulary]
    if len(labels) != probabilities.shape[1]:
        labels = [str(i) for i in range(probabilities.shape[1])]
    result = classification_pb2.ClassificationResult()
    for row in probabilities.tolist():
        entry = result.classifications.add()
        for label, score in zip(labels, row, strict=True):
            entry.classes.add(label=label, score=score)
    return result


def regress_result(
    model: ServedModel, outputs: Mapping[str, np.ndarray[Any, Any]]
) -> regression_pb2.RegressionResult:
    """One ``Regression`` per example: the value, or a binary classifier's positive share."""
    if _task(model) == "regression":
        values = np.asarray(outputs[VALUE], dtype=np.float32).reshape(-1)
    else:
        probabilities = np.asarray(outputs[PROBABILITIES], dtype=np.float32)
        values = probabilities[:, -1] if probabilities.ndim == 2 else probabilities
    result = regression_pb2.RegressionResult()
    for value in values.tolist():
        result.regressions.add(value=value)
    return result


def _tensor_info(info: TensorInfo, name: str) -> meta_graph_pb2.TensorInfo:
    out = meta_graph_pb2.TensorInfo(name=name, dtype=_DTYPES.get(info.dtype, 0))
    for size in info.shape:
        out.tensor_shape.dim.add(size=-1 if size is None else size)
    return out


def signature_def_map(model: ServedModel) -> get_model_metadata_pb2.SignatureDefMap:
    """The model's signature as ``GetModelMetadata`` returns it (TF Serving's tensor names)."""
    found = get_model_metadata_pb2.SignatureDefMap()
    signature = found.signature_def[SIGNATURE]
    signature.method_name = "tensorflow/serving/predict"
    for name, info in model.inputs.items():
        signature.inputs[name].CopyFrom(_tensor_info(info, f"{SIGNATURE}_{name}:0"))
    for name, info in model.outputs.items():
        signature.outputs[name].CopyFrom(_tensor_info(info, f"StatefulPartitionedCall:{name}"))
    return found


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):  # type: ignore[misc]
    """``tensorflow.serving.PredictionService`` over the server's shared prediction path."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def Predict(  # noqa: N802 - the RPC's name
        self, request: predict_pb2.PredictRequest, context: aio.ServicerContext
    ) -> predict_pb2.PredictResponse:
        return await self.gate.run(
            context,
            PREDICTION + "Predict",
            lambda call: self._predict(call, request),
            True,
            request.ByteSize(),
        )

    async def _predict(
        self, call: GrpcCall, request: predict_pb2.PredictRequest
    ) -> predict_pb2.PredictResponse:
        predictor = self.gate.predictor
        manager, slot = _route(self.gate, call, request.model_spec)
        model = slot.model
        wanted = list(dict.fromkeys(request.output_filter)) or list(model.outputs)
        unknown = [n for n in wanted if n not in model.outputs]
        if unknown:
            raise InvalidRequestError(
                f"output_filter: unknown output {describe(unknown[0])}; outputs: "
                + ", ".join(model.outputs)
            )
        decode = columns_from_tensors if model.columnar else tensors_from_protos
        columns, rows = decode(request.inputs, model.inputs, predictor.policy_for(model))
        outputs = await predictor.serve(call, manager, slot, columns, rows)
        response = predict_pb2.PredictResponse()
        _spec_out(response.model_spec, manager.name, slot.version)
        answer = response.outputs
        for name in wanted:
            fill_tensor(answer[name], outputs[name])
        return response

    async def _examples_through(
        self, call: GrpcCall, spec: model_pb2.ModelSpec, request_input: input_pb2.Input, check: Any
    ) -> tuple[ModelManager, Slot, dict[str, np.ndarray[Any, Any]]]:
        predictor = self.gate.predictor
        manager, slot = _route(self.gate, call, spec)
        check(slot.model)
        examples, context = _examples(request_input)
        columns, rows = columns_from_examples(
            examples, context, slot.model.inputs, predictor.policy
        )
        outputs = await predictor.serve(call, manager, slot, columns, rows)
        return manager, slot, outputs

    async def Classify(  # noqa: N802
        self, request: classification_pb2.ClassificationRequest, context: aio.ServicerContext
    ) -> classification_pb2.ClassificationResponse:
        async def work(call: GrpcCall) -> classification_pb2.ClassificationResponse:
            manager, slot, outputs = await self._examples_through(
                call, request.model_spec, request.input, _check_classify
            )
            response = classification_pb2.ClassificationResponse()
            _spec_out(response.model_spec, manager.name, slot.version)
            response.result.CopyFrom(classify_result(slot.model, outputs))
            return response

        return await self.gate.run(context, PREDICTION + "Classify", work, True, request.ByteSize())

    async def Regress(  # noqa: N802
        self, request: regression_pb2.RegressionRequest, context: aio.ServicerContext
    ) -> regression_pb2.RegressionResponse:
        async def work(call: GrpcCall) -> regression_pb2.RegressionResponse:
            manager, slot, outputs = await self._examples_through(
                call, request.model_spec, request.input, _check_regress
            )
            response = regression_pb2.RegressionResponse()
            _spec_out(response.model_spec, manager.name, slot.version)
            response.result.CopyFrom(regress_result(slot.model, outputs))
            return response

        return await self.gate.run(context, PREDICTION + "Regress", work, True, request.ByteSize())

    async def MultiInference(  # noqa: N802
        self, request: inference_pb2.MultiInferenceRequest, context: aio.ServicerContext
    ) -> inference_pb2.MultiInferenceResponse:
        return await self.gate.run(
            context,
            PREDICTION + "MultiInference",
            lambda call: self._multi(call, request),
            True,
            request.ByteSize(),
        )

    async def _multi(
        self, call: GrpcCall, request: inference_pb2.MultiInferenceRequest
    ) -> inference_pb2.MultiInferenceResponse:
        tasks = list(request.tasks)
        if not tasks:
            raise InvalidRequestError("tasks: no tasks; send one per classify or regress result")
        first = tasks[0].model_spec
        checks = {CLASSIFY_METHOD: _check_classify, REGRESS_METHOD: _check_regress}
        seen: set[str] = set()
        for i, task in enumerate(tasks):
            spec = task.model_spec
            if (spec.name, spec.version_label, spec.HasField("version"), spec.version.value) != (
                first.name, first.version_label, first.HasField("version"), first.version.value
            ):  # fmt: skip
                raise InvalidRequestError(
                    f"tasks[{i}].model_spec: every task must name the same model and version "
                    f"as tasks[0] ({first.name!r})"
                )
            if task.method_name not in checks:
                raise InvalidRequestError(
                    f"tasks[{i}].method_name: {describe(task.method_name)} is not one of "
                    f"{CLASSIFY_METHOD!r}, {REGRESS_METHOD!r}"
                )
            if task.method_name in seen:
                raise InvalidRequestError(
                    f"tasks[{i}]: {task.method_name!r} is asked for twice; ask once"
                )
            seen.add(task.method_name)
            _signature(spec.signature_name)

        def check(model: ServedModel) -> None:
            for task in tasks:
                checks[task.method_name](model)

        manager, slot, outputs = await self._examples_through(call, first, request.input, check)
        response = inference_pb2.MultiInferenceResponse()
        for task in tasks:
            result = response.results.add()
            _spec_out(result.model_spec, manager.name, slot.version)
            if task.method_name == CLASSIFY_METHOD:
                result.classification_result.CopyFrom(classify_result(slot.model, outputs))
            else:
                result.regression_result.CopyFrom(regress_result(slot.model, outputs))
        return response

    async def GetModelMetadata(  # noqa: N802
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: aio.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        async def work(call: GrpcCall) -> get_model_metadata_pb2.GetModelMetadataResponse:
            manager, (version, label) = _target(self.gate, call, request.model_spec)
            fields = list(request.metadata_field)
            if not fields:
                raise InvalidRequestError(
                    "metadata_field: empty; ask for ['signature_def'], the one field served"
                )
            for name in fields:
                if name != "signature_def":
                    raise InvalidRequestError(
                        f"metadata_field: {describe(name)} is not supported; the one field "
                        "served is 'signature_def'"
                    )
            if label is not None:
                version = manager.route(label=label).version
            model = manager.model_for_metadata(version)
            call.version = str(model.version)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            _spec_out(response.model_spec, manager.name, model.version)
            response.metadata["signature_def"].Pack(signature_def_map(model))
            return response

        return await self.gate.run(context, PREDICTION + "GetModelMetadata", work, False)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):  # type: ignore[misc]
    """``tensorflow.serving.ModelService``: each version's state, as REST's status document."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def GetModelStatus(  # noqa: N802
        self, request: get_model_status_pb2.GetModelStatusRequest, context: aio.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        async def work(call: GrpcCall) -> get_model_status_pb2.GetModelStatusResponse:
            manager, (version, label) = _target(self.gate, call, request.model_spec)
            served = {v: _STATES.AVAILABLE for v in manager.served_versions()}
            served.update({v: _STATES.LOADING for v in manager.loading if v not in served})
            failures = dict(manager.failures)
            if label is not None:
                served = {manager.route(label=label).version: _STATES.AVAILABLE}
                failures = {}
            elif version is not None:
                if version not in served and version not in failures:
                    raise NotFoundError(
                        f"model '{manager.name}' version {version} is not served; "
                        f"served: {sorted(served) or 'none'}"
                    )
                served = {k: v for k, v in served.items() if k == version}
                failures = {k: v for k, v in failures.items() if k == version}
            response = get_model_status_pb2.GetModelStatusResponse()
            for number, state in sorted(served.items(), reverse=True):
                entry = response.model_version_status.add(version=number, state=state)
                entry.status.error_code = _OK
            for number, message in sorted(failures.items(), reverse=True):
                if number not in served:
                    entry = response.model_version_status.add(version=number, state=_STATES.END)
                    entry.status.error_code = _UNAVAILABLE
                    entry.status.error_message = message
            return response

        return await self.gate.run(context, MODEL + "GetModelStatus", work, False)

    async def HandleReloadConfigRequest(  # noqa: N802
        self, request: Any, context: aio.ServicerContext
    ) -> Any:
        answer_error(
            context,
            grpc.StatusCode.UNIMPLEMENTED,
            "HandleReloadConfigRequest is not served: mooring serve follows the registry's "
            "deployment record (mooring models deploy), not a model config file",
        )


def add_services(server: aio.Server, gate: Gate) -> None:
    """Register TF Serving's two services on ``server``."""
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(gate), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(gate), server)
