"""Generate the Open Inference Protocol's Python modules from ``open_inference_grpc.proto``.

``make protos`` runs it (grpcio-tools, a dev dependency); the generated files are
committed, and a test regenerates them into a temporary folder and compares, so they
cannot drift from the proto. One change is made to protoc's output: the messages are
built in a descriptor pool of their own instead of protobuf's default pool. The
protocol's package and message names (``inference.ModelInferRequest``, ...) are also
Triton's, so ``tritonclient.grpc`` registers the same names in the default pool; with
a pool of our own, both load in one process in either order (the names on the wire
are unchanged).

Examples:
    >>> generate(Path("src"))  # doctest: +SKIP
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["PROTO", "generate"]

HERE = Path(__file__).resolve().parent
#: The proto, relative to the source root (its path decides the generated imports).
PROTO = "mooring/serving/_grpc/protos/open_inference_grpc.proto"
_DEFAULT_POOL = "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile("
_OWN_POOL = (
    "# mooring: a pool of its own, so tritonclient's identical names can load beside it.\n"
    "_POOL = _descriptor_pool.DescriptorPool()\n"
    "DESCRIPTOR = _POOL.AddSerializedFile("
)


def generate(out: Path) -> list[Path]:
    """Write ``open_inference_grpc_pb2{.py,.pyi,_grpc.py}`` under ``out`` (a source root).

    Raises:
        RuntimeError: protoc failed (its messages in the error).
    """
    from grpc_tools import protoc

    root = HERE.parents[3]
    out.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{root}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        str(root / PROTO),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {PROTO}")
    stem = out / PROTO.removesuffix(".proto")
    pb2 = Path(f"{stem}_pb2.py")
    text = pb2.read_text(encoding="utf-8")
    if _DEFAULT_POOL not in text:
        raise RuntimeError(f"{pb2}: protoc's output changed; update {__name__}")
    pb2.write_text(text.replace(_DEFAULT_POOL, _OWN_POOL, 1), encoding="utf-8")
    return [pb2, Path(f"{stem}_pb2.pyi"), Path(f"{stem}_pb2_grpc.py")]


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[3]):
        print(path)
