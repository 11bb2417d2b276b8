"""``scaffold_config``: a commented mooring.toml from a dataset (``mooring init``).

One pass of statistics over the data gives the inferred schema (listed in
comments), a proposed feature spec (what the feature layer would infer,
written out so it can be edited), the label (given, or guessed: a column named
like ``label``/``target``/``class``/``y``, else the last column), the task and
positive class, the event-time column (``[data] timestamp``: a column that holds
timestamps, see :func:`guess_timestamp`), the model's name (see :func:`propose_name`),
the judgment (an operating threshold chosen on the eval data for a binary label, and
the default gates, listed in comments: beyond chance with its interval, better than the
training prior, no worse than the linear candidate and production), and the rollout,
serving and pipeline defaults. Without an evaluation file it holds out a share of the rows (see
:func:`split_holdout`), which ``mooring init`` writes beside the project file.

Examples:
    >>> scaffold = scaffold_config("data/train.csv", eval_data="data/test.csv",
    ...                            out_dir=Path("."))  # doctest: +SKIP
    >>> Path("mooring.toml").write_text(scaffold.text)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mooring.config._base import DEFAULT_NA_VALUES
from mooring.config._model import PRIMARY_METRIC, FeaturesConfig, ModelConfig, plan_training
from mooring.config._monitoring import RolloutConfig
from mooring.contract._io import ReadOptions, detect_delimiter, read_table
from mooring.contract._leakage import find_leaks, read_sample
from mooring.contract._schema import Schema, infer_schema
from mooring.contract._statistics import DatasetStatistics, compute_statistics
from mooring.errors import UsageError, has_extra
from mooring.formats._labels import integer_classes
from mooring.formats._split import training_rows

__all__ = [
    "LABEL_NAMES",
    "TIMESTAMP_NAMES",
    "Holdout",
    "Scaffold",
    "guess_label",
    "guess_timestamp",
    "propose_name",
    "scaffold_config",
    "split_holdout",
]

#: Column names taken for the label, in order of preference (case-insensitive).
LABEL_NAMES = ("label", "target", "class", "y", "outcome", "income", "churn", "default")
#: Among several timestamp columns, these names are taken for the event time first.
TIMESTAMP_NAMES = (
    "timestamp",
    "event_time",
    "event_timestamp",
    "ts",
    "time",
    "datetime",
    "created_at",
    "date",
)
#: Folder names that say nothing about the model: the name comes from the label instead.
GENERIC_FOLDERS = frozenset(
    {"app", "code", "data", "home", "project", "projects", "repo", "src", "temp", "tmp", "work"}
)
#: The [model] seed `init` writes: the same data and config train bit-identical weights,
#: and the validation split (hence the training plan stated in the file) is fixed.
SEED = 42
#: Where `mooring docs` serves the documentation that travels with the package (its
#: default port); a page's address is its path under docs/ as a folder.
DOCS_ADDRESS = "http://127.0.0.1:8000/"
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
# What [project] name accepts (config's NAME_PATTERN): it appears in registry keys and URLs.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass
class Holdout:
    """The data file split in two by :func:`split_holdout`: the files to write (Parquet,
    beside the project file) and how the held-out rows were chosen."""

    train: pa.Table
    eval: pa.Table
    train_file: str
    eval_file: str
    how: str

    def payloads(self) -> dict[str, bytes]:
        """Each file's name and its Parquet bytes."""
        out = {}
        for name, table in ((self.train_file, self.train), (self.eval_file, self.eval)):
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink)
            out[name] = sink.getvalue().to_pybytes()
        return out


def split_holdout(
    table: pa.Table, share: float, *, stem: str, timestamp: str | None, seed: int = 0
) -> Holdout:
    """Hold out ``share`` of ``table``'s rows for evaluation: the latest by ``timestamp``
    (a model is judged on data newer than what it learned from, as it will be served),
    else a random sample drawn with ``seed``. Each part keeps the file's row order.

    Examples:
        >>> t = pa.table({"x": list(range(10))})
        >>> split_holdout(t, 0.2, stem="d", timestamp=None).eval.num_rows
        2
    """
    rows = table.num_rows
    held = min(rows - 1, max(1, round(rows * share)))
    if timestamp is not None:
        order = pc.sort_indices(table, sort_keys=[(timestamp, "ascending")]).to_numpy()
        nulls = table.column(timestamp).null_count  # sorted last: rows of unknown time train
        order = np.concatenate([order[rows - nulls :], order[: rows - nulls]])
        picked = np.sort(order[rows - held :])
        how = f"the latest {held:,} of {rows:,} rows by {timestamp!r}"
    else:
        picked = np.sort(np.random.default_rng(seed).permutation(rows)[:held])
        how = f"{held:,} of {rows:,} rows drawn at random (seed {seed})"
    keep = np.ones(rows, dtype=bool)
    keep[picked] = False
    return Holdout(
        train=table.filter(pa.array(keep)),
        eval=table.take(pa.array(picked)),
        train_file=f"{stem}.train.parquet",
        eval_file=f"{stem}.holdout.parquet",
        how=how,
    )


def _stem(path: Path) -> str:
    """The data file's name without its format suffixes (``orders.csv.gz`` → ``orders``)."""
    name = path.name
    for suffix in (".gz", ".bz2", ".zst", ".csv", ".parquet", ".pq", ".tsv", ".txt"):
        name = name.removesuffix(suffix)
    return name or "data"


@dataclass
class Scaffold:
    """A proposed project file and what it was derived from."""

    text: str
    label: str
    label_reason: str
    task: str
    positive: str | None
    rows: int
    columns: list[str]
    warnings: list[str] = field(default_factory=list)
    name: str = "model"
    name_reason: str = ""
    timestamp: str | None = None
    timestamp_reason: str | None = None
    ids: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    delimiter: str = ","
    delimiter_detected: bool = False
    holdout: Holdout | None = None
    #: Columns left out as leaks of the label (:func:`~mooring.contract._leakage.find_leaks`),
    #: each with why.
    leaks: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the text)."""
        return {
            "name": self.name,
            "name_reason": self.name_reason,
            "label": self.label,
            "label_reason": self.label_reason,
            "timestamp": self.timestamp,
            "timestamp_reason": self.timestamp_reason,
            "task": self.task,
            "positive": self.positive,
            "rows": self.rows,
            "columns": self.columns,
            "ids": self.ids,
            "empty": self.empty,
            "leaks": self.leaks,
            "delimiter": self.delimiter,
            "delimiter_detected": self.delimiter_detected,
            "holdout": None
            if self.holdout is None
            else {
                "train": self.holdout.train_file,
                "eval": self.holdout.eval_file,
                "train_rows": self.holdout.train.num_rows,
                "eval_rows": self.holdout.eval.num_rows,
                "how": self.holdout.how,
            },
            "warnings": self.warnings,
        }


def guess_label(columns: Sequence[str]) -> tuple[str, str]:
    """The label column and why: a conventional name, else the last column.

    Examples:
        >>> guess_label(["age", "Target", "x"])
        ('Target', "named like a label ('target')")
        >>> guess_label(["a", "b"])
        ('b', 'the last column')
    """
    if not columns:
        raise UsageError("the data has no columns; point mooring init at a CSV or Parquet file")
    lowered = {c.lower(): c for c in columns}
    for name in LABEL_NAMES:
        if name in lowered:
            return lowered[name], f"named like a label ({name!r})"
    return columns[-1], "the last column"


def guess_timestamp(types: Mapping[str, str], label: str | None = None) -> tuple[str | None, str]:
    """The event-time column and why, from the columns' types: the one column that holds
    timestamps (or dates), else among several the first named like one
    (:data:`TIMESTAMP_NAMES`), else the first of them; ``(None, why)`` when none does.

    Examples:
        >>> guess_timestamp({"age": "integer", "when": "timestamp"})
        ('when', 'the only timestamp column')
        >>> guess_timestamp({"signup": "timestamp", "event_time": "timestamp"})[0]
        'event_time'
        >>> guess_timestamp({"age": "integer"})
        (None, 'no column holds timestamps')
    """
    found = [n for n, t in types.items() if t == "timestamp" and n != label]
    if not found:
        return None, "no column holds timestamps"
    if len(found) == 1:
        return found[0], "the only timestamp column"
    others = ", ".join(found)
    lowered = {n.lower(): n for n in found}
    for name in TIMESTAMP_NAMES:
        if name in lowered:
            return lowered[name], f"named like an event time, of the timestamp columns {others}"
    return found[0], f"the first of the timestamp columns {others}"


def _safe_name(text: str) -> str:
    """``text`` as a [project] name: other characters become '-', at most 128 of them."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)
    return re.sub(r"^[^A-Za-z0-9]+", "", cleaned)[:128].rstrip("-.")


def propose_name(out_dir: Path, label: str) -> tuple[str, str]:
    """The model's name and why: the name of the folder the project file is written to
    (a project usually lives in a folder named for what it predicts: ``churn/``,
    ``fraud-model/``), else ``<label>_model`` when that folder's name says nothing about
    the model (``data``, ``tmp``, … :data:`GENERIC_FOLDERS`) or is not a usable name.

    Not the data file's name: it names the data (``orders_train``), and the model
    outlives the file it was first trained on.

    Examples:
        >>> propose_name(Path("/home/ana/churn"), "churned")
        ('churn', "the project folder's name")
        >>> propose_name(Path("/tmp"), "is fraud")
        ('is-fraud_model', "the label's name: the project folder's says nothing ('tmp')")
    """
    folder = out_dir.resolve().name
    name = _safe_name(folder)
    if name and name.lower() not in GENERIC_FOLDERS:
        return name, "the project folder's name"
    return (
        _safe_name(f"{label}_model") or "model",
        f"the label's name: the project folder's says nothing ({folder or '/'!r})",
    )


def _key(name: str) -> str:
    if _BARE_KEY.match(name):
        return name
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _str(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _task(stats: DatasetStatistics, label: str) -> tuple[str, str | None, str]:
    """(task, positive class, explanation) from the label's statistics."""
    col = stats[label]
    if col.strings is not None and col.type in ("string", "boolean"):
        top = col.strings.top(1000)
        distinct = col.strings.distinct
        present = max(col.present, 1)
        if distinct <= 1:
            raise UsageError(
                f"label column '{label}' holds a single value ({top[0][0] if top else 'none'}); "
                "pick another with --label"
            )
        if distinct == 2:
            rare, count = min(top[:2], key=lambda item: (item[1], item[0]))
            share = count / present
            return "binary", rare, f"2 values; positive = the rarer ({share:.0%})"
        return "multiclass", None, f"{distinct} values"
    if col.numeric is not None and col.type == "integer" and col.numeric.count:
        lo, hi = col.numeric.min, col.numeric.max
        if lo == 0 and hi == 1:
            return "binary", "1", "integer 0/1; positive = 1"
        if hi - lo == 1:
            return "binary", f"{hi:.0f}", f"integer {lo:.0f}/{hi:.0f}; positive = {hi:.0f}"
        if integer_classes(col):  # as training's task = "auto" decides
            return "multiclass", None, f"integer classes {lo:.0f}–{hi:.0f}"
    return "regression", None, f"{col.type} values"


def _schema_comments(schema: Schema, stats: DatasetStatistics, label: str) -> list[str]:
    roles = {label: "   (label)"}
    if schema.timestamp is not None:
        roles[schema.timestamp] = "   (timestamp)"
    lines = [
        "# The data contract inferred now; the first `mooring run` writes it to",
        "# contract/schema.yaml (keep it under version control), every later run holds new",
        "# data to it, and `mooring schema accept FILE -r REASON` changes it:",
    ]
    for name, column in schema.columns.items():
        stat = stats[name]
        parts = [column.type, f"{stat.null_fraction:.1%} missing"]
        if column.min is not None and column.max is not None:
            parts.append(f"range [{_fmt(column.min)}, {_fmt(column.max)}]")
        if column.domain is not None:
            parts.append(f"{len(column.domain)} values")
        suffix = roles.get(name, "")
        lines.append(f"#   {name}: {', '.join(parts)}{suffix}")
    return lines


#: A column whose present values are at least this share distinct is an id, not a feature.
ID_SHARE = 0.99
#: Fewer present values than this prove nothing about uniqueness.
ID_MIN_ROWS = 20


def guess_ids(
    path: Path, options: ReadOptions, stats: DatasetStatistics, skip: Sequence[str]
) -> dict[str, str]:
    """Integer and text columns whose values are (nearly) all distinct: ids, which a model
    can only memorise. Returns each id column with the reason, for the file's comment.

    Text columns are judged from the statistics; integer columns whose range could hold
    that many distinct values are read once more (those columns only) and their distinct
    values counted exactly: a sketch cannot tell an id from a wide count, and a float64
    cannot tell ids beyond 2^53 apart.

    Examples:
        >>> guess_ids(Path("loans.parquet"), ReadOptions(), stats, ["defaulted"])  # doctest: +SKIP
        {'loan_id': '5000 distinct values in 5000 rows'}
    """
    ids: dict[str, str] = {}
    integers = []
    for name in stats.column_names:
        col = stats[name]
        if name in skip or col.present < ID_MIN_ROWS:
            continue
        if col.type == "integer":
            # Fewer whole numbers between min and max than rows: not an id, and not read.
            numeric = col.numeric
            if numeric is not None and numeric.max - numeric.min + 1 >= ID_SHARE * col.present:
                integers.append(name)
        elif (
            col.type == "string"
            and col.strings is not None
            and col.strings.distinct >= ID_SHARE * col.present
        ):
            ids[name] = f"{col.strings.distinct:,} distinct values in {col.present:,} rows"
    if integers:
        table = read_table(path, options, columns=integers)
        for name in integers:
            distinct = pc.count_distinct(table.column(name), mode="only_valid").as_py()
            if distinct >= ID_SHARE * stats[name].present:
                ids[name] = f"{distinct:,} distinct values in {stats[name].present:,} rows"
    return {name: ids[name] for name in stats.column_names if name in ids}


def _feature_lines(
    stats: DatasetStatistics, schema: Schema, label: str, exclude: Sequence[str] = ()
) -> list[str]:
    from mooring.features._infer import build_feature_spec

    config = FeaturesConfig(exclude=list(exclude))
    spec = build_feature_spec(
        config, statistics=stats, schema=schema, label=label, timestamp=schema.timestamp
    )
    lines = []
    for feature in spec.features:
        entry: dict[str, str] = {"kind": _str(feature.kind)}
        note = ""
        if feature.kind == "numeric":
            entry["transform"] = _str(feature.transform)
            if feature.transform == "bucketize" and feature.boundaries:
                entry["buckets"] = str(len(feature.boundaries) + 1)
                note = "spiky or heavy-tailed: quantile buckets"
            elif feature.transform == "bucketize":  # one value in nearly every row
                note = "its quantiles are one value (one bucket): consider exclude"
            if feature.constant:
                note = "(near) constant: consider exclude"
        elif feature.kind == "categorical":
            entry["encoding"] = _str(feature.encoding)
            if feature.encoding == "embedding" and feature.dim:
                entry["dim"] = str(feature.dim)
            if feature.encoding == "hashing" and feature.bins:
                entry["bins"] = str(feature.bins)
            note = f"{len(feature.vocabulary)} values" if feature.vocabulary else ""
        body = ", ".join(f"{k} = {v}" for k, v in entry.items())
        line = f"{_key(feature.name)} = {{ {body} }}"
        lines.append(f"{line:<64}# {note}" if note else line)
    return lines


def _budget_lines(labels: pa.ChunkedArray) -> list[str]:
    """Comments that say how long the network trains on this data, and how to fix it.

    The plan is the one training will compute (:func:`plan_training`), from the rows it
    will train on: those of ``labels`` (the label column of ``[data] train``, held-out
    rows already gone) with a label, outside the validation split of the ``[model]``
    written here (:func:`~mooring.formats._split.training_rows`).
    """
    model = ModelConfig(seed=SEED)
    train_rows = training_rows(labels, model.validation_split, SEED)
    plan = plan_training(model, train_rows)
    return [
        "# How long to train adapts to the data: with epochs, max_steps and batch_size unset,",
        "# the network trains for a budget of optimizer steps, max(2,000, 10 passes) at most",
        "# 50,000, in batches scaled to the rows (rows/128 as a power of two, 32 … 4096),",
        "# checks the validation split every ≥ 25 steps, stops when it stops improving and",
        f"# keeps the best weights. For these {train_rows:,} training rows (with a label, outside",
        f"# the validation split): {plan.reason}.",
        "# Set epochs = N (passes over the data; no early stopping unless",
        "# [model.early_stopping] is set) or max_steps = N, and batch_size = N, to fix them.",
        "# epochs = 10",
        "# batch_size = 256",
    ]


def _gate_lines(task: str) -> list[str]:
    """The proposed judgment: the default gates, said in comments, with how to replace them.

    No ``[[evaluation.gates]]`` is written: the default gates judge what a model is
    (beyond chance with its interval, better than the training prior, no worse than the
    linear candidate and than production), which a declared bound cannot say (a declared
    ``lower`` bounds the value, not the lower end of its interval), and they are
    replaced as a whole by any declared gate that judges.
    """
    headline = {"binary": "auc", "multiclass": "accuracy", "regression": "r2"}[task]
    chance = {
        "binary": "auc beats chance (0.5) beyond its confidence interval (its lower end > 0.5)",
        "multiclass": "accuracy beats always answering the most frequent class, beyond its",
        "regression": "r2 beats predicting the mean (r2 > 0) beyond its confidence interval",
    }[task]
    prior = {
        "binary": "log-loss below always predicting the training base rate",
        "multiclass": "log-loss below always predicting the training class frequencies",
        "regression": "squared error below predicting the training mean, beyond its interval",
    }[task]
    lines = [
        "# No [[evaluation.gates]] are declared, so the default gates judge every candidate",
        "# (default_gates = true); a refusal names the gate, the value and what would pass:",
        f"#  - {chance}",
    ]
    if task == "multiclass":
        lines.append("#    confidence interval")
    lines.append(f"#  - {prior}")
    if task == "binary":
        lines += [
            "#  - at the threshold chosen above: precision above the positive share and recall",
            "#    at least default_min_recall (with a precision target: the target reached;",
            "#    with costs: cheaper than always answering one class)",
        ]
    lines += [
        f"#  - {headline} no worse than the linear candidate beyond its interval",
        f"#  - {headline} no worse than production by more than default_margin, beyond",
        "#    production's interval",
        "default_gates = true",
        f"default_margin = 0.01        # how far {headline} may fall below production's",
        "# Declared gates replace them all, e.g. a floor from your first model's report:",
        "# [[evaluation.gates]]",
        f'# metric = "{headline}"',
        f"# lower = {'0.75' if task == 'binary' else '0.5'}",
    ]
    return lines


def _checked_input(data: str | Path, name: str | None) -> Path:
    """The data file, when it exists and ``name`` (if given) is a model name."""
    path = Path(data)
    if not path.is_file():
        raise UsageError(f"data file '{data}' does not exist; pass a CSV or Parquet file")
    if name is not None and not _NAME.match(name):
        raise UsageError(
            f"--name {name!r}: a model name starts with a letter or digit and uses only "
            "letters, digits, '_', '.', '-' (at most 128), since it appears in registry keys "
            "and URLs"
        )
    return path


def _data_lines(
    data: str | Path,
    path: Path,
    options: ReadOptions,
    eval_data: str | Path | None,
    holdout: float,
    timestamp: str | None,
    out_dir: Path,
    rows: int,
    warnings: list[str],
) -> tuple[Holdout | None, str, str]:
    """The held-out split (if one is made) and the ``[data] train`` and ``eval`` lines."""
    split: Holdout | None = None
    if eval_data is None and holdout > 0:
        if rows < 2:
            raise UsageError(
                f"'{data}' has one row: nothing can be held out for evaluation; pass --eval "
                "FILE, or a file with more rows"
            )
        split = split_holdout(
            read_table(path, options), holdout, stem=_stem(path), timestamp=timestamp
        )
        return (
            split,
            f"train = {_str(split.train_file)}     # {path.name} but its held-out rows "
            "(written by mooring init)",
            f"eval = {_str(split.eval_file)}      # held out by mooring init: {split.how}",
        )
    if eval_data is None:
        warnings.append(
            "no --eval file and --holdout 0: [data] eval is left commented out; evaluation, "
            "gates and `mooring run` need one (a held-out file of the same shape)"
        )
    elif not Path(eval_data).is_file():
        raise UsageError(f"--eval file '{eval_data}' does not exist")

    def rel(value: str | Path) -> str:
        return Path(os.path.relpath(Path(value).resolve(), out_dir.resolve())).as_posix()

    eval_line = (
        f"eval = {_str(rel(eval_data))}      # held-out data: validated against train, "
        "scored, gated"
        if eval_data is not None
        else '# eval = "holdout.csv"      # held-out data of the same shape: needed to '
        "evaluate and gate"
    )
    return (
        split,
        f"train = {_str(rel(path))}     # training data: CSV (.csv, .csv.gz) or Parquet",
        eval_line,
    )


def _trees_candidate() -> list[str]:
    """The gradient-boosted-trees candidate, or how to add it when the extra is missing."""
    if has_extra("ydf"):
        return [
            "[[model.candidates]]",
            'name = "gbt"',
            'kind = "gbt"               # [model.gbt] sets its trees',
            "",
        ]
    return [
        "# A third candidate, gradient boosted trees, needs the trees extra:",
        "# pip install 'mooring-ml[trees]', then add",
        '# [[model.candidates]]  name = "gbt"  kind = "gbt"',
        "",
    ]


def scaffold_config(
    data: str | Path,
    *,
    out_dir: Path,
    label: str | None = None,
    eval_data: str | Path | None = None,
    name: str | None = None,
    na_values: Sequence[str] = (),
    delimiter: str | None = None,
    exclude: Sequence[str] = (),
    timestamp: str | None = None,
    holdout: float = 0.2,
) -> Scaffold:
    """Read ``data`` once and propose a commented mooring.toml for it (see the module doc).

    Paths in the file are relative to ``out_dir`` (where mooring.toml will live).
    ``exclude`` columns are left out of the features (and get no proposed line).
    ``name`` and ``timestamp`` replace the proposed model name and event-time column
    (``timestamp=""``: none). ``delimiter`` ``None``: the CSV's own, detected
    (:func:`~mooring.contract._io.detect_delimiter`). Without ``eval_data``, ``holdout``
    of the rows are held out (:func:`split_holdout`; 0: none, and ``[data] eval`` is left
    for the user to set); the caller writes ``Scaffold.holdout``'s files to ``out_dir``.
    A column that leaks the label (alone AUC or R² ≥ 0.99, or a linear identity with it,
    measured on a sample: :func:`~mooring.contract._leakage.find_leaks`) is excluded with
    a comment saying why (``Scaffold.leaks``).
    """
    if not 0.0 <= holdout < 1.0:
        raise UsageError(f"--holdout {holdout:g} is not a share of the rows; give 0 <= it < 1")
    path = _checked_input(data, name)
    na = tuple(dict.fromkeys([*DEFAULT_NA_VALUES, *na_values]))
    detected = delimiter is None
    if delimiter is None:
        delimiter = detect_delimiter(path)
    options = ReadOptions(na_values=na, delimiter=delimiter)
    stats = compute_statistics(path, options)
    if stats.num_rows == 0:
        raise UsageError(
            f"'{data}' has a header but no data rows; `mooring init` proposes a project from "
            "the data, so point it at a file with rows"
        )
    columns = stats.column_names
    unknown = [c for c in exclude if c not in columns]
    if unknown:
        raise UsageError(
            f"--exclude {', '.join(map(repr, unknown))}: not a column of '{data}'; columns: "
            + ", ".join(columns)
        )
    if label is None:
        label, reason = guess_label(columns)
    elif label not in columns:
        raise UsageError(
            f"--label {label!r} is not a column of '{data}'; columns: {', '.join(columns)}"
        )
    else:
        reason = "given with --label"
    task, positive, task_reason = _task(stats, label)
    if timestamp is None:
        types = {c: stats[c].type for c in columns}
        timestamp, timestamp_reason = guess_timestamp(types, label)
    elif timestamp == "":
        timestamp, timestamp_reason = None, "none, as --timestamp '' asks"
    elif timestamp not in columns or timestamp == label:
        raise UsageError(
            f"--timestamp {timestamp!r} is not a column of '{data}' other than the label; "
            f"columns: {', '.join(columns)}"
        )
    else:
        timestamp_reason = "given with --timestamp"
    schema = infer_schema(stats, label=label, timestamp=timestamp)
    ids = guess_ids(path, options, stats, [label, *([timestamp] if timestamp else []), *exclude])
    # A column with no value at all gives a model nothing, and training refuses it.
    empty = [
        c
        for c in columns
        if stats[c].present == 0 and c not in (label, timestamp) and c not in [*exclude, *ids]
    ]
    # A column that alone predicts the label (or sums to it with another) is the label
    # under another name: measured on a sample, left out with its reason.
    leaks = find_leaks(
        read_sample(path, options, total=stats.num_rows),
        label,
        task=task,
        positive=positive,
        skip=[*exclude, *ids, *empty, *([timestamp] if timestamp else [])],
    )
    exclude = [*exclude, *ids, *empty, *leaks]
    warnings: list[str] = []
    split, train_line, eval_line = _data_lines(
        data, path, options, eval_data, holdout, timestamp, out_dir, stats.num_rows, warnings
    )
    project, name_reason = (name, "given with --name") if name else propose_name(out_dir, label)
    steps = RolloutConfig().steps
    lines = [
        f"# mooring project file proposed by `mooring init` from {path.name} "
        f"({stats.num_rows:,} rows, {len(columns)} columns).",
        "# Every key is explained here and on the reference page of the documentation:",
        f"# run `mooring docs` and open {DOCS_ADDRESS}reference/config/",
        "# Next: `mooring run` validates, trains, evaluates, gates, registers and deploys;",
        "# `mooring serve` serves it; `mooring status` shows what is deployed.",
        "",
        "[project]",
        f"# name: {name_reason} (`mooring init --name` or edit it here); not the data file's",
        "# name, since the model outlives the file it was first trained on.",
        f"name = {_str(project)}{' ' * max(1, 22 - len(project))}# the model's name in the "
        "registry and in serving URLs",
        'home = ".mooring"            # state: statistics, schema, runs, registry, reports',
        "",
        "[data]",
        train_line,
        eval_line,
        f"label = {_str(label)}{' ' * max(1, 20 - len(label))}# {reason}; change it if wrong",
    ]
    if positive is not None:
        lines.append(
            f"positive = {_str(positive)}       # the class whose probability is predicted"
        )
    lines += (
        [
            f"# timestamp: {timestamp_reason}. Evaluation also scores each week of it, the",
            "# drift check is calibrated in time order; it is not a feature.",
            f"timestamp = {_str(timestamp)}{' ' * max(1, 16 - len(timestamp))}# event time",
        ]
        if timestamp is not None
        else [
            '# timestamp = "event_time"  # the event-time column, if the data has one: evaluation',
            "                            # by week, the drift check in time order",
        ]
    )
    lines.append(
        "na_values = [" + ", ".join(_str(v) for v in na) + "]   # tokens that mean missing"
    )
    if delimiter != ",":
        lines.append(f"delimiter = {_str(delimiter)}            # the CSV's field separator")
    lines += [
        "",
        "[contract]",
        *_schema_comments(schema, stats, label),
        "critical = []              # columns whose anomalies fail the run, e.g. "
        f"[{_str(columns[0])}]",
        'severity = "warning"       # anomalies on other columns warn',
        "range_margin = 0.1         # numeric ranges widen the observed range by 10% of its span",
        "",
        "[features]",
        "# Proposed from the statistics: every column except the label is a feature. Edit an",
        "# entry to change it, delete it to let mooring infer it, or list columns to leave out",
        "# (a column listed below and excluded is excluded):",
        *[
            f"# {_str(n)}: {reason}: an id, which a model can only memorise"
            for n, reason in ids.items()
        ],
        *[
            f"# {_str(n)}: no value in {stats.num_rows:,} rows, nothing to learn from"
            for n in empty
        ],
        *[f"# {_str(n)}: {why}" for n, why in leaks.items()],
        (
            "exclude = [" + ", ".join(_str(c) for c in exclude) + "]"
            if exclude
            else '# exclude = ["id"]'
        ),
        *_feature_lines(stats, schema, label, exclude),
        "",
        "[model]",
        f'task = "{task}"{" " * max(1, 18 - len(task))}# {task_reason}',
        'kind = "mlp"               # mlp | linear (logistic/linear regression on the same',
        "                           # features) | gbt (gradient boosted trees, [model.gbt])",
        "hidden = [64, 32]          # units of the hidden layers of the built-in MLP",
        "dropout = 0.1",
        *_budget_lines(
            split.train.column(label)
            if split is not None
            else read_table(path, options, columns=[label]).column(label)
        ),
        "learning_rate = 0.001",
        f"seed = {SEED}                  # same data + config → bit-identical weights",
        f'select = "{PRIMARY_METRIC[task]}"{" " * max(1, 14 - len(PRIMARY_METRIC[task]))}'
        "# picks among the candidates that pass the gates; ties: lower",
        "                           # cost per 1,000 predictions",
        "",
        "# Candidates: each is trained on the same data and evaluated on the same records;",
        "# the report compares them side by side and the run registers the best that passes",
        "# every gate. A candidate overrides any [model] key (hidden, max_steps, gbt, …).",
        "# Delete the candidate tables to train the one model [model] describes.",
        "[[model.candidates]]",
        'name = "linear"            # the baseline the default gates compare with',
        'kind = "linear"',
        "",
        "[[model.candidates]]",
        'name = "mlp"',
        'kind = "mlp"',
        "",
        *_trees_candidate(),
        "[evaluation]",
        *(
            [
                'threshold = "f1_optimal"   # the operating threshold, chosen on the eval data',
                "# and registered with the version. Choose it for your aim instead:",
                "# threshold = { precision = 0.8 } or { recall = 0.5 }, or",
                '# "cost_optimal" with cost = { false_positive = 1.0, false_negative = 5.0 }',
            ]
            if task == "binary"
            else ['# slices = ["segment"]    # columns whose values are scored separately']
        ),
        "bootstrap = { samples = 200, seed = 0 }   # confidence intervals of the headline metrics",
        *_gate_lines(task),
        "",
        "[serving]",
        "# The prediction log feeds the drift check, the replay test and label matching. A",
        "# label can only be matched to a logged prediction, and the first drift verdict",
        "# waits for [monitoring] min_samples logged rows: at 0.1 that would take 10,000",
        "# requests and 9 labels in 10 would find nothing. Log everything at first; lower",
        "# both together under heavy traffic.",
        "log_sample_rate = 1.0      # share of requests written to the prediction log",
        "",
        "[monitoring]",
        "min_samples = 1000         # logged rows before drift is judged (fewer: not judged)",
        "",
        "[rollout]",
        f"steps = {list(steps)}    # canary weights in percent; a new model starts at the first",
        "",
        "[pipeline]",
        "replay_max_flip_rate = 0.1 # refuse a candidate that changes more than 10% of recent",
        "                           # decisions beyond what it was trained to change: flips",
        "                           # toward the label (labels sent for those requests) and",
        "                           # the disagreement it showed on [data] eval are expected",
        "# cpu_hour_price = 0.05    # price of one CPU-hour: adds cost figures to each run record",
        "",
    ]
    return Scaffold(
        text="\n".join(lines),
        label=label,
        label_reason=reason,
        task=task,
        positive=positive,
        rows=stats.num_rows,
        columns=columns,
        warnings=warnings,
        name=project,
        name_reason=name_reason,
        timestamp=timestamp,
        timestamp_reason=timestamp_reason if timestamp is not None else None,
        ids=list(ids),
        empty=empty,
        delimiter=delimiter,
        delimiter_detected=detected and delimiter != ",",
        holdout=split,
        leaks=leaks,
    )
