"""gRPC shares REST's limits in a real ``mooring serve --grpc-port``: one admission counter
(``max_in_flight``), the deadline, and a message size limit."""

from __future__ import annotations

import gc
import itertools
import statistics
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

from mooring.formats._metrics import REQUESTS_REFUSED, read_samples, total
from tests._support.grpc import (
    GrpcServerThread,
    channel,
    model_dir_sources,
    predict_request,
    prediction_stub,
    tensor,
)
from tests._support.held import held_model
from tests._support.serve_process import RawConnection, ServeProcess, raw_request
from tests._support.server import FAST, NAME
from tests._support.serving_model import row
from tests._support.waiting import PATIENCE, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tight(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]
) -> Iterator[ServeProcess]:
    """One request in flight at a time and 2 KiB gRPC messages; a held request's body
    timeout and the deadline are far longer than any test takes."""
    folder = tmp_path_factory.mktemp("grpc-tight")
    with ServeProcess(
        folder,
        model_dirs["a"],
        grpc=True,
        max_in_flight=1,
        grpc_max_message_bytes=2048,
        body_timeout_s=PATIENCE,
        deadline_ms=PATIENCE * 1000,
    ) as proc:
        yield proc


def _code(stub: Any, request: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError, match=r".") as caught:
        stub.Predict(request, timeout=PATIENCE)
    return caught.value.code(), caught.value.details() or ""


def _metric(proc: ServeProcess, name: str) -> dict[str, float]:
    """Samples of ``name`` on the server's /metrics, by their labels' values."""
    samples = read_samples(httpx.get(f"{proc.url}/metrics").text)
    return {",".join(s.labels.values()): s.value for s in samples if s.name == name}


def _served(stub: Any) -> bool:
    """A gRPC Predict answered (False: refused as unavailable; other errors raise)."""
    try:
        stub.Predict(predict_request([row()]), timeout=PATIENCE)
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.UNAVAILABLE:
            raise
        return False
    return True


def test_a_rest_request_in_the_model_sheds_grpc(model_dirs: dict[str, Path]) -> None:
    """One admission count for both: a REST prediction in the model takes the only permit,
    and gRPC is refused UNAVAILABLE until it is answered. A REST request whose body never
    comes holds no permit (it is receiving), so gRPC is served meanwhile."""
    cfg = FAST.model_copy(update={"max_in_flight": 1, "deadline_ms": PATIENCE * 1000,
                                  "body_timeout_s": PATIENCE})  # fmt: skip
    with GrpcServerThread(model_dir_sources(model_dirs["a"]), cfg) as server:
        server.wait_ready()
        door = server.app.state.mooring.door
        admission = door.admission
        body = orjson.dumps({"instances": [row()]})
        request = raw_request("POST", f"/v1/models/{NAME}:predict", body)
        with (
            held_model(server.app, NAME) as held,
            channel(server.target) as opened,
            RawConnection(server.port) as trickle,
        ):
            stub = prediction_stub(opened)
            trickle.send(request[:-5])  # its body never completes
            wait_until(lambda: admission.receiving == 1, "the request to be receiving its body")
            held.hold = False
            assert _served(stub)
            held.hold = True
            held.entered.clear()  # entered by the gRPC call just served
            with RawConnection(server.port) as running:
                running.send(request)
                held.wait_entered("the REST request to be in the model")
                assert admission.in_flight == 1
                code, details = _code(stub, predict_request([row()]))
                assert code == grpc.StatusCode.UNAVAILABLE, (code, details)
                assert "1 requests in flight" in details
                refused = read_samples(server.client.get("/metrics").text)
                assert any(
                    r.name == total(REQUESTS_REFUSED) and r.labels["reason"] == "in_flight"
                    for r in refused
                )
                held.hold = False
                held.release.set()
                assert running.answer()[0] == 200
            assert _served(stub)


def test_a_passed_deadline_is_deadline_exceeded(model_dirs: dict[str, Path]) -> None:
    cfg = FAST.model_copy(update={"deadline_ms": 0.001})
    with GrpcServerThread(model_dir_sources(model_dirs["a"]), cfg) as server:
        server.wait_ready()
        with channel(server.target) as opened:
            code, details = _code(prediction_stub(opened), predict_request([row()]))
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED, (code, details)
        assert "deadline" in details
        metrics = server.client.get("/metrics").text
        assert 'protocol="grpc",status="504"' in metrics


def test_a_message_over_the_limit_is_resource_exhausted(tight: ServeProcess) -> None:
    with channel(tight.grpc_target) as opened:
        code, details = _code(prediction_stub(opened), predict_request([row()] * 200))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, (code, details)
    assert "vs. 2048" in details, details  # the limit, [serving] grpc_max_message_bytes


def test_rest_and_grpc_bodies_share_one_budget(model_dirs: dict[str, Path]) -> None:
    """A REST body arriving holds its length of ``body_budget_bytes``; a gRPC message that
    would pass what is left is refused UNAVAILABLE naming the budget, a small one is
    served, and once the REST request is answered the whole budget is free again."""
    update = {"body_budget_bytes": 64 * 1024, "min_body_rate_bytes_s": 0}
    update |= {"deadline_ms": PATIENCE * 1000, "body_timeout_s": PATIENCE}
    cfg = FAST.model_copy(update=update)
    with GrpcServerThread(model_dir_sources(model_dirs["a"]), cfg) as server:
        server.wait_ready()
        door = server.app.state.mooring.door
        admission = door.admission
        rows = [row()] * 600
        request = raw_request(
            "POST", f"/v1/models/{NAME}:predict", orjson.dumps({"instances": rows})
        )
        cut = request.index(b"\r\n\r\n") + 4
        large = predict_request([row()] * 1500)
        assert 64 * 1024 - (len(request) - cut) < large.ByteSize() < 64 * 1024
        with channel(server.target) as opened, RawConnection(server.port) as arriving:
            stub = prediction_stub(opened)
            arriving.send(request[: cut + 10])
            held = len(request) - cut
            wait_until(lambda: admission.body_bytes == held, "the REST body to be held")
            code, details = _code(stub, large)
            assert code == grpc.StatusCode.UNAVAILABLE, (code, details)
            assert "body_budget_bytes" in details, details
            # Refused by its size before it is parsed: bytes that are no message at all
            # get the budget's answer, not the parser's.
            unparsed = opened.unary_unary("/tensorflow.serving.PredictionService/Predict")
            with pytest.raises(grpc.RpcError, match="body_budget_bytes") as refused:
                unparsed(b"\xff" * large.ByteSize(), timeout=PATIENCE)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert _served(stub)  # one row fits in what is left
            arriving.send(request[cut + 10 :])
            assert arriving.answer()[0] == 200
        wait_until(lambda: admission.body_bytes == 0, "the budget to be free",
                   seen=lambda: admission.body_bytes)  # fmt: skip
        with channel(server.target) as opened:
            assert prediction_stub(opened).Predict(large, timeout=PATIENCE).outputs
        assert admission.body_bytes == 0


def test_a_grpc_flood_past_capacity_is_refused_without_waiting(
    model_dirs: dict[str, Path],
) -> None:
    """64 Predict calls at once against 4 permits, the model holding the first batch: 4 are
    admitted and the other 60 are refused UNAVAILABLE while nothing has left the model (a
    refusal waits for no prediction); once it lets go, the 4 are answered and the server
    serves on."""
    cfg = FAST.model_copy(update={"max_in_flight": 4, "deadline_ms": PATIENCE * 1000})
    with GrpcServerThread(model_dir_sources(model_dirs["a"]), cfg) as server:
        server.wait_ready()
        door = server.app.state.mooring.door
        admission = door.admission
        with held_model(server.app, NAME) as held, channel(server.target) as opened:
            stub = prediction_stub(opened)
            calls = [
                stub.Predict.future(predict_request([row()]), timeout=PATIENCE) for _ in range(64)
            ]
            held.wait_entered("a batch to be in the model")
            wait_until(
                lambda: sum(call.done() for call in calls) == 60,
                "60 calls refused while 4 are held",
                seen=lambda: (admission.in_flight, sum(call.done() for call in calls)),
            )
            refused = [call for call in calls if call.done()]
            assert {call.code() for call in refused} == {grpc.StatusCode.UNAVAILABLE}
            assert all("4 requests in flight" in (call.details() or "") for call in refused)
            assert admission.in_flight == 4
            held.release.set()
            admitted = [call for call in calls if all(call is not r for r in refused)]
            assert len(admitted) == 4
            assert all(call.result(timeout=PATIENCE).outputs for call in admitted)
            assert _served(stub)
        counted = _refused(server)
        assert counted == 60, counted


def _refused(server: GrpcServerThread) -> float:
    """Requests the door refused for want of a permit, from the server's /metrics."""
    samples = read_samples(server.client.get("/metrics").text)
    return sum(
        s.value
        for s in samples
        if s.name == total(REQUESTS_REFUSED) and s.labels.get("reason") == "in_flight"
    )


def _invalid(rows: int) -> Any:
    """A Predict request of ``rows`` rows whose ``age`` is text: INVALID_ARGUMENT once
    admitted."""
    request = predict_request([row()] * rows)
    request.inputs["age"].CopyFrom(tensor(["old"] * rows, string=True))
    return request


def test_an_error_answer_leaves_no_cycle_holding_the_request(model_dirs: dict[str, Path]) -> None:
    """Refused, invalid, unknown and unimplemented calls are answered without raising
    through the handlers: with the collector off, nothing of mooring's gRPC handlers
    (whose frames hold the request message) is left in a reference cycle. Raising
    (``context.abort``) left every such frame, and its request, for the collector."""
    cfg = FAST.model_copy(update={"max_in_flight": 1, "deadline_ms": PATIENCE * 1000})
    unknown = predict_request([row()], name="nope")
    with GrpcServerThread(model_dir_sources(model_dirs["a"]), cfg) as server:
        server.wait_ready()
        with channel(server.target) as opened:
            stub = prediction_stub(opened)
            assert _served(stub)  # warm: the first call's one-off objects are not ours
            gc.collect()
            gc.disable()
            try:
                with held_model(server.app, NAME) as held:
                    first = stub.Predict.future(predict_request([row()]), timeout=PATIENCE)
                    held.wait_entered("a batch to be in the model")
                    code, details = _code(stub, predict_request([row()]))
                    assert code == grpc.StatusCode.UNAVAILABLE, (code, details)
                    held.release.set()
                    assert first.result(timeout=PATIENCE).outputs
                code, details = _code(stub, _invalid(1000))
                assert code == grpc.StatusCode.INVALID_ARGUMENT and "inputs.age" in details
                code, details = _code(stub, unknown)
                assert code == grpc.StatusCode.NOT_FOUND and "'nope'" in details
                reload = model_service_pb2_grpc.ModelServiceStub(opened).HandleReloadConfigRequest
                with pytest.raises(grpc.RpcError, match="not served") as caught:
                    reload(model_management_pb2.ReloadConfigRequest(), timeout=PATIENCE)
                assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
                index = opened.unary_unary("/inference.GRPCInferenceService/RepositoryIndex")
                with pytest.raises(grpc.RpcError, match="RepositoryIndex") as caught:
                    index(b"", timeout=PATIENCE)
                assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
                gc.set_debug(gc.DEBUG_SAVEALL)
                gc.collect()
                left = sorted(
                    f"{item.f_code.co_qualname} ({Path(item.f_code.co_filename).name})"
                    for item in gc.garbage
                    if isinstance(item, types.FrameType)
                    and "mooring/serving/_grpc" in item.f_code.co_filename
                )
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
                gc.enable()
            assert left == []


def test_floods_of_large_failing_calls_do_not_add_up(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]
) -> None:
    """Eight waves of 40 Predict calls of 1.6 MiB each at once, every one refused or
    invalid: after the first wave (which sets how much memory the allocator keeps), the
    median wave adds less than the bytes it sent to the server's resident memory. While
    error answers raised, each failed call kept several times its size, so every wave
    added several times its bytes; the allocator's own swings are single steps of up to
    about 250 MiB, which the median passes over."""
    request = _invalid(70_000)
    size = request.ByteSize()
    assert 1.5 * 2**20 < size < 4 * 2**20, size
    waves, calls = 8, 40
    folder = tmp_path_factory.mktemp("grpc-flood-memory")
    after: list[int] = []
    with (
        ServeProcess(folder, model_dirs["a"], grpc=True, max_in_flight=4) as proc,
        channel(proc.grpc_target) as opened,
    ):
        stub = prediction_stub(opened)
        assert _served(stub)
        for _ in range(waves):
            futures = [stub.Predict.future(request, timeout=PATIENCE) for _ in range(calls)]
            codes = {future.exception(timeout=PATIENCE).code() for future in futures}
            # Refused by admission, invalid, or past the calls taken at once (unread).
            refused = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
            assert codes <= {grpc.StatusCode.INVALID_ARGUMENT, *refused}
            after.append(proc.memory_kib())
        assert _served(stub)
    added = [later - earlier for earlier, later in itertools.pairwise(after)]
    assert statistics.median(added) * 1024 < calls * size, (after, calls * size)
