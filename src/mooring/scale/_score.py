"""Batch scoring: a registered version over every shard of a source, on any engine.

:func:`score_shards` writes one Parquet file per input shard, ``<out>/<shard name>.parquet``,
holding the row's key columns (``key_columns``; default ``shard`` and ``row``, the
row's index in its shard), the model's outputs named as in the prediction log
(``output.<name>``), and ``model``, ``model_version`` and ``manifest_sha256``.

Rows meet the server's door: each input column is decoded by the server's own decoder
(:func:`~mooring.formats._columns.column_values`, with ``[serving] nan_policy`` and
``infinity_policy``) from the values a client would send for the row (CSV text of a
numeric input is read as the number it spells), then checked against the version's
contract with :meth:`~mooring.serving._contract.InputContract.check`. A row the server
would refuse (a value of the wrong type, a missing input column, and, where
``[serving] out_of_range`` / ``unseen_category`` say ``reject``, a value outside the
contract) is written to ``<out>/_rejects/<shard name>.parquet`` with its index, its raw
values and the reason; the others are scored. Columns the model does not take are
ignored. Predictions are those of :meth:`~mooring.serving._loaded.ServedModel.predict`
on the same rows.

A shard whose output exists and whose marker ``<out>/_done/<shard name>.json`` names the
same version, manifest hash, key columns and input fingerprint (size and modification
time, or the store's ETag) is skipped, so a run that stopped half-way resumes. Every
file is written atomically and the marker last, so a crash never leaves a file that is
taken as done.

With ``log=True`` the scored rows are appended to the project's prediction log (as the
server writes it, one timestamp for the whole run and one request id per row,
``batch.<run>.<shard>.<row>``), so ``mooring drift`` reads them like served traffic.
A skipped shard is not logged again; a shard whose worker died after its log file was
written but before its marker is scored, and logged, once more.

Examples:
    >>> from mooring.scale._engine import Engine
    >>> summary = score_shards(cfg, registry, data="shards/", out="scores/",
    ...                 engine=Engine("local", workers=4))  # doctest: +SKIP
    >>> summary.scored, summary.rejected, summary.skipped  # doctest: +SKIP
    (48842, 3, 0)
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from mooring.config import MooringConfig
from mooring.contract._io import ReadOptions, read_table
from mooring.errors import DataError, MooringError, UsageError
from mooring.formats._columns import InputPolicy
from mooring.formats._files import atomic_write_url, is_url
from mooring.formats._predictions import (
    REQUEST_ID,
    append_request_rows,
    output_column,
    write_log_file,
)
from mooring.registry import Registry
from mooring.scale._door import check_contract, decode
from mooring.scale._engine import Engine, error_class
from mooring.scale._model import ModelRef, resolve_model, served_model
from mooring.scale._pool import run_pool
from mooring.scale._shards import list_shards, shard_name

__all__ = ["ScoreSummary", "ShardOutcome", "ShardScorer", "fingerprint", "score_shards"]

#: Columns the output adds around the key columns and the outputs.
MODEL_COLUMNS = ("model", "model_version", "manifest_sha256")
#: The default key: the shard's name and the row's index in it.
DEFAULT_KEYS = ("shard", "row")
#: Rows per prediction log file written by one shard.
LOG_FILE_ROWS = 50_000
_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")


@dataclass(frozen=True)
class ShardOutcome:
    """What happened to one shard.

    ``status`` is ``scored``, ``skipped`` (done by an earlier run) or ``failed``
    (``error`` says why; nothing of it is taken as done). ``violations``: rows scored
    although a value is outside the contract (the server serves them too, per
    ``[serving] out_of_range`` / ``unseen_category = "serve"``).
    """

    shard: str
    name: str
    status: str
    rows: int = 0
    scored: int = 0
    rejected: int = 0
    violations: int = 0
    output: str | None = None
    rejects: str | None = None
    logged: int = 0
    error: str | None = None
    error_class: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ScoreSummary:
    """A run of :func:`score`: the version, where it wrote, and every shard's outcome."""

    model: str
    version: int
    manifest_sha256: str
    out: str
    engine: str
    shards: list[ShardOutcome] = field(default_factory=list)
    retried: int = 0
    seconds: float = 0.0
    contract: str | None = None

    def _count(self, what: str) -> int:
        return sum(int(getattr(s, what)) for s in self.shards)

    @property
    def scored(self) -> int:
        return self._count("scored")

    @property
    def rejected(self) -> int:
        return self._count("rejected")

    @property
    def violations(self) -> int:
        return self._count("violations")

    @property
    def logged(self) -> int:
        return self._count("logged")

    @property
    def skipped(self) -> int:
        return sum(1 for s in self.shards if s.status == "skipped")

    @property
    def failed(self) -> list[ShardOutcome]:
        return [s for s in self.shards if s.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        """JSON for ``mooring score --json``."""
        return {
            "model": self.model,
            "version": self.version,
            "manifest_sha256": self.manifest_sha256,
            "out": self.out,
            "engine": self.engine,
            "contract": self.contract,
            "shards": len(self.shards),
            "skipped": self.skipped,
            "failed": len(self.failed),
            "scored": self.scored,
            "rejected": self.rejected,
            "violations": self.violations,
            "logged": self.logged,
            "retried": self.retried,
            "seconds": round(self.seconds, 3),
            "per_shard": [s.to_dict() for s in self.shards],
        }


@dataclass(frozen=True)
class _Shard:
    path: str
    name: str
    fingerprint: str


# -- one shard -------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardScorer:
    """The per-shard work, picklable so that any engine ships it to its workers.

    Called with a shard, it loads the version once per process
    (:func:`~mooring.scale._model.served_model`), reads the shard, decodes and checks its
    rows as the server's door does, predicts the accepted rows in batches of
    ``batch_rows``, and writes the output, the rejects, the log rows and the marker.
    """

    ref: ModelRef
    out: str
    keys: tuple[str, ...] = ()
    options: ReadOptions = field(default_factory=ReadOptions)
    policy: InputPolicy = field(default_factory=InputPolicy)
    contract_checks: bool = True
    refuse: frozenset[str] = frozenset()  # violation kinds the policy rejects
    log_url: str | None = None
    run_id: str = ""
    log_time: datetime | None = None
    batch_rows: int = 8192

    def __call__(self, shard: _Shard) -> ShardOutcome:
        model = served_model(self.ref)
        strings = {n: pa.string() for n, info in model.inputs.items() if info.is_string}
        table = read_table(shard.path, self.options.with_types(strings))
        missing = [k for k in self.keys if k not in table.column_names]
        if missing:
            raise DataError(
                f"shard '{shard.path}' has no key column {missing[0]!r} (its columns: "
                f"{', '.join(table.column_names)}); pass --key columns every shard has"
            )
        rows = table.num_rows
        columns, reasons = decode(table, model.inputs, self.policy, shard.name)
        flagged: set[int] = set()
        contract = model.contract
        if contract is not None and self.contract_checks and rows:
            check_contract(contract, columns, reasons, flagged, self.refuse)
        bad = sorted(reasons)
        good = np.setdiff1d(np.arange(rows, dtype=np.int64), np.array(bad, dtype=np.int64))
        accepted = {name: values[good] for name, values in columns.items()}
        outputs = self._predict(model, accepted, len(good))
        output = f"{self.out}/{shard.name}.parquet"
        _write_parquet(output, self._output_table(table, shard, good, outputs))
        rejects = f"{self.out}/_rejects/{shard.name}.parquet"
        if bad:
            _write_parquet(rejects, _rejects_table(table, bad, reasons))
        else:
            _remove(rejects)
        logged = self._log(shard, accepted, outputs, good) if self.log_url else 0
        outcome = ShardOutcome(
            shard=shard.path,
            name=shard.name,
            status="scored",
            rows=rows,
            scored=len(good),
            rejected=len(bad),
            violations=len(flagged - set(bad)),
            output=output,
            rejects=rejects if bad else None,
            logged=logged,
        )
        marker = {
            "fingerprint": shard.fingerprint,
            "model": self.ref.name,
            "version": self.ref.version,
            "manifest_sha256": self.ref.manifest_sha256,
            "keys": list(self.keys),
            "finished_at": datetime.now(UTC).isoformat(),
            **outcome.to_dict(),
        }
        atomic_write_url(_marker(self.out, shard.name), orjson.dumps(marker))
        return outcome

    def _predict(self, model: Any, columns: dict[str, Any], rows: int) -> dict[str, Any]:
        if rows == 0:
            return {}
        parts: dict[str, list[Any]] = {}
        for start in range(0, rows, self.batch_rows):
            chunk = {k: v[start : start + self.batch_rows] for k, v in columns.items()}
            for name, value in model.predict(chunk).items():
                parts.setdefault(name, []).append(value)
        return {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in parts.items()}

    def _output_table(
        self, table: pa.Table, shard: _Shard, good: np.ndarray[Any, Any], outputs: dict[str, Any]
    ) -> pa.Table:
        data: dict[str, Any] = {}
        if self.keys:
            indices = pa.array(good, pa.int64())
            for key in self.keys:
                data[key] = table.column(key).take(indices)
        else:
            data["shard"] = pa.array([shard.name] * len(good), pa.string())
            data["row"] = pa.array(good, pa.int64())
        for name in sorted(outputs):  # the signature's dict order varies between loads
            data[output_column(name)] = _arrow(outputs[name])
        data["model"] = pa.array([self.ref.name] * len(good), pa.string())
        data["model_version"] = pa.array([self.ref.version] * len(good), pa.int64())
        data["manifest_sha256"] = pa.array([self.ref.manifest_sha256] * len(good), pa.string())
        return pa.table(data)

    def _log(
        self,
        shard: _Shard,
        columns: dict[str, Any],
        outputs: dict[str, Any],
        good: np.ndarray[Any, Any],
    ) -> int:
        """Append the scored rows to the prediction log, as the server writes them."""
        assert self.log_url is not None
        stamp = self.log_time or datetime.now(UTC)
        prefix = f"batch.{self.run_id}.{_UNSAFE.sub('_', shard.name)[:60]}"
        for start in range(0, len(good), LOG_FILE_ROWS):
            stop = min(start + LOG_FILE_ROWS, len(good))
            batch: list[dict[str, Any]] = []
            append_request_rows(
                batch,
                model=self.ref.name,
                version=self.ref.version,
                request_id=prefix,
                timestamp=stamp,
                columns={k: v[start:stop] for k, v in columns.items()},
                outputs={k: v[start:stop] for k, v in outputs.items()},
                rows=stop - start,
            )
            for row, index in zip(batch, good[start:stop].tolist(), strict=True):
                row[REQUEST_ID] = f"{prefix}.{index}"
            write_log_file(self.log_url, batch)
        return len(good)


def _arrow(value: np.ndarray[Any, Any]) -> pa.Array:
    """A model output as an Arrow column (its dtype kept; a row of a 2-D output as a list)."""
    if value.ndim <= 1:
        return pa.array(value.reshape(-1).tolist() if value.dtype == object else value)
    width = int(np.prod(value.shape[1:]))
    offsets = pa.array(np.arange(0, (len(value) + 1) * width, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(value.reshape(-1)))


def _rejects_table(table: pa.Table, bad: list[int], reasons: dict[int, list[str]]) -> pa.Table:
    raw = table.take(pa.array(bad, pa.int64()))
    data: dict[str, Any] = {
        "row": pa.array(bad, pa.int64()),
        "reason": pa.array(["; ".join(reasons[i]) for i in bad], pa.string()),
    }
    for name, column in zip(raw.column_names, raw.columns, strict=True):
        data[f"raw.{name}" if name in data else name] = column
    return pa.table(data)


def _write_parquet(url: str, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write_url(url, sink.getvalue().to_pybytes())


def _fs(url: str) -> tuple[Any, str]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


def _remove(url: str) -> None:
    fs, path = _fs(url)
    if fs.exists(path):
        fs.rm(path)


def _marker(out: str, name: str) -> str:
    return f"{out}/_done/{name}.json"


# -- the run ---------------------------------------------------------------------------


def fingerprint(path: str) -> str:
    """A shard's identity for resuming: its size and its ETag (object stores) or mtime.

    Examples:
        >>> fingerprint("shards/part-0000.csv")  # doctest: +SKIP
        'size=52214;mtime=1718000000.123'
    """
    fs, inner = _fs(path.removeprefix("file://"))
    info = fs.info(inner)
    for key in ("ETag", "etag", "md5Hash", "crc32c", "mtime", "LastModified", "last_modified"):
        value = info.get(key)
        if value is not None:
            stamp = value.isoformat() if isinstance(value, datetime) else str(value)
            return f"size={info.get('size')};{key.lower()}={stamp.strip(chr(34))}"
    return f"size={info.get('size')}"


def _done(out: str, shard: _Shard, ref: ModelRef, keys: tuple[str, ...]) -> ShardOutcome | None:
    """The earlier outcome of a shard finished with the same inputs, else None."""
    fs, marker = _fs(_marker(out, shard.name))
    output_fs, output = _fs(f"{out}/{shard.name}.parquet")
    try:
        if not fs.exists(marker) or not output_fs.exists(output):
            return None
        with fs.open(marker, "rb") as handle:
            record = orjson.loads(handle.read())
    except (OSError, orjson.JSONDecodeError):
        return None
    same = (
        record.get("fingerprint") == shard.fingerprint
        and record.get("version") == ref.version
        and record.get("manifest_sha256") == ref.manifest_sha256
        and record.get("keys") == list(keys)
    )
    if not same:
        return None
    fields = {k: record[k] for k in ShardOutcome.__dataclass_fields__ if k in record}
    return ShardOutcome(**{**fields, "shard": shard.path, "name": shard.name, "status": "skipped"})


def _plan(source: str | Sequence[str]) -> list[_Shard]:
    shards = [_Shard(p, shard_name(p), fingerprint(p)) for p in list_shards(source)]
    seen: dict[str, str] = {}
    for shard in shards:
        other = seen.setdefault(shard.name, shard.path)
        if other != shard.path:
            raise UsageError(
                f"shards '{other}' and '{shard.path}' would both be written as "
                f"{shard.name}.parquet; give shards distinct file names or score them into "
                "separate --out folders"
            )
    return shards


def _check_keys(keys: tuple[str, ...]) -> None:
    taken = [k for k in keys if k in MODEL_COLUMNS or k.startswith("output.")]
    if taken:
        raise UsageError(
            f"--key {taken[0]!r} collides with a column score writes "
            f"({', '.join(MODEL_COLUMNS)}, output.*); pick other key columns"
        )
    if len(set(keys)) != len(keys):
        raise UsageError(f"--key names a column twice: {', '.join(keys)}")


def score_shards(  # noqa: PLR0913 - keyword-only options of `mooring score`
    cfg: MooringConfig,
    registry: Registry,
    *,
    data: str | Sequence[str],
    out: str,
    model: str | None = None,
    version: int | str = "production",
    key_columns: Sequence[str] = (),
    engine: Engine | None = None,
    log: bool = False,
    batch_rows: int = 8192,
    on_start: Callable[[int], None] | None = None,
    on_shard: Callable[[ShardOutcome], None] | None = None,
) -> ScoreSummary:
    """Score every shard of ``data`` with ``version`` of ``model``; outputs under ``out``.

    Args:
        cfg: the project (``[data]`` reading options, ``[serving]`` door policies,
            ``[contract]`` rules, the prediction log's URL).
        registry: where the version is registered.
        data: a file, folder, glob or fsspec URL, or a list of them (see
            :func:`~mooring.scale.list_shards`).
        out: a folder or fsspec URL for the outputs, rejects and markers.
        model: the model's name (default ``[project] name``).
        version: a version number or an alias (``production``, ``canary``, ``latest``…).
        key_columns: input columns copied to each output row (default: ``shard``, ``row``).
        engine: where shards are scored (default ``[project] engine``).
        log: append the scored rows to the prediction log as one batch window.
        batch_rows: rows per model call.
        on_start: called with the number of shards once they are listed and the
            version is fetched.
        on_shard: called on this process with each shard's outcome as it finishes
            (skipped shards first).

    Raises:
        NotFoundError: no such model, version or alias, or the source names no file.
        IntegrityError: the version's artifact does not match its manifest.
        MooringError: a shard failed (the first one's class and message, after every
            other shard ran; finished shards stay done).

    Examples:
        >>> summary = score_shards(cfg, registry, data="s3://b/day=2024-06-01/", out="s3://b/scores/",
        ...                 version=3, key_columns=["id"], engine=Engine("ray"))  # doctest: +SKIP
    """
    started = time.perf_counter()
    engine = engine or Engine.from_config(cfg.project)
    if batch_rows < 1:
        raise UsageError(f"batch_rows must be at least 1, got {batch_rows}")
    keys = tuple(key_columns)
    _check_keys(keys)
    out = out.rstrip("/") if is_url(out) else out.removeprefix("file://").rstrip("/") or "/"
    shards = _plan(data)
    ref = resolve_model(registry, model or cfg.project.name, version, contract=cfg.contract)
    serving = cfg.serving
    scorer = ShardScorer(
        ref=ref,
        out=out,
        keys=keys,
        options=ReadOptions.from_config(cfg.data),
        policy=InputPolicy(nan=serving.nan_policy, infinity=serving.infinity_policy),
        contract_checks=serving.contract_checks,
        refuse=frozenset(
            s for s in ("out_of_range", "unseen_category") if getattr(serving, s) == "reject"
        ),
        log_url=(serving.log_url or str(cfg.home / "predictions")) if log else None,
        run_id=datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6],
        log_time=datetime.now(UTC),
        batch_rows=batch_rows,
    )
    summary = ScoreSummary(
        model=ref.name,
        version=ref.version,
        manifest_sha256=ref.manifest_sha256,
        out=out,
        engine=engine.describe(),
        contract=ref.contract_source
        or (f"none ({ref.contract_error})" if ref.contract_error else None),
    )
    if on_start is not None:
        on_start(len(shards))
    outcomes: dict[int, ShardOutcome] = {}
    raised: dict[int, type[MooringError]] = {}  # a failed shard's error class, to raise
    todo: list[int] = []
    for i, shard in enumerate(shards):
        earlier = _done(out, shard, ref, keys)
        if earlier is None:
            todo.append(i)
            continue
        outcomes[i] = earlier
        if on_shard is not None:
            on_shard(earlier)

    def finished(index: int, result: tuple[Any, ...]) -> None:
        shard = shards[todo[index]]
        if result[0] == "ok":
            outcome: ShardOutcome = result[1]
        else:
            kind = raised[todo[index]] = error_class(result[1])
            outcome = ShardOutcome(
                shard.path, shard.name, "failed", error=result[2], error_class=kind.__name__
            )
        outcomes[todo[index]] = outcome
        if on_shard is not None:
            on_shard(outcome)

    summary.retried = run_pool(
        scorer, [shards[i] for i in todo], engine, finished, label=lambda s: f"shard '{s.path}'"
    )
    summary.shards = [outcomes[i] for i in range(len(shards))]
    summary.seconds = time.perf_counter() - started
    failed = summary.failed
    if failed:
        first = failed[0]
        raise raised.get(summary.shards.index(first), MooringError)(
            f"{first.error} ({len(failed)} of {len(shards)} shards failed; the others are "
            "written: fix the cause and run the command again to score the rest)"
        )
    return summary
