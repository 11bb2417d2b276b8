"""The Open Inference Protocol's generated modules match their proto, and its messages are
Triton's (so tritonclient speaks to the server)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[2] / "src"


def test_the_committed_modules_are_what_make_protos_generates(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools (a dev dependency) is not installed")
    # As make protos runs it: in a process of its own. protoc's compiler, loaded into a
    # process that already holds TensorFlow's and grpc's protobuf, crashes it.
    out = subprocess.run(
        [sys.executable, "-m", "mooring.serving._grpc.protos.generate", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    written = [Path(line) for line in out.stdout.split()]
    assert len(written) == 3
    for path in written:
        committed = ROOT / path.relative_to(tmp_path)
        assert path.read_text(encoding="utf-8") == committed.read_text(encoding="utf-8"), (
            f"{committed.name} differs from the proto: run make protos"
        )


def _described(module: object) -> descriptor_pb2.FileDescriptorProto:
    found = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(found)  # type: ignore[attr-defined]
    return found


def test_messages_and_methods_are_tritons() -> None:
    """Field for field (names, numbers, types) as tritonclient's own descriptor, both loaded
    in one process (the generated module builds its messages in a pool of its own)."""
    from tritonclient.grpc import service_pb2

    from mooring.serving._grpc.protos import open_inference_grpc_pb2

    ours, theirs = _described(open_inference_grpc_pb2), _described(service_pb2)
    assert ours.package == theirs.package == "inference"
    triton = {m.name: m for m in theirs.message_type}
    assert len(ours.message_type) == 14
    for message in ours.message_type:
        assert message == triton[message.name], message.name
    [service] = ours.service
    [triton_service] = theirs.service
    assert service.name == triton_service.name == "GRPCInferenceService"
    methods = {m.name: (m.input_type, m.output_type) for m in triton_service.method}
    assert {m.name: (m.input_type, m.output_type) for m in service.method} == {
        name: methods[name]
        for name in ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata",
                     "ModelMetadata", "ModelInfer")
    }  # fmt: skip
