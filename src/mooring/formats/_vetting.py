"""What an imported model may do: its ops vetted, and its folder kept to itself.

A SavedModel is a program. Before mooring loads one, :func:`vet_saved_model` reads its
``saved_model.pb`` with TensorFlow's protos (no graph runs) and walks every node of
every meta graph and of every function in its library (however deeply the functions
call one another, whatever attribute names them), and of every graph an op carries in
a string constant (:data:`GRAPH_CARRIERS`: ``DatasetFromGraph``). It refuses:

* an op not on the allow-list (:data:`ALLOWED_OPS`, in ``_ops_allowed.py``: the ops
  that compute on tensors, collected from a corpus of real models, each with its
  reason); the ops known to reach outside (file system, printing, Python, the process,
  the network, programs in strings) are named with a reason of their own
  (:data:`DENIED_OPS`); the checkpoint ops pass only where the SavedModel's own saver
  uses them (its variables are saved and restored by them);
* a graph carried in a string that is not a constant, so cannot be read before it runs;
* a vocabulary file read (:data:`ASSET_READERS`) whose file name is not one of the
  model's own assets (``assets/``): a constant file name, or a captured string
  constant, could name any file on the server;
* an allocation whose size is fixed by constants (:data:`ALLOCATIONS`) and larger than
  the probe's memory limit, wherever it sits (a branch taken only for some inputs is
  refused too).

An op is admitted deliberately with ``mooring models import ... --allow-op OP -r
REASON``: ``mooring.json`` records it (``allowed_ops``) and every later load accepts
exactly those ops. :func:`check_folder` refuses a model folder holding a link that
leaves it, before anything is copied or loaded.

Examples:
    >>> vet_saved_model("exported/", allowed={"PrintV2": "debug output"})  # doctest: +SKIP
    >>> sorted(DENIED_OPS)[:2]
    ['Abort', 'CSVDataset']
    >>> "MatMul" in ALLOWED_OPS, "RpcClient" in ALLOWED_OPS
    (True, False)
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mooring.errors import ModelLoadError, UsageError
from mooring.formats._ops_allowed import ALLOWED_OPS

__all__ = [
    "ALLOCATIONS",
    "ALLOWED_OPS",
    "ALLOWED_OPS_KEY",
    "ASSET_READERS",
    "CHECKPOINT_OPS",
    "DEFAULT_PROBE_MEMORY",
    "DENIED_OPS",
    "GRAPH_CARRIERS",
    "PROBE_KEY",
    "Finding",
    "allowed_ops",
    "check_folder",
    "gib",
    "parse_allowed_ops",
    "probe_memory",
    "vet_saved_model",
    "walk_ops",
]

#: ``mooring.json``'s key for the ops admitted at import: ``[{"op": ..., "reason": ...}]``.
ALLOWED_OPS_KEY = "allowed_ops"
#: ``mooring.json``'s key for the probe's limits at import (``memory_bytes``, ``timeout_s``).
PROBE_KEY = "probe"
#: The probe's memory limit when none is given (bytes): 4 GiB.
DEFAULT_PROBE_MEMORY = 4 * 2**30

_READS = "reads files on the machine that serves the model (any path the process can read)"
_WRITES = "writes files on the machine that serves the model"
_READS_DATA = "reads records from files on the machine that serves the model"
_CHECKPOINT = (
    "reads or writes checkpoint files; allowed only inside the SavedModel's own saver, "
    "which saves and restores its variables"
)
_SUMMARY = "writes TensorBoard summaries to files on the machine that serves the model"
_DEBUG = "sends tensors to the debugger's URLs (files or gRPC endpoints)"
_PYTHON = "runs a Python function of the process that built the model, not part of the graph"
_NETWORK = "talks to other machines (tf.data service)"
_COLLECTIVE = "exchanges tensors with other workers or devices (collective communication)"
_REMOTE = "runs a function on another device or machine"
_LISTENS = "listens on a network port of the serving process for calls from other machines"
_CONNECTS = "connects to another machine and calls it (tf.distribute's RPC)"
_PROGRAM = (
    "runs a program it carries in a string (MLIR or StableHLO) whose operations mooring cannot read"
)

#: Ops known to reach outside the computation, refused with a reason of their own
#: (TensorFlow's op names; any other op not on :data:`ALLOWED_OPS` is refused too, as
#: not on the list). ``--allow-op OP -r REASON`` admits one deliberately.
DENIED_OPS: dict[str, str] = {
    # The file system.
    "ReadFile": _READS,
    "WriteFile": _WRITES,
    "MatchingFiles": "lists files on the machine that serves the model",
    "MatchingFilesDataset": "lists files on the machine that serves the model",
    "ExperimentalMatchingFilesDataset": "lists files on the machine that serves the model",
    "FileSystemSetConfiguration": "changes how the process reaches its file systems",
    "ImmutableConst": "maps a file of the machine that serves the model into memory",
    "RecordInput": _READS_DATA,
    "TFRecordDataset": _READS_DATA,
    "TFRecordDatasetV2": _READS_DATA,
    "TextLineDataset": _READS_DATA,
    "FixedLengthRecordDataset": _READS_DATA,
    "FixedLengthRecordDatasetV2": _READS_DATA,
    "CSVDataset": _READS_DATA,
    "CSVDatasetV2": _READS_DATA,
    "ExperimentalCSVDataset": _READS_DATA,
    "LMDBDataset": _READS_DATA,
    "ExperimentalLMDBDataset": _READS_DATA,
    "SqlDataset": "reads an SQL database named by the graph",
    "ExperimentalSqlDataset": "reads an SQL database named by the graph",
    "LoadDataset": _READS_DATA,
    "SaveDataset": _WRITES,
    "SaveDatasetV2": _WRITES,
    "DistributedSave": _WRITES,
    "DatasetToTFRecord": _WRITES,
    "ExperimentalDatasetToTFRecord": _WRITES,
    "CacheDataset": "caches a dataset in files on the machine that serves the model",
    "CacheDatasetV2": "caches a dataset in files on the machine that serves the model",
    "SnapshotDataset": "reads and writes dataset snapshots in files",
    "SnapshotDatasetV2": "reads and writes dataset snapshots in files",
    "SnapshotDatasetReader": _READS_DATA,
    "SnapshotNestedDatasetReader": _READS_DATA,
    "SnapshotChunkDataset": _READS_DATA,
    "ListSnapshotChunksDataset": "lists files on the machine that serves the model",
    "WholeFileReader": _READS,
    "WholeFileReaderV2": _READS,
    "TextLineReader": _READS_DATA,
    "TextLineReaderV2": _READS_DATA,
    "TFRecordReader": _READS_DATA,
    "TFRecordReaderV2": _READS_DATA,
    "FixedLengthRecordReader": _READS_DATA,
    "FixedLengthRecordReaderV2": _READS_DATA,
    "LMDBReader": _READS_DATA,
    "IdentityReader": "feeds a reader queue (the reader ops read files)",
    "IdentityReaderV2": "feeds a reader queue (the reader ops read files)",
    "ReaderRead": _READS_DATA,
    "ReaderReadV2": _READS_DATA,
    "ReaderReadUpTo": _READS_DATA,
    "ReaderReadUpToV2": _READS_DATA,
    "ReaderRestoreState": _READS_DATA,
    "ReaderRestoreStateV2": _READS_DATA,
    "Save": _CHECKPOINT,
    "SaveV2": _CHECKPOINT,
    "SaveSlices": _CHECKPOINT,
    "Restore": _CHECKPOINT,
    "RestoreV2": _CHECKPOINT,
    "RestoreSlice": _CHECKPOINT,
    "MergeV2Checkpoints": _CHECKPOINT,
    "LoadAndRemapMatrix": "reads a checkpoint file named by the graph",
    "GenerateVocabRemapping": "reads vocabulary files named by the graph",
    "SummaryWriter": _SUMMARY,
    "CreateSummaryFileWriter": _SUMMARY,
    "CreateSummaryDbWriter": "writes TensorBoard summaries to an SQLite file",
    "WriteSummary": _SUMMARY,
    "WriteScalarSummary": _SUMMARY,
    "WriteHistogramSummary": _SUMMARY,
    "WriteImageSummary": _SUMMARY,
    "WriteAudioSummary": _SUMMARY,
    "WriteGraphSummary": _SUMMARY,
    "WriteRawProtoSummary": _SUMMARY,
    "ImportEvent": _SUMMARY,
    "FlushSummaryWriter": _SUMMARY,
    "CloseSummaryWriter": _SUMMARY,
    "StatsAggregatorSetSummaryWriter": _SUMMARY,
    "DebugIdentity": _DEBUG,
    "DebugIdentityV2": _DEBUG,
    "DebugIdentityV3": _DEBUG,
    "DebugNanCount": _DEBUG,
    "DebugNumericSummary": _DEBUG,
    "DebugNumericSummaryV2": _DEBUG,
    # The server's log.
    "Print": "writes text into the server's log (log lines the model forges)",
    "PrintV2": "writes text into the server's log or a file (log lines the model forges)",
    # Python.
    "PyFunc": _PYTHON,
    "PyFuncStateless": _PYTHON,
    "EagerPyFunc": _PYTHON,
    # The process.
    "Abort": "ends the serving process",
    # The network and other machines.
    "DataServiceDataset": _NETWORK,
    "DataServiceDatasetV2": _NETWORK,
    "DataServiceDatasetV3": _NETWORK,
    "DataServiceDatasetV4": _NETWORK,
    "RegisterDataset": _NETWORK,
    "RegisterDatasetV2": _NETWORK,
    "RemoteCall": _REMOTE,
    "Send": "sends tensors to another device or machine",
    "Recv": "receives tensors from another device or machine",
    "CollectiveAllToAllV2": _COLLECTIVE,
    "CollectiveAllToAllV3": _COLLECTIVE,
    "CollectiveAssignGroupV2": _COLLECTIVE,
    "CollectiveBcastRecv": _COLLECTIVE,
    "CollectiveBcastRecvV2": _COLLECTIVE,
    "CollectiveBcastSend": _COLLECTIVE,
    "CollectiveBcastSendV2": _COLLECTIVE,
    "CollectiveGather": _COLLECTIVE,
    "CollectiveGatherV2": _COLLECTIVE,
    "CollectiveInitializeCommunicator": _COLLECTIVE,
    "CollectivePermute": _COLLECTIVE,
    "CollectiveReduce": _COLLECTIVE,
    "CollectiveReduceScatterV2": _COLLECTIVE,
    "CollectiveReduceV2": _COLLECTIVE,
    "CollectiveReduceV3": _COLLECTIVE,
    "NcclAllReduce": _COLLECTIVE,
    "NcclBroadcast": _COLLECTIVE,
    "NcclReduce": _COLLECTIVE,
    "RpcServer": _LISTENS,
    "RpcServerStart": _LISTENS,
    "RpcServerRegister": _LISTENS,
    "RpcClient": _CONNECTS,
    "RpcCall": _CONNECTS,
    "RpcCheckStatus": _CONNECTS,
    "RpcGetValue": _CONNECTS,
    "DeleteRpcFutureResource": _CONNECTS,
    # Programs inside the graph that the walk cannot read.
    "DatasetFromGraph": (
        "rebuilds a tf.data pipeline from a serialized graph when it runs (its datasets can "
        "read, cache and write files); its graph, when a constant, is vetted as well"
    ),
    "XlaCallModule": _PROGRAM,
    "MlirPassthroughOp": _PROGRAM,
    "_XlaHostComputeMlir": _PROGRAM,
    "_TPUCompileMlir": _PROGRAM,
}

#: The denied ops a SavedModel's own saver holds: allowed in the nodes and functions
#: its ``saver_def`` runs, and only there.
CHECKPOINT_OPS = frozenset(
    {"Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2", "RestoreSlice", "MergeV2Checkpoints"}
)

#: Ops that read a file the model names → the index of their file name input: allowed
#: only when that name is one of the SavedModel's own assets (a vocabulary; YDF's tree
#: model, loaded from the folder of its asset files by the ``ydf_tf`` op library).
ASSET_READERS: dict[str, int] = {
    "InitializeTableFromTextFile": 1,
    "InitializeTableFromTextFileV2": 1,
    "SimpleMLLoadModelFromPath": 0,
    "SimpleMLLoadModelFromPathWithHandle": 1,
}

#: Ops that allocate a tensor of a shape given as an input → (the shape input's index,
#: the attr holding the dtype, the index of an element-count input or -1).
ALLOCATIONS: dict[str, tuple[int, str, int]] = {
    "Fill": (0, "T", -1),
    "Empty": (0, "dtype", -1),
    "BroadcastTo": (1, "T", -1),
    "RandomUniform": (0, "dtype", -1),
    "RandomUniformInt": (0, "Tout", -1),
    "RandomStandardNormal": (0, "dtype", -1),
    "TruncatedNormal": (0, "dtype", -1),
    "RandomGamma": (0, "T", -1),
    "RandomPoisson": (0, "dtype", -1),
    "RandomPoissonV2": (0, "dtype", -1),
    "StatelessRandomUniform": (0, "dtype", -1),
    "StatelessRandomUniformV2": (0, "dtype", -1),
    "StatelessRandomNormal": (0, "dtype", -1),
    "StatelessRandomNormalV2": (0, "dtype", -1),
    "StatelessTruncatedNormal": (0, "dtype", -1),
    "StatelessTruncatedNormalV2": (0, "dtype", -1),
    "StatelessRandomUniformInt": (0, "dtype", -1),
    "StatelessRandomUniformIntV2": (0, "dtype", -1),
    "StatelessRandomUniformFullInt": (0, "dtype", -1),
    "StatelessRandomUniformFullIntV2": (0, "dtype", -1),
    "StatefulUniform": (2, "dtype", -1),
    "StatefulStandardNormalV2": (2, "dtype", -1),
    "StatefulTruncatedNormal": (2, "dtype", -1),
    "StatefulUniformInt": (2, "dtype", -1),
    "StatefulUniformFullInt": (2, "dtype", -1),
    "TensorListReserve": (0, "element_dtype", 1),
    # The size scaled by the elements of the first input, where its shape is known.
    "Tile": (1, "T", -1),
    "OneHot": (1, "T", -1),
}
#: Allocations whose size is the constant's times the first input's known elements.
_SCALED_BY_INPUT = frozenset({"Tile", "OneHot"})

#: Ops that carry a graph (a serialized ``GraphDef``) in an input → that input's index.
#: The graph is read from its constant and walked with the same rules as the model's
#: own; a graph computed at run time cannot be read, and is refused.
GRAPH_CARRIERS: dict[str, int] = {"DatasetFromGraph": 0}
_NESTING = 8
_UNLISTED = (
    "is not on mooring's allow-list of ops that compute on tensors only (the import "
    "guide lists them), so mooring cannot vouch for what it does"
)

_CALLS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
# A literal file name (YDF strips ``<prefix>_done`` from its asset's path to name the
# asset folder): a replace that removes only it keeps an asset's path inside assets/.
_LITERAL_NAME = re.compile(r"^[A-Za-z0-9_.-]+\$?$")
_PASS_THROUGH = frozenset({"Identity", "Snapshot", "StopGradient"})
_TOP = "the top-level graph"
_SHOWN = 6


@dataclass(frozen=True)
class Finding:
    """One refused node: its op, the node's name, where it sits (a function, the
    top-level graph, or a graph a node carries), and why. ``--allow-op`` admits its op
    (a graph mooring cannot read is admitted with its carrier, unread)."""

    op: str
    node: str
    function: str
    why: str

    def describe(self) -> str:
        where = self.function if " " in self.function else f"function '{self.function}'"
        return f"op '{self.op}' (node '{self.node}' in {where}) {self.why}"


def parse_allowed_ops(ops: Iterable[str], reason: str | None) -> dict[str, str]:
    """``--allow-op OP`` options with the import's ``-r REASON`` → ``{op: reason}``.

    An op may be admitted when TensorFlow registers it (YDF's ``SimpleML*`` ops once
    its op library is loaded) and mooring would refuse it: not on :data:`ALLOWED_OPS`,
    or one whose use is checked (an allocation, an asset read, a checkpoint op).

    >>> parse_allowed_ops(["PrintV2"], "logs its inputs for an audit")
    {'PrintV2': 'logs its inputs for an audit'}

    Raises:
        UsageError: an op on the allow-list already, a name that is no op, or no reason.
    """
    given = [op.strip() for op in ops]
    if not given:
        return {}
    listed = sorted({op for op in given if op in ALLOWED_OPS and op not in ALLOCATIONS})
    if listed:
        raise UsageError(
            f"--allow-op {', '.join(map(repr, listed))}: already on mooring's allow-list "
            "(it computes on tensors only), so a model may use it without --allow-op; drop "
            "the option (the ops mooring refuses are named in the error of the import)"
        )
    if not (reason or "").strip():
        raise UsageError(
            f"--allow-op {', '.join(given)} admits ops mooring refuses: say why with -r REASON "
            "(it is recorded with the version and in the audit log)"
        )
    unknown = sorted({op for op in given if not _registered(op)})
    if unknown:
        raise UsageError(
            f"--allow-op {', '.join(map(repr, unknown))}: not an op TensorFlow knows (op "
            "names are spelled as tf.raw_ops spells them, e.g. PrintV2, ReadFile, and a "
            "refused import names the op to admit); check the spelling"
        )
    return {op: str(reason).strip() for op in given}


def _registered(op: str) -> bool:
    """Whether TensorFlow's op registry holds ``op`` (loading YDF's op library first
    for its ``SimpleML*`` ops, when it is installed). Asked last: it imports
    TensorFlow, which a usage error need not wait for."""
    from tensorflow.python.framework import op_def_registry

    if op.startswith("SimpleML"):
        # Without the trees extra, YDF's ops are not registered: unknown.
        with contextlib.suppress(ImportError):
            import ydf_tf  # noqa: F401
    return bool(op) and op_def_registry.get(op) is not None


def allowed_ops(metadata: Mapping[str, Any]) -> dict[str, str]:
    """The ops ``mooring.json`` records as admitted at import: ``{op: reason}``."""
    entries = metadata.get(ALLOWED_OPS_KEY) or []
    found: dict[str, str] = {}
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, Mapping) and entry.get("op"):
                found[str(entry["op"])] = str(entry.get("reason") or "")
    return found


def probe_memory(metadata: Mapping[str, Any]) -> int:
    """The probe's memory limit ``mooring.json`` records (bytes), else the default."""
    probe = metadata.get(PROBE_KEY)
    value = probe.get("memory_bytes") if isinstance(probe, Mapping) else None
    return int(value) if isinstance(value, int) and value > 0 else DEFAULT_PROBE_MEMORY


def gib(size: float) -> str:
    """A size in GiB as messages show it: ``4 GiB``, ``0.5 GiB``, ``50.3 GiB``."""
    value = size / 2**30
    return f"{value:.0f} GiB" if value == int(value) else f"{value:.3g} GiB"


# -- nothing outside the folder ------------------------------------------------------


def check_folder(folder: str | os.PathLike[str], *, what: str | None = None) -> None:
    """Refuse a model folder holding a link that leaves it, before anything reads it.

    A symbolic link whose resolved target is outside the folder (or a linked folder
    that holds itself) is refused, naming the link and its target. So is a regular
    file with several hard links whose other links are not inside the folder, or a
    hard-linked file at all where the file system cannot tell where its links are.

    Raises:
        ModelLoadError: such a link, named, with what to do instead.
    """
    root = Path(folder).resolve()
    who = what or f"'{folder}'"
    inodes: dict[tuple[int, int], list[str]] = {}
    links: dict[tuple[int, int], int] = {}
    for directory, dirs, files in os.walk(root, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(directory) / name
            rel = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                _check_symlink(root, path, rel, who)
            elif stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                if info.st_ino == 0:
                    raise ModelLoadError(
                        f"{who}: '{rel}' is a hard link ({info.st_nlink} links to one file) and "
                        "this file system does not say where the other links are, so mooring "
                        "cannot tell that they are inside the folder; copy the folder "
                        "(cp -rL) and import the copy"
                    )
                key = (info.st_dev, info.st_ino)
                inodes.setdefault(key, []).append(rel)
                links[key] = info.st_nlink
    for key, names in sorted(inodes.items(), key=lambda kv: kv[1]):
        if len(names) < links[key]:
            outside = links[key] - len(names)
            raise ModelLoadError(
                f"{who}: '{names[0]}' is a hard link to a file with {links[key]} links, "
                f"{outside} of them outside the model folder: its bytes are another file's, "
                "which the model folder must not reach; copy the folder without links "
                "(cp -rL, or save the model again) and import the copy"
            )


def _check_symlink(root: Path, path: Path, rel: str, who: str) -> None:
    target = Path(os.path.realpath(path))
    if not target.is_relative_to(root):
        raise ModelLoadError(
            f"{who}: '{rel}' is a symbolic link to '{target}', outside the model folder: "
            "an import would copy that file into the registry, and a server could serve it; "
            "copy the file into the folder, or save the model again, and use that folder"
        )
    if path.is_dir() and path.parent.resolve().is_relative_to(target):
        raise ModelLoadError(
            f"{who}: '{rel}' is a symbolic link to '{target}', a folder that holds the link "
            "itself (a loop); remove the link and use the folder again"
        )


# -- the op policy -----------------------------------------------------------------


def vet_saved_model(
    folder: str | os.PathLike[str],
    *,
    allowed: Mapping[str, str] | None = None,
    memory_bytes: int = DEFAULT_PROBE_MEMORY,
    what: str | None = None,
    at_import: bool = True,
) -> None:
    """Refuse a SavedModel whose graph holds what an imported model may not run.

    Every op must be on :data:`ALLOWED_OPS` (computation on tensors), be admitted in
    ``allowed`` (``--allow-op``), or be one of the checked kinds: the saver's checkpoint
    ops, a file read of the model's own assets. ``memory_bytes`` is the probe's memory
    limit an allocation fixed by constants may not exceed. At a later load
    (``at_import`` False) the fix named is a new import, since the folder differs from
    what was imported.

    Raises:
        ModelLoadError: a refused op, named with its node, the function it sits in and
            the fix; or a ``saved_model.pb`` that cannot be read.
    """
    model = _read(Path(folder), what or f"'{folder}'")
    admitted = dict(allowed or {})
    findings = [f for f in _findings(model, memory_bytes) if f.op not in admitted]
    if findings:
        raise ModelLoadError(_message(findings, what or f"'{folder}'", admitted, at_import))


def walk_ops(folder: str | os.PathLike[str]) -> Iterator[tuple[str, str, str]]:
    """Every node the vetting reads in a SavedModel: ``(op, node, where)``.

    The same walk as :func:`vet_saved_model`'s: the top-level graph, every function of
    the library, and the graphs ops carry in string constants (``DatasetFromGraph``).
    Calls of the model's own functions are walked, not listed.

    >>> sorted({op for op, _, _ in walk_ops("exported/")})[:2]  # doctest: +SKIP
    ['AddV2', 'Const']
    """
    model = _read(Path(folder), f"'{folder}'")
    for meta in model.meta_graphs:
        for graph, where, node in _Graph(meta.graph_def, DEFAULT_PROBE_MEMORY, meta).visit():
            if node.op not in graph.functions:
                yield node.op, node.name, graph.place(where)


def _message(findings: list[Finding], who: str, admitted: Mapping[str, str], imp: bool) -> str:
    shown = "; ".join(f.describe() for f in findings[:_SHOWN])
    more = f" (and {len(findings) - _SHOWN} more)" if len(findings) > _SHOWN else ""
    ops = sorted({f.op for f in findings})
    flags = " ".join(f"--allow-op {op}" for op in ops)
    if not ops:
        fix = "a model may compute on its inputs only"
    elif imp:
        fix = (
            "a model may compute on its inputs only; if it must do this, admit the op "
            f"deliberately: `mooring models import NAME PATH {flags} -r REASON`"
        )
    else:
        recorded = ", ".join(sorted(admitted)) or "none"
        fix = (
            f"these ops were not admitted when it was imported (admitted: {recorded}), so "
            "the folder is not what was imported; import the model again (with "
            f"{flags} -r REASON if it must run them)"
        )
    return f"{who} is refused: {shown}{more}; {fix}"


def _read(folder: Path, who: str) -> Any:
    """The SavedModel proto, read as TensorFlow's loader reads it (``.pb``, else
    ``.pbtxt``)."""
    from google.protobuf import text_format  # type: ignore[import-untyped]
    from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
    from tensorflow.core.protobuf import saved_model_pb2

    model = saved_model_pb2.SavedModel()
    binary, text = folder / "saved_model.pb", folder / "saved_model.pbtxt"
    try:
        if binary.is_file():
            model.ParseFromString(binary.read_bytes())
        elif text.is_file():
            text_format.Parse(text.read_text(encoding="utf-8"), model)
        else:
            raise ModelLoadError(
                f"{who} holds no saved_model.pb, so mooring cannot check what it "
                "runs; export it with tf.saved_model.save or model.export"
            )
    except (OSError, ValueError, DecodeError, text_format.ParseError) as exc:
        # `who` names the model; the folder's path stays out (a server's answer quotes it).
        said = str(exc).replace(str(folder), "its folder")
        raise ModelLoadError(
            f"{who} is not a loadable SavedModel (its saved_model.pb cannot be read: {said}); "
            "export it again with tf.saved_model.save or model.export"
        ) from exc
    return model


def _findings(model: Any, memory_bytes: int) -> Iterator[Finding]:
    for meta in model.meta_graphs:
        yield from _Graph(meta.graph_def, memory_bytes, meta).findings()


def _function_refs(attr: Any) -> Iterator[str]:
    """The function names an attr value refers to, nested attrs included."""
    kind = attr.WhichOneof("value")
    if kind == "func":
        yield attr.func.name
        for inner in attr.func.attr.values():
            yield from _function_refs(inner)
    elif kind == "list":
        for func in attr.list.func:
            yield func.name
            for inner in func.attr.values():
                yield from _function_refs(inner)


def _source(name: str) -> tuple[str, int]:
    """An input string (``node``, ``node:1``, ``node:out:0``, ``^node``) → (node, index);
    a function's inputs name an output list (``node:out:0``), the index within it."""
    parts = name.lstrip("^").split(":")
    index = int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 0
    return parts[0], index


class _Graph:
    """One graph: a meta graph (its top-level nodes, its functions, its object graph and
    saver), or a graph an op carries in a string constant (``label`` says which)."""

    def __init__(
        self,
        graph_def: Any,
        memory_bytes: int,
        meta: Any = None,
        *,
        label: str = "",
        depth: int = 0,
    ) -> None:
        self.memory = memory_bytes
        self.label = label
        self.depth = depth
        self.functions = {f.signature.name: f for f in graph_def.library.function}
        self.bodies: dict[str, dict[str, Any]] = {
            name: {n.name: n for n in f.node_def} for name, f in self.functions.items()
        }
        self.bodies[_TOP] = {n.name: n for n in graph_def.node}
        self.args = {
            name: [a.name for a in f.signature.input_arg] for name, f in self.functions.items()
        }
        self.carried: dict[tuple[str, str], _Graph | None] = {}
        self.meta = meta
        self.objects = meta.object_graph_def if meta is not None else None
        self.assets: dict[str, str] = {}
        self.saver_nodes: set[str] = set()
        self.checkpoint_only: set[str] = set()
        if meta is None:  # a carried graph: no assets, no saver
            return
        self.assets = {
            _source(a.tensor_info.name)[0]: a.filename for a in _asset_files(meta) if a.filename
        }
        saver = meta.saver_def
        roots = [n for n in (saver.save_tensor_name, saver.restore_op_name) if n]
        top = self.bodies[_TOP]
        self.saver_nodes = self._ancestors(top, [_source(n)[0] for n in roots])
        served = [
            _source(t.name)[0]
            for sig in meta.signature_def.values()
            for t in [*sig.inputs.values(), *sig.outputs.values()]
        ]
        self.saver_nodes -= self._ancestors(top, served)
        saver_funcs = self._reachable(self._calls(top[n]) for n in self.saver_nodes if n in top)
        others = [self._calls(n) for name, n in top.items() if name not in self.saver_nodes]
        others.append(set(meta.object_graph_def.concrete_functions))
        others.append(set(self.functions) - saver_funcs)
        self.checkpoint_only = saver_funcs - self._reachable(others)

    def place(self, where: str) -> str:
        """``where`` (a function's name, or the top-level graph) as a finding names it:
        within a carried graph, the graph and the node that carries it are named too."""
        if not self.label:
            return where
        return self.label if where == _TOP else f"function '{where}' of {self.label}"

    def _finding(self, where: str, node: Any, why: str) -> Finding:
        return Finding(node.op, node.name, self.place(where), why)

    # -- structure
    def _calls(self, node: Any) -> set[str]:
        found = {node.op} if node.op in self.functions else set()
        for attr in node.attr.values():
            found.update(_function_refs(attr))
        return found

    def _reachable(self, starts: Iterable[set[str]]) -> set[str]:
        seen: set[str] = set()
        todo = [name for group in starts for name in group]
        while todo:
            name = todo.pop()
            if name in seen or name not in self.functions:
                continue
            seen.add(name)
            for node in self.functions[name].node_def:
                todo.extend(self._calls(node))
        return seen

    @staticmethod
    def _ancestors(nodes: Mapping[str, Any], names: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        todo = list(names)
        while todo:
            name = todo.pop()
            if name in seen or name not in nodes:
                continue
            seen.add(name)
            todo.extend(_source(i)[0] for i in nodes[name].input)
        return seen

    # -- the checks
    def visit(self) -> Iterator[tuple[_Graph, str, Any]]:
        """Every node, with its graph and where it sits; carried graphs after their
        carrier, walked the same way."""
        for where, nodes in sorted(self.bodies.items()):
            for node in nodes.values():
                yield self, where, node
                inner = self._carried(where, node)
                if inner is not None:
                    yield from inner.visit()

    def findings(self) -> Iterator[Finding]:
        for graph, where, node in self.visit():
            yield from graph._node(where, node)

    def _node(self, where: str, node: Any) -> Iterator[Finding]:
        op = node.op
        if op in self.functions or (op in CHECKPOINT_OPS and self._saver_use(where, node)):
            return  # a call of one of its own functions (walked), or its own saver
        if op in GRAPH_CARRIERS and self._carried(where, node) is None:
            yield self._finding(
                where,
                node,
                "builds its computation from a serialized graph that is not a constant of "
                f"the model (or not a readable GraphDef, or nested more than {_NESTING} deep), "
                "so mooring cannot read what it would run; a model may carry such a graph "
                "as a constant, whose every op is vetted like the model's own; admitting "
                f"{op} admits this graph unread (only the operating system's box then "
                "bounds what it does)",
            )
        if op in ASSET_READERS:
            name = node.input[ASSET_READERS[op]] if len(node.input) > ASSET_READERS[op] else ""
            if not self._is_asset(where, name, depth=0):
                yield self._finding(
                    where,
                    node,
                    "reads a file whose name is not one of the model's own assets (a constant "
                    "or captured file name could name any file on the server); save the "
                    "vocabulary as an asset (a tf.saved_model.Asset, or the file name a "
                    "lookup table's initializer was given when the model was saved)",
                )
            return
        if op not in ALLOWED_OPS:
            yield self._finding(where, node, DENIED_OPS.get(op) or _UNLISTED)
        elif op in ALLOCATIONS:
            size = self._allocation(where, node)
            if size is not None and size > self.memory:
                yield self._finding(
                    where,
                    node,
                    f"allocates {gib(size)} (a size fixed by constants), more than the "
                    f"probe's memory limit of {gib(self.memory)}: the model would exhaust the "
                    "server's memory whenever it runs this branch; shrink it, or raise the "
                    "limit with --probe-memory if the model really needs it",
                )

    def _carried(self, where: str, node: Any) -> _Graph | None:
        """The graph ``node`` carries in a string constant (:data:`GRAPH_CARRIERS`),
        parsed once; None when it carries none that can be read."""
        if node.op not in GRAPH_CARRIERS:
            return None
        key = (where, node.name)
        if key not in self.carried:
            self.carried[key] = self._parse_carried(where, node)
        return self.carried[key]

    def _parse_carried(self, where: str, node: Any) -> _Graph | None:
        from google.protobuf.message import DecodeError
        from tensorflow.core.framework import graph_pb2, types_pb2

        index = GRAPH_CARRIERS[node.op]
        if self.depth >= _NESTING or index >= len(node.input):
            return None
        producer, _, _ = self._producer(where, node.input[index])
        if producer is None or producer.op != "Const":
            return None
        tensor = producer.attr["value"].tensor
        if tensor.dtype != types_pb2.DT_STRING or len(tensor.string_val) != 1:
            return None
        graph = graph_pb2.GraphDef()
        try:
            graph.ParseFromString(tensor.string_val[0])
        except DecodeError:
            return None
        inside = self.place(where)
        inside = inside if " " in inside else f"function '{inside}'"
        label = f"the graph node '{node.name}' in {inside} carries"
        return _Graph(graph, self.memory, label=label, depth=self.depth + 1)

    def _saver_use(self, where: str, node: Any) -> bool:
        if node.op not in CHECKPOINT_OPS:
            return False
        if where == _TOP:
            return node.name in self.saver_nodes
        return where in self.checkpoint_only

    # -- where a value comes from
    def _producer(self, where: str, name: str) -> tuple[Any | None, str, int]:
        """The node producing input ``name`` in ``where``, through pass-through ops; or
        (None, arg name, arg index) when it is an argument of the function."""
        nodes = self.bodies[where]
        args = self.args.get(where, [])
        for _ in range(64):
            source, _index = _source(name)
            if source in args and source not in nodes:
                return None, source, args.index(source)
            node = nodes.get(source)
            if node is None or not node.input or not _passes_through(node):
                return node, source, -1
            name = node.input[0]
        return None, "", -1

    def _is_asset(self, where: str, name: str, depth: int) -> bool:
        if not name or depth > 16:
            return False
        node, _, arg = self._producer(where, name)
        if where == _TOP:
            return node is not None and self._top_asset(node, depth)
        if node is not None or arg < 0:
            return False
        bound = self._bound(where, arg)
        sites = list(self._call_sites(where))
        if bound is None and not sites:
            return False
        if bound is not None and not bound:
            return False
        return all(
            self._is_asset(w, n.input[arg] if arg < len(n.input) else "", depth + 1)
            for w, n in sites
        )

    def _bound(self, function: str, arg: int) -> bool | None:
        """Whether a captured argument of ``function`` is an asset of the object graph;
        None when the object graph does not say (not one of its captures)."""
        if self.objects is None:
            return None
        concrete = self.objects.concrete_functions.get(function)
        if concrete is None:
            return None
        bound = list(concrete.bound_inputs)
        k = arg - (len(self.args[function]) - len(bound))
        if k < 0:
            return None
        obj = self.objects.nodes[bound[k]]
        if obj.WhichOneof("kind") != "asset":
            return False
        index = obj.asset.asset_file_def_index
        files = self.meta.asset_file_def
        return 0 <= index < len(files) and _inside_assets(files[index].filename)

    def _call_sites(self, function: str) -> Iterator[tuple[str, Any]]:
        for where, nodes in self.bodies.items():
            for node in nodes.values():
                direct = node.op == function
                called = node.op in _CALLS and node.attr["f"].func.name == function
                if direct or called:
                    yield where, node

    def _top_asset(self, node: Any, depth: int) -> bool:
        """A top-level value that is an asset's path: its placeholder (``asset_file_def``),
        or a variable every assignment of which is one."""
        if node.name in self.assets:
            return _inside_assets(self.assets[node.name])
        if node.op != "ReadVariableOp" or not node.input:
            return False
        variable = _source(node.input[0])[0]
        writes = [
            n
            for n in self.bodies[_TOP].values()
            if n.op == "AssignVariableOp" and n.input and _source(n.input[0])[0] == variable
        ]
        return bool(writes) and all(
            len(w.input) > 1 and self._is_asset(_TOP, w.input[1], depth + 1) for w in writes
        )

    def _allocation(self, where: str, node: Any) -> int | None:
        """Bytes ``node`` allocates when its shape (and count) are constants; else None."""
        from tensorflow.python.framework import dtypes

        shape_at, dtype_attr, count_at = ALLOCATIONS[node.op]
        dims = self._constant(where, node, shape_at)
        if dims is None or any(d < 0 for d in dims):
            return None
        count = 1
        if count_at >= 0:
            counts = self._constant(where, node, count_at)
            if counts is None or len(counts) != 1 or counts[0] < 0:
                return None
            count = counts[0]
        try:
            size = dtypes.as_dtype(node.attr[dtype_attr].type).size
        except (TypeError, ValueError):
            size = 1
        if node.op in _SCALED_BY_INPUT and node.input:
            count *= self._elements(where, node.input[0])
        return count * math.prod(dims) * max(int(size), 1)

    def _elements(self, where: str, name: str) -> int:
        """The elements of input ``name`` its static shape gives: a constant's, or the
        shape recorded on its producer or argument; a dimension not known counts 1 (the
        size is then a lower bound)."""
        producer, _, arg = self._producer(where, name)
        shape: list[int] = []
        if producer is not None and producer.op == "Const":
            shape = [d.size for d in producer.attr["value"].tensor.tensor_shape.dim]
        elif producer is not None and "_output_shapes" in producer.attr:
            shapes = producer.attr["_output_shapes"].list.shape
            if shapes:
                shape = [d.size for d in shapes[_source(name)[1] % len(shapes)].dim]
        elif producer is None and arg >= 0 and where in self.functions:
            attrs = self.functions[where].arg_attr
            shapes = attrs[arg].attr["_output_shapes"].list.shape if arg in attrs else []
            if shapes:
                shape = [d.size for d in shapes[0].dim]
        return math.prod(max(d, 1) for d in shape)

    def _constant(self, where: str, node: Any, index: int) -> list[int] | None:
        from tensorflow.python.framework import tensor_util

        if index >= len(node.input):
            return None
        producer, _, _ = self._producer(where, node.input[index])
        if producer is None or producer.op != "Const":
            return None
        try:
            values = tensor_util.MakeNdarray(producer.attr["value"].tensor)
        except (TypeError, ValueError):
            return None
        if values.dtype.kind not in "iu" or values.size > 64:
            return None
        return [int(v) for v in values.reshape(-1)]


def _passes_through(node: Any) -> bool:
    """A node whose output is its first input for the asset check: an identity, or a
    regex replace that only strips a literal file name from the end (YDF's)."""
    if node.op in _PASS_THROUGH:
        return True
    if node.op != "StaticRegexReplace" or node.attr["rewrite"].s:
        return False
    pattern = node.attr["pattern"].s.decode("utf-8", "replace")
    return bool(_LITERAL_NAME.match(pattern)) and ".." not in pattern


def _asset_files(meta: Any) -> list[Any]:
    """A meta graph's asset files: ``asset_file_def``, and a TF1 SavedModel's
    ``saved_model_assets`` collection (where TensorFlow's loader finds them too)."""
    from tensorflow.core.protobuf import meta_graph_pb2

    found = list(meta.asset_file_def)
    if "saved_model_assets" in meta.collection_def:
        for packed in meta.collection_def["saved_model_assets"].any_list.value:
            asset = meta_graph_pb2.AssetFileDef()
            if packed.Unpack(asset):
                found.append(asset)
    return found


def _inside_assets(filename: str) -> bool:
    """An asset's file name stays inside ``assets/`` (TensorFlow joins the two)."""
    parts = Path(filename).parts
    return bool(filename) and not Path(filename).is_absolute() and ".." not in parts
